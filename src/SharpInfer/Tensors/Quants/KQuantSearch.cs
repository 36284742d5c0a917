namespace SharpInfer.Tensors;

/// <summary>The scale searches shared by ggml's K-quant reference quantizers (make_qx_quants,
/// make_q3_quants, make_qkx2_quants). Every expression keeps ggml's operand order and float (not double)
/// arithmetic, and nothing is fused: the search compares near-equal errors, so a different rounding in
/// any step can pick a different scale and change the bytes.</summary>
internal static class KQuantSearch
{
    /// <summary>Groups whose largest |x| is below this are stored as all zeros.</summary>
    public const float GroupMaxEps = 1e-15f;

    /// <summary>make_qx_quants for a symmetric signed grid: codes l ∈ [−nmax, nmax−1] stored as l + nmax in
    /// <paramref name="codes"/>; returns the scale. <paramref name="rmseType"/> 1 weights the error by x²
    /// (the only type the reference quantizers use besides 0, which skips the search).</summary>
    public static float MakeQxQuants(ReadOnlySpan<float> x, int nmax, Span<sbyte> codes, int rmseType)
    {
        int n = x.Length;
        float max = 0f, amax = 0f;
        for (int i = 0; i < n; i++)
        {
            float ax = MathF.Abs(x[i]);
            if (ax > amax) { amax = ax; max = x[i]; }
        }
        if (amax < GroupMaxEps)
        {
            codes[..n].Clear();
            return 0f;
        }
        float iscale = -nmax / max;
        if (rmseType == 0)
        {
            for (int i = 0; i < n; i++)
                codes[i] = (sbyte)(nmax + Math.Max(-nmax, Math.Min(nmax - 1, QuantMath.NearestInt(iscale * x[i]))));
            return 1f / iscale;
        }
        bool returnEarly = false;
        if (rmseType < 0) { rmseType = -rmseType; returnEarly = true; }

        // The weights and weight·x do not change with the candidate scale: computed once (w·x·l is (w·x)·l in C
        // too, so the sums are the same floats).
        Span<float> w = n <= 64 ? stackalloc float[n] : new float[n];
        Span<float> wx = n <= 64 ? stackalloc float[n] : new float[n];
        for (int i = 0; i < n; i++)
        {
            w[i] = Weight(x[i], rmseType);
            wx[i] = w[i] * x[i];
        }
        float sumlx = 0f, suml2 = 0f;
        for (int i = 0; i < n; i++)
        {
            int l = Math.Max(-nmax, Math.Min(nmax - 1, QuantMath.NearestInt(iscale * x[i])));
            codes[i] = (sbyte)(l + nmax);
            sumlx += wx[i] * l;
            suml2 += w[i] * l * l;
        }
        float scale = suml2 != 0f ? sumlx / suml2 : 0f;
        if (returnEarly) return suml2 > 0f ? 0.5f * (scale + 1f / iscale) : 1f / iscale;
        float best = scale * sumlx;
        for (int step = -9; step <= 9; step++)
        {
            if (step == 0) continue;
            iscale = -(nmax + 0.1f * step) / max;
            sumlx = suml2 = 0f;
            for (int i = 0; i < x.Length && i < w.Length && i < wx.Length; i++)   // (lets the JIT drop the bounds checks)
            {
                int l = Math.Max(-nmax, Math.Min(nmax - 1, QuantMath.NearestInt(iscale * x[i])));
                sumlx += wx[i] * l;
                suml2 += w[i] * l * l;
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

    private static float Weight(float x, int rmseType) => rmseType switch
    {
        1 => x * x,
        2 => 1f,
        3 => MathF.Abs(x),
        _ => MathF.Sqrt(MathF.Abs(x)),
    };

    /// <summary>make_q3_quants: signed codes l ∈ [−nmax, nmax−1] stored as l + nmax; with
    /// <paramref name="doRmse"/>, up to 5 passes of coordinate descent on the x²-weighted error.</summary>
    public static float MakeQ3Quants(ReadOnlySpan<float> x, int nmax, Span<sbyte> codes, bool doRmse)
    {
        int n = x.Length;
        float max = 0f, amax = 0f;
        for (int i = 0; i < n; i++)
        {
            float ax = MathF.Abs(x[i]);
            if (ax > amax) { amax = ax; max = x[i]; }
        }
        if (amax < GroupMaxEps)
        {
            codes[..n].Clear();
            return 0f;
        }
        float iscale = -nmax / max;
        if (doRmse)
        {
            float sumlx = 0f, suml2 = 0f;
            for (int i = 0; i < n; i++)
            {
                int l = Math.Max(-nmax, Math.Min(nmax - 1, QuantMath.NearestInt(iscale * x[i])));
                codes[i] = (sbyte)l;
                float w = x[i] * x[i];
                sumlx += w * x[i] * l;
                suml2 += w * l * l;
            }
            for (int itry = 0; itry < 5; itry++)
            {
                int changed = 0;
                for (int i = 0; i < n; i++)
                {
                    float w = x[i] * x[i];
                    float slx = sumlx - w * x[i] * codes[i];
                    if (slx > 0f)
                    {
                        float sl2 = suml2 - w * codes[i] * codes[i];
                        int newL = Math.Max(-nmax, Math.Min(nmax - 1, QuantMath.NearestInt(x[i] * sl2 / slx)));
                        if (newL != codes[i])
                        {
                            slx += w * x[i] * newL;
                            sl2 += w * newL * newL;
                            if (sl2 > 0f && slx * slx * suml2 > sumlx * sumlx * sl2)
                            {
                                codes[i] = (sbyte)newL;
                                sumlx = slx;
                                suml2 = sl2;
                                changed++;
                            }
                        }
                    }
                }
                if (changed == 0) break;
            }
            for (int i = 0; i < n; i++) codes[i] = (sbyte)(codes[i] + nmax);
            return suml2 > 0f ? sumlx / suml2 : 0f;
        }
        for (int i = 0; i < n; i++)
            codes[i] = (sbyte)(nmax + Math.Max(-nmax, Math.Min(nmax - 1, QuantMath.NearestInt(iscale * x[i]))));
        return 1f / iscale;
    }

    /// <summary>make_qkx2_quants: asymmetric codes l ∈ [0, nmax] for x ≈ scale·l − theMin (theMin ≥ 0 is
    /// returned as a positive offset). Tries nstep+1 inverse scales (rmin + rdelta·is + nmax)/(max − min),
    /// solving the weighted 2-parameter least squares for each, and keeps the lowest weighted error
    /// (absolute error if <paramref name="useMad"/>, squared otherwise).</summary>
    public static float MakeQkx2Quants(ReadOnlySpan<float> x, ReadOnlySpan<float> weights, int nmax, Span<byte> codes,
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
        if (max == min)
        {
            codes[..n].Clear();
            theMin = -min;
            return 0f;
        }
        float iscale = nmax / (max - min);
        float scale = 1f / iscale;
        float bestError = 0f;
        for (int i = 0; i < n; i++)
        {
            int l = QuantMath.NearestInt(iscale * (x[i] - min));
            codes[i] = (byte)Math.Max(0, Math.Min(nmax, l));
            float diff = scale * codes[i] + min - x[i];
            diff = useMad ? MathF.Abs(diff) : diff * diff;
            bestError += weights[i] * diff;
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
                float curError = 0f;
                for (int i = 0; i < n; i++)
                {
                    float diff = thisScale * aux[i] + thisMin - x[i];
                    diff = useMad ? MathF.Abs(diff) : diff * diff;
                    curError += weights[i] * diff;
                }
                if (curError < bestError)
                {
                    aux[..n].CopyTo(codes);
                    bestError = curError;
                    scale = thisScale;
                    min = thisMin;
                }
            }
        }
        theMin = -min;
        return scale;
    }
}
