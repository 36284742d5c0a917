using SharpInfer.Tensors;

namespace SharpInfer.Quantization;

/// <summary>
/// The scale searches ggml's importance-weighted quantizers use (ggml-quants.c: make_qx_quants with explicit weights,
/// make_qkx3_quants, make_qp_quants). Like <c>KQuantSearch</c> (their unweighted siblings), every expression keeps
/// ggml's operand order and float arithmetic with nothing fused: the searches compare near-equal errors, so one
/// different rounding can pick another scale and change the bytes.
/// </summary>
internal static class WeightedSearch
{
    /// <summary>make_qx_quants(n, nmax, x, L, rmse_type = 1, qw): signed codes l ∈ [−nmax, nmax−1] stored as l + nmax,
    /// the 19 candidate scales judged by the <paramref name="qw"/>-weighted error; returns the scale.</summary>
    public static float MakeQxQuants(ReadOnlySpan<float> x, int nmax, Span<sbyte> codes, ReadOnlySpan<float> qw)
    {
        int n = x.Length;
        float max = 0f, amax = 0f;
        for (int i = 0; i < n; i++)
        {
            float ax = MathF.Abs(x[i]);
            if (ax > amax) { amax = ax; max = x[i]; }
        }
        if (amax < KQuantSearch.GroupMaxEps)
        {
            codes[..n].Clear();
            return 0f;
        }
        float iscale = -nmax / max;
        float sumlx = 0f, suml2 = 0f;
        for (int i = 0; i < n; i++)
        {
            int l = Math.Max(-nmax, Math.Min(nmax - 1, QuantMath.NearestInt(iscale * x[i])));
            codes[i] = (sbyte)(l + nmax);
            float w = qw[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        float scale = suml2 != 0f ? sumlx / suml2 : 0f;
        float best = scale * sumlx;
        for (int step = -9; step <= 9; step++)
        {
            if (step == 0) continue;
            iscale = -(nmax + 0.1f * step) / max;
            sumlx = suml2 = 0f;
            for (int i = 0; i < n; i++)
            {
                int l = Math.Max(-nmax, Math.Min(nmax - 1, QuantMath.NearestInt(iscale * x[i])));
                float w = qw[i];
                sumlx += w * x[i] * l;
                suml2 += w * l * l;
            }
            if (suml2 > 0f && sumlx * sumlx > best * suml2)
            {
                for (int i = 0; i < n; i++)
                    codes[i] = (sbyte)(nmax + Math.Max(-nmax, Math.Min(nmax - 1, QuantMath.NearestInt(iscale * x[i]))));
                scale = sumlx / suml2;
                best = scale * sumlx;
            }
        }
        return scale;
    }

    /// <summary>make_qkx3_quants with weights: asymmetric codes l ∈ [0, nmax] for x ≈ scale·l − theMin; tries
    /// nstep+1 inverse scales, solving the weighted two-parameter least squares for each, and keeps the lowest
    /// weighted error (absolute if <paramref name="useMad"/>, squared otherwise). Differs from make_qkx2_quants in
    /// the degenerate test (max ≤ min).</summary>
    public static float MakeQkx3Quants(ReadOnlySpan<float> x, ReadOnlySpan<float> weights, int nmax, Span<byte> codes,
        out float theMin, Span<byte> aux, float rmin, float rdelta, int nstep, bool useMad)
    {
        int n = x.Length;
        float min = x[0], max = x[0];
        float sumW = weights[0];
        float sumX = sumW * x[0];
        for (int i = 1; i < n; i++)
        {
            if (x[i] < min) min = x[i];
            if (x[i] > max) max = x[i];
            float w = weights[i];
            sumW += w;
            sumX += w * x[i];
        }
        if (min > 0f) min = 0f;
        if (max <= min)
        {
            codes[..n].Clear();
            theMin = -min;
            return 0f;
        }
        float iscale = nmax / (max - min);
        float scale = 1f / iscale;
        float bestMad = 0f;
        for (int i = 0; i < n; i++)
        {
            int l = QuantMath.NearestInt(iscale * (x[i] - min));
            codes[i] = (byte)Math.Max(0, Math.Min(nmax, l));
            float diff = scale * codes[i] + min - x[i];
            diff = useMad ? MathF.Abs(diff) : diff * diff;
            bestMad += weights[i] * diff;
        }
        if (nstep < 1)
        {
            theMin = -min;
            return scale;
        }
        for (int step = 0; step <= nstep; step++)
        {
            iscale = (rmin + rdelta * step + nmax) / (max - min);
            float sumL = 0f, sumL2 = 0f, sumXL = 0f;
            for (int i = 0; i < n; i++)
            {
                int l = Math.Max(0, Math.Min(nmax, QuantMath.NearestInt(iscale * (x[i] - min))));
                aux[i] = (byte)l;
                float w = weights[i];
                sumL += w * l;
                sumL2 += w * l * l;
                sumXL += w * l * x[i];
            }
            float det = sumW * sumL2 - sumL * sumL;
            if (det > 0f)
            {
                float thisScale = (sumW * sumXL - sumX * sumL) / det;
                float thisMin = (sumL2 * sumX - sumL * sumXL) / det;
                if (thisMin > 0f)
                {
                    thisMin = 0f;
                    thisScale = sumXL / sumL2;
                }
                float mad = 0f;
                for (int i = 0; i < n; i++)
                {
                    float diff = thisScale * aux[i] + thisMin - x[i];
                    diff = useMad ? MathF.Abs(diff) : diff * diff;
                    mad += weights[i] * diff;
                }
                if (mad < bestMad)
                {
                    aux[..n].CopyTo(codes);
                    bestMad = mad;
                    scale = thisScale;
                    min = thisMin;
                }
            }
        }
        theMin = -min;
        return scale;
    }

    /// <summary>make_qp_quants: non-negative values (sub-block scales or mins) to codes in [0, nmax] with one
    /// super-block scale, chosen among 9 candidates by weighted error and refined by up to 5 passes of coordinate
    /// descent. Codes are bytes as in ggml (uint8_t L[]), including the wrap of the first, unclamped guess.</summary>
    public static float MakeQpQuants(ReadOnlySpan<float> x, int nmax, Span<byte> codes, ReadOnlySpan<float> qw)
    {
        int n = x.Length;
        float max = 0f;
        for (int i = 0; i < n; i++) max = Math.Max(max, x[i]);
        if (max < KQuantSearch.GroupMaxEps)
        {
            codes[..n].Clear();
            return 0f;
        }
        float iscale = nmax / max;
        for (int i = 0; i < n; i++) codes[i] = unchecked((byte)QuantMath.NearestInt(iscale * x[i]));
        float scale = 1f / iscale;
        float bestMse = 0f;
        for (int i = 0; i < n; i++)
        {
            float diff = x[i] - scale * codes[i];
            float w = qw[i];
            bestMse += w * diff * diff;
        }
        for (int step = -4; step <= 4; step++)
        {
            if (step == 0) continue;
            float iscaleIs = (0.1f * step + nmax) / max;
            float scaleIs = 1f / iscaleIs;
            float mse = 0f;
            for (int i = 0; i < n; i++)
            {
                int l = Math.Min(nmax, QuantMath.NearestInt(iscaleIs * x[i]));
                float diff = x[i] - scaleIs * l;
                float w = qw[i];
                mse += w * diff * diff;
            }
            if (mse < bestMse)
            {
                bestMse = mse;
                iscale = iscaleIs;
            }
        }
        float sumlx = 0f, suml2 = 0f;
        for (int i = 0; i < n; i++)
        {
            int l = Math.Min(nmax, QuantMath.NearestInt(iscale * x[i]));
            codes[i] = unchecked((byte)l);
            float w = qw[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        for (int itry = 0; itry < 5; itry++)
        {
            int changed = 0;
            for (int i = 0; i < n; i++)
            {
                float w = qw[i];
                float slx = sumlx - w * x[i] * codes[i];
                float sl2 = suml2 - w * codes[i] * codes[i];
                if (slx > 0f && sl2 > 0f)
                {
                    int newL = Math.Min(nmax, QuantMath.NearestInt(x[i] * sl2 / slx));
                    if (newL != codes[i])
                    {
                        slx += w * x[i] * newL;
                        sl2 += w * newL * newL;
                        if (slx * slx * suml2 > sumlx * sumlx * sl2)
                        {
                            codes[i] = unchecked((byte)newL);
                            sumlx = slx;
                            suml2 = sl2;
                            changed++;
                        }
                    }
                }
            }
            if (changed == 0) break;
        }
        return suml2 > 0f ? sumlx / suml2 : 0f;
    }
}
