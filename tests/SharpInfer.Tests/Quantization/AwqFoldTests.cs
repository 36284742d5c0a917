using SharpInfer.Gguf;
using SharpInfer.Models;
using SharpInfer.Quantization;
using SharpInfer.Tests.Engine;
using SharpInfer.Tests.Models;

namespace SharpInfer.Tests.Quantization;

/// <summary>AWQ's fold is exact in function before rounding: the scales chosen for Q4_0 on the small widened model,
/// applied to an F32 output (norms divided by s, the matrices reading them multiplied by s, nothing rounded), give the
/// original model's logits up to float rounding, while the weights really changed.</summary>
public class AwqFoldTests
{
    [Fact]
    public void Folded_scales_leave_the_f32_models_logits_unchanged()
    {
        string input = SpeculativeDecodingTests.WidenedPath.Value;
        string text = File.ReadAllText(Path.Combine(TestPaths.Shared, "data", "tinystories-sampled.txt"))[..20000];
        CalibrationResult cal;
        using (var model = Model.Load(input))
            cal = Calibration.Run(model, text, "cal.txt", new ImatrixOptions(64, 4, 2), QuantMethod.Awq);

        string output = TestPaths.NewTempFile();
        using (var g = GgufFile.Open(input))
        {
            var q4 = QuantizationPlan.Create(g, QuantizeTestUtil.Options("Q4_0") with { Imatrix = cal.Imatrix, Hessians = cal.Hessians, Method = QuantMethod.Awq });
            var scales = q4.Tensors.Where(t => t.ColumnScale != null).ToDictionary(t => t.Source.Name, t => t.ColumnScale!);
            Assert.Equal(8 * 2 + 8 * 3 + 8 * 2, scales.Count);   // per layer: 2 norms, Q/K/V, gate/up
            Assert.Contains(scales.Values, s => s.Max() / s.Min() > 1.5f);   // some α > 0 was chosen
            var f32 = QuantizationPlan.Create(g, QuantizeTestUtil.Options("F32"));
            var folded = new QuantizationPlan
            {
                FileType = f32.FileType,
                Metadata = f32.Metadata,
                Alignment = f32.Alignment,
                Fallbacks = f32.Fallbacks,
                Tensors = f32.Tensors.Select(t => scales.TryGetValue(t.Source.Name, out var s) ? t with { ColumnScale = s } : t).ToList(),
            };
            using var stream = File.Create(output);
            ModelQuantizer.Write(g, folded, stream, 2);
        }

        int[] prompt = [1, 403, 261, 345, 411, 279, 179, 264, 5, 66, 301, 98, 12, 44, 303, 250];   // stories260K has 512 tokens
        float[][] before, after;
        using (var m = Model.Load(input))
        using (var r = new SequenceRunner(m, 64)) before = r.Feed(prompt);
        using (var m = Model.Load(output))
        using (var r = new SequenceRunner(m, 64)) after = r.Feed(prompt);
        for (int p = 0; p < prompt.Length; p++)
        {
            float scale = before[p].Max(MathF.Abs), worst = 0;
            for (int v = 0; v < before[p].Length; v++) worst = MathF.Max(worst, MathF.Abs(before[p][v] - after[p][v]));
            Assert.True(worst <= 1e-3f * Math.Max(1f, scale), $"position {p}: logits differ by {worst} (largest {scale})");
        }
        using var a = GgufFile.Open(input);
        using var b = GgufFile.Open(output);
        var q = a.Tensors.Single(t => t.Name == "blk.0.attn_q.weight");
        Assert.False(a.TensorBytes(q).SequenceEqual(b.TensorBytes(b.Tensors.Single(t => t.Name == q.Name))));
    }
}
