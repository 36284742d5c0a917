using System.Diagnostics;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using SharpInfer.Engine;
using SharpInfer.Tokenization;

namespace SharpInfer.Server.Api;

/// <summary>
/// llama-server's native <c>POST /completion</c> (also <c>/completions</c>) and <c>POST /infill</c>, on the same engine
/// path as the OpenAI routes: the prompts become one engine request each (<see cref="ChoiceSet"/>), and the result is
/// written in llama-server's shape: one object (a list of them for several prompts), or, streaming, SSE
/// <c>data:</c> lines of partial results ending with the final one (no <c>[DONE]</c>, as llama-server).
/// </summary>
internal static class LlamaCompletionEndpoints
{
    public static async Task CompletionAsync(HttpContext ctx, ModelHost host, ILogger log)
    {
        var engine = host.RequireEngine();
        var body = await GenerationEndpoints.ReadBodyAsync(ctx, host, engine).ConfigureAwait(false);
        body.String("model");   // llama-server serves one model and ignores the name
        PromptLimits.CheckCompletionPrompt(body, engine.Model.Tokenizer, engine.MaxModelLen);
        var prompts = LlamaPrompts.Read(body["prompt"], host);
        var request = LlamaCompletionRequest.Parse(body, host, prompts);
        await RunAsync(ctx, host, log, request).ConfigureAwait(false);
    }

    /// <summary>Fill-in-the-middle for models with FIM tokens: [extra context] [BOS] FIM_PRE prefix prompt FIM_SUF
    /// suffix FIM_MID, as llama-server lays it out (prefix-suffix-middle order).</summary>
    public static async Task InfillAsync(HttpContext ctx, ModelHost host, ILogger log)
    {
        var engine = host.RequireEngine();
        var vocab = engine.Model.Tokenizer.Vocabulary;
        if (vocab.FimPrefixId == Vocabulary.None || vocab.FimSuffixId == Vocabulary.None || vocab.FimMiddleId == Vocabulary.None)
            throw LlamaServerErrors.NotSupported("Infill is not supported by this model: its vocabulary has no FIM prefix, suffix and middle tokens.");
        var body = await GenerationEndpoints.ReadBodyAsync(ctx, host, engine).ConfigureAwait(false);
        body.String("model");
        var tokenizer = engine.Model.Tokenizer;
        var prefix = body.String("input_prefix") ?? "";
        var suffix = body.String("input_suffix") ?? "";
        var prompt = body["prompt"] is null ? [] : LlamaPrompts.Read(body["prompt"], host) is { Count: 1 } p ? p[0]
            : throw ApiException.BadRequest("'prompt' of /infill must be one prompt.", "prompt");
        var tokens = new List<int>();
        if (body.Array("input_extra") is { } extra)
        {
            if (vocab.FimRepoId != Vocabulary.None)
            {
                tokens.Add(vocab.FimRepoId);
                tokens.AddRange(tokenizer.Encode("myproject\n", addSpecial: false, parseSpecial: false));
            }
            for (int i = 0; i < extra.Count; i++)
            {
                if (extra[i] is not System.Text.Json.Nodes.JsonObject chunk)
                    throw ApiException.BadRequest($"'input_extra[{i}]' must be an object {{\"text\", \"filename\"}}.", $"input_extra[{i}]");
                var cb = new JsonBody(chunk);
                var text = cb.String("text") ?? "";
                var file = cb.String("filename") ?? "tmp";
                if (vocab.FimSeparatorId != Vocabulary.None)
                {
                    tokens.Add(vocab.FimSeparatorId);
                    tokens.AddRange(tokenizer.Encode(file + "\n", addSpecial: false, parseSpecial: false));
                }
                else tokens.AddRange(tokenizer.Encode("\n\n--- snippet ---\n\n", addSpecial: false, parseSpecial: false));
                tokens.AddRange(tokenizer.Encode(text, addSpecial: false, parseSpecial: false));
            }
            if (vocab.FimSeparatorId != Vocabulary.None)
            {
                tokens.Add(vocab.FimSeparatorId);
                tokens.AddRange(tokenizer.Encode("filename\n", addSpecial: false, parseSpecial: false));
            }
        }
        if (vocab.AddBos && vocab.BosId != Vocabulary.None) tokens.Add(vocab.BosId);
        tokens.Add(vocab.FimPrefixId);
        tokens.AddRange(tokenizer.Encode(prefix, addSpecial: false, parseSpecial: false));
        tokens.AddRange(prompt);
        tokens.Add(vocab.FimSuffixId);
        tokens.AddRange(tokenizer.Encode(suffix, addSpecial: false, parseSpecial: false));
        tokens.Add(vocab.FimMiddleId);
        if (tokens.Count >= engine.MaxModelLen) throw PromptLimits.TooLong(engine.MaxModelLen, $"{tokens.Count} tokens", "input_prefix");
        var request = LlamaCompletionRequest.Parse(body, host, [[.. tokens]]);
        await RunAsync(ctx, host, log, request).ConfigureAwait(false);
    }

