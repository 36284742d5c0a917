using SharpInfer.KvCache;

namespace SharpInfer.Tests.KvCache;

/// <summary>The prefix cache's disk tier on its own: blocks go out and come back bit for bit, survive a new store on
/// the same directory (a restart), and a damaged, truncated, renamed, foreign-model or foreign-format file is never
/// used. A directory that cannot be written turns the writes off with one warning.</summary>
public sealed class DiskBlockStoreTests : IDisposable
{
    private static readonly TimeSpan Hang = TimeSpan.FromMinutes(2);   // hang guard only
    private readonly string _root = Directory.CreateTempSubdirectory("sharpinfer-kvdisk-").FullName;
    private readonly List<string> _warnings = [];
    private static readonly UInt128 ModelA = 0xA11CEu, ModelB = 0xB0Bu;

    public void Dispose()
    {
        try { Directory.Delete(_root, true); } catch (IOException) { }
    }

    private static PagedKvCache Cache(int blocks = 8, int headDim = 8) => new(2, 2, headDim, 4, blocks, KvDataType.F16);

    private static byte[] Fill(PagedKvCache cache, int block, int seed)
    {
        var bytes = new byte[cache.BlockBytes];
        new Random(seed).NextBytes(bytes);
        cache.WriteBlock(block, bytes);
        return bytes;
    }

    private static byte[] Read(PagedKvCache cache, int block)
    {
        var bytes = new byte[cache.BlockBytes];
        cache.ReadBlock(block, bytes);
        return bytes;
    }

    private DiskBlockStore Store(UInt128 fingerprint, long maxBytes = 1L << 30) => new(_root, maxBytes, fingerprint, _warnings.Add);

    private static void Flush(DiskBlockStore s) => Assert.True(s.WaitForWrites(Hang));

    [Fact]
    public void BlocksRoundTripAndSurviveARestart()
    {
        var hashes = Enumerable.Range(1, 3).Select(i => BlockHash.Of(UInt128.Zero, [i])).ToArray();
        using var cache = Cache();
        var contents = new byte[3][];
        using (var store = Store(ModelA))
        {
            for (int i = 0; i < 3; i++)
            {
                contents[i] = Fill(cache, i, i);
                store.Spill(hashes[i], cache, i);
            }
            Flush(store);
            Assert.Equal(3, store.Written);
            Assert.True(store.Contains(hashes[1]));
            Assert.True(store.TryLoad(hashes[1], cache, 5));
            Assert.Equal(contents[1], Read(cache, 5));
        }
        // a new store on the same directory (a restarted server) finds and loads them
        using var cache2 = Cache();
        using var again = Store(ModelA);
        Assert.Equal(3, again.Count);
        for (int i = 0; i < 3; i++)
        {
            Assert.True(again.TryLoad(hashes[i], cache2, 7 - i));
            Assert.Equal(contents[i], Read(cache2, 7 - i));
        }
        Assert.False(again.TryLoad(BlockHash.Of(UInt128.Zero, [99]), cache2, 0));   // never stored
        Assert.Empty(_warnings);
    }

