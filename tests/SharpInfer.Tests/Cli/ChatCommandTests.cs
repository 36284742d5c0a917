using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using SharpInfer.Engine;
using SharpInfer.Models;
using SharpInfer.Sampling;

namespace SharpInfer.Tests.Cli;

/// <summary><c>sharpinfer chat</c> with piped input on the synthetic qwen3-tiny, greedy and short replies.</summary>
public partial class ChatCommandTests
{
    private static string Qwen3 => TestModels.Get("qwen3-tiny", "f32");
    private const int ReplyTokens = 6;

    private static CliHarness.Result Chat(string stdin, bool interactive = false, params string[] more) =>
        CliHarness.Run(["chat", "-m", Qwen3, "-t", "1", "-c", "256", "--temp", "0", "-n", ReplyTokens.ToString(), .. more], stdin, interactive);

    /// <summary>The replies the engine gives to these user messages in one conversation (what the command must print).</summary>
    private static List<string> Replies(string? system, params string[] userMessages)
    {
        using var model = Model.Load(Qwen3);
        using var session = new InferenceSession(model, new SessionOptions { Threads = 1, ContextLength = 256 });
        var chat = new ChatConversation(session, ChatFormatter.ForModel(model), system);
        var replies = new List<string>();
        foreach (var m in userMessages)
        {
            foreach (var _ in chat.Send(m, SamplingParams.Greedy(ReplyTokens), TestContext.Current.CancellationToken)) { }
            replies.Add(chat.LastReply!);
        }
        return replies;
    }

    [GeneratedRegex(@"^\[prompt: (\d+) tokens processed, (\d+) cached, [\d.]+ tokens/s \| reply: (\d+) tokens, [\d.]+ tokens/s(, stopped at the token limit)?\]$", RegexOptions.Multiline)]
    private static partial Regex StatsLine();

    private static List<(int Processed, int Cached, int Generated)> Stats(string stderr) =>
        StatsLine().Matches(stderr).Select(m => (int.Parse(m.Groups[1].Value), int.Parse(m.Groups[2].Value), int.Parse(m.Groups[3].Value))).ToList();

    /// <summary>Long enough for two full KV blocks, so the prefix cache has something to reuse between turns.</summary>
    private const string System = "You are a helpful assistant who answers every question about stories, animals, colors and the weather in short sentences.";

    [Fact]
    public void PipedInputGivesOneAnswerPerLine()
    {
        var r = Chat("hi\nhow are you\n");
        Assert.Equal(0, r.ExitCode);
        var expected = Replies(null, "hi", "how are you");
        Assert.All(expected, a => Assert.DoesNotContain('\n', a));   // so "one per line" is checkable
        Assert.All(expected, a => Assert.NotEqual("", a));
        Assert.Equal(expected[0] + "\n" + expected[1] + "\n", r.Stdout);
        Assert.Equal(2, r.Stdout.Split('\n').Length - 1);
        var stats = Stats(r.Stderr);
        Assert.Equal(2, stats.Count);
        Assert.Equal(0, stats[0].Cached);
        Assert.True(stats[1].Cached > 0, "turn 2 reuses turn 1");
        Assert.All(stats, s => Assert.Equal(ReplyTokens, s.Generated));
        Assert.DoesNotContain("> ", r.Stderr);                         // no prompts when input is piped
    }

    [Fact]
    public void ResetStartsOverAndExitStops()
    {
        var r = Chat("hi\n/reset\n\nhi\n/exit\nnot read\n");
        Assert.Equal(0, r.ExitCode);
        var once = Replies(null, "hi")[0];
        Assert.Equal(once + "\n" + once + "\n", r.Stdout);             // empty lines and commands give no answer
        var stats = Stats(r.Stderr);
        Assert.Equal(2, stats.Count);
        // same prompt after /reset: the same tokens in total, its full blocks now served by the prefix cache
        Assert.Equal(stats[0].Processed, stats[1].Processed + stats[1].Cached);
        // the last prompt token is always computed; turn 1 computed its prompt and all but its last reply token, so when
        // those end in the block of the prompt's last token, that partial block is a hit too
        int computed = stats[0].Processed + ReplyTokens - 1, full = (stats[0].Processed - 1) / 16;
        Assert.Equal(computed / 16 == full ? stats[0].Processed - 1 : full * 16, stats[1].Cached);

        var noReset = Chat("hi\nhi\n");
        Assert.NotEqual(r.Stdout, noReset.Stdout);                       // without /reset the second "hi" is turn 2
        var turns = Stats(noReset.Stderr);
        Assert.True(turns[1].Processed + turns[1].Cached > turns[0].Processed, "turn 2's prompt holds turn 1");
    }

