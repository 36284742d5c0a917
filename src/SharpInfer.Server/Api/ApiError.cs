using System.Text.Json;
using Microsoft.AspNetCore.Http;
using SharpInfer.Engine;
using SharpInfer.Tokenization.Jinja;

namespace SharpInfer.Server.Api;

/// <summary>An error answered in OpenAI's shape, <c>{"error": {"message", "type", "param", "code"}}</c>, with its
/// HTTP status. Thrown anywhere in a handler; the error middleware writes it.</summary>
internal sealed class ApiException(int status, string message, string type = ApiErrorTypes.InvalidRequest, string? param = null, string? code = null)
    : Exception(message)
{
    public int Status { get; } = status;
    public string Type { get; } = type;
    public string? Param { get; } = param;
    public string? Code { get; } = code;
    /// <summary>Seconds for a <c>Retry-After</c> header (429, 503), or null.</summary>
    public int? RetryAfterSeconds { get; init; }

    /// <summary>For a context-length error: the prompt's tokens (null when it was refused before tokenizing it all)
    /// and the context a sequence may use, written as llama-server's <c>n_prompt_tokens</c> and <c>n_ctx</c>.</summary>
    public (int? PromptTokens, int ContextSize)? ContextExceeded { get; init; }

    public static ApiException BadRequest(string message, string? param = null, string? code = null) =>
        new(StatusCodes.Status400BadRequest, message, ApiErrorTypes.InvalidRequest, param, code);

    /// <summary>400 for a prompt (or prompt + max_tokens) longer than the context: OpenAI's code
    /// <c>context_length_exceeded</c> with llama-server's type and token counts, so clients of either recognise it.</summary>
    public static ApiException ContextLength(string message, string? param, int? promptTokens, int contextSize) =>
        new(StatusCodes.Status400BadRequest, message, ApiErrorTypes.ExceedContextSize, param, "context_length_exceeded")
        { ContextExceeded = (promptTokens, contextSize) };
}

/// <summary>The <c>type</c> values used in error objects (OpenAI's where it has one).</summary>
internal static class ApiErrorTypes
{
    public const string InvalidRequest = "invalid_request_error";
    /// <summary>llama-server's type for a prompt longer than the context (OpenAI sends invalid_request_error with
    /// code context_length_exceeded; the code is kept).</summary>
    public const string ExceedContextSize = "exceed_context_size_error";
    public const string Authentication = "authentication_error";
    public const string NotFound = "not_found_error";
    public const string RateLimit = "rate_limit_error";
    public const string Unavailable = "unavailable_error";
    public const string Server = "server_error";
}

/// <summary>Maps exceptions to <see cref="ApiException"/> and writes error bodies.</summary>
internal static class ApiErrors
{
    /// <summary>The OpenAI error for an exception thrown while handling a request. <paramref name="promptParam"/>
    /// names the request field that holds the prompt ("messages" or "prompt").</summary>
    public static ApiException Map(Exception e, string promptParam = "prompt") => e switch
    {
        ApiException a => a,
        ContextLengthExceededException c => ApiException.ContextLength(
            $"This model's maximum context length is {c.ContextLength} tokens. However, your prompt has {c.PromptTokens} tokens. " +
            "Please reduce the length of the prompt.", promptParam, c.PromptTokens, c.ContextLength),
        InvalidRequestException i => ApiException.BadRequest(i.Message, i.Field == "prompt" ? promptParam : i.Field),
        EngineOverloadedException o => new ApiException(StatusCodes.Status429TooManyRequests,
            $"The server is overloaded: {o.Queued} requests are already waiting. Please retry shortly.", ApiErrorTypes.RateLimit, null, "server_overloaded")
        { RetryAfterSeconds = 1 },
        EngineStoppedException => ShuttingDown(),
        TemplateException t => ApiException.BadRequest("The chat template failed: " + t.Message, "messages"),
        BadHttpRequestException b => new ApiException(b.StatusCode,
            b.StatusCode == StatusCodes.Status413PayloadTooLarge ? "The request body is too large." : b.Message,
            ApiErrorTypes.InvalidRequest, null, b.StatusCode == StatusCodes.Status413PayloadTooLarge ? "request_too_large" : null),
        SharpInferException s => new ApiException(StatusCodes.Status500InternalServerError, s.Message, ApiErrorTypes.Server),
        _ => new ApiException(StatusCodes.Status500InternalServerError, "Internal server error: " + e.Message, ApiErrorTypes.Server),
    };

    public static ApiException ShuttingDown() =>
        new(StatusCodes.Status503ServiceUnavailable, "The server is shutting down.", ApiErrorTypes.Unavailable, null, "shutting_down");

    public static ApiException Loading() =>
        new(StatusCodes.Status503ServiceUnavailable, "Loading model", ApiErrorTypes.Unavailable, null, "model_loading") { RetryAfterSeconds = 1 };

    public static void WriteErrorObject(Utf8JsonWriter w, ApiException e)
    {
        w.WriteStartObject();
        w.WriteStartObject("error");
        w.WriteString("message", e.Message);
        w.WriteString("type", e.Type);
        if (e.Param is null) w.WriteNull("param"); else w.WriteString("param", e.Param);
        if (e.Code is null) w.WriteNull("code"); else w.WriteString("code", e.Code);
        if (e.ContextExceeded is { } ctx)
        {
            if (ctx.PromptTokens is { } n) w.WriteNumber("n_prompt_tokens", n);
            w.WriteNumber("n_ctx", ctx.ContextSize);
        }
        w.WriteEndObject();
        w.WriteEndObject();
    }

    /// <summary>Writes the status, headers and error body (the response must not have started); Anthropic's shape under
    /// <c>/v1/messages</c>, Ollama's under <c>/api</c>, llama-server's on its native routes.</summary>
    public static async Task WriteAsync(HttpContext context, ApiException e)
    {
        var response = context.Response;
        response.StatusCode = e.Status;
        response.ContentType = "application/json";
        if (e.RetryAfterSeconds is { } s) response.Headers.RetryAfter = s.ToString(System.Globalization.CultureInfo.InvariantCulture);
        using (var w = new Utf8JsonWriter(response.BodyWriter, ResponseJson.WriterOptions))
        {
            if (AnthropicErrors.Applies(context)) AnthropicErrors.WriteErrorObject(w, e);
            else if (OllamaErrors.Applies(context)) OllamaErrors.WriteErrorObject(w, e);
            else if (LlamaServerErrors.Applies(context)) LlamaServerErrors.WriteErrorObject(w, e);
            else WriteErrorObject(w, e);
        }
        await response.BodyWriter.FlushAsync(context.RequestAborted).ConfigureAwait(false);
    }
}
