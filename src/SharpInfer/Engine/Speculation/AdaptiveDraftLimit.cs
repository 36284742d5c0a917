namespace SharpInfer.Engine.Speculation;

/// <summary>
/// How many tokens a request proposes next, from how its last proposals fared (per request): a fully accepted run
/// suggests the draft agrees with the target here, so try one more; a rejection at position a means about a tokens
/// were worth proposing, so propose a + 1 (one beyond what stood, to notice when agreement returns). Always within
/// [1, max]. Speculation never changes the output, only how many passes it takes, so this rule is free to be heuristic.
/// </summary>
internal static class AdaptiveDraftLimit
{
    public static int Next(int current, int proposed, int accepted, int max) =>
        Math.Clamp(accepted >= proposed ? current + 1 : accepted + 1, 1, max);
}
