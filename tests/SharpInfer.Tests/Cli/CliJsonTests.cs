using System.Text.Json;
using SharpInfer.Cli;

namespace SharpInfer.Tests.Cli;

/// <summary>CLI JSON output never throws on NaN/Inf (written as null, like llama.cpp) and keeps '+' unescaped.</summary>
public class CliJsonTests
{
    [Fact]
    public void Serializer_writes_non_finite_numbers_as_null_and_plain_plus()
    {
        var json = JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["nan"] = double.NaN,
            ["inf"] = float.PositiveInfinity,
            ["ok"] = 1.5,
            ["isa"] = "avx512+vnni",
        }, CliJson.Compact);
        Assert.Equal("{\"nan\":null,\"inf\":null,\"ok\":1.5,\"isa\":\"avx512+vnni\"}", json);
    }

    [Fact]
    public void Writer_helper_writes_non_finite_log_probs_as_null()
    {
        var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, CliJson.WriterOptions))
        {
            w.WriteStartArray();
            CliJson.WriteNumberOrNull(w, float.NaN);
            CliJson.WriteNumberOrNull(w, double.NegativeInfinity);
            CliJson.WriteNumberOrNull(w, -0.25);
            w.WriteEndArray();
        }
        Assert.Equal("[null,null,-0.25]", System.Text.Encoding.UTF8.GetString(buffer.ToArray()));
    }

    [Fact]
    public void Build_commit_is_a_git_hash_or_unknown()
    {
        Assert.Matches("^([0-9a-f]{7,40}|unknown)$", BuildInfo.Commit);
    }
}
