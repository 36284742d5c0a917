using System.Runtime.CompilerServices;
using System.Threading.Channels;
using SharpInfer.Engine;

namespace SharpInfer.Server.Api;

/// <summary>
/// The engine requests behind one HTTP request (one per choice), started together and read as one stream of
/// (choice index, output). Adding is all-or-nothing: if the engine refuses one (validation, overload), the ones
/// already added are aborted before the exception propagates. Cancelling the HTTP request (client gone) or
/// disposing the set aborts every request still running, which frees its KV blocks.
/// </summary>
internal sealed class ChoiceSet : IAsyncDisposable
{
    private readonly CancellationTokenSource _cts;
    private readonly List<IAsyncEnumerable<RequestOutput>> _streams;
    private readonly List<Task> _pumps = [];
    private bool _started;

    private ChoiceSet(CancellationTokenSource cts, List<IAsyncEnumerable<RequestOutput>> streams)
    {
        _cts = cts;
        _streams = streams;
    }

    public int Count => _streams.Count;

    public static ChoiceSet Start(LlmEngine engine, IReadOnlyList<EngineRequest> requests, CancellationToken aborted)
    {
        var cts = CancellationTokenSource.CreateLinkedTokenSource(aborted);
        var streams = new List<IAsyncEnumerable<RequestOutput>>(requests.Count);
        try
        {
            foreach (var r in requests) streams.Add(engine.AddRequest(r, cts.Token));
        }
        catch
        {
            cts.Cancel();
            _ = Task.WhenAll(streams.Select(DrainAsync)).ContinueWith(_ => cts.Dispose(), TaskScheduler.Default);
            throw;
        }
        return new ChoiceSet(cts, streams);
    }

    /// <summary>Enumerating an engine stream whose token is cancelled aborts it at once and reads it to its end.</summary>
    private static async Task DrainAsync(IAsyncEnumerable<RequestOutput> stream)
    {
        try
        {
            await foreach (var _ in stream.ConfigureAwait(false)) { }
        }
        catch (Exception) { /* the request is gone either way */ }
    }

    /// <summary>Every output of every choice, in the order the engine produced them (each choice's in order).
    /// An engine failure is rethrown here.</summary>
    public async IAsyncEnumerable<(int Index, RequestOutput Output)> ReadAllAsync([EnumeratorCancellation] CancellationToken ct = default)
    {
        if (_started) throw new InvalidOperationException("the choices are already being read");
        _started = true;
        if (_streams.Count == 1)
        {
            await foreach (var o in _streams[0].WithCancellation(ct).ConfigureAwait(false)) yield return (0, o);
            yield break;
        }
        var merged = Channel.CreateUnbounded<(int Index, RequestOutput? Output, Exception? Error)>(
            new UnboundedChannelOptions { SingleReader = true, SingleWriter = false });
        int remaining = _streams.Count;
        for (int i = 0; i < _streams.Count; i++)
        {
            int index = i;
            var stream = _streams[i];
            _pumps.Add(Task.Run(async () =>
            {
                try
                {
                    await foreach (var o in stream.ConfigureAwait(false)) merged.Writer.TryWrite((index, o, null));
                }
                catch (Exception e)
                {
                    merged.Writer.TryWrite((index, null, e));
                }
                finally
                {
                    if (Interlocked.Decrement(ref remaining) == 0) merged.Writer.TryComplete();
                }
            }, CancellationToken.None));
        }
        try
        {
            await foreach (var item in merged.Reader.ReadAllAsync(ct).ConfigureAwait(false))
            {
                if (item.Error != null)
                {
                    if (item.Error is OperationCanceledException && _cts.IsCancellationRequested) continue;
                    throw item.Error;
                }
                yield return (item.Index, item.Output!);
            }
        }
        finally
        {
            // a reader that stops early (client gone, error) aborts what is still running
            if (merged.Reader.Completion.IsCompleted == false) _cts.Cancel();
        }
    }

    /// <summary>Aborts whatever is still running and waits until every engine request has ended.</summary>
    public async ValueTask DisposeAsync()
    {
        _cts.Cancel();
        if (!_started) _pumps.AddRange(_streams.Select(DrainAsync));
        try
        {
            await Task.WhenAll(_pumps).ConfigureAwait(false);
        }
        catch (Exception) { /* errors were reported to the reader */ }
        _cts.Dispose();
    }
}