    [Fact]
    public void LaterTurnsReuseEarlierTurnsThroughThePrefixCache()
    {
        var r = Chat("hi\nhow are you\n", false, "--system", System);
        Assert.Equal(0, r.ExitCode);
        var expected = Replies(System, "hi", "how are you");   // a fresh session per reply list: same text either way
        Assert.Equal(expected[0] + "\n" + expected[1] + "\n", r.Stdout);
        var stats = Stats(r.Stderr);
        Assert.Equal(0, stats[0].Cached);
        // turn 2 reuses every full 16-token block of turn 1's prompt (the reply's full blocks too), and of the partly
        // filled last block what the new prompt repeats
        Assert.True(stats[1].Cached >= stats[0].Processed / 16 * 16 && stats[1].Cached >= 32, $"turn 2 cached {stats[1].Cached}");
    }

    [Fact]
    public void SystemPromptAndVariablesShapeThePrompt()
    {
        var r = Chat("hi\n", false, "--system", "You are terse.", "--var", "enable_thinking=false");
        Assert.Equal(0, r.ExitCode);
        using var model = Model.Load(Qwen3);
        var prompt = ChatFormatter.ForModel(model).Format(new ChatFormatRequest
        {
            Messages = new JsonArray(new JsonObject { ["role"] = "system", ["content"] = "You are terse." }, new JsonObject { ["role"] = "user", ["content"] = "hi" }),
            Variables = new Dictionary<string, JsonNode?> { ["enable_thinking"] = false },
        });
        Assert.Equal(prompt.TokenIds.Length, Assert.Single(Stats(r.Stderr)).Processed);
        Assert.EndsWith("<think>\n\n</think>\n\n", prompt.Text);
    }

    [Fact]
    public void InteractiveModeShowsPromptsOnStderrOnly()
    {
        var r = Chat("hi\n", interactive: true);
        Assert.Equal(0, r.ExitCode);
        Assert.Equal(Replies(null, "hi")[0] + "\n", r.Stdout);
        Assert.Contains("> ", r.Stderr);
        Assert.Contains("/reset", r.Stderr);
    }

    [Fact]
    public void AFailedTurnIsReportedAndTheChatGoesOn()
    {
        // the first message does not fit a 64-token context; the second does
        string tooLong = string.Join(' ', Enumerable.Repeat("word", 80));
        var r = CliHarness.Run(["chat", "-m", Qwen3, "-t", "1", "-c", "64", "--temp", "0", "-n", "4"], tooLong + "\nhi\n");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("error: the prompt has", r.Stderr);
        Assert.Contains("context window is 64 tokens", r.Stderr);
        var lines = r.Stdout.Split('\n');
        Assert.Equal(3, lines.Length);          // an empty answer line for the failed turn, then the answer
        Assert.Equal("", lines[0]);
        Assert.NotEqual("", lines[1]);
        Assert.Single(Stats(r.Stderr));
    }

    [Fact]
    public void BadOptionsAreErrors()
    {
        var r = Chat("hi\n", false, "--top-p", "0");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("top_p", r.Stderr);
        Assert.Equal("", r.Stdout);
        var t = Chat("hi\n", false, "--chat-template-file", CliHarness.TempFile("{% if %}", ".jinja"));
        Assert.Equal(1, t.ExitCode);
        Assert.Contains("template syntax error", t.Stderr);
        var v = Chat("hi\nhello\n", false, "--var", "messages=[]");
        Assert.Equal(1, v.ExitCode);
        Assert.Equal("", v.Stdout);                     // rejected before the first turn, not once per turn
        Assert.Equal(1, v.Stderr.Split("error:").Length - 1);
        Assert.Contains("'messages' cannot be set", v.Stderr);
    }
}
