using System.Text.Json.Nodes;

namespace SharpInfer.Tests.Cli;

/// <summary>A Q8_0, Q4_0 or Q4_K_M model generates the same tokens and log-prob bits whichever instructions the CPU offers (the
/// kernels' arithmetic is the same on every path). The CLI runs as a child process with the runtime's AVX-VNNI off
/// (<c>DOTNET_EnableAVXVNNI=0</c>: the sign-trick tiles, on an AVX-512 CPU the 512-bit ones of Zen 4 or Ice Lake) and
/// with AVX-512 off (<c>DOTNET_EnableAVX512=0</c>, the AVX2 tiles; .NET 10 ignores the older
/// <c>DOTNET_EnableAVX512F</c>); both must match the default process (vpdpbusd where the CPU has AVX-VNNI). The
/// in-process kernel tests only see the paths of the CPU they run on; this covers the others end to end.</summary>
public class IsaPathsAgreeTests
{
    private static JsonObject RunJson(string model, params (string Key, string Value)[] env) =>
        CliHarness.RunProcessJson(["run", "-m", model, "-t", "2", "-n", "12", "--temp", "0", "--json", "--logprobs", "3",
                                   "-p", "Once upon a time, in a quiet village by the sea, a small girl"], env);

    [Theory]
    [InlineData("q8_0")]
    [InlineData("q4_0")]   // the nibble-packed decode: vpdpbusd, or without VNNI int16 block sums
    [InlineData("q4_k_m")] // the interleaved Q4_K decode: vpdpwssd, or vpmaddwd without VNNI
    public void Generates_the_same_bits_without_avx_vnni_or_avx512(string type)
    {
        string model = TestModels.Get("mistral-tiny", type);
        var native = RunJson(model);
        Assert.Equal(12, native["generated_ids"]!.AsArray().Count);
        Assert.Equal(12, native["top_logprobs"]!.AsArray().Count);
        foreach (var env in new[] { ("DOTNET_EnableAVXVNNI", "0"), ("DOTNET_EnableAVX512", "0") })
        {
            var other = RunJson(model, env);
            Assert.Equal(native["generated_ids"]!.ToJsonString(), other["generated_ids"]!.ToJsonString());
            Assert.Equal(native["top_logprobs"]!.ToJsonString(), other["top_logprobs"]!.ToJsonString());
        }
    }
}
