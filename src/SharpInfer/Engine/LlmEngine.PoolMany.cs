using SharpInfer.Engine.Pooling;

namespace SharpInfer.Engine;

internal sealed partial class LlmEngine
{
    /// <summary>Runs one pooling request per prompt and returns the results in prompt order. At most
    /// <paramref name="maxConcurrent"/> are in flight at once, so a long list (2048 embedding inputs) queues behind
    /// itself instead of filling the engine's waiting queue ahead of other callers. Fail-fast: the first failure cancels
    /// the rest, and the call throws a <see cref="PoolingInputException"/> naming the failing prompt (the lowest index
    /// among those that failed), not the cancellations it caused; cancelling <paramref name="cancellation"/> ends all of
    /// them with <see cref="OperationCanceledException"/>. One method for every caller (the <c>Llm</c> facade, the
    /// embedding and rerank endpoints, <c>sharpinfer embed</c>), so they batch and fail alike.</summary>
    public async Task<PoolingOutput[]> PoolManyAsync(IReadOnlyList<int[]> prompts, PoolingParams p, int maxConcurrent,
        CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(prompts);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxConcurrent, 1);
        var results = new PoolingOutput[prompts.Count];
        using var failed = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        using var seats = new SemaphoreSlim(maxConcurrent);
        var tasks = new Task[prompts.Count];
        for (int i = 0; i < prompts.Count; i++)
        {
            int index = i;
            tasks[i] = Task.Run(async () =>
            {
                await seats.WaitAsync(failed.Token).ConfigureAwait(false);
                try
                {
                    results[index] = await PoolAsync(EngineRequest.ForPooling(prompts[index], p), failed.Token).ConfigureAwait(false);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    failed.Cancel();   // one failure ends the others: the call fails as a whole
                    throw new PoolingInputException(index, e);
                }
                finally
                {
                    seats.Release();
                }
            }, CancellationToken.None);
        }
        try
        {
            await Task.WhenAll(tasks).ConfigureAwait(false);
        }
        catch
        {
            cancellation.ThrowIfCancellationRequested();
            if (tasks.Select(t => t.Exception?.InnerException).OfType<PoolingInputException>().FirstOrDefault() is { } first)
                throw first;
            throw;
        }
        return results;
    }
}

/// <summary>Why <see cref="LlmEngine.PoolManyAsync"/> failed: the prompt at <see cref="Index"/> failed with
/// <see cref="Exception.InnerException"/> (callers rethrow that, or map it to their protocol's error for that input).</summary>
internal sealed class PoolingInputException(int index, Exception inner) : SharpInferException($"input {index}: {inner.Message}", inner)
{
    public int Index { get; } = index;
}
