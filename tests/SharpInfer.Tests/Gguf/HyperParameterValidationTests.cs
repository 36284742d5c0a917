using SharpInfer.Gguf;
using SharpInfer.Models;

namespace SharpInfer.Tests.Gguf;

/// <summary>Bad hyper-parameters in a real model's metadata (stories260K: 5 layers, 64 wide, 8 query heads, 4 kv
/// heads) are refused at load with one line naming the key and the value, instead of loading and computing garbage.</summary>
public class HyperParameterValidationTests
{
    private const string A = "llama.";

    private static SharpInferException LoadFails(GgufPatch patch)
    {
        var path = patch.Write();
        try
        {
            var e = Assert.ThrowsAny<SharpInferException>(() => Model.Load(path).Dispose());
            Assert.DoesNotContain('\n', e.Message);
            Assert.DoesNotContain('\r', e.Message);
            return e;
        }
        finally { File.Delete(path); }
    }

    private static GgufPatch Stories() => GgufPatch.From(TestPaths.Stories260K);

    [Fact]
    public void TheUnpatchedCopyLoads()
    {
        // the patch round trip itself is sound: every failure below comes from the one value changed
        var path = Stories().Write();
        try
        {
            using var m = Model.Load(path);
            Assert.Equal(5, m.Config.LayerCount);
            Assert.Equal(8, m.Config.HeadCount);
            Assert.Equal(4, m.Config.KvHeadCount);
            Assert.Equal(64, m.Config.EmbeddingLength);
        }
        finally { File.Delete(path); }
    }

    public static TheoryData<string, Enum, object, string> BadValues => new()
    {
        { "rope.scaling.factor", GgufValueType.Float32, float.NaN, "NaN" },
        { "attention.layer_norm_rms_epsilon", GgufValueType.Float32, float.PositiveInfinity, "+Inf" },
        { "attention.layer_norm_rms_epsilon", GgufValueType.Float32, 0f, "0" },
        { "attention.layer_norm_rms_epsilon", GgufValueType.Float64, -1e-5, "-1E-05" },
        { "rope.freq_base", GgufValueType.Float32, 0f, "0" },
        { "rope.freq_base", GgufValueType.Float32, -10000f, "-10000" },
        { "rope.freq_base", GgufValueType.Float32, float.NaN, "NaN" },
        { "rope.freq_base", GgufValueType.Float64, double.NegativeInfinity, "-Inf" },
        { "block_count", GgufValueType.Bool, true, "Boolean True" },
        { "block_count", GgufValueType.Float32, 5f, "Single 5" },
        { "block_count", GgufValueType.String, "5", "string '5'" },
        { "attention.head_count", GgufValueType.Int32, -8, "-8" },
        { "attention.head_count", GgufValueType.UInt32, 0u, "0" },
        { "attention.head_count_kv", GgufValueType.Int32, -4, "-4" },
        { "attention.head_count_kv", GgufValueType.UInt32, 0u, "0" },
        { "context_length", GgufValueType.UInt32, 0u, "0" },
        { "embedding_length", GgufValueType.UInt64, 1UL << 40, "1099511627776" },
        { "feed_forward_length", GgufValueType.Int64, -1L, "-1" },
    };

    [Theory]
    [MemberData(nameof(BadValues))]
    public void ABadValueIsRefusedNamingKeyAndValue(string key, Enum typeValue, object value, string shown)
    {
        var type = (GgufValueType)typeValue;
        var e = LoadFails(Stories().Set(A + key, type, value));
        Assert.Contains($"'{A}{key}'", e.Message);
        Assert.Contains(shown, e.Message);
    }

    [Fact]
    public void ANaNScalingFactorIsRefusedAlsoWhenScalingIsUsed()
    {
        var e = LoadFails(Stories().Set(A + "rope.scaling.type", GgufValueType.String, "linear")
                                   .Set(A + "rope.scaling.factor", GgufValueType.Float32, float.NaN));
        Assert.Contains("rope.scaling.factor", e.Message);
        Assert.Contains("NaN", e.Message);
    }

    [Fact]
    public void FewerDeclaredLayersThanTensorsIsRefused()
    {
        var e = LoadFails(Stories().Set(A + "block_count", GgufValueType.UInt32, 3u));
        Assert.Contains($"'{A}block_count' = 3", e.Message);
        Assert.Contains("layer 4", e.Message);
    }

    [Fact]
    public void MoreDeclaredLayersThanTensorsNamesTheMissingTensor()
    {
        var e = LoadFails(Stories().Set(A + "block_count", GgufValueType.UInt32, 6u));
        Assert.Contains("blk.5.", e.Message);
        Assert.Contains("missing", e.Message);
    }

    [Fact]
    public void HeadCountMustDivideTheEmbeddingLength()
    {
        // 64 is not a multiple of 7 (and 7 is not a multiple of the 4 kv heads either: set those to 7 too)
        var e = LoadFails(Stories().Set(A + "attention.head_count", GgufValueType.UInt32, 7u)
                                   .Set(A + "attention.head_count_kv", GgufValueType.UInt32, 7u));
        Assert.Contains("embedding_length", e.Message);
        Assert.Contains("64", e.Message);
        Assert.Contains("7", e.Message);
    }

    [Fact]
    public void KvHeadCountMustDivideTheHeadCount()
    {
        var e = LoadFails(Stories().Set(A + "attention.head_count_kv", GgufValueType.UInt32, 3u));
        Assert.Contains("head_count_kv", e.Message);
        Assert.Contains("3", e.Message);
        Assert.Contains("8", e.Message);
    }

    [Fact]
    public void AnUnusedNonFiniteFloatOfTheArchitectureIsStillRefused()
    {
        // a NaN anywhere in the hyper-parameters says the file is corrupt, even in a key this engine does not read
        var e = LoadFails(Stories().Set(A + "rope.scaling.attn_factor", GgufValueType.Float32, float.NegativeInfinity));
        Assert.Contains("rope.scaling.attn_factor", e.Message);
        Assert.Contains("-Inf", e.Message);
    }
}
