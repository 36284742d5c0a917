namespace SharpInfer.Engine.Speculation;

/// <summary>
/// How many tokens a request proposes next, from how its last proposals fared (per request): a fully accepted run
/// suggests the draft agrees with the target here, so try one more; a rejection at position a means about a tokens
/// were worth proposing, so propose a + 1 (one beyond what stood, to notice when agreement returns). Always within
/// [1, max]. Speculation never changes the output, only how many passes it takes, so this rule is free to be heuristic.
/// </summary>
internal static class AdaptiveDraftLimit
{
    /// <summary>The longest back-off, in steps: a proposer that keeps failing costs at most one 2-token verification
    /// per this many steps.</summary>
    public const int MaxPause = 32;

    /// <summary>Failed verifications in a row before the first pause.</summary>
    public const int FailuresBeforePause = 4;

    public static int Next(int current, int proposed, int accepted, int max) =>
        Math.Clamp(accepted >= proposed ? current + 1 : accepted + 1, 1, max);

    /// <summary>
    /// Back-off for a proposer that keeps failing (n-gram lookups on text that does not repeat its prompt): after
    /// the fourth verification in a row in which nothing was accepted, the request stops proposing for 1 step, then
    /// 2, 4, ... up to <see cref="MaxPause"/> while the failures go on; any accepted token ends the back-off. A few
    /// failures never pause, so a good draft (a zero-acceptance step now and then: 4 in a row at 84% acceptance per
    /// token is 1 in 1,500) is not held back, nor a lookup that has just started to miss. Returns the steps to skip;
    /// <paramref name="failures"/> is the request's count of failed verifications in a row.
    /// </summary>
    public static int PauseAfter(ref int failures, int accepted)
    {
        if (accepted > 0)
        {
            failures = 0;
            return 0;
        }
        failures++;
        return failures < FailuresBeforePause ? 0 : Math.Min(MaxPause, 1 << Math.Min(failures - FailuresBeforePause, 30));
    }
}
