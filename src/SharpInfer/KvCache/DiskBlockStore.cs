using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using SharpInfer.Models;

namespace SharpInfer.KvCache;

/// <summary>
/// The prefix cache's disk tier: blocks evicted from memory are written to <c>DIR/&lt;fingerprint&gt;/&lt;hash&gt;.kvb</c>,
/// content-addressed by their chain hash under a fingerprint of the model file and KV format, and read back into a
/// free block when a later sequence misses them in memory, so a restarted server starts warm. Writes run on one
/// background thread through a bounded queue (a full queue drops the block: it is only a cache); the size limit
/// deletes the least recently used files. Every file carries a header (magic, version, fingerprint, hash, length,
/// flags) and a SHA-256 of its payload: a damaged, truncated, foreign-model or foreign-format file is never used
/// (it is deleted and the block recomputed). A directory that cannot be created or written (read-only, disk full)
/// turns the writes off with one warning; the engine goes on memory-only.
/// </summary>
internal sealed class DiskBlockStore : IKvBlockStore
{
    private const uint Magic = 0x564B4953;   // "SIKV"
    private const uint Version = 1;
    private const int HeaderBytes = 4 + 4 + 16 + 16 + 8 + 4 + 32;
    private const long MaxQueuedBytes = 256L << 20;

    private readonly string _dir;
    private readonly long _maxBytes;
    private readonly UInt128 _fingerprint;
    private readonly Action<string> _warn;
    private readonly ConcurrentDictionary<UInt128, long> _index = new();   // hash -> file bytes
    private readonly ConcurrentDictionary<UInt128, long> _lastUse = new(); // hash -> use stamp (LRU order of the size limit)
    private long _clock;
    private readonly BlockingCollection<(UInt128 Hash, byte[] Payload, bool NonFinite)> _queue = new();
    private readonly Thread? _writer;
    private readonly object _pendingGate = new();
    private long _queuedBytes, _totalBytes;
    private int _pending;
    private volatile bool _writesOff;
    private byte[] _readBuffer = [];

    /// <summary>Blocks written, loaded, and rejected (damaged or foreign files), for tests and logs.</summary>
    public long Written => Interlocked.Read(ref _written);
    public long Loaded { get; private set; }
    public long Rejected { get; private set; }
    public long Dropped => Interlocked.Read(ref _dropped);
    public bool WritesDisabled => _writesOff;
    public long TotalBytes => Interlocked.Read(ref _totalBytes);
    public int Count => _index.Count;
    public string Directory => _dir;
    private long _written, _dropped;

    public DiskBlockStore(string root, long maxBytes, UInt128 fingerprint, Action<string>? warn = null)
    {
        _maxBytes = maxBytes;
        _fingerprint = fingerprint;
        _warn = warn ?? (m => Console.Error.WriteLine("warning: " + m));
        _dir = Path.Combine(root, fingerprint.ToString("x32"));
        try
        {
            System.IO.Directory.CreateDirectory(_dir);
            // files of an earlier run, oldest use first (a load touches a file's time)
            foreach (var f in new DirectoryInfo(_dir).EnumerateFiles("*.kvb").OrderBy(f => f.LastWriteTimeUtc))
                if (UInt128.TryParse(Path.GetFileNameWithoutExtension(f.Name), System.Globalization.NumberStyles.HexNumber, null, out var h))
                {
                    _index[h] = f.Length;
                    _lastUse[h] = ++_clock;
                    _totalBytes += f.Length;
                }
            foreach (var f in new DirectoryInfo(_dir).EnumerateFiles("*.tmp")) TryDelete(f.FullName);   // a write cut short
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            DisableWrites($"the prefix cache directory '{root}' cannot be used ({e.Message}); prefix caching stays in memory only");
            return;
        }
        _writer = new Thread(WriteLoop) { IsBackground = true, Name = "sharpinfer-kv-disk" };
        _writer.Start();
    }

