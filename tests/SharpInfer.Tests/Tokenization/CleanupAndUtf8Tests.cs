using System.Text;
using SharpInfer.Tokenization;

namespace SharpInfer.Tests.Tokenization;

/// <summary>The building blocks of decoding: llama.cpp's space clean-up (batch and streaming must agree) and the
/// UTF-8 assembler (chunks must decode exactly like the whole).</summary>
public class CleanupAndUtf8Tests
{
    private static string Clean(string s)
    {
        var b = Encoding.UTF8.GetBytes(s);
        int n = SpaceCleanup.Apply(b);
        return Encoding.UTF8.GetString(b, 0, n);
    }

    [Theory]
    [InlineData("Hello , world !", "Hello, world!")]
    [InlineData(" ?x", "?x")]                     // also at the very start
    [InlineData("a  ?", "a ?")]                   // only the space right before
    [InlineData("a ' b", "a'b")]
    [InlineData("a ' ' b", "a'' b")]              // the consumed right space cannot start a second match
    [InlineData(" ' ", "'")]
    [InlineData("I 'm", "I'm")]
    [InlineData("it 's", "it's")]
    [InlineData("they 're", "they're")]
    [InlineData("we 've", "we've")]
    [InlineData("don 't", "don 't")]              // llama.cpp keeps these
    [InlineData("I 'd", "I 'd")]
    [InlineData("we 'll", "we 'll")]
    [InlineData("a 'r", "a 'r")]                  // 're needs the e
    [InlineData("x '", "x '")]
    [InlineData("x ' ,", "x ',")]                 // pass 1 takes " ,"; " '" is then followed by "," and stays
    [InlineData("", "")]
    public void CleanUp(string input, string expected)
    {
        Assert.Equal(expected, Clean(input));
    }

    [Fact]
    public void StreamingCleanupEqualsBatchOnRandomText()
    {
        var rng = new Random(1234);
        const string alphabet = " '  smrevtdl?!.,aé";
        for (int trial = 0; trial < 3000; trial++)
        {
            var sb = new StringBuilder();
            int len = rng.Next(0, 14);
            for (int i = 0; i < len; i++) sb.Append(alphabet[rng.Next(alphabet.Length)]);
            var bytes = Encoding.UTF8.GetBytes(sb.ToString());

            var expected = (byte[])bytes.Clone();
            int n = SpaceCleanup.Apply(expected);

            var sink = new Utf8Assembler();
            var stream = new StreamingSpaceCleanup(sink);
            var got = new StringBuilder();
            for (int i = 0; i < bytes.Length;)
            {
                int k = Math.Min(bytes.Length - i, rng.Next(1, 4));
                stream.Push(bytes.AsSpan(i, k));
                got.Append(sink.TakeComplete());
                i += k;
            }
            stream.Flush();
            got.Append(sink.TakeAll());
            Assert.True(Encoding.UTF8.GetString(expected, 0, n) == got.ToString(), $"input '{sb}'");
        }
    }

    [Fact]
    public void Utf8AssemblerChunksDecodeLikeTheWhole()
    {
        var rng = new Random(99);
        byte[][] atoms =
        [
            "a"u8.ToArray(), "é"u8.ToArray(), "中"u8.ToArray(), "🦙"u8.ToArray(), [0xFF], [0x80], [0xC0, 0x80], [0xE0, 0x80],
            [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xF0, 0x9F], [0xE4, 0xB8], [0xC3],
        ];
        for (int trial = 0; trial < 3000; trial++)
        {
            var all = new List<byte>();
            int count = rng.Next(0, 8);
            for (int i = 0; i < count; i++) all.AddRange(atoms[rng.Next(atoms.Length)]);
            var bytes = all.ToArray();
            string expected = Encoding.UTF8.GetString(bytes);

            var asm = new Utf8Assembler();
            var got = new StringBuilder();
            for (int i = 0; i < bytes.Length;)
            {
                int k = Math.Min(bytes.Length - i, rng.Next(1, 5));
                asm.Push(bytes.AsSpan(i, k));
                string chunk = asm.TakeComplete();
                Assert.True(chunk.Length == 0 || !char.IsHighSurrogate(chunk[^1]), "a chunk ends inside a surrogate pair");
                Assert.True(chunk.Length == 0 || !char.IsLowSurrogate(chunk[0]), "a chunk starts inside a surrogate pair");
                got.Append(chunk);
                i += k;
            }
            got.Append(asm.TakeAll());
            Assert.True(expected == got.ToString(), $"bytes {Convert.ToHexString(bytes)}");
        }
    }

    [Fact]
    public void Utf8AssemblerHoldsOnlyValidPrefixes()
    {
        Assert.Equal(1, Utf8Assembler.CompleteLength([0x61, 0xF0]));
        Assert.Equal(1, Utf8Assembler.CompleteLength([0x61, 0xF0, 0x9F, 0xA6]));
        Assert.Equal(5, Utf8Assembler.CompleteLength([0x61, 0xF0, 0x9F, 0xA6, 0x99]));
        Assert.Equal(3, Utf8Assembler.CompleteLength([0x61, 0xE0, 0x80]));   // E0 80 can never complete
        Assert.Equal(3, Utf8Assembler.CompleteLength([0x61, 0xED, 0xA0]));   // a surrogate can never complete
        Assert.Equal(2, Utf8Assembler.CompleteLength([0x61, 0xFF]));
        Assert.Equal(4, Utf8Assembler.CompleteLength([0x80, 0x80, 0x80, 0x80]));
        Assert.Equal(0, Utf8Assembler.CompleteLength([0xC3]));
    }
}