    [Fact]
    public void DamagedTruncatedRenamedAndForeignFilesAreNeverUsed()
    {
        using var cache = Cache();
        var h = Enumerable.Range(1, 5).Select(i => BlockHash.Of(UInt128.Zero, [i])).ToArray();
        string dir;
        using (var store = Store(ModelA))
        {
            for (int i = 0; i < 5; i++)
            {
                Fill(cache, i, 10 + i);
                store.Spill(h[i], cache, i);
            }
            Flush(store);
            dir = store.Directory;
        }
        string File(UInt128 x) => Path.Combine(dir, x.ToString("x32") + ".kvb");
        // 0: one payload byte flipped (checksum); 1: cut short; 2: a header field damaged; 3: renamed to another hash
        var bytes = System.IO.File.ReadAllBytes(File(h[0]));
        bytes[^10] ^= 0x40;
        System.IO.File.WriteAllBytes(File(h[0]), bytes);
        var cut = System.IO.File.ReadAllBytes(File(h[1]));
        System.IO.File.WriteAllBytes(File(h[1]), cut[..(cut.Length / 2)]);
        var hdr = System.IO.File.ReadAllBytes(File(h[2]));
        hdr[0] ^= 1;   // magic
        System.IO.File.WriteAllBytes(File(h[2]), hdr);
        var renamed = BlockHash.Of(UInt128.Zero, [1234]);
        System.IO.File.Copy(File(h[3]), File(renamed));

        using var reopened = Store(ModelA);
        var before = Read(cache, 6);
        foreach (var x in new[] { h[0], h[1], h[2], renamed })
        {
            Assert.True(reopened.Contains(x));            // listed from the directory...
            Assert.False(reopened.TryLoad(x, cache, 6));  // ...but refused on reading,
            Assert.False(reopened.Contains(x));           // forgotten and deleted
            Assert.False(System.IO.File.Exists(File(x)));
        }
        Assert.Equal(before, Read(cache, 6));             // and the target block untouched
        Assert.Equal(4, reopened.Rejected);
        Assert.True(reopened.TryLoad(h[4], cache, 6));    // the intact one still loads

        // another model's store does not see these files at all; a copied file fails its fingerprint check
        using var other = Store(ModelB);
        Assert.False(other.Contains(h[4]));
        System.IO.File.Copy(File(h[4]), Path.Combine(other.Directory, h[4].ToString("x32") + ".kvb"));
        using var otherReopened = Store(ModelB);
        Assert.True(otherReopened.Contains(h[4]));
        Assert.False(otherReopened.TryLoad(h[4], cache, 6));

        // a different KV format (another block size in bytes) refuses the file by its length
        using var wide = Cache(headDim: 16);
        using var reopened2 = Store(ModelA);
        Assert.False(reopened2.TryLoad(h[4], wide, 0));
        Assert.Empty(_warnings);
    }

    [Fact]
    public void TheSizeLimitDeletesTheLeastRecentlyUsedFiles()
    {
        using var cache = Cache();
        long fileBytes;
        using (var probe = Store(ModelB))
        {
            Fill(cache, 0, 1);
            probe.Spill(BlockHash.Of(UInt128.Zero, [0]), cache, 0);
            Flush(probe);
            fileBytes = probe.TotalBytes;
        }
        using var store = Store(ModelA, maxBytes: 4 * fileBytes);
        var h = Enumerable.Range(1, 8).Select(i => BlockHash.Of(UInt128.Zero, [i])).ToArray();
        for (int i = 0; i < 4; i++)
        {
            Fill(cache, i, i);
            store.Spill(h[i], cache, i);
            Flush(store);
        }
        Assert.True(store.TryLoad(h[0], cache, 7));   // block 0 used again: now the most recent
        for (int i = 4; i < 6; i++)
        {
            Fill(cache, i, i);
            store.Spill(h[i], cache, i);
            Flush(store);
        }
        Assert.True(store.TotalBytes <= 4 * fileBytes, $"{store.TotalBytes} bytes over the limit {4 * fileBytes}");
        Assert.False(store.Contains(h[1]));           // the least recently used went first
        Assert.True(store.Contains(h[0]));
        Assert.True(store.Contains(h[5]));
        Assert.Equal(store.TotalBytes, new DirectoryInfo(store.Directory).EnumerateFiles("*.kvb").Sum(f => f.Length));
    }

    [Fact]
    public void AnUnusableDirectoryMeansMemoryOnlyWithOneWarning()
    {
        using var cache = Cache();
        // the root is a file: the directory cannot be created
        string notADir = Path.Combine(_root, "file");
        System.IO.File.WriteAllText(notADir, "x");
        using (var store = new DiskBlockStore(notADir, 1L << 20, ModelA, _warnings.Add))
        {
            Assert.True(store.WritesDisabled);
            for (int i = 0; i < 3; i++) store.Spill(BlockHash.Of(UInt128.Zero, [i]), cache, i);
            Flush(store);
            Assert.Equal(0, store.Written);
            Assert.False(store.TryLoad(BlockHash.Of(UInt128.Zero, [0]), cache, 0));
        }
        Assert.Single(_warnings);

        // the directory disappears under a running store (replaced by a file): writes fail, one warning, no crash
        _warnings.Clear();
        using var live = Store(ModelA);
        Directory.Delete(live.Directory, true);
        System.IO.File.WriteAllText(live.Directory, "not a directory");
        for (int i = 0; i < 4; i++)
        {
            Fill(cache, i, i);
            live.Spill(BlockHash.Of(UInt128.Zero, [i]), cache, i);
        }
        Flush(live);
        Assert.True(live.WritesDisabled);
        Assert.Equal(0, live.Written);
        Assert.Single(_warnings);
    }
}
