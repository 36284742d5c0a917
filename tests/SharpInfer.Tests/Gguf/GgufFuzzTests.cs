using SharpInfer.Gguf;
using SharpInfer.Models;
using SharpInfer.Tests.Models;

namespace SharpInfer.Tests.Gguf;

/// <summary>
/// Truncated and corrupted variants of real GGUF files: each must either load (a corrupted value can still be
/// valid) and then run a forward step, or fail with one of SharpInfer's clear exceptions; nothing else.
/// </summary>
public class GgufFuzzTests
{
    [Theory]
    [InlineData("stories260K", 140, 1)]
    [InlineData("mistral-tiny-q8_0", 80, 2)]
    public void CorruptedFilesLoadOrFailClearly(string which, int variants, int seed)
    {
        string source = which == "stories260K" ? TestPaths.Stories260K : TestModels.Get("mistral-tiny", "q8_0");
        byte[] original = File.ReadAllBytes(source);
        long dataOffset;
        using (var g = GgufFile.Open(source)) dataOffset = g.DataOffset;
        var rng = new Random(seed);
        string path = TestPaths.NewTempFile();
        int loaded = 0, rejected = 0;
        try
        {
            for (int v = 0; v < variants; v++)
            {
                byte[] bytes = Mutate(original, dataOffset, rng, v);
                File.WriteAllBytes(path, bytes);
                try
                {
                    using var model = Model.Load(path);
                    using var runner = new SequenceRunner(model, maxTokens: 4, threads: 1);
                    runner.Feed([1]);
                    loaded++;
                }
                catch (SharpInferException e)
                {
                    Assert.False(string.IsNullOrWhiteSpace(e.Message));
                    if (e is GgufFormatException) Assert.Contains(path, e.Message);
                    rejected++;
                }
            }
        }
        finally { File.Delete(path); }
        Assert.Equal(variants, loaded + rejected);
        Assert.True(rejected > variants / 3, $"only {rejected} of {variants} variants were rejected: the mutations are too gentle");
    }

    private static byte[] Mutate(byte[] original, long dataOffset, Random rng, int v)
    {
        switch (v % 4)
        {
            case 0: // truncate anywhere
                return original[..rng.Next(0, original.Length)];
            case 1: // truncate inside the header and metadata
                return original[..rng.Next(0, (int)dataOffset)];
            default: // overwrite a few bytes in the header and metadata (lengths, types, counts, dims, offsets)
                var b = (byte[])original.Clone();
                int n = 1 + rng.Next(4);
                for (int i = 0; i < n; i++)
                {
                    int at = rng.Next(0, (int)dataOffset);
                    b[at] = rng.Next(3) switch { 0 => (byte)rng.Next(256), 1 => (byte)(b[at] ^ (1 << rng.Next(8))), _ => 0xFF };
                }
                return b;
        }
    }
}
