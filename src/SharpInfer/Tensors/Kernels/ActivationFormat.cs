namespace SharpInfer.Tensors.Kernels;

/// <summary>The form a matmul kernel wants its input activations in.</summary>
internal enum ActivationFormat
{
    /// <summary>Plain floats (exact path; float weights).</summary>
    F32,
    /// <summary>ggml's Q8_0: blocks of 32 int8 with one scale (the f16-rounded amax/127).</summary>
    Q8_0,
    /// <summary>Q8_0 plus each block's scaled sum (ggml's Q8_1 's' field), for weights with offsets (Q4_1, Q5_1).</summary>
    Q8_1,
    /// <summary>ggml's Q8_K: blocks of 256 int8 with a float scale and sums of every 16 values (K-quants).</summary>
    Q8_K,
}

/// <summary>
/// One matmul input (T tokens × Cols floats) and, computed on demand and cached until the next input, its
/// quantized forms. Quantized rows are stored split for SIMD: all int8 values of a token contiguous, then its
/// block scales as floats, and block sums (Q8_0/Q8_1: exact Σq per block; Q8_1 also d·Σq; Q8_K: Σq per 16 values).
/// </summary>
internal unsafe struct ActivationView
{
    public float* F32;
    public int Tokens;
    public int Cols;
    /// <summary>int8 values: token t starts at Q + t * Cols.</summary>
    public sbyte* Q;
    /// <summary>Block scales: token t starts at D + t * (Cols / blockSize).</summary>
    public float* D;
    /// <summary>Q8_1 only: d·Σq per 32-block, f16-rounded as ggml stores it; token t at S + t * (Cols / 32).</summary>
    public float* S;
    /// <summary>Q8_K only: Σq of every 16 values; token t at BSums + t * (Cols / 16).</summary>
    public short* BSums;
    /// <summary>Q8_0/Q8_1: the exact integer Σq of each 32-block; token t at Sums + t * (Cols / 32). Kernels for weights
    /// with an implicit offset (Q4_0's q − 8, Q5_0's q − 16) multiply unsigned codes and subtract offset·Σq.</summary>
    public int* Sums;
}
