using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace SharpInfer.Server.Api;

/// <summary>Ollama's error shape, <c>{"error": "message"}</c>, used for every error answered under <c>/api</c>
/// (including authentication, unknown routes and oversized bodies), with the same HTTP status as elsewhere.</summary>
internal static class OllamaErrors
{
    public static bool Applies(HttpContext ctx) => ctx.Request.Path.StartsWithSegments("/api");

    public static void WriteErrorObject(Utf8JsonWriter w, ApiException e)
    {
        w.WriteStartObject();
        w.WriteString("error", e.Message);
        w.WriteEndObject();
    }

    /// <summary>A model name this server does not serve: 404, worded as Ollama words it.</summary>
    public static ApiException ModelNotFound(string name) =>
        new(StatusCodes.Status404NotFound, $"model '{name}' not found", ApiErrorTypes.NotFound, "model", "model_not_found");
}
