using System.Text.Json.Nodes;
using SharpInfer.Engine;
using SharpInfer.Engine.Pooling;
using SharpInfer.KvCache;
using SharpInfer.Runtime;
using SharpInfer.Sampling;

namespace SharpInfer;

/// <summary>How <see cref="Llm"/> runs a model: the few engine settings an application usually chooses, mapped onto
/// <see cref="EngineOptions"/>. Plain settable properties, so they bind from configuration (appsettings, environment).</summary>
public class LlmOptions
{
    /// <summary>Compute threads; null: one per core, at most 8.</summary>
    public int? Threads { get; set; }
    /// <summary>Longest sequence (prompt + reply) one call may reach, in tokens; capped by the model's trained context.</summary>
    public int ContextLength { get; set; } = 4096;
    /// <summary>Calls generated at once (more wait in a queue): concurrent callers share each forward pass.</summary>
    public int ParallelSequences { get; set; } = 4;
    /// <summary>How the KV cache stores keys and values (F16, Q8_0, Q4_0, F32).</summary>
    public KvDataType KvCacheType { get; set; } = KvDataType.F16;
    /// <summary>KV cache size in bytes; null: enough for <see cref="ParallelSequences"/> × <see cref="ContextLength"/>
    /// tokens, at most a quarter of available memory.</summary>
    public long? KvCacheBytes { get; set; }
    /// <summary>Reuse the KV cache of prompt prefixes seen before (a chat's history, a shared system prompt).</summary>
    public bool PrefixCaching { get; set; } = true;
    /// <summary>The name responses report (<see cref="Llm.ModelId"/>); null: the file name without extension.</summary>
    public string? ModelId { get; set; }
    /// <summary>A Jinja chat template used instead of the model's own.</summary>
    public string? ChatTemplate { get; set; }
    /// <summary>How <see cref="Llm.EmbedAsync"/> pools a text's token states into one vector (Mean, Cls, Last); null:
    /// the model's <c>pooling_type</c>, else mean.</summary>
    public PoolingType? Pooling { get; set; }

    /// <summary>The engine options these settings stand for.</summary>
    internal EngineOptions ToEngineOptions() => new()
    {
        Threads = Threads ?? ComputePool.DefaultThreads,
        MaxModelLen = ContextLength,
        MaxNumSeqs = ParallelSequences,
        MaxNumBatchedTokens = Math.Max(512, ParallelSequences),
        KvType = KvCacheType,
        KvCacheMemoryBytes = KvCacheBytes,
        EnablePrefixCaching = PrefixCaching,
        Pooling = Pooling,
    };
}

/// <summary>Sampling and output constraints of one call. The defaults are the engine's (temperature 1, no top-k/top-p
/// truncation, 256 tokens); <see cref="Temperature"/> 0 is greedy.</summary>
public record GenerationOptions
{
    public int MaxTokens { get; init; } = 256;
    public float Temperature { get; init; } = 1.0f;
    public float TopP { get; init; } = 1.0f;
    /// <summary>0: off.</summary>
    public int TopK { get; init; }
    public float MinP { get; init; }
    public float RepetitionPenalty { get; init; } = 1.0f;
    public float PresencePenalty { get; init; }
    public float FrequencyPenalty { get; init; }
    /// <summary>Makes sampling reproducible; null: a random seed.</summary>
    public ulong? Seed { get; init; }
    /// <summary>Generation ends before any of these strings (which are not returned).</summary>
    public IReadOnlyList<string>? Stop { get; init; }
    /// <summary>The reply is a JSON object (any, unless <see cref="JsonSchema"/> narrows it).</summary>
    public bool Json { get; init; }
    /// <summary>The reply is JSON matching this schema (implies <see cref="Json"/>).</summary>
    public JsonNode? JsonSchema { get; init; }
    /// <summary>The reply matches this GBNF grammar (llama.cpp's format); not together with JSON.</summary>
    public string? Grammar { get; init; }
    /// <summary>Generate exactly <see cref="MaxTokens"/> tokens, past end-of-sequence: for <c>sharpinfer bench
    /// --via-facade</c> (tg128 through the facade), not part of the public API.</summary>
    internal bool IgnoreEos { get; init; }

    /// <summary>The GBNF grammar the constraints ask for, or null.</summary>
    internal string? ConstraintGrammar()
    {
        if (Grammar != null && (Json || JsonSchema != null))
            throw new InvalidRequestException("give either a grammar or a JSON constraint, not both", "grammar");
        if (Grammar != null) return Grammar;
        if (JsonSchema != null) return Sampling.Grammar.JsonSchemaToGbnf.Convert(JsonSchema);
        return Json ? Sampling.Grammar.JsonSchemaToGbnf.AnyObject() : null;
    }

    internal SamplingParams ToSampling() => new()
    {
        MaxTokens = MaxTokens,
        Temperature = Temperature,
        TopP = TopP,
        TopK = TopK,
        MinP = MinP,
        RepetitionPenalty = RepetitionPenalty,
        PresencePenalty = PresencePenalty,
        FrequencyPenalty = FrequencyPenalty,
        Seed = Seed,
        Stop = Stop ?? [],
        IgnoreEos = IgnoreEos,
    };
}

/// <summary>A chat call's options: sampling, plus tools and reasoning.</summary>
public record LlmChatOptions : GenerationOptions
{
    /// <summary>Functions the model may call; they are shown to the chat template in its own tool format.</summary>
    public IReadOnlyList<LlmTool>? Tools { get; init; }
    /// <summary>Whether the model may, must or must not call tools (calls that must be made are grammar-constrained).</summary>
    public LlmToolChoice ToolChoice { get; init; } = LlmToolChoice.Auto;
    /// <summary>Several calls in one reply.</summary>
    public bool ParallelToolCalls { get; init; }
    /// <summary>Reasoning (<c>&lt;think&gt;…&lt;/think&gt;</c>) goes to <see cref="LlmChatResponse.Reasoning"/>; false keeps it in the text.</summary>
    public bool SeparateReasoning { get; init; } = true;
    /// <summary>Extra chat-template variables (e.g. <c>enable_thinking</c>).</summary>
    public IReadOnlyDictionary<string, JsonNode?>? TemplateVariables { get; init; }
}
