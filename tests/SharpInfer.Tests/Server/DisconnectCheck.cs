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
        // a prefill and a few decode steps, then the engine holds between steps (aborts are still taken): the request
        // cannot run to its end before the client leaves, however slow the machine or this thread
        s.Engine.AllowSteps(12);
        var res = await s.PostStreamAsync(path, body, cts.Token);
        var reader = new StreamReader(await res.Content.ReadAsStreamAsync(cts.Token));
        int deltas = 0;
        while (deltas < 3 && await reader.ReadLineAsync(cts.Token) is { } line)
            if (line.Contains(deltaMarker, StringComparison.Ordinal)) deltas++;
        Assert.Equal(3, deltas);
        await WaitForAsync(() => s.Engine.Stats.Running == 1);   // the published stats lag a step behind
        Assert.Equal(1, s.Engine.Stats.Running);
        cts.Cancel();
        reader.Dispose();
        res.Dispose();
        Assert.True(await s.WaitIdleAsync(), $"KV blocks still used after the disconnect: {s.Engine.Stats}");
        var scrape = s.Host.Exporter!.Scrape();
        Assert.Contains("finished_reason=\"abort\"} 1", scrape);
        Assert.True(s.Engine.Stats.GenerationTokens < 1000);
    }

    /// <summary>Waits for a state (a hang guard, not a timing assumption).</summary>
    public static async Task WaitForAsync(Func<bool> state)
    {
        var deadline = DateTime.UtcNow.AddMinutes(5);
        while (!state() && DateTime.UtcNow < deadline) await Task.Delay(5, TestContext.Current.CancellationToken);
    }
}
