using System.Diagnostics;

namespace SharpInfer.Tests.Tracing;

/// <summary>The tests that attach a listener to the engine's source, or assert that none is attached, run alone: a
/// listener is process-wide, so one test's listener would give another test's engine spans.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class TracingCollection
{
    public const string Name = "Tracing (process-wide activity listeners)";
}

/// <summary>Collects every activity of the named sources as it stops (all data recorded).</summary>
internal sealed class SpanRecorder : IDisposable
{
    private readonly List<Activity> _stopped = [];
    private readonly ActivityListener _listener;

    public SpanRecorder(params string[] sources)
    {
        _listener = new ActivityListener
        {
            ShouldListenTo = s => sources.Contains(s.Name),
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = a =>
            {
                lock (_stopped) _stopped.Add(a);
            },
        };
        ActivitySource.AddActivityListener(_listener);
    }

    public Activity[] Stopped
    {
        get
        {
            lock (_stopped) return [.. _stopped];
        }
    }

    /// <summary>The one engine request span whose gen_ai.response.id is <paramref name="responseId"/>.</summary>
    public Activity Request(string responseId) =>
        Assert.Single(Stopped, a => a.Source.Name == "SharpInfer" && a.GetTagItem("gen_ai.response.id") as string == responseId);

    public Activity[] ChildrenOf(Activity parent) => Stopped.Where(a => a.ParentSpanId == parent.SpanId).OrderBy(a => a.StartTimeUtc).ToArray();

    public void Dispose() => _listener.Dispose();
}
