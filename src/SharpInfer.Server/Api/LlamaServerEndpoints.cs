using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;
using SharpInfer.Engine;

namespace SharpInfer.Server.Api;

/// <summary>
/// llama-server's native API beside the OpenAI one: <c>/completion</c>, <c>/completions</c> (native, as llama-server),
/// <c>/infill</c>, <c>/apply-template</c>, <c>/props</c>, <c>/slots</c>, and the OpenAI routes without <c>/v1</c>
/// (<c>/chat/completions</c>, <c>/models</c>, <c>/responses</c>, <c>/v1/health</c>). Every generation goes through the
/// same handlers and engine as the OpenAI routes.
/// </summary>
internal static class LlamaServerEndpoints
{
    public static void Map(RouteGroupBuilder app, ModelHost host, ILogger<ModelHost> log)
    {
        app.MapPost("/completion", ctx => LlamaCompletionEndpoints.CompletionAsync(ctx, host, log));
        app.MapPost("/completions", ctx => LlamaCompletionEndpoints.CompletionAsync(ctx, host, log));
        app.MapPost("/infill", ctx => LlamaCompletionEndpoints.InfillAsync(ctx, host, log));
        app.MapPost("/apply-template", ctx => ApplyTemplateAsync(ctx, host));
        app.MapGet("/props", ctx => PropsAsync(ctx, host));
        host.RenderSleepingProps = () =>
        {
            var buffer = new System.Buffers.ArrayBufferWriter<byte>();
            using (var w = new System.Text.Json.Utf8JsonWriter(buffer, ResponseJson.WriterOptions)) WriteProps(w, host, host.Engine!, sleeping: true);
            return buffer.WrittenSpan.ToArray();
        };
        app.MapPost("/props", _ => throw LlamaServerErrors.NotSupported("This server does not support changing global properties."));
        app.MapGet("/slots", ctx => SlotsAsync(ctx, host));
        app.MapPost("/slots/{id}", ctx => SlotActionAsync(ctx, host, (string)ctx.Request.RouteValues["id"]!));

        // the OpenAI routes without the /v1 prefix, as llama-server serves them
        app.MapGet("/v1/health", ctx => InfoEndpoints.HealthAsync(ctx, host));
        app.MapGet("/models", ctx => InfoEndpoints.ModelsAsync(ctx, host));
        app.MapPost("/chat/completions", ctx => GenerationEndpoints.ChatAsync(ctx, host, log));
    }

    /// <summary><c>{"messages", "tools"?, "add_generation_prompt"?, "chat_template_kwargs"?}</c> → <c>{"prompt"}</c>: the
    /// conversation rendered by the chat template the chat route uses, not tokenized.</summary>
    private static async Task ApplyTemplateAsync(HttpContext ctx, ModelHost host)
    {
        var engine = host.RequireEngine();
        var body = await GenerationEndpoints.ReadBodyAsync(ctx, host, engine).ConfigureAwait(false);
        var messages = GenerationEndpoints.ReadMessages(body);
        bool addGenerationPrompt = body.Bool("add_generation_prompt") ?? true;
        (messages, string? continuation) = ChatPrefill.Split(messages, body, ref addGenerationPrompt);
        string text;
        try
        {
            var variables = host.Prompts!.RequestVariables(body.Object("chat_template_kwargs"), body.String("reasoning_effort"));
            text = host.Prompts!.Render(messages, body.Array("tools"), addGenerationPrompt, variables) + continuation;
        }
        catch (Exception e) when (e is not ApiException)
        {
            throw ApiErrors.Map(e, "messages");
        }
        await JsonResponse.WriteAsync(ctx, w =>
        {
            w.WriteStartObject();
            w.WriteString("prompt", text);
            w.WriteEndObject();
        }).ConfigureAwait(false);
    }

    /// <summary><c>GET /props</c>; asleep, the answer rendered when the server went to sleep (without waking it).</summary>
    private static async Task PropsAsync(HttpContext ctx, ModelHost host)
    {
        if (host.IsSleeping && host.SleepingProps is { } asleep)
        {
            ctx.Response.ContentType = "application/json";
            await ctx.Response.Body.WriteAsync(asleep, ctx.RequestAborted).ConfigureAwait(false);
            return;
        }
        var engine = host.RequireEngine();
        await JsonResponse.WriteAsync(ctx, w => WriteProps(w, host, engine, sleeping: false)).ConfigureAwait(false);
    }