    /// <summary>What one prompt's run produced so far.</summary>
    private sealed class PromptState
    {
        public readonly ChoiceState Choice = new();
        public readonly List<int> Tokens = [];
        /// <summary>The final output carried a token: generation stopped on a stop string, not on an end-of-generation token.</summary>
        public bool EndedOnToken;
        /// <summary>The engine shifted the context (dropped tokens) to go on.</summary>
        public bool ContextShifted;
        public long FirstOutputAt;
    }

    private static async Task RunAsync(HttpContext ctx, ModelHost host, ILogger log, LlamaCompletionRequest r)
    {
        var engine = host.Engine!;
        var tokenizer = engine.Model.Tokenizer;
        var aborted = ctx.RequestAborted;
        long start = Stopwatch.GetTimestamp();
        string id = "cmpl-" + Guid.NewGuid().ToString("N");
        var requests = new List<EngineRequest>();
        for (int i = 0; i < r.Prompts.Count; i++)
        {
            int room = Math.Max(1, engine.MaxModelLen - r.Prompts[i].Length);
            // with --context-shift an explicit n_predict may run past the context (-1 still stops at its end)
            bool shift = host.Options.ContextShift && r.NPredict > room;
            int maxTokens = r.NPredict < 0 ? room : shift ? r.NPredict : Math.Min(Math.Max(1, r.NPredict), room);
            // llama-server keeps n_keep prompt tokens (-1: all of them), and BOS
            int keep = (r.NKeep < 0 ? r.Prompts[i].Length : r.NKeep) + (engine.Model.Tokenizer.Vocabulary.AddBos ? 1 : 0);
            foreach (var request in r.Params.EngineRequests(r.Prompts[i], engine.MaxModelLen, maxTokens, id, EngineTelemetry.TextCompletion, i))
                requests.Add(shift ? request with { ContextShiftKeep = keep } : request);
        }
        var states = new PromptState[requests.Count];
        for (int i = 0; i < states.Length; i++) states[i] = new PromptState();

        // n_predict 0: nothing is generated (llama-server then only evaluates the prompt); no engine request runs
        if (r.NPredict == 0)
        {
            foreach (var s in states) s.Choice.Finish = FinishReason.Length;
            if (r.Params.Stream)
            {
                var sse0 = new SseWriter(ctx);
                await ctx.Response.StartAsync(aborted).ConfigureAwait(false);
                for (int i = 0; i < states.Length; i++)
                {
                    int index = i;
                    await sse0.WriteAsync(w => WriteFinal(w, host, r, index, states[index], stream: true), aborted).ConfigureAwait(false);
                }
                return;
            }
            await WriteResultsAsync(ctx, host, r, states).ConfigureAwait(false);
            return;
        }

        ChoiceSet set;
        try
        {
            set = ChoiceSet.Start(engine, requests, aborted);
        }
        catch (Exception e) when (e is not ApiException)
        {
            throw ApiErrors.Map(e, "prompt");
        }
        await using var _ = set.ConfigureAwait(false);

        if (!r.Params.Stream)
        {
            try
            {
                await foreach (var (i, o) in set.ReadAllAsync(aborted).ConfigureAwait(false)) Accumulate(states[i], o);
            }
            catch (OperationCanceledException) when (aborted.IsCancellationRequested)
            {
                return;
            }
            if (states.FirstOrDefault(s => s.Choice.Finish == FinishReason.Abort) is { } failed)
                throw GenerationEndpoints.AbortError(host, failed.Choice);
            await WriteResultsAsync(ctx, host, r, states).ConfigureAwait(false);
            return;
        }

        var sse = new SseWriter(ctx);
        try
        {
            await ctx.Response.StartAsync(aborted).ConfigureAwait(false);
            await foreach (var (i, o) in set.ReadAllAsync(aborted).ConfigureAwait(false))
            {
                var s = states[i];
                int index = i;
                if (o.Progress is { } progress)
                {
                    // return_progress: the engine reports the prompt when it is first scheduled and after each chunk
                    await sse.WriteAsync(w => WritePartial(w, tokenizer, r, index, s, "", [], null, progress, start), aborted).ConfigureAwait(false);
                    continue;
                }
                Accumulate(s, o);
                if (o.Text.Length > 0 || o.TokenIds.Length > 0)
                    await sse.WriteAsync(w => WritePartial(w, tokenizer, r, index, s, o.Text, o.TokenIds, o.LogProbs, null, start), aborted).ConfigureAwait(false);
                if (o.IsFinal)
                {
                    if (o.Finish == FinishReason.Abort) throw GenerationEndpoints.AbortError(host, s.Choice);
                    await sse.WriteAsync(w => WriteFinal(w, host, r, index, s, stream: true), aborted).ConfigureAwait(false);
                }
            }
        }
        catch (Exception e) when (aborted.IsCancellationRequested && e is OperationCanceledException or IOException)
        {
            // the client disconnected: disposing the set aborts its requests
        }
        catch (Exception e) when (!aborted.IsCancellationRequested)
        {
            var error = ApiErrors.Map(e, "prompt");
            if (error.Status >= 500) log.LogError(e, "streaming request {Id} failed", id);
            try
            {
                await sse.WriteAsync(w =>
                {
                    w.WriteStartObject();
                    w.WritePropertyName("error");
                    w.WriteStartObject();
                    w.WriteNumber("code", error.Status);
                    w.WriteString("message", error.Message);
                    w.WriteString("type", LlamaServerErrors.Type(error));
                    w.WriteEndObject();
                    w.WriteEndObject();
                }, aborted).ConfigureAwait(false);
            }
            catch (Exception) { /* nothing more can be sent */ }
        }
    }

