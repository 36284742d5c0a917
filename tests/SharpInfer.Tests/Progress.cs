using System.Diagnostics;
using System.Reflection;
using Xunit.v3;

[assembly: AssemblyFixture(typeof(SharpInfer.Tests.ProgressReporter))]
[assembly: SharpInfer.Tests.CountFinishedTests]

namespace SharpInfer.Tests;

/// <summary>Prints "[progress] N tests done" every 20 s while the suite runs, so a long `dotnet test` is never
/// silent for minutes (it goes out as an xunit diagnostic message: diagnosticMessages is on in xunit.runner.json).</summary>
public sealed class ProgressReporter : IDisposable
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(20);
    internal static int Finished;
    private readonly Timer _timer;

    public ProgressReporter()
    {
        var context = TestContext.Current;   // the assembly's context: its diagnostic sink outlives every test
        var clock = Stopwatch.StartNew();
        _timer = new Timer(_ => context.SendDiagnosticMessage(
            $"[progress] {Volatile.Read(ref Finished)} tests done after {clock.Elapsed.TotalSeconds:F0} s"), null, Interval, Interval);
    }

    public void Dispose() => _timer.Dispose();
}

/// <summary>Counts finished tests for <see cref="ProgressReporter"/> (applied to the whole assembly).</summary>
[AttributeUsage(AttributeTargets.Assembly)]
public sealed class CountFinishedTestsAttribute : BeforeAfterTestAttribute
{
    public override void After(MethodInfo methodUnderTest, IXunitTest test) => Interlocked.Increment(ref ProgressReporter.Finished);
}
