using System.Diagnostics;

namespace SharpInfer.Models;

/// <summary>
/// Optional per-operation timing of the forward pass (set <c>SHARPINFER_PROFILE=1</c>): accumulates wall time per
/// kind of operation and prints a table when the transformer is disposed. Off by default; the checks fold to
/// nothing when disabled.
/// </summary>
internal sealed class ForwardProfiler
{
    public static readonly bool Enabled = Environment.GetEnvironmentVariable("SHARPINFER_PROFILE") == "1";

    public enum Op { Embed, Norm, QkvProj, QkNormRope, KvWrite, Attention, OutProj, Residual, GateUp, SiluMul, Down, Logits, Count }

    private readonly long[] _ticks = new long[(int)Op.Count];
    private readonly long[] _calls = new long[(int)Op.Count];
    private long _start;
    public long Tokens;
    public long Passes;

    public void Start() => _start = Stopwatch.GetTimestamp();

    public void Stop(Op op)
    {
        long now = Stopwatch.GetTimestamp();
        _ticks[(int)op] += now - _start;
        _calls[(int)op]++;
        _start = now;
    }

    public string Report()
    {
        long total = _ticks.Sum();
        var sb = new System.Text.StringBuilder();
        sb.AppendLine($"forward profile: {Passes} passes, {Tokens} tokens, {total * 1000.0 / Stopwatch.Frequency:F1} ms");
        for (int i = 0; i < (int)Op.Count; i++)
        {
            if (_calls[i] == 0) continue;
            double ms = _ticks[i] * 1000.0 / Stopwatch.Frequency;
            sb.AppendLine($"  {(Op)i,-12} {ms,10:F1} ms  {100.0 * _ticks[i] / Math.Max(1, total),5:F1}%  {_calls[i],8} calls");
        }
        return sb.ToString();
    }
}
