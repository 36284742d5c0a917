namespace SharpInfer.Sampling;

/// <summary>
/// The C++ standard's <c>std::mt19937</c> (32-bit Mersenne Twister, [rand.predef]) and libstdc++'s
/// <c>std::uniform_real_distribution&lt;double&gt;(0, 1)</c> draw on it: what llama.cpp's <c>dist</c> sampler uses, so
/// a seeded llama.cpp-order chain (<see cref="SamplingParams.LlamaCppChain"/>) draws the same numbers as llama.cpp.
/// The state is allocated once; drawing allocates nothing.
/// </summary>
internal sealed class Mt19937
{
    private const int N = 624, M = 397;
    private readonly uint[] _state = new uint[N];
    private int _index;

    /// <summary>Seeded as <c>std::mt19937(seed)</c> (the standard's default seed is 5489).</summary>
    public Mt19937(uint seed = 5489)
    {
        _state[0] = seed;
        for (int i = 1; i < N; i++) _state[i] = 1812433253u * (_state[i - 1] ^ (_state[i - 1] >> 30)) + (uint)i;
        _index = N;
    }

    /// <summary>The next 32-bit output (<c>operator()</c>).</summary>
    public uint Next()
    {
        if (_index >= N) Twist();
        uint y = _state[_index++];
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c5680u;
        y ^= (y << 15) & 0xefc60000u;
        y ^= y >> 18;
        return y;
    }

    /// <summary>libstdc++'s <c>generate_canonical&lt;double, 53&gt;</c>: two outputs, the first the low word, summed and
    /// divided by 2^64 in double arithmetic (so rounding is the same), and a result of 1 (rounding) replaced by the
    /// largest double below 1. This is <c>std::uniform_real_distribution&lt;double&gt;(0.0, 1.0)(rng)</c>.</summary>
    public double NextCanonical()
    {
        double sum = Next();
        sum += Next() * 4294967296.0;
        double r = sum / 18446744073709551616.0;
        return r >= 1.0 ? Math.BitDecrement(1.0) : r;
    }

    private void Twist()
    {
        for (int k = 0; k < N; k++)
        {
            uint y = (_state[k] & 0x80000000u) | (_state[(k + 1) % N] & 0x7fffffffu);
            uint v = _state[(k + M) % N] ^ (y >> 1);
            if ((y & 1) != 0) v ^= 0x9908b0dfu;
            _state[k] = v;
        }
        _index = 0;
    }
}
