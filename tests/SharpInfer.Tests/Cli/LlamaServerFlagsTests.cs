using SharpInfer.Cli.Commands;
using SharpInfer.Server;

namespace SharpInfer.Tests.Cli;

/// <summary>llama-server's flags on <c>serve</c> map onto the same options as ours (the server is not started).</summary>
public class LlamaServerFlagsTests
{
    private static ServerOptions Parse(params string[] args)
    {
        ServerOptions? captured = null;
        var cmd = ServeCommand.Create(o =>
        {
            captured = o;
            return 0;
        });
        var result = cmd.Parse(["-m", TestPaths.Stories260K, .. args]);
        Assert.Empty(result.Errors);
        Assert.Equal(0, result.Invoke());
        return captured!;
    }

    [Fact]
    public void LlamaServerScriptFlagsMapOntoServeOptions()
    {
        var o = Parse("--ctx-size", "512", "--parallel", "3", "--n-predict", "9", "--alias", "my-model", "--seed", "42", "--temp", "0",
                      "--threads", "1", "--host", "0.0.0.0", "--port", "9999", "--api-key", "k", "--batch-size", "128", "--no-slots",
                      "--metrics", "--jinja", "--cont-batching", "--n-gpu-layers", "99", "-fa", "on", "--no-mmap", "--ubatch-size", "64",
                      "--cors-origins", "http://a.example");
        Assert.Equal(512, o.Engine.MaxModelLen);
        Assert.Equal(3, o.Engine.MaxNumSeqs);
        Assert.Equal(9, o.DefaultNPredict);
        Assert.Equal("my-model", o.ModelId);
        Assert.Equal(42UL, o.DefaultSeed);
        Assert.Equal(0f, o.DefaultTemperature);
        Assert.Equal(1, o.Engine.Threads);
        Assert.Equal("0.0.0.0", o.Host);
        Assert.Equal(9999, o.Port);
        Assert.Equal("k", o.ApiKey);
        Assert.Equal(128, o.Engine.MaxNumBatchedTokens);
        Assert.False(o.SlotsEndpoint);
        Assert.Equal(["http://a.example"], o.CorsOrigins);
    }

    [Fact]
    public void SamplingDefaultsAreVllmUnlessLlamaServerIsAsked()
    {
        Assert.False(Parse().LlamaServerSampling);
        Assert.False(Parse("--sampling-defaults", "vllm").LlamaServerSampling);
        Assert.True(Parse("--sampling-defaults", "llama-server").LlamaServerSampling);
        var cmd = ServeCommand.Create(_ => 0);
        Assert.NotEmpty(cmd.Parse(["-m", TestPaths.Stories260K, "--sampling-defaults", "ollama"]).Errors);   // a clear parse error
    }

    [Fact]
    public void SwaFullKeepsEveryPositionOfSlidingWindowLayers()
    {
        Assert.False(Parse().Engine.SwaFull);   // freeing by default
        Assert.True(Parse("--swa-full").Engine.SwaFull);
    }

    [Fact]
    public void ShortFormsAndDefaults()
    {
        var o = Parse("-c", "256", "-np", "2", "-n", "-1", "-a", "x", "-s", "-1", "-t", "1", "-ngl", "0", "-fa");
        Assert.Equal(256, o.Engine.MaxModelLen);
        Assert.Equal(2, o.Engine.MaxNumSeqs);
        Assert.Equal(-1, o.DefaultNPredict);
        Assert.Equal("x", o.ModelId);
        Assert.Null(o.DefaultSeed);   // -1 = random, as llama-server
        Assert.True(o.SlotsEndpoint);
        Assert.Null(o.ChatTemplate);
    }

    [Fact]
    public void ChatTemplateTakesJinjaSourceOrABuiltInName()
    {
        const string source = "{% for m in messages %}{{ m.content }}{% endfor %}";
        Assert.Equal(source, Parse("--chat-template", source).ChatTemplate);
        // names are resolved by the template layer (BuiltinChatTemplatesTests), so serve passes them on
        Assert.Equal("chatml", Parse("--chat-template", "chatml").ChatTemplate);
    }

    [Fact]
    public void ReasoningAndChatTemplateKwargsBecomeServerTemplateVariables()
    {
        Assert.Null(Parse().ChatTemplateKwargs);
        Assert.Null(Parse("--reasoning", "auto").ChatTemplateKwargs);
        Assert.False(Parse("--reasoning", "off").ChatTemplateKwargs!["enable_thinking"]!.GetValue<bool>());
        Assert.True(Parse("-rea", "on").ChatTemplateKwargs!["enable_thinking"]!.GetValue<bool>());
        var kw = Parse("--chat-template-kwargs", """{"enable_thinking": true, "x": [1]}""", "--reasoning", "off").ChatTemplateKwargs!;
        Assert.False(kw["enable_thinking"]!.GetValue<bool>());   // --reasoning wins, as in llama-server
        Assert.Equal("[1]", kw["x"]!.ToJsonString());
        Assert.True(Parse("--verbose").Verbose);
        Assert.False(Parse().Verbose);
        foreach (var bad in new[] { new[] { "--reasoning", "maybe" }, new[] { "--chat-template-kwargs", "[1]" } })
        {
            var result = ServeCommand.Create(_ => 0).Parse(["-m", TestPaths.Stories260K, .. bad]);
            Assert.ThrowsAny<Exception>(() => result.Invoke(new System.CommandLine.InvocationConfiguration { EnableDefaultExceptionHandler = false }));
        }
    }

    [Fact]
    public void ToolFlagsAreOffByDefaultAndMapLikeLlamaServers()
    {
        var none = Parse();
        Assert.Empty(none.Tools);
        Assert.False(none.ToolsEnabled);
        Assert.False(none.UiMcpProxy);
        var o = Parse("--tools", "read_file, grep_search", "--mcp-servers-json", "{}", "--mcp-servers-config", "/x.json", "--ui-mcp-proxy");
        Assert.Equal(["read_file", "grep_search"], o.Tools);
        Assert.Equal("{}", o.McpServersJson);
        Assert.Equal("/x.json", o.McpServersConfig);
        Assert.True(o.UiMcpProxy);
        Assert.Equal(["localhost"], o.EffectiveCorsOrigins);
        var agent = Parse("--agent", "--cors-origins", "http://ui.example");
        Assert.Equal(["all"], agent.Tools);
        Assert.True(agent.UiMcpProxy);
        Assert.Equal(["http://ui.example"], agent.EffectiveCorsOrigins);
    }
}
