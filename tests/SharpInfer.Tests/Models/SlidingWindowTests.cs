using SharpInfer.KvCache;
using SharpInfer.Models;
using SharpInfer.Runtime;
using SharpInfer.Tensors;
using SharpInfer.Tests.Tensors;
using SharpInfer.Tests.Tensors.Kernels;

namespace SharpInfer.Tests.Models;

/// <summary>
/// Sliding-window attention (gemma3-tiny: layers 0–4 see the last 16 positions, layer 5 everything). The window's
/// boundary is llama.cpp's (key p0 is masked for query p1 when p1 − p0 ≥ 16, checked by the goldens, whose prompts
/// cross it); here: the attention kernel with a first visible position equals a naive softmax over exactly those keys
/// on every path; a 40-token prompt gives the same logits in one pass, in chunks and one token at a time, alone and
/// batched with another sequence; and the window really cuts: the same model with an unbounded window agrees up to
/// position 15 and differs after.
/// </summary>
public unsafe class SlidingWindowTests
{
    private const int Window = 16;

    [Fact]
    public void FirstVisiblePositionFollowsLlamaCppsMask()
    {
        // is_masked_swa (standard): masked when p1 - p0 >= window
        for (int p1 = 0; p1 < 3 * Window; p1++)
        {
            int first = Transformer.FirstVisible(p1, Window);
            for (int p0 = 0; p0 <= p1; p0++) Assert.Equal(p1 - p0 < Window, p0 >= first);
        }
    }

    [Theory]
    [InlineData(16, 1, 64)]
    [InlineData(16, 4, 64)]     // head pairs on AVX-512
    [InlineData(5, 2, 40)]      // block size not a multiple of 4, head size with tails
    public void WindowedAttentionMatchesNaiveSoftmaxOverTheWindowOnEveryPath(int bs, int group, int D)
    {
        var rng = new Random(bs * 31 + group);
        using var kv = new RandomKvSequence(rng, bs, D, 4 * bs + 3, keyScale: p => p % 7 == 3 ? 3f : 1f);
        int length = kv.Length;
        var q = new float[group * D];
        for (int i = 0; i < q.Length; i++) q[i] = (float)KernelHarness.Gaussian(rng);
        float scale = 1f / MathF.Sqrt(D);
        var scratch = new float[PagedAttention.ScratchFloats(group, D, bs)];
        var output = new float[group * D];
        foreach (int first in new[] { 1, bs - 1, bs, bs + 2, length - 1 })
        {
            var want = kv.NaiveAttention(q, group, scale, first);
            foreach (var level in KernelHarness.Levels())
            {
                fixed (float* qp = q) fixed (float* op = output) fixed (float* sp = scratch)
                    PagedAttention.Attend(kv.Cache, 0, 0, kv.Table, length, qp, op, group, D, scale, sp, level, first);
                for (int i = 0; i < output.Length; i++)
                    Assert.True(Math.Abs(output[i] - want[i]) <= 2e-6 + 2e-6 * Math.Abs(want[i]),
                        $"bs {bs} group {group} D {D} first {first} head {i / D} dim {i % D} {level}: {output[i]:R} vs {want[i]:R}");
            }
        }
    }

    private static int[] Prompt(int n, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => rng.Next(1000, 200000)).ToArray();
    }

    [Fact]
    public void PrefillChunksAndDecodeGiveIdenticalLogitsPastTheWindow()
    {
        using var model = Model.Load(TestModels.GetLarge("gemma3-tiny", "f32"));
        Assert.Equal(Window, model.Config.SlidingWindow);
        BatchInvariance.AssertChunkedPrefillMatchesWhole(model, Prompt(40, 7), [1, 7, 16], MatMulPrecision.Exact, "gemma3-tiny");
    }

    [Fact]
    public void ASequenceGivesIdenticalLogitsAloneAndBatchedWithAnother()
    {
        using var model = Model.Load(TestModels.GetLarge("gemma3-tiny", "f32"));
        BatchInvariance.AssertBatchedMatchesAlone(model, Prompt(40, 11), Prompt(29, 12), MatMulPrecision.Exact, "gemma3-tiny");
    }

    [Fact]
    public void TheWindowCutsOnlyPastItsLength()
    {
        using var model = Model.Load(TestModels.GetLarge("gemma3-tiny", "f32"));
        var prompt = Prompt(40, 3);
        float[][] windowed;
        using (var r = new SequenceRunner(model, 64)) windowed = r.Feed(prompt);

        // the same model with a window longer than the prompt: same layers and RoPE bases, nothing cut
        var global = model.Config with { SlidingWindow = 1 << 20 };
        using var pool = new ComputePool(2);
        using var t = new Transformer(global, model.Weights, pool, 64, 16, MatMulPrecision.Exact);
        using var cache = new PagedKvCache(global.LayerCount, global.KvHeadCount, global.HeadDim, 16, 4, KvDataType.F32);
        var table = new BlockTable();
        for (int b = 0; b < 3; b++) table.Add(b);
        var batch = new ForwardBatch(prompt.Length, 1);
        int s = batch.AddSequence(table);
        for (int i = 0; i < prompt.Length; i++) batch.AddToken(s, prompt[i], i, wantLogits: true);
        int V = global.VocabSize;
        var logits = new float[prompt.Length * V];
        t.Forward(batch, cache, logits);
        for (int i = 0; i < prompt.Length; i++)
        {
            bool same = logits.AsSpan(i * V, V).SequenceEqual(windowed[i]);
            if (i < Window) Assert.True(same, $"position {i} (inside the window) differs");
            else Assert.False(same, $"position {i} (past the window) is unchanged: the window cut nothing");
        }
    }
}
