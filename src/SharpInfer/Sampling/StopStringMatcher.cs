using System.Text;

namespace SharpInfer.Sampling;

/// <summary>
/// Finds stop strings in streamed text. Text that might be the start of a stop string is held back until it is
/// either completed (generation stops; the stop string and anything after it are dropped) or ruled out, so a
/// stream never shows part of a stop string.
/// </summary>
internal sealed class StopStringMatcher
{
    private readonly string[] _stops;
    private readonly StringBuilder _held = new();

    public StopStringMatcher(IReadOnlyList<string> stops) => _stops = stops.Where(s => s.Length > 0).ToArray();

    public bool IsEmpty => _stops.Length == 0;

    /// <summary>Adds generated text; appends what is safe to show to <paramref name="emit"/>. Returns true when a
    /// stop string was found (then <paramref name="emit"/> ends just before it).</summary>
    public bool Push(string delta, StringBuilder emit)
    {
        if (_stops.Length == 0) { emit.Append(delta); return false; }
        _held.Append(delta);
        string text = _held.ToString();
        int first = -1;
        foreach (var s in _stops)
        {
            int i = text.IndexOf(s, StringComparison.Ordinal);
            if (i >= 0 && (first < 0 || i < first)) first = i;
        }
        if (first >= 0)
        {
            emit.Append(text, 0, first);
            _held.Clear();
            return true;
        }
        int keep = 0;
        foreach (var s in _stops)
            for (int k = Math.Min(s.Length - 1, text.Length); k > keep; k--)
                if (string.CompareOrdinal(text, text.Length - k, s, 0, k) == 0) { keep = k; break; }
        emit.Append(text, 0, text.Length - keep);
        _held.Clear().Append(text, text.Length - keep, keep);
        return false;
    }

    /// <summary>At the end of generation (no stop string found): the held-back text.</summary>
    public string Flush()
    {
        var s = _held.ToString();
        _held.Clear();
        return s;
    }
}
