using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace SharpInfer.Server.Api;

/// <summary>llama-server's error shape, <c>{"error": {"code": 400, "message", "type"}}</c> (the code is the HTTP status
/// as a number), used for every error answered on llama-server's native routes (<c>/completion</c>, <c>/infill</c>,
/// <c>/apply-template</c>, <c>/props</c>, <c>/slots</c>, <c>/tools</c>, <c>/cors-proxy</c> and the un-prefixed <c>/completions</c>), including
/// authentication, unknown sub-routes and oversized bodies. <c>param</c> is added when a field is to blame.</summary>
internal static class LlamaServerErrors
{
    private static readonly string[] NativeRoots = ["/completion", "/completions", "/infill", "/apply-template", "/props", "/slots", "/tools", "/cors-proxy"];

    public static bool Applies(HttpContext ctx) => Applies(ctx.Request.Path);

    public static bool Applies(PathString path)
    {
        foreach (var root in NativeRoots)
            if (path.StartsWithSegments(root)) return true;
        return false;
    }

    /// <summary>llama-server's error type for an HTTP status (its error_type enum).</summary>
    public static string Type(ApiException e) => e.Status switch
    {
        400 when e.Code == "context_length_exceeded" => "exceed_context_size_error",
        401 => "authentication_error",
        403 when e.Type == FeatureDisabledType => e.Type,
        403 => "permission_error",
        404 => "not_found_error",
        501 => "not_supported_error",
        503 => "unavailable_error",
        >= 500 => "server_error",
        _ => e.Type,
    };

    public static void WriteErrorObject(Utf8JsonWriter w, ApiException e)
    {
        w.WriteStartObject();
        w.WriteStartObject("error");
        w.WriteNumber("code", e.Status);
        w.WriteString("message", e.Message);
        w.WriteString("type", Type(e));
        if (e.Param != null) w.WriteString("param", e.Param);
        w.WriteEndObject();
        w.WriteEndObject();
    }

    /// <summary>llama-server's answer on a route whose feature is off (<c>/tools</c> without <c>--tools</c>,
    /// <c>/cors-proxy</c> without <c>--ui-mcp-proxy</c>).</summary>
    public const string FeatureDisabledType = "feature_disabled";

    public static ApiException FeatureDisabled() => new(StatusCodes.Status403Forbidden, "this feature is disabled", FeatureDisabledType, null, FeatureDisabledType);

    public static ApiException NotSupported(string message) =>
        new(StatusCodes.Status501NotImplemented, message, "not_supported_error", null, "not_supported");
}
