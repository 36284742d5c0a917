using Microsoft.Extensions.AI;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace SharpInfer.Extensions.AI;

/// <summary>What <see cref="SharpInferServiceCollectionExtensions.AddSharpInfer(IServiceCollection, IConfiguration)"/>
/// binds: the model file and the <see cref="LlmOptions"/> to run it with, e.g. the section
/// <c>{"ModelPath": "model.gguf", "ContextLength": 8192, "KvCacheType": "Q8_0"}</c>.</summary>
public sealed class SharpInferOptions : LlmOptions
{
    /// <summary>The GGUF file to load (required).</summary>
    public string ModelPath { get; set; } = "";
}

public static class SharpInferServiceCollectionExtensions
{
    /// <summary>Registers a singleton <see cref="Llm"/> (loaded on first use, disposed with the container), an
    /// <see cref="IChatClient"/> and an <see cref="IEmbeddingGenerator{String, Embedding}"/> of <c>float</c> over it;
    /// the returned builder adds chat middleware (<c>.UseFunctionInvocation()</c>, …).</summary>
    public static ChatClientBuilder AddSharpInfer(this IServiceCollection services, Action<SharpInferOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(configure);
        services.AddOptions<SharpInferOptions>().Configure(configure);
        return AddCore(services);
    }

    /// <summary><see cref="AddSharpInfer(IServiceCollection, Action{SharpInferOptions})"/> with the options bound from a
    /// configuration section.</summary>
    public static ChatClientBuilder AddSharpInfer(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        services.AddOptions<SharpInferOptions>().Bind(configuration);
        return AddCore(services);
    }

    private static ChatClientBuilder AddCore(IServiceCollection services)
    {
        services.TryAddSingleton(sp =>
        {
            var o = sp.GetRequiredService<IOptions<SharpInferOptions>>().Value;
            if (string.IsNullOrWhiteSpace(o.ModelPath))
                throw new OptionsValidationException(nameof(SharpInferOptions), typeof(SharpInferOptions), ["SharpInfer: ModelPath is required"]);
            return Llm.Load(o.ModelPath, o);
        });
        // the same model embeds: one Llm behind both services
        services.AddEmbeddingGenerator(sp => sp.GetRequiredService<Llm>().AsEmbeddingGenerator());
        return services.AddChatClient(sp => sp.GetRequiredService<Llm>().AsChatClient());
    }
}
