namespace SharpInfer.Tensors;

/// <summary>The rounding primitives ggml's quantizers use. They are not interchangeable: ggml's reference
/// code mixes C <c>roundf</c> (ties away from zero), its <c>nearest_int</c> trick (ties to even), and plain
/// C casts (truncation toward zero), and reproducing its bytes requires using the same one at each site.</summary>
internal static class QuantMath
{
    /// <summary>ggml's <c>nearest_int</c>: adds 1.5·2^23 so the float adder rounds to an integer (ties to
    /// even), then reads the integer back out of the mantissa bits. Valid for |x| ≤ 4194303; outside that
    /// range it returns the same garbage ggml would, which is why we mimic the bits instead of calling
    /// MathF.Round.</summary>
    public static int NearestInt(float x)
    {
        float biased = x + 12582912f;
        int bits = BitConverter.SingleToInt32Bits(biased);
        return (bits & 0x007fffff) - 0x00400000;
    }

    /// <summary>C's <c>roundf</c>: halfway cases go away from zero (used by quantize_row_q8_0/q8_1_ref).</summary>
    public static float RoundAway(float x) => MathF.Round(x, MidpointRounding.AwayFromZero);

    /// <summary>C's float → int conversion for values known to be in range: truncation toward zero.</summary>
    public static int Truncate(float x) => (int)x;

    /// <summary>ggml's <c>best_index_int8</c>: index of the entry of the sorted table <paramref name="values"/>
    /// nearest to <paramref name="x"/> (bisection; a tie goes to the upper entry).</summary>
    public static int BestIndexInt8(ReadOnlySpan<sbyte> values, float x)
    {
        int n = values.Length;
        if (x <= values[0]) return 0;
        if (x >= values[n - 1]) return n - 1;
        int lo = 0, hi = n - 1;
        while (hi - lo > 1)
        {
            int mid = (lo + hi) / 2;
            if (x < values[mid]) hi = mid; else lo = mid;
        }
        return x - values[hi - 1] < values[hi] - x ? hi - 1 : hi;
    }
}
