using System.Text;

namespace SharpInfer.Tests.Packaging;

/// <summary>
/// The packages as a user gets them: <c>dotnet pack</c> (of the Release build this test run made) into a temporary
/// feed; a new console project that references <c>SharpInfer.Extensions.AI</c> from that feed (a PackageReference,
/// not a project reference) runs a chat, a streamed chat, an embedding and a forced tool call through <c>UseFunctionInvocation()</c>;
/// and the CLI installs from the feed as a dotnet tool whose <c>sharpinfer run</c> generates. One pack, one restore:
/// the other packages come from this machine's global package folder (a fallback folder), ours are extracted into a
/// temporary one, so a stale copy of the same version can never be used.
/// </summary>
// one at a time: both run dotnet pack/publish over the same src/*/obj folders (a RID-specific restore rewrites them)
[Collection("dotnet pack and publish")]
public class PackageFeedTests
{
    private static readonly TimeSpan HangGuard = TimeSpan.FromMinutes(10);

    [Fact]
    public async Task PackagesFromALocalFeedRunAChatAToolCallAndTheDotnetTool()
    {
        var ct = TestContext.Current.CancellationToken;
        var root = Directory.CreateDirectory(Path.Combine(TestPaths.RunScratch, "packages-" + Guid.NewGuid().ToString("N"))).FullName;
        string feed = Path.Combine(root, "feed"), app = Directory.CreateDirectory(Path.Combine(root, "app")).FullName;
        string configuration = new DirectoryInfo(Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory)).Parent!.Name;   // bin/<Configuration>/net10.0
        foreach (var project in new[] { "SharpInfer", "SharpInfer.Server", "SharpInfer.Extensions.AI", "SharpInfer.Cli" })
            await DotnetAsync(TestPaths.RepoRoot, ct, "pack", Path.Combine(TestPaths.RepoRoot, "src", project), "-c", configuration, "--no-build", "-o", feed);
        string version = Path.GetFileName(Directory.GetFiles(feed, "SharpInfer.Extensions.AI.*.nupkg").Single(f => !f.EndsWith(".snupkg")))
            ["SharpInfer.Extensions.AI.".Length..^".nupkg".Length];

        string globalPackages = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } g ? g
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        // the user's configured sources stay (this file adds to them); the feed comes first for our packages
        File.WriteAllText(Path.Combine(app, "nuget.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <config><add key="globalPackagesFolder" value="{Path.Combine(root, "packages")}" /></config>
              <packageSources><add key="sharpinfer-test-feed" value="{feed}" /></packageSources>
              <fallbackPackageFolders><add key="machine" value="{globalPackages}" /></fallbackPackageFolders>
            </configuration>
            """);
        File.WriteAllText(Path.Combine(app, "App.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <ImplicitUsings>enable</ImplicitUsings>
                <Nullable>enable</Nullable>
              </PropertyGroup>
              <ItemGroup>
                <PackageReference Include="SharpInfer.Extensions.AI" Version="{version}" />
              </ItemGroup>
            </Project>
            """);
        File.WriteAllText(Path.Combine(app, "Program.cs"), """
            using Microsoft.Extensions.AI;
            using SharpInfer;
            using SharpInfer.Extensions.AI;

            await using var stories = await Llm.LoadAsync(args[0], new LlmOptions { Threads = 2, ContextLength = 256 });
            IChatClient chat = stories.AsChatClient();
            var options = new ChatOptions { Temperature = 0, MaxOutputTokens = 8 };
            var reply = await chat.GetResponseAsync("Tell me a story.", options);
            Console.WriteLine($"chat: {reply.Usage!.OutputTokenCount} {reply.FinishReason} [{reply.Text}]");
            var streamed = new System.Text.StringBuilder();
            int updates = 0;
            await foreach (var u in chat.GetStreamingResponseAsync("Tell me a story.", options)) { streamed.Append(u.Text); updates++; }
            Console.WriteLine($"stream: {updates} {streamed.ToString() == reply.Text}");
            var embedder = stories.AsEmbeddingGenerator();
            var vectors = await embedder.GenerateAsync(["Once upon a time", "The cat sat"]);
            double norm = Math.Sqrt(vectors[1].Vector.ToArray().Sum(x => (double)x * x));
            Console.WriteLine($"embed: {vectors.Count} {vectors[0].Vector.Length} {norm:F3} {vectors.Usage!.InputTokenCount}");

            await using var qwen = await Llm.LoadAsync(args[1], new LlmOptions { Threads = 2, ContextLength = 512 });
            long called = -1;
            var forecast = AIFunctionFactory.Create((long days) => { called = days; return $"sunny for {days} days"; }, "get_forecast", "The forecast.");
            var tools = qwen.AsChatClient().AsBuilder().UseFunctionInvocation(configure: f => f.MaximumIterationsPerRequest = 2).Build();
            var answer = await tools.GetResponseAsync("Weather?", new ChatOptions { Tools = [forecast], ToolMode = ChatToolMode.RequireAny, MaxOutputTokens = 200, Seed = 4 });
            var result = answer.Messages.SelectMany(m => m.Contents).OfType<FunctionResultContent>().FirstOrDefault();
            Console.WriteLine($"tool: {called} [{result?.Result}] {answer.Messages.Count} messages");
            """);
        var output = await DotnetAsync(app, ct, "run", "-c", "Release", "-p:UseSharedCompilation=false", "--", TestPaths.Stories260K, TestModels.Get("qwen3-tiny", "f32"));
        Assert.Contains("chat: 8 length [", output);
        var stream = output.Split('\n').Single(l => l.StartsWith("stream: ")).Split(' ');
        Assert.True(int.Parse(stream[1]) > 2, output);
        Assert.Equal("True", stream[2].Trim());
        var embed = output.Split('\n').Single(l => l.StartsWith("embed: ")).Trim().Split(' ');
        Assert.Equal(["embed:", "2", "64", "1.000"], embed[..4]);   // stories260K: 64-wide unit vectors
        Assert.True(int.Parse(embed[4]) > 4, string.Join(' ', embed));
        var tool = output.Split('\n').Single(l => l.StartsWith("tool: "));
        long days = long.Parse(tool.Split(' ')[1]);
        Assert.True(days >= 0, output);
        Assert.Contains($"[sunny for {days} days]", tool);

        string tools = Path.Combine(root, "tools");
        await DotnetAsync(app, ct, "tool", "install", "--tool-path", tools, "--add-source", feed, "--version", version, "SharpInfer.Cli");
        var run = await RunAsync(Path.Combine(tools, "sharpinfer"), app, ct, "run", "-m", TestPaths.Stories260K, "-p", "Once", "-n", "8", "--temp", "0");
        Assert.StartsWith("Once", run.TrimStart());
        Assert.True(run.Trim().Length > "Once".Length, run);
    }

    private static Task<string> DotnetAsync(string dir, CancellationToken ct, params string[] args) => RunAsync("dotnet", dir, ct, args);

    private static Task<string> RunAsync(string file, string dir, CancellationToken ct, params string[] args) =>
        ChildProcess.RunAsync(file, dir, HangGuard, ct, args);
}
