using System.Text;
using SharpInfer.Gguf;
using SharpInfer.Models;

namespace SharpInfer.Tests.Gguf;

/// <summary>Text quoted from a model file in an error message is escaped and truncated: a name with CR/LF cannot
/// forge log lines, an escape sequence cannot drive the terminal, a 100 KB string cannot flood the log.</summary>
public class QuotedFileTextTests
{
    [Fact]
    public void ControlAndFormatCharactersAreEscaped()
    {
        Assert.Equal(@"'a\r\nb\tc\x1B[31m\x00\u202Ed\\e\'f'", FileText.Quote("a\r\nb\tc\u001b[31m\0\u202Ed\\e'f"));
        Assert.Equal("'héllo ✓ 𝄞'", FileText.Quote("héllo ✓ 𝄞"));   // printable text, astral characters included, stays as is
        Assert.Equal(@"'\uD800x'", FileText.Quote("\ud800x"));           // a lone surrogate is escaped
    }

    [Fact]
    public void LongTextIsTruncatedWithItsLength()
    {
        var quoted = FileText.Quote(new string('x', 100_000));
        Assert.Equal("'" + new string('x', FileText.MaxChars) + "…(100000 chars)'", quoted);
        // a surrogate pair straddling the cut is dropped whole, never halved
        var pairAtCut = new string('y', FileText.MaxChars - 1) + "𝄞tail";
        Assert.Equal("'" + new string('y', FileText.MaxChars - 1) + $"…({pairAtCut.Length} chars)'", FileText.Quote(pairAtCut));
    }

    private static string LoadError(string path)
    {
        try
        {
            var e = Assert.ThrowsAny<SharpInferException>(() => Model.Load(path).Dispose());
            return e.Message;
        }
        finally { File.Delete(path); }
    }

    private static void AssertOneCleanLine(string message, int maxLength = 600)
    {
        Assert.True(message.Length <= maxLength, $"message of {message.Length} chars: {message[..Math.Min(200, message.Length)]}");
        Assert.DoesNotContain(message, c => char.IsControl(c));
        Assert.DoesNotContain('\u202E', message);
    }

    [Fact]
    public void ATensorNameWithCrLfIsEscaped()
    {
        // an extra layer's tensor makes the load fail quoting the name
        var patch = GgufPatch.From(TestPaths.Stories260K);
        var norm = patch.Tensors.Single(t => t.Name == "blk.0.attn_norm.weight");
        patch.Tensors.Add(norm with { Name = "blk.9.\r\nERROR forged log line" });
        var message = LoadError(patch.Write());
        AssertOneCleanLine(message);
        Assert.Contains(@"'blk.9.\r\nERROR forged log line'", message);
    }

    [Fact]
    public void ADuplicateTensorNameWithControlCharactersIsEscaped()
    {
        var w = new GgufWriter().Add("general.architecture", "llama")
            .AddTensor("a\u001b[2Jb\n", [32], new float[32]).AddTensor("a\u001b[2Jb\n", [32], new float[32]);
        var path = TestPaths.NewTempFile();
        w.Write(path);
        var message = LoadError(path);
        AssertOneCleanLine(message);
        Assert.Contains(@"duplicate tensor name 'a\x1B[2Jb\n'", message);
    }

    [Fact]
    public void AHundredKilobyteArchitectureIsTruncated()
    {
        var arch = "\u202E" + new string('A', 100_000) + "\n";
        var message = LoadError(GgufPatch.From(TestPaths.Stories260K).Set("general.architecture", GgufValueType.String, arch).Write());
        AssertOneCleanLine(message);
        Assert.Contains(@"architecture '\u202E" + new string('A', FileText.MaxChars - 1) + "…(100002 chars)'", message);
    }

    [Fact]
    public void AStringOfTheWrongTypeIsQuotedTruncated()
    {
        // block_count stored as a 100 KB string with line breaks
        var value = string.Concat(Enumerable.Repeat("5\r\n", 40_000));
        var message = LoadError(GgufPatch.From(TestPaths.Stories260K).Set("llama.block_count", GgufValueType.String, value).Write());
        AssertOneCleanLine(message);
        Assert.Contains("'llama.block_count'", message);
        Assert.Contains(@"'5\r\n5\r\n", message);
    }

    [Fact]
    public void AMetadataKeyWithInvalidUtf8IsReportedWithoutItsBytes()
    {
        // write a key of placeholder letters, then overwrite them with bytes that are not UTF-8
        var bytes = new GgufWriter().Add("general.architecture", "llama").Add("zzQQQQzz", 1u).ToBytes();
        int at = IndexOf(bytes, "QQQQ"u8);
        new byte[] { 0xFF, 0xC0, 0x0A, 0x80 }.CopyTo(bytes, at);
        var path = TestPaths.NewTempFile();
        File.WriteAllBytes(path, bytes);
        var message = LoadError(path);
        AssertOneCleanLine(message);
        Assert.Contains("not valid UTF-8", message);
        Assert.DoesNotContain('\uFFFD', message);
    }

    [Fact]
    public void AStringValueWithInvalidUtf8IsReportedWithoutItsBytes()
    {
        var bytes = GgufPatch.From(TestPaths.Stories260K).Set("general.name", GgufValueType.String, "name-QQQQ-x").Write() is var p
            ? File.ReadAllBytes(p) : [];
        int at = IndexOf(bytes, "QQQQ"u8);
        new byte[] { 0xED, 0xA0, 0x80, 0x0D }.CopyTo(bytes, at);   // an encoded surrogate, then a CR
        File.WriteAllBytes(p, bytes);
        var message = LoadError(p);
        AssertOneCleanLine(message);
        Assert.Contains("'general.name'", message);
        Assert.Contains("not valid UTF-8", message);
    }

    private static int IndexOf(byte[] haystack, ReadOnlySpan<byte> needle)
    {
        int i = haystack.AsSpan().IndexOf(needle);
        Assert.True(i >= 0);
        return i;
    }

    [Fact]
    public void ATokenizerModelNameIsEscapedAndTruncated()
    {
        var path = GgufPatch.From(TestPaths.Stories260K)
            .Set("tokenizer.ggml.model", GgufValueType.String, "bpe\r\nERROR forged" + new string('z', 100_000))
            .Write();
        var message = LoadError(path);
        AssertOneCleanLine(message);
        Assert.Contains("…(", message);
    }
}