    private static void WriteProps(System.Text.Json.Utf8JsonWriter w, ModelHost host, LlmEngine engine, bool sleeping)
    {
        var defaults = DefaultSettings(host);
        var formatter = host.Prompts!.Formatter;
        {
            w.WriteStartObject();
            w.WriteStartObject("default_generation_settings");
            LlamaCompletionJson.WriteGenerationSettings(w, defaults, "params");
            w.WriteNumber("n_ctx", engine.MaxModelLen);
            w.WriteEndObject();
            w.WriteNumber("total_slots", engine.Options.MaxNumSeqs);
            w.WriteString("model_alias", host.ModelId);
            w.WriteString("model_path", engine.Model.Path);
            w.WriteStartObject("modalities");
            w.WriteBoolean("vision", false);
            w.WriteBoolean("video", false);
            w.WriteBoolean("audio", false);
            w.WriteEndObject();
            w.WriteBoolean("endpoint_slots", host.Options.SlotsEndpoint);
            w.WriteBoolean("endpoint_props", false);
            w.WriteBoolean("endpoint_metrics", true);
            w.WriteString("chat_template", formatter.Template.Source);
            w.WriteString("bos_token", formatter.BosToken ?? "");
            w.WriteString("eos_token", formatter.EosToken ?? "");
            w.WriteString("build_info", ResponseMeta.Fingerprint);
            w.WriteBoolean("is_sleeping", sleeping);
            w.WriteEndObject();
        }
    }

    /// <summary>The settings a /completion with an empty body would run with (for /props and /slots).</summary>
    private static LlamaCompletionRequest DefaultSettings(ModelHost host) =>
        LlamaCompletionRequest.Parse(new JsonBody(new JsonObject()), host, []);

    /// <summary><c>GET /slots</c>: one entry per sequence the engine runs at once (<c>--parallel</c>). The engine has no
    /// fixed slot per request, so the first <i>running</i> slots are reported busy. <c>?fail_on_no_slot</c> answers 503
    /// when every slot is busy. No <c>params</c> (llama-server shows them only with its slot debugging on).</summary>
    private static Task SlotsAsync(HttpContext ctx, ModelHost host)
    {
        if (!host.Options.SlotsEndpoint)
            throw LlamaServerErrors.NotSupported("This server does not support slots endpoint. Start it with `--slots`");
        var engine = host.RequireEngine();
        int total = engine.Options.MaxNumSeqs;
        int busy = Math.Min(total, engine.Stats.Running);
        if (ctx.Request.Query.ContainsKey("fail_on_no_slot") && busy >= total)
            throw new ApiException(StatusCodes.Status503ServiceUnavailable, "no slot available", ApiErrorTypes.Unavailable);
        return JsonResponse.WriteAsync(ctx, w =>
        {
            w.WriteStartArray();
            for (int i = 0; i < total; i++)
            {
                w.WriteStartObject();
                w.WriteNumber("id", i);
                w.WriteNumber("id_task", -1);
                w.WriteNumber("n_ctx", engine.MaxModelLen);
                w.WriteBoolean("speculative", engine.Options.Speculative != null);
                w.WriteBoolean("is_processing", i < busy);
                w.WriteEndObject();
            }
            w.WriteEndArray();
        });
    }

    /// <summary><c>POST /slots/{id}?action=save|restore|erase</c>. A request's KV lives in the shared prefix cache (and its
    /// disk tier with <c>--prefix-cache-dir</c>), which keeps and restores prefixes by itself, not per slot: save and
    /// restore answer 501; erase has nothing to erase (a finished request holds no slot).</summary>
    private static Task SlotActionAsync(HttpContext ctx, ModelHost host, string id)
    {
        if (!host.Options.SlotsEndpoint)
            throw LlamaServerErrors.NotSupported("This server does not support slots endpoint. Start it with `--slots`");
        var engine = host.RequireEngine();
        if (!int.TryParse(id, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int slot) || slot >= engine.Options.MaxNumSeqs)
            throw ApiException.BadRequest($"Invalid slot id '{id}': slots are 0..{engine.Options.MaxNumSeqs - 1}.", "id_slot");
        string action = ctx.Request.Query["action"].ToString();
        return action switch
        {
            "save" or "restore" => throw LlamaServerErrors.NotSupported(
                $"Slot {action} is not supported: the KV of every request is kept in the shared prefix cache (and its disk tier with --prefix-cache-dir), " +
                "which later requests with the same prefix reuse automatically."),
            "erase" => JsonResponse.WriteAsync(ctx, w =>
            {
                w.WriteStartObject();
                w.WriteNumber("id_slot", slot);
                w.WriteNumber("n_erased", 0);
                w.WriteEndObject();
            }),
            _ => throw ApiException.BadRequest($"Invalid action '{action}': use save, restore or erase.", "action"),
        };
    }
}
