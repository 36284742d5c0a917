using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace SharpInfer.KvCache;

/// <summary>
/// Content addresses of full KV blocks (vLLM's prefix-caching hash): a block's hash covers its parent's hash and its
/// own token ids, so equal hashes mean equal token prefixes up to and including the block, and therefore equal keys
/// and values. The root carries the extra keys that must separate caches (a request's <c>cache_salt</c>). SHA-256
/// truncated to 128 bits: collisions are not a practical concern, so a hit needs no token comparison, and the value
/// is stable across processes (the disk tier keys files with it).
/// </summary>
internal static class BlockHash
{
    /// <summary>The parent hash of a sequence's first block: zero without a salt.</summary>
    public static UInt128 Root(string? cacheSalt)
    {
        if (string.IsNullOrEmpty(cacheSalt)) return UInt128.Zero;
        Span<byte> digest = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes("cache_salt\0" + cacheSalt), digest);
        return Read(digest);
    }

    /// <summary>Hash of a full block holding <paramref name="tokens"/> after the block whose hash is <paramref name="parent"/>.</summary>
    public static UInt128 Of(UInt128 parent, ReadOnlySpan<int> tokens)
    {
        Span<byte> input = stackalloc byte[16 + 4 * tokens.Length];
        BinaryPrimitives.WriteUInt128LittleEndian(input, parent);
        for (int i = 0; i < tokens.Length; i++) BinaryPrimitives.WriteInt32LittleEndian(input[(16 + 4 * i)..], tokens[i]);
        Span<byte> digest = stackalloc byte[32];
        SHA256.HashData(input, digest);
        return Read(digest);
    }

    private static UInt128 Read(ReadOnlySpan<byte> digest)
    {
        var h = BinaryPrimitives.ReadUInt128LittleEndian(digest);
        return h == UInt128.Zero ? UInt128.One : h;   // zero is the unsalted root, never a block's hash
    }

    public static string ToHex(UInt128 h) => h.ToString("x32");
}
