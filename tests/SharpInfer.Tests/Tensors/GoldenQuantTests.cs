using SharpInfer.Tensors;

namespace SharpInfer.Tests.Tensors;

/// <summary>Our dequantizers and quantizers against ggml's own output.</summary>
public class GoldenQuantTests
{
    [Fact]
    public void GoldenFileCoversTheExpectedTypes()
    {
        string[] expected = ["f16", "bf16", "q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q2_K", "q3_K", "q4_K", "q5_K", "q6_K", "iq4_nl"];
        Assert.Equal(expected.Order(), QuantGoldenCase.Names.Order());
    }

    [Theory]
    [MemberData(nameof(QuantGoldenCase.TypeNames), MemberType = typeof(QuantGoldenCase))]
    public void DequantizeMatchesGgmlBitForBit(string name)
    {
        var g = QuantGoldenCase.Get(name);
        Assert.True(Dequantize.IsSupported(g.Type));
        var y = new float[g.Input.Length];
        Dequantize.Row(g.Type, g.Quantized, y);
        for (int i = 0; i < y.Length; i++)
        {
            uint want = BitConverter.SingleToUInt32Bits(g.Dequantized[i]), got = BitConverter.SingleToUInt32Bits(y[i]);
            Assert.True(want == got, $"{name}[{i}]: ggml {g.Dequantized[i]:R} (0x{want:x8}), ours {y[i]:R} (0x{got:x8})");
        }
    }

    [Theory]
    [MemberData(nameof(QuantGoldenCase.TypeNames), MemberType = typeof(QuantGoldenCase))]
    public void QuantizeMatchesGgmlByteForByte(string name)
    {
        var g = QuantGoldenCase.Get(name);
        Assert.True(Quantize.IsSupported(g.Type));
        var q = new byte[GgmlTypeInfo.RowSize(g.Type, g.Input.Length)];
        Assert.Equal(g.Quantized.Length, q.Length);
        Quantize.Row(g.Type, g.Input, q);
        int blockBytes = GgmlTypeInfo.TypeSize(g.Type);
        for (int i = 0; i < q.Length; i++)
            Assert.True(g.Quantized[i] == q[i],
                $"{name}: first difference at byte {i} (block {i / blockBytes}, offset {i % blockBytes}): ggml 0x{g.Quantized[i]:x2}, ours 0x{q[i]:x2}");
    }
}