    private static void Accumulate(PromptState s, RequestOutput o)
    {
        if (s.FirstOutputAt == 0) s.FirstOutputAt = Stopwatch.GetTimestamp();
        GenerationEndpoints.Accumulate(s.Choice, o);
        s.Tokens.AddRange(o.TokenIds);
        if (o.IsFinal)
        {
            s.EndedOnToken = o.TokenIds.Length > 0;
            s.ContextShifted = o.ContextShifted;
        }
    }

    private static Task WriteResultsAsync(HttpContext ctx, ModelHost host, LlamaCompletionRequest r, PromptState[] states) =>
        JsonResponse.WriteAsync(ctx, w =>
        {
            if (states.Length == 1)
            {
                WriteFinal(w, host, r, 0, states[0], stream: false);
                return;
            }
            w.WriteStartArray();
            for (int i = 0; i < states.Length; i++) WriteFinal(w, host, r, i, states[i], stream: false);
            w.WriteEndArray();
        });

    /// <summary>One streamed partial result: the new text and token(s), their probabilities, and with
    /// <c>timings_per_token</c> the timings so far (measured from the request's arrival).</summary>
    private static void WritePartial(Utf8JsonWriter w, Tokenizer tokenizer, LlamaCompletionRequest r, int index, PromptState s, string text, int[] tokens,
                                     IReadOnlyList<TokenLogProbs>? logprobs, PromptProgress? progress, long start)
    {
        w.WriteStartObject();
        w.WriteNumber("index", index);
        w.WriteString("content", text);
        w.WriteStartArray("tokens");
        foreach (var t in tokens) w.WriteNumberValue(t);
        w.WriteEndArray();
        w.WriteBoolean("stop", false);
        w.WriteNumber("id_slot", r.IdSlot);
        w.WriteNumber("tokens_predicted", progress is null ? s.Choice.CompletionTokens : 0);
        w.WriteNumber("tokens_evaluated", r.Prompts[index].Length);
        if (r.TimingsPerToken && progress is null)
        {
            double promptMs = Stopwatch.GetElapsedTime(start, s.FirstOutputAt).TotalMilliseconds;
            double predictedMs = Stopwatch.GetElapsedTime(s.FirstOutputAt).TotalMilliseconds;
            LlamaCompletionJson.WriteTimings(w, s.Choice.CachedTokens, r.Prompts[index].Length - s.Choice.CachedTokens, promptMs,
                                             s.Choice.CompletionTokens, predictedMs);
        }
        if (progress is { } p) GenerationEndpoints.WriteProgress(w, p);
        if (logprobs is { Count: > 0 } && r.NProbs > 0)
            LlamaCompletionJson.WriteProbabilities(w, tokenizer, logprobs, r.NProbs, r.PostSamplingProbs);
        w.WriteEndObject();
    }

