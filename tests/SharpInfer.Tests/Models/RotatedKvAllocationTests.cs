using SharpInfer.KvCache;
using SharpInfer.Tensors;

namespace SharpInfer.Tests.Models;

/// <summary>Quantized KV caches at head_dim 64 store Hadamard-rotated rows (<see cref="KvRotation"/>): the rotation of
/// keys, values, queries and attention outputs adds no allocation to a decode step.</summary>
public class RotatedKvAllocationTests
{
    [Theory]
    [InlineData(KvDataType.Q8_0)]
    [InlineData(KvDataType.Q4_0)]
    public void DecodeStepsWithARotatedQuantizedCacheAllocateNothing(KvDataType kv)
    {
        Assert.True(KvRotation.KeySize(KvFormat.Of(kv), 64) > 0);   // qwen3-tiny's head_dim rotates
        new ZeroAllocationTests().DecodeStepsAllocateNothing("qwen3-tiny", "f32", MatMulPrecision.Fast, kv);
    }
}
