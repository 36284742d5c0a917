using SharpInfer.Models;
using SharpInfer.Tensors;
using SharpInfer.Tests.Tensors;
using SharpInfer.Tests.Tensors.Kernels;

namespace SharpInfer.Tests.Models;

/// <summary>
/// What gpt-oss adds beyond the goldens (GoldenGenerateTests, GoldenGgmlTests): attention sinks in the kernel against
/// a naive softmax with the sink in its max and denominator on every path (sinks below and above every score, with and
/// without a window), the router's softmax over the selected logits, and the layer attributes read from the file
/// (window 16 on even layers, full attention on odd ones, YaRN on both).
/// </summary>
public unsafe class GptOssTests
{
    [Theory]
    [InlineData(16, 4, 64, 0)]
    [InlineData(16, 4, 64, 20)]     // windowed: the sink joins the visible keys only
    [InlineData(5, 2, 40, 7)]       // block size not a multiple of 4, head size with tails
    public void SinksJoinTheSoftmaxDenominatorOnEveryPath(int bs, int group, int D, int first)
    {
        var rng = new Random(bs * 17 + group + first);
        using var kv = new RandomKvSequence(rng, bs, D, 4 * bs + 3);
        int length = kv.Length;
        var q = new float[group * D];
        for (int i = 0; i < q.Length; i++) q[i] = (float)KernelHarness.Gaussian(rng);
        float scale = 1f / MathF.Sqrt(D);
        // per head: a sink far below every score (almost no effect), near them, and far above (most weight on the sink)
        var sinks = new float[group];
        for (int h = 0; h < group; h++) sinks[h] = (h % 3) switch { 0 => -8f, 1 => 0.5f, _ => 9f };
        var scratch = new float[PagedAttention.ScratchFloats(group, D, bs)];
        var output = new float[group * D];
        var plain = new float[group * D];
        var want = kv.NaiveAttention(q, group, scale, first, sinks);
        foreach (var level in KernelHarness.Levels())
        {
            fixed (float* qp = q) fixed (float* op = output) fixed (float* pp = plain) fixed (float* sp = scratch) fixed (float* sk = sinks)
            {
                PagedAttention.Attend(kv.Cache, 0, 0, kv.Table, length, qp, op, group, D, scale, sp, level, first, sk);
                PagedAttention.Attend(kv.Cache, 0, 0, kv.Table, length, qp, pp, group, D, scale, sp, level, first);
            }
            for (int i = 0; i < output.Length; i++)
                Assert.True(Math.Abs(output[i] - want[i]) <= 2e-6 + 2e-6 * Math.Abs(want[i]),
                    $"bs {bs} group {group} first {first} head {i / D} dim {i % D} {level}: {output[i]:R} vs {want[i]:R}");
            // the sink above every score takes most of the weight: that head's output shrinks well below the plain one
            for (int h = 2; h < group; h += 3)
            {
                double withSink = 0, without = 0;
                for (int d = 0; d < D; d++) { withSink += Math.Abs(output[h * D + d]); without += Math.Abs(plain[h * D + d]); }
                Assert.True(withSink < 0.5 * without, $"head {h} {level}: a dominant sink left the output at {withSink} of {without}");
            }
        }
    }

    [Fact]
    public void RouterTakesTheTopLogitsThenASoftmaxOverThemOnly()
    {
        float[] logits = [0.3f, 2.5f, -1f, 2.5f, 1.75f, -0.2f, 0.9f, 3f];
        Span<int> selected = stackalloc int[4];
        Span<float> weights = stackalloc float[4];
        fixed (float* l = logits) MoeFeedForward.RouteSoftmaxWeight(l, logits.Length, 4, selected, weights);
        Assert.Equal([7, 1, 3, 4], selected.ToArray());   // descending; the tie 2.5 goes to the lower id first
        double z = new[] { 3.0, 2.5, 2.5, 1.75 }.Sum(x => Math.Exp(x - 3.0));
        double[] want = [1 / z, Math.Exp(-0.5) / z, Math.Exp(-0.5) / z, Math.Exp(-1.25) / z];
        for (int j = 0; j < 4; j++) Assert.Equal(want[j], weights[j], 6);
        // not the full softmax's probabilities (Qwen3-MoE's gating), which the other 4 experts would dilute
        Span<int> qSel = stackalloc int[4];
        Span<float> qW = stackalloc float[4];
        fixed (float* l = logits) MoeFeedForward.Route(l, logits.Length, 4, qSel, qW);
        Assert.Equal(selected.ToArray(), qSel.ToArray());
        Assert.Equal(weights[0], qW[0], 6);   // renormalized over the same 4: the same weights by another route
    }

    [Fact]
    public void LayersAlternateTheWindowAndFullAttentionWithYarnOnBoth()
    {
        using var model = Model.Load(TestModels.Get("gpt-oss-tiny", "q8_0"));
        var c = model.Config;
        Assert.Equal(ExpertGating.SoftmaxWeight, c.ExpertGating);
        Assert.Equal((8, 2, 64, 256), (c.HeadCount, c.KvHeadCount, c.HeadDim, c.EmbeddingLength));   // 8·64 ≠ 256
        Assert.Equal(new LayerAttributes(true, 150000f, 1f / 32, 16), c.Layer(0));
        Assert.Equal(new LayerAttributes(true, 150000f, 1f / 32, 0), c.Layer(1));
        Assert.NotNull(c.Yarn);
        Assert.Equal(1f, c.Yarn!.AttnFactor);   // llama.cpp's context factor: exactly 1 for factor 32
        var L = model.Weights.Layers[0];
        Assert.Equal(8, L.AttnSinks!.Length);
        Assert.NotNull(L.OBias);
        Assert.All(L.Experts!, e => Assert.NotNull(e.DownBias));
    }
}
