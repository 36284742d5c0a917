using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace SharpInfer.Server.Api;

/// <summary>Anthropic's error shape, <c>{"type": "error", "error": {"type", "message"}}</c>, used for every error
/// answered under <c>/v1/messages</c> (including authentication, unknown routes and oversized bodies).</summary>
internal static class AnthropicErrors
{
    public static bool Applies(HttpContext ctx) => ctx.Request.Path.StartsWithSegments("/v1/messages");

    /// <summary>Anthropic's error type for an HTTP status.</summary>
    public static string Type(int status) => status switch
    {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 or 529 => "overloaded_error",
        >= 500 => "api_error",
        _ => "invalid_request_error",
    };

    public static void WriteErrorObject(Utf8JsonWriter w, ApiException e)
    {
        w.WriteStartObject();
        w.WriteString("type", "error");
        w.WriteStartObject("error");
        w.WriteString("type", Type(e.Status));
        w.WriteString("message", e.Message);
        w.WriteEndObject();
        w.WriteEndObject();
    }
}
