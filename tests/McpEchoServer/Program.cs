// A minimal MCP server over stdio (newline-delimited JSON-RPC 2.0) for SharpInfer's MCP client tests. Tools:
// echo {message} -> "echo: MESSAGE" (sent after a progress notification, in the same write), add {a, b},
// fail_once (a JSON-RPC error on its first call per process), sleep {seconds} -> "slept SECONDS" (answered from
// another thread, so later requests are answered meanwhile), crash (answers, then the process
// exits), pid (the process id, to tell a respawned process apart), big (a 2 MiB line, dropped by the client).
// Arguments: --no-tools (tools/list answers an empty list), --stderr TEXT (written to stderr at start).
using System.Text.Json.Nodes;

bool noTools = args.Contains("--no-tools");
int stderrAt = Array.IndexOf(args, "--stderr");
if (stderrAt >= 0 && stderrAt + 1 < args.Length) Console.Error.WriteLine(args[stderrAt + 1]);
bool failedOnce = false;
var stdout = Console.OpenStandardOutput();

var writeLock = new object();

void Send(params JsonObject[] messages)
{
    lock (writeLock)
    {
        // one write for all the messages: a notification and the reply arrive in the same pipe read
        var text = string.Concat(messages.Select(m => m.ToJsonString() + "\n"));
        var bytes = System.Text.Encoding.UTF8.GetBytes(text);
        stdout.Write(bytes);
        stdout.Flush();
    }
}

JsonObject Reply(JsonNode? id, JsonObject result) => new() { ["jsonrpc"] = "2.0", ["id"] = id?.DeepClone(), ["result"] = result };
JsonObject Fail(JsonNode? id, int code, string message) =>
    new() { ["jsonrpc"] = "2.0", ["id"] = id?.DeepClone(), ["error"] = new JsonObject { ["code"] = code, ["message"] = message } };
JsonObject TextResult(string text) => new() { ["content"] = new JsonArray((JsonNode)new JsonObject { ["type"] = "text", ["text"] = text }) };
JsonObject Tool(string name, string description, JsonObject properties) => new()
{
    ["name"] = name,
    ["description"] = description,
    ["inputSchema"] = new JsonObject { ["type"] = "object", ["properties"] = properties },
};

while (Console.ReadLine() is { } line)
{
    if (line.Trim().Length == 0) continue;
    JsonObject? request;
    try
    {
        request = JsonNode.Parse(line) as JsonObject;
    }
    catch (System.Text.Json.JsonException)
    {
        continue;
    }
    if (request is null) continue;
    var id = request["id"];
    if (id is null) continue; // a notification: no reply
    string method = request["method"]?.GetValue<string>() ?? "";
    var p = request["params"] as JsonObject ?? [];
    switch (method)
    {
        case "initialize":
            Send(Reply(id, new JsonObject
            {
                ["protocolVersion"] = "2024-11-05",
                ["capabilities"] = new JsonObject { ["tools"] = new JsonObject() },
                ["serverInfo"] = new JsonObject { ["name"] = "mcp-echo", ["version"] = "1.0" },
            }));
            break;
        case "tools/list":
            var tools = new JsonArray();
            if (!noTools)
            {
                tools.Add((JsonNode)Tool("echo", "Echo back the input message", new JsonObject { ["message"] = new JsonObject { ["type"] = "string" } }));
                tools.Add((JsonNode)Tool("add", "Add two numbers", new JsonObject { ["a"] = new JsonObject { ["type"] = "number" }, ["b"] = new JsonObject { ["type"] = "number" } }));
                tools.Add((JsonNode)Tool("fail_once", "Fails on its first call", []));
                tools.Add((JsonNode)Tool("sleep", "Sleeps", new JsonObject { ["seconds"] = new JsonObject { ["type"] = "number" } }));
                tools.Add((JsonNode)Tool("crash", "Answers, then exits", []));
                tools.Add((JsonNode)Tool("pid", "The process id", []));
                tools.Add((JsonNode)Tool("big", "A reply longer than the client accepts", []));
            }
            Send(Reply(id, new JsonObject { ["tools"] = tools }));
            break;
        case "tools/call":
            var arguments = p["arguments"] as JsonObject ?? [];
            switch (p["name"]?.GetValue<string>())
            {
                case "echo":
                    var progress = new JsonObject { ["jsonrpc"] = "2.0", ["method"] = "notifications/progress", ["params"] = new JsonObject { ["progress"] = 50 } };
                    Send(progress, Reply(id, TextResult("echo: " + arguments["message"]?.GetValue<string>())));
                    break;
                case "add":
                    Send(Reply(id, TextResult((arguments["a"]!.GetValue<double>() + arguments["b"]!.GetValue<double>()).ToString(System.Globalization.CultureInfo.InvariantCulture))));
                    break;
                case "fail_once":
                    if (!failedOnce)
                    {
                        failedOnce = true;
                        Send(Fail(id, -32000, "transient error"));
                    }
                    else Send(Reply(id, TextResult("ok")));
                    break;
                case "sleep":
                    double seconds = arguments["seconds"]?.GetValue<double>() ?? 5;
                    var sleepId = id.DeepClone();
                    _ = Task.Run(async () =>
                    {
                        await Task.Delay(TimeSpan.FromSeconds(seconds));
                        Send(Reply(sleepId, TextResult("slept " + seconds.ToString(System.Globalization.CultureInfo.InvariantCulture))));
                    });
                    break;
                case "crash":
                    Send(Reply(id, TextResult("crashing")));
                    Environment.Exit(1);
                    break;
                case "pid":
                    Send(Reply(id, TextResult(Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture))));
                    break;
                case "big":
                    Send(Reply(id, TextResult(new string('x', 9 << 20))));
                    break;
                default:
                    Send(Fail(id, -32602, "Unknown tool"));
                    break;
            }
            break;
        default:
            Send(Fail(id, -32601, "Method not found: " + method));
            break;
    }
}
