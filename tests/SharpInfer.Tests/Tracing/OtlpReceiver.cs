using System.Net;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Logging;

namespace SharpInfer.Tests.Tracing;

/// <summary>One span as OTLP carried it (ids in lower-case hex; attribute values as string, long, double, bool or
/// object[] for arrays).</summary>
internal sealed record OtlpSpan(string TraceId, string SpanId, string ParentSpanId, string Name, int Kind,
                                IReadOnlyDictionary<string, object?> Attributes, IReadOnlyDictionary<string, object?> Resource);

/// <summary>
/// A tiny OTLP collector for tests: Kestrel on a free loopback port, accepting either OTLP/HTTP protobuf POSTs to
/// /v1/traces (decoded into <see cref="OtlpSpan"/>s), /v1/metrics and /v1/logs (kept as raw bodies), or OTLP/gRPC
/// (cleartext HTTP/2; the same messages in gRPC's length-prefixed frames, answered with grpc-status 0). Waiters wait
/// on what arrived, not on time.
/// </summary>
internal sealed class OtlpReceiver : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly List<OtlpSpan> _spans = [];
    private readonly List<byte[]> _metrics = [];
    private readonly SemaphoreSlim _arrived = new(0);

    private OtlpReceiver(WebApplication app) => _app = app;

    public string BaseUrl => _app.Urls.First();

    public static async Task<OtlpReceiver> StartAsync(bool grpc = false)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, o => o.Protocols = grpc ? HttpProtocols.Http2 : HttpProtocols.Http1AndHttp2));
        var app = builder.Build();
        var receiver = new OtlpReceiver(app);
        app.MapPost("/v1/{signal}", async (HttpContext ctx, string signal) =>
        {
            receiver.Accept(signal, await ReadAllAsync(ctx.Request.Body));
            ctx.Response.ContentType = "application/x-protobuf";   // an empty Export*ServiceResponse: all accepted
        });
        // gRPC: /opentelemetry.proto.collector.trace.v1.TraceService/Export (metrics.v1.MetricsService, logs.v1.LogsService)
        app.MapPost("/{service}/Export", async (HttpContext ctx, string service) =>
        {
            var frame = await ReadAllAsync(ctx.Request.Body);
            if (frame.Length < 5 || frame[0] != 0) throw new InvalidDataException("expected one uncompressed gRPC message");
            int length = (frame[1] << 24) | (frame[2] << 16) | (frame[3] << 8) | frame[4];
            string signal = service.Contains(".trace.") ? "traces" : service.Contains(".metrics.") ? "metrics" : "logs";
            receiver.Accept(signal, frame[5..(5 + length)]);
            ctx.Response.ContentType = "application/grpc";
            await ctx.Response.Body.WriteAsync(new byte[5]);   // an empty response message
            ctx.Response.AppendTrailer("grpc-status", "0");
        });
        await app.StartAsync();
        return receiver;
    }

    private static async Task<byte[]> ReadAllAsync(Stream body)
    {
        using var copy = new MemoryStream();
        await body.CopyToAsync(copy);
        return copy.ToArray();
    }

    private void Accept(string signal, byte[] body)
    {
        lock (_spans)
        {
            if (signal == "traces") _spans.AddRange(DecodeTraces(body));
            else if (signal == "metrics") _metrics.Add(body);
        }
        _arrived.Release();
    }

    public OtlpSpan[] Spans
    {
        get
        {
            lock (_spans) return [.. _spans];
        }
    }

    /// <summary>Whether a metrics export named the instrument (names travel as plain UTF-8 strings).</summary>
    public bool HasMetric(string name)
    {
        var bytes = Encoding.UTF8.GetBytes(name);
        lock (_spans) return _metrics.Any(m => m.AsSpan().IndexOf(bytes) >= 0);
    }

    /// <summary>Waits until <paramref name="done"/> holds over what has arrived (checked after every export).</summary>
    public async Task WaitForAsync(Func<OtlpReceiver, bool> done, TimeSpan timeout, CancellationToken ct)
    {
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(ct);
        limit.CancelAfter(timeout);
        while (!done(this)) await _arrived.WaitAsync(limit.Token);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        _arrived.Dispose();
    }

    // ---- the OTLP trace protobuf, as much as the tests read ------------------------------------------------

    private static List<OtlpSpan> DecodeTraces(byte[] body)
    {
        var spans = new List<OtlpSpan>();
        foreach (var (field, resourceSpans) in Fields(body))
        {
            if (field != 1) continue;   // ExportTraceServiceRequest.resource_spans
            var resource = new Dictionary<string, object?>();
            foreach (var (f, v) in Fields(resourceSpans.Bytes))
                if (f == 1)   // ResourceSpans.resource → Resource.attributes
                    foreach (var (rf, attr) in Fields(v.Bytes))
                        if (rf == 1) AddAttribute(resource, attr.Bytes);
            foreach (var (f, scopeSpans) in Fields(resourceSpans.Bytes))
            {
                if (f != 2) continue;   // ResourceSpans.scope_spans
                foreach (var (sf, span) in Fields(scopeSpans.Bytes))
                    if (sf == 2) spans.Add(DecodeSpan(span.Bytes, resource));   // ScopeSpans.spans
            }
        }
        return spans;
    }

    private static OtlpSpan DecodeSpan(byte[] span, Dictionary<string, object?> resource)
    {
        string traceId = "", spanId = "", parent = "", name = "";
        int kind = 0;
        var attributes = new Dictionary<string, object?>();
        foreach (var (f, v) in Fields(span))
        {
            switch (f)
            {
                case 1: traceId = Convert.ToHexStringLower(v.Bytes); break;
                case 2: spanId = Convert.ToHexStringLower(v.Bytes); break;
                case 4: parent = Convert.ToHexStringLower(v.Bytes); break;
                case 5: name = Encoding.UTF8.GetString(v.Bytes); break;
                case 6: kind = (int)v.Number; break;
                case 9: AddAttribute(attributes, v.Bytes); break;
            }
        }
        return new OtlpSpan(traceId, spanId, parent, name, kind, attributes, resource);
    }

    private static void AddAttribute(Dictionary<string, object?> into, byte[] keyValue)
    {
        string key = "";
        object? value = null;
        foreach (var (f, v) in Fields(keyValue))
        {
            if (f == 1) key = Encoding.UTF8.GetString(v.Bytes);
            else if (f == 2) value = AnyValue(v.Bytes);
        }
        into[key] = value;
    }

    private static object? AnyValue(byte[] any)
    {
        foreach (var (f, v) in Fields(any))
        {
            switch (f)
            {
                case 1: return Encoding.UTF8.GetString(v.Bytes);
                case 2: return v.Number != 0;
                case 3: return (long)v.Number;
                case 4: return BitConverter.UInt64BitsToDouble(v.Number);
                case 5: return Fields(v.Bytes).Where(e => e.Field == 1).Select(e => AnyValue(e.Value.Bytes)).ToArray();   // ArrayValue.values
            }
        }
        return null;
    }

    private readonly record struct Value(ulong Number, byte[] Bytes);

    /// <summary>A message's fields in order: varints and fixed-width numbers as <see cref="Value.Number"/>,
    /// length-delimited fields as <see cref="Value.Bytes"/>.</summary>
    private static List<(int Field, Value Value)> Fields(byte[] message)
    {
        var fields = new List<(int, Value)>();
        int pos = 0;
        while (pos < message.Length)
        {
            ulong tag = Varint(message, ref pos);
            int field = (int)(tag >> 3);
            switch ((int)(tag & 7))
            {
                case 0: fields.Add((field, new Value(Varint(message, ref pos), []))); break;
                case 1: fields.Add((field, new Value(BitConverter.ToUInt64(message, pos), []))); pos += 8; break;
                case 2:
                    int length = checked((int)Varint(message, ref pos));
                    fields.Add((field, new Value(0, message[pos..(pos + length)])));
                    pos += length;
                    break;
                case 5: fields.Add((field, new Value(BitConverter.ToUInt32(message, pos), []))); pos += 4; break;
                default: throw new InvalidDataException($"unsupported protobuf wire type in tag {tag}");
            }
        }
        return fields;
    }

    private static ulong Varint(byte[] b, ref int pos)
    {
        ulong result = 0;
        for (int shift = 0; ; shift += 7)
        {
            byte x = b[pos++];
            result |= (ulong)(x & 0x7f) << shift;
            if (x < 0x80) return result;
        }
    }
}