    /// <summary>The final result of one prompt (in a stream its content and tokens were already sent, so they are empty).</summary>
    private static void WriteFinal(Utf8JsonWriter w, ModelHost host, LlamaCompletionRequest r, int index, PromptState s, bool stream)
    {
        if (r.ResponseFields is { } fields)
        {
            LlamaCompletionJson.WritePicked(w, inner => WriteFinalObject(inner, host, r, index, s, stream), fields);
            return;
        }
        WriteFinalObject(w, host, r, index, s, stream);
    }

    private static void WriteFinalObject(Utf8JsonWriter w, ModelHost host, LlamaCompletionRequest r, int index, PromptState s, bool stream)
    {
        var tokenizer = host.Engine!.Model.Tokenizer;
        var c = s.Choice;
        string content = c.Text.ToString();
        var (stopType, stoppingWord) = StopType(r, s, content, tokenizer);
        int prompt = r.Prompts[index].Length;
        w.WriteStartObject();
        w.WriteNumber("index", index);
        w.WriteString("content", stream ? "" : content);
        w.WriteStartArray("tokens");
        if (!stream && r.ReturnTokens)
            foreach (var token in s.Tokens) w.WriteNumberValue(token);
        w.WriteEndArray();
        w.WriteNumber("id_slot", r.IdSlot);
        w.WriteBoolean("stop", true);
        w.WriteString("model", host.ModelId);
        w.WriteNumber("tokens_predicted", c.CompletionTokens);
        w.WriteNumber("tokens_evaluated", prompt);
        LlamaCompletionJson.WriteGenerationSettings(w, r);
        w.WriteString("prompt", tokenizer.Decode(r.Prompts[index], renderSpecial: true));
        w.WriteBoolean("has_new_line", content.Contains('\n'));
        // llama-server's truncated: the context filled up before the answer ended, or was shifted to go on (prompts are
        // never truncated here)
        w.WriteBoolean("truncated", s.ContextShifted || (c.Finish == FinishReason.Length && prompt + c.CompletionTokens >= host.Engine!.MaxModelLen));
        w.WriteString("stop_type", stopType);
        w.WriteString("stopping_word", stoppingWord);
        w.WriteNumber("tokens_cached", prompt + c.CompletionTokens);
        var t = c.Timings;
        LlamaCompletionJson.WriteTimings(w, c.CachedTokens, prompt - c.CachedTokens, (t?.PrefillTime ?? 0) * 1000, c.CompletionTokens,
                                         (t?.DecodeTime ?? 0) * 1000, t?.DraftTokens ?? 0, t?.DraftAccepted ?? 0);
        if (!stream && r.NProbs > 0)
            LlamaCompletionJson.WriteProbabilities(w, tokenizer, c.LogProbs, r.NProbs, r.PostSamplingProbs);
        w.WriteEndObject();
    }

    /// <summary>llama-server's <c>stop_type</c>: "limit" (n_predict or the context), "word" (a stop string; the one
    /// found right after the returned text is the <c>stopping_word</c>), "eos" (an end-of-generation token).</summary>
    private static (string Type, string Word) StopType(LlamaCompletionRequest r, PromptState s, string content, Tokenizer tokenizer)
    {
        switch (s.Choice.Finish)
        {
            case FinishReason.Length: return ("limit", "");
            case FinishReason.Stop when s.EndedOnToken && r.Params.Sampling.Stop.Count > 0:
                var all = tokenizer.Decode(s.Tokens.ToArray());
                int at = all.StartsWith(content, StringComparison.Ordinal) ? content.Length : 0;
                string word = r.Params.Sampling.Stop
                    .Select(x => (x, i: all.IndexOf(x, at, StringComparison.Ordinal)))
                    .Where(p => p.i >= 0).OrderBy(p => p.i).Select(p => p.x).FirstOrDefault() ?? r.Params.Sampling.Stop[0];
                return ("word", word);
            case FinishReason.Stop: return ("eos", "");
            default: return ("none", "");
        }
    }
}
