using System.Text.Json.Nodes;

namespace SharpInfer.Tests.Server;

/// <summary>A client that leaves in the middle of a stream of a translated API (Responses, Anthropic Messages) aborts
/// its engine request through the same cancellation path as chat completions.</summary>
internal static class DisconnectCheck
{
    public static async Task StreamAbortsAsync(string path, JsonObject body, string deltaMarker)
    {
        await using var s = await ServerHarness.StartAsync(loopback: true);
        body["stream"] = true;
        body["ignore_eos"] = true;
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        var res = await s.PostStreamAsync(path, body, cts.Token);
        var reader = new StreamReader(await res.Content.ReadAsStreamAsync(cts.Token));
        int deltas = 0;
        while (deltas < 3 && await reader.ReadLineAsync(cts.Token) is { } line)
            if (line.Contains(deltaMarker, StringComparison.Ordinal)) deltas++;
        Assert.Equal(3, deltas);
        Assert.Equal(1, s.Engine.Stats.Running);
        // held between steps: the request cannot run to its end while the disconnect is noticed (aborts are still taken)
        s.Engine.HoldSteps();
        cts.Cancel();
        reader.Dispose();
        res.Dispose();
        Assert.True(await s.WaitIdleAsync(), $"KV blocks still used after the disconnect: {s.Engine.Stats}");
        var scrape = s.Host.Exporter!.Scrape();
        Assert.Contains("finished_reason=\"abort\"} 1", scrape);
        Assert.True(s.Engine.Stats.GenerationTokens < 1000);
    }
}