    /// <summary>A fingerprint of what a stored block depends on: the model file (its length and its first and last
    /// MiB, which hold the header, the tensor table and weights) and the KV layout (key and value formats, block size, shape).
    /// v3: quantized rows are stored Hadamard-rotated (<see cref="KvRotation"/>), so v2 blocks must not be reused.</summary>
    public static UInt128 Fingerprint(Model model, KvDataType type, int blockSize, KvDataType? valueType = null, KvCacheGroups? groups = null)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        using (var f = new FileStream(model.Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite))
        {
            long len = f.Length;
            sha.AppendData(BitConverter.GetBytes(len));
            var buf = new byte[(int)Math.Min(len, 1 << 20)];
            f.ReadExactly(buf);
            sha.AppendData(buf);
            f.Seek(Math.Max(0, len - buf.Length), SeekOrigin.Begin);
            f.ReadExactly(buf);
            sha.AppendData(buf);
        }
        var c = model.Config;
        sha.AppendData(Encoding.UTF8.GetBytes($"kv-layout-v3 {type}/{valueType ?? type} {blockSize} {c.LayerCount} {c.KvHeadCount} {c.HeadDim}"));
        // a block of one group's layers is another layout (a single group keeps the fingerprint it always had)
        if (groups is { GroupCount: > 1 }) sha.AppendData(Encoding.UTF8.GetBytes(" groups " + groups.Describe()));
        return BinaryPrimitives.ReadUInt128LittleEndian(sha.GetHashAndReset());
    }

    public bool Contains(UInt128 hash) => _index.ContainsKey(hash);

    public void Spill(UInt128 hash, PagedKvCache cache, int block, bool waitForRoom = false)
    {
        if (_writesOff || _writer == null || _index.ContainsKey(hash)) return;
        int size = cache.BlockBytes;
        if (waitForRoom)
        {
            lock (_pendingGate)
                while (Interlocked.Read(ref _queuedBytes) + size > MaxQueuedBytes && _pending > 0 && !_writesOff)
                    Monitor.Wait(_pendingGate);
            if (_writesOff) return;
        }
        if (Interlocked.Read(ref _queuedBytes) + size > MaxQueuedBytes)
        {
            Interlocked.Increment(ref _dropped);
            return;
        }
        var payload = new byte[size];
        cache.ReadBlock(block, payload);
        Interlocked.Add(ref _queuedBytes, size);
        lock (_pendingGate) _pending++;
        if (!_queue.TryAdd((hash, payload, cache.MayHoldNonFinite))) Done(size);
    }

    public bool TryLoad(UInt128 hash, PagedKvCache cache, int block)
    {
        if (!_index.ContainsKey(hash)) return false;
        string path = FilePath(hash);
        int payloadBytes = cache.BlockBytes;
        try
        {
            if (_readBuffer.Length != HeaderBytes + payloadBytes) _readBuffer = new byte[HeaderBytes + payloadBytes];
            using (var f = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan))
            {
                if (f.Length != _readBuffer.Length) return Reject(hash, path);
                f.ReadExactly(_readBuffer);
            }
            var h = _readBuffer.AsSpan();
            if (BinaryPrimitives.ReadUInt32LittleEndian(h) != Magic || BinaryPrimitives.ReadUInt32LittleEndian(h[4..]) != Version ||
                BinaryPrimitives.ReadUInt128LittleEndian(h[8..]) != _fingerprint || BinaryPrimitives.ReadUInt128LittleEndian(h[24..]) != hash ||
                BinaryPrimitives.ReadInt64LittleEndian(h[40..]) != payloadBytes)
                return Reject(hash, path);
            uint flags = BinaryPrimitives.ReadUInt32LittleEndian(h[48..]);
            var payload = h.Slice(HeaderBytes, payloadBytes);
            Span<byte> digest = stackalloc byte[32];
            SHA256.HashData(payload, digest);
            if (!digest.SequenceEqual(h.Slice(52, 32))) return Reject(hash, path);
            cache.WriteBlock(block, payload);
            if ((flags & 1) != 0) cache.MarkNonFinite();
            Loaded++;
            _lastUse[hash] = Interlocked.Increment(ref _clock);
            try { File.SetLastWriteTimeUtc(path, DateTime.UtcNow); } catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return Reject(hash, path);
        }
    }

    private bool Reject(UInt128 hash, string path)
    {
        Rejected++;
        if (_index.TryRemove(hash, out long len)) Interlocked.Add(ref _totalBytes, -len);
        _lastUse.TryRemove(hash, out _);
        TryDelete(path);
        return false;
    }

    /// <summary>Waits until every queued block has been written or dropped (tests, shutdown); false on timeout.</summary>
    public bool WaitForWrites(TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        lock (_pendingGate)
        {
            while (_pending > 0)
            {
                var left = deadline - DateTime.UtcNow;
                if (left <= TimeSpan.Zero || !Monitor.Wait(_pendingGate, left)) return _pending == 0;
            }
        }
        return true;
    }

    private string FilePath(UInt128 hash) => Path.Combine(_dir, hash.ToString("x32") + ".kvb");

    private void WriteLoop()
    {
        foreach (var (hash, payload, nonFinite) in _queue.GetConsumingEnumerable())
        {
            try
            {
                if (!_writesOff && !_index.ContainsKey(hash)) Write(hash, payload, nonFinite);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                DisableWrites($"cannot write to the prefix cache directory '{_dir}' ({e.Message}); new blocks stay in memory only");
            }
            finally
            {
                Done(payload.Length);
            }
        }
    }

    private void Write(UInt128 hash, byte[] payload, bool nonFinite)
    {
        var header = new byte[HeaderBytes];
        BinaryPrimitives.WriteUInt32LittleEndian(header, Magic);
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(4), Version);
        BinaryPrimitives.WriteUInt128LittleEndian(header.AsSpan(8), _fingerprint);
        BinaryPrimitives.WriteUInt128LittleEndian(header.AsSpan(24), hash);
        BinaryPrimitives.WriteInt64LittleEndian(header.AsSpan(40), payload.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(48), nonFinite ? 1u : 0u);
        SHA256.HashData(payload, header.AsSpan(52, 32));
        string path = FilePath(hash), tmp = path + "." + Environment.ProcessId + ".tmp";
        try
        {
            using (var f = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16))
            {
                f.Write(header);
                f.Write(payload);
            }
            File.Move(tmp, path, overwrite: true);   // readers see a whole file or none
        }
        catch
        {
            TryDelete(tmp);
            throw;
        }
        long len = header.Length + payload.Length;
        _lastUse[hash] = Interlocked.Increment(ref _clock);
        _index[hash] = len;
        Interlocked.Add(ref _totalBytes, len);
        Interlocked.Increment(ref _written);
        if (Interlocked.Read(ref _totalBytes) > _maxBytes) Trim();
    }

    /// <summary>Deletes the least recently used files (written or loaded) until the tier is at 90% of its limit.</summary>
    private void Trim()
    {
        long target = _maxBytes / 10 * 9;
        foreach (var (h, _) in _lastUse.ToArray().OrderBy(e => e.Value))
        {
            if (Interlocked.Read(ref _totalBytes) <= target) break;
            if (_index.TryRemove(h, out long len)) Interlocked.Add(ref _totalBytes, -len);
            _lastUse.TryRemove(h, out _);
            TryDelete(FilePath(h));
        }
    }

    private void Done(int bytes)
    {
        Interlocked.Add(ref _queuedBytes, -bytes);
        lock (_pendingGate)
        {
            _pending--;
            Monitor.PulseAll(_pendingGate);
        }
    }

    private void DisableWrites(string message)
    {
        if (_writesOff) return;
        _writesOff = true;
        _warn(message);
    }

    private static void TryDelete(string path)
    {
        try { File.Delete(path); } catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    public void Dispose()
    {
        _queue.CompleteAdding();
        _writer?.Join(TimeSpan.FromSeconds(30));
        _queue.Dispose();
    }
}
