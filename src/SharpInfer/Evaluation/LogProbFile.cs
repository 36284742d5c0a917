using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace SharpInfer.Evaluation;

/// <summary>
/// The base file of a KL-divergence comparison: the reference run's log-probabilities over the whole vocabulary at
/// every scored position, in llama-perplexity's <c>--kl-divergence-base</c> layout, so a file written by either
/// tool is read by the other (compare SharpInfer against llama.cpp on the same text):
/// <code>
/// "_logits_"                      8 bytes
/// n_ctx, n_vocab, n_chunk         3 × int32 little-endian
/// tokens                          n_chunk × n_ctx int32 (the evaluated tokens, before BOS substitution)
/// per chunk, per scored position  (n_ctx − 1 − n_ctx/2 rows) one row of nv = 2·⌈n_vocab/2⌉ + 4 uint16:
///   float32 scale, float32 min_log_prob (the first 4 uint16), then n_vocab uint16 q (padding to nv):
///   log p[i] = scale·q[i] + min_log_prob
/// </code>
/// The quantization is linear over the 16 nats below the largest logit (anything lower reads as that floor), so
/// each stored log-probability is within scale/2 ≈ 1.2e-4 of the exact one; tokens more than 16 nats below the top
/// (p &lt; 1.1e-7 of it) are ignored by the KL sum, as llama.cpp does.
/// </summary>
internal static class LogProbFile
{
    private static ReadOnlySpan<byte> Magic => "_logits_"u8;
    /// <summary>The range below the largest logit the 16-bit codes cover.</summary>
    public const float Range = 16f;

    /// <summary>uint16 entries per stored row: the two float32 header values, the vocabulary, padding to even.</summary>
    public static int RowLength(int vocab) => 2 * ((vocab + 1) / 2) + 4;

    public static void WriteHeader(Stream s, int context, int vocab, int chunks, ReadOnlySpan<int> tokens)
    {
        Span<byte> head = stackalloc byte[20];
        Magic.CopyTo(head);
        BinaryPrimitives.WriteInt32LittleEndian(head[8..], context);
        BinaryPrimitives.WriteInt32LittleEndian(head[12..], vocab);
        BinaryPrimitives.WriteInt32LittleEndian(head[16..], chunks);
        s.Write(head);
        s.Write(MemoryMarshal.AsBytes(tokens[..(chunks * context)]));   // little-endian hosts only (x64/arm64)
    }

    /// <summary>Encodes one position's logits into <paramref name="row"/> (<see cref="RowLength"/> entries) and
    /// returns the negative log-likelihood of <paramref name="target"/>.</summary>
    public static double Encode(ReadOnlySpan<float> logits, int target, Span<ushort> row)
    {
        float max = float.NegativeInfinity, min = float.PositiveInfinity;
        foreach (float l in logits)
        {
            if (l > max) max = l;
            if (l < min) min = l;
        }
        min = MathF.Max(min, max - Range);
        double sum = 0;
        foreach (float l in logits) sum += MathF.Exp(l - max);
        float logSum = (float)Math.Log(sum);
        float scale = (max - min) / 65535f;
        var head = MemoryMarshal.Cast<ushort, float>(row[..4]);
        head[0] = scale;
        head[1] = min - max - logSum;
        var codes = row.Slice(4, logits.Length);
        if (scale > 0)
        {
            float inv = 1 / scale;
            for (int i = 0; i < logits.Length; i++)
                codes[i] = logits[i] > min ? (ushort)Math.Clamp((int)MathF.Round(inv * (logits[i] - min), MidpointRounding.ToEven), 0, 65535) : (ushort)0;
        }
        else codes.Clear();
        row[(4 + logits.Length)..].Clear();
        return max + logSum - logits[target];
    }

    /// <summary>Reads a base file's header and tokens, checking them against what this run will evaluate.</summary>
    public static (int Context, int Vocab, int Chunks, int[] Tokens) ReadHeader(Stream s, string path)
    {
        Span<byte> head = stackalloc byte[20];
        if (s.ReadAtLeast(head, 20, throwOnEndOfStream: false) < 20 || !head[..8].SequenceEqual(Magic))
            throw new InvalidDataException($"{path} is not a log-probability file (it must start with \"_logits_\", as llama-perplexity --kl-divergence-base writes)");
        int context = BinaryPrimitives.ReadInt32LittleEndian(head[8..]);
        int vocab = BinaryPrimitives.ReadInt32LittleEndian(head[12..]);
        int chunks = BinaryPrimitives.ReadInt32LittleEndian(head[16..]);
        if (context < 4 || context > 1 << 20 || vocab < 1 || vocab > 1 << 24 || chunks < 1)
            throw new InvalidDataException($"{path}: implausible header (n_ctx {context}, n_vocab {vocab}, n_chunk {chunks})");
        long scored = context - 1 - context / 2;
        long expected = 20 + 4L * chunks * context + 2L * chunks * scored * RowLength(vocab);
        if (s.CanSeek && s.Length != expected)
            throw new InvalidDataException($"{path}: {s.Length} bytes, but its header (n_ctx {context}, n_vocab {vocab}, n_chunk {chunks}) needs {expected}: truncated or not a base file");
        var tokens = new int[(long)chunks * context];
        s.ReadExactly(MemoryMarshal.AsBytes(tokens.AsSpan()));
        return (context, vocab, chunks, tokens);
    }
}
