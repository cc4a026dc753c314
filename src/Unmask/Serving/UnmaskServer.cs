using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Scalar.AspNetCore;
using Unmask.Generation;
using Unmask.Inference;

namespace Unmask.Serving;

public sealed record ServerOptions
{
    /// <summary>Served models by name; requests name one when there are several.</summary>
    public required IReadOnlyList<(string Name, string Folder)> Models { get; init; }

    public string Host { get; init; } = "127.0.0.1";

    /// <summary>0 takes a free port (see <see cref="UnmaskServer.Address"/>).</summary>
    public int Port { get; init; } = 8080;

    public ServingLimits Limits { get; init; } = new();

    /// <summary>Where every served model runs (see <see cref="Modeling.ComputeDevice"/>); null: auto.</summary>
    public Device? Device { get; init; }

    /// <summary>Largest request body in bytes (413 beyond it).</summary>
    public long PayloadLimit { get; init; } = 2_000_000;

    /// <summary>When set, inference routes and /info need "Authorization: Bearer KEY".</summary>
    public string? ApiKey { get; init; }
}

/// <summary>
/// <c>unmask serve</c>: Kestrel with minimal APIs over the library. Listens at once and answers /health with 503 until
/// every model is loaded; each model has its own <see cref="InferenceQueue"/>. On shutdown (SIGTERM, Ctrl+C,
/// <see cref="StopAsync"/>) it stops accepting connections, answers /health with 503, finishes what is in flight, and
/// only then releases the models.
/// </summary>
public sealed class UnmaskServer : IAsyncDisposable
{
    readonly WebApplication _app;
    readonly ServerOptions _options;
    readonly Dictionary<string, ServedModel> _models = new(StringComparer.Ordinal);
    readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    volatile bool _draining;

    UnmaskServer(ServerOptions options)
    {
        if (options.Models.Count == 0) throw new UnmaskException("serve needs at least one --model");
        foreach (var group in options.Models.GroupBy(m => m.Name))
            if (group.Count() > 1) throw new UnmaskException($"two models are named '{group.Key}'; name them with --model NAME=DIR");
        if (options.PayloadLimit < 1) throw new UnmaskException($"--payload-limit must be positive, got {options.PayloadLimit}");
        _options = options;
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.WebHost.UseUrls($"http://{options.Host}:{options.Port}");
        builder.WebHost.ConfigureKestrel(k => k.Limits.MaxRequestBodySize = null);
        builder.Services.AddOpenApi(o => o.AddDocumentTransformer((document, _, _) =>
        {
            document.Info.Title = "Unmask";
            document.Info.Description = "Masked language models over HTTP: fill-mask, pseudo-log-likelihood scores, embeddings, classifiers, prompts and masked-diffusion generation.";
            return Task.CompletedTask;
        }));
        _app = builder.Build();
        Map();
    }

    public ServerMetrics Metrics { get; } = new();

    /// <summary>Where the server listens, e.g. http://127.0.0.1:8080.</summary>
    public Uri Address { get; private set; } = new("http://127.0.0.1");

    /// <summary>Completes when every model is loaded (faults when one fails to load).</summary>
    public Task Ready => _ready.Task;

    public IReadOnlyDictionary<string, ServedModel> Models => _models;

    /// <summary>Starts listening, then loads the models in the background.</summary>
    public static async Task<UnmaskServer> StartAsync(ServerOptions options, CancellationToken ct = default)
    {
        var server = new UnmaskServer(options);
        await server._app.StartAsync(ct);
        var addresses = server._app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses;
        server.Address = new Uri(addresses.First());
        server._app.Lifetime.ApplicationStopping.Register(() => server._draining = true);
        _ = Task.Run(server.LoadModels, ct);
        return server;
    }

    void LoadModels()
    {
        try
        {
            foreach (var (name, folder) in _options.Models)
            {
                var model = ServedModel.Load(name, folder, _options.Limits, _options.Device);
                Metrics.Watch(name, model.Queue);
                lock (_models) _models[name] = model;
            }
            _ready.TrySetResult();
        }
        catch (Exception e)
        {
            _ready.TrySetException(e);
        }
    }

    /// <summary>Runs until the host is told to stop (SIGTERM, Ctrl+C).</summary>
    public Task WaitForShutdownAsync(CancellationToken ct = default) => _app.WaitForShutdownAsync(ct);

    /// <summary>Stops accepting connections and returns when in-flight requests are answered.</summary>
    public async Task StopAsync()
    {
        _draining = true;
        await _app.StopAsync();
    }

    public async ValueTask DisposeAsync()
    {
        _draining = true;
        await _app.StopAsync();
        await _app.DisposeAsync();
        lock (_models)
        {
            foreach (var model in _models.Values) model.Dispose();
            _models.Clear();
        }
    }

    void Map()
    {
        var app = _app;
        app.MapOpenApi();
        app.MapScalarApiReference("/docs", o => o.WithTitle("Unmask API").WithOpenApiRoutePattern("/openapi/{documentName}.json"));
        app.MapGet("/", () => Results.Text(Playground.Html, "text/html; charset=utf-8")).ExcludeFromDescription();

        app.MapGet("/health", (HttpContext ctx) => Health(ctx)).WithSummary("200 when every model is loaded; 503 while loading or draining");
        app.MapGet("/metrics", () => Results.Text(Metrics.Render(), "text/plain; version=0.0.4; charset=utf-8")).WithSummary("Prometheus metrics");
        app.MapGet("/info", (Func<HttpContext, Task>)(ctx => Route(ctx, "/info", needsBody: false, Info))).WithSummary("The served models, their heads and the limits");

        Post("/fill", "Top-k candidates at each [MASK] (the CLI's fill --json per input)", Fill);
        Post("/score", "Pseudo-log-likelihood per input (the CLI's score --json per input)", Score);
        Post("/embed", "Sentence vectors, text-embeddings-inference's /embed", Embed);
        Post("/embed_sparse", "SPLADE vectors from the masked-LM head, text-embeddings-inference's /embed_sparse", EmbedSparse);
        Post("/predict", "A fine-tuned classifier's labels, text-embeddings-inference's /predict; entities for token classifiers", Predict);
        Post("/classify", "Zero-shot classification with a template and a verbalizer (the CLI's classify --json per input)", Classify);
        Post("/generate", "Masked-diffusion generation (the CLI's generate --json per output); \"stream\": true sends sampler steps as server-sent events", Generate);
        Post("/tokenize", "Tokens with ids and offsets, text-embeddings-inference's /tokenize", Tokenize);
        Post("/decode", "Token ids back to text, text-embeddings-inference's /decode", Decode);
        Post("/v1/embeddings", "OpenAI-compatible embeddings", OpenAiEmbeddings);
    }

    void Post(string path, string summary, Func<RequestBody, ServedModel, HttpContext, Task<IResult?>> handler) =>
        _app.MapPost(path, (Func<HttpContext, Task>)(ctx => Route(ctx, path, needsBody: true, (body, ctx2) => Dispatch(body!, ctx2, handler))))
            .WithSummary(summary);

    async Task<IResult?> Dispatch(RequestBody body, HttpContext ctx, Func<RequestBody, ServedModel, HttpContext, Task<IResult?>> handler) =>
        await handler(body, Pick(body), ctx);

    ServedModel Pick(RequestBody body)
    {
        var name = body.Model;
        lock (_models)
        {
            if (name is null)
                return _models.Count == 1 ? _models.Values.First()
                    : throw new RequestException($"several models are served; name one in \"model\": {string.Join(", ", _models.Keys)}");
            return _models.TryGetValue(name, out var model) ? model
                : throw new RequestException($"no model named \"{name}\"; served: {string.Join(", ", _models.Keys)}");
        }
    }

    IResult Health(HttpContext ctx)
    {
        if (_draining) return Error(503, "the server is shutting down", "unhealthy");
        if (_ready.Task.IsFaulted) return Error(503, $"a model failed to load: {_ready.Task.Exception!.InnerException!.Message}", "unhealthy");
        if (!_ready.Task.IsCompleted) return Error(503, "models are loading", "unhealthy");
        return Results.Json(new { status = "ok" });
    }

    /// <summary>Everything a route shares: the key, readiness, the body and its size, errors as {"error", "error_type"}, metrics.</summary>
    async Task Route(HttpContext ctx, string route, bool needsBody, Func<RequestBody?, HttpContext, Task<IResult?>> handler)
    {
        var clock = Stopwatch.StartNew();
        IResult? result;
        try
        {
            result = await Answer(ctx, needsBody, handler);
        }
        catch (RequestException e)
        {
            result = Error(422, e.Message, "validation");
        }
        catch (QueueFullException e)
        {
            result = Error(429, e.Message, "overloaded");
        }
        catch (QueueStoppedException e)
        {
            result = Error(503, e.Message, "unhealthy");
        }
        catch (OperationCanceledException) when (ctx.RequestAborted.IsCancellationRequested)
        {
            // The client left: its queued work is dropped and there is no one to answer.
            Metrics.Request(route, 499, clock.Elapsed);
            return;
        }
        catch (Exception e)
        {
            result = Error(500, e.Message, "backend");
        }
        if (result is not null) await result.ExecuteAsync(ctx);
        Metrics.Request(route, ctx.Response.StatusCode, clock.Elapsed);
    }

    async Task<IResult?> Answer(HttpContext ctx, bool needsBody, Func<RequestBody?, HttpContext, Task<IResult?>> handler)
    {
        if (_options.ApiKey is { } key && ctx.Request.Headers.Authorization.ToString() != $"Bearer {key}")
            return Error(401, "missing or wrong API key: send \"Authorization: Bearer KEY\"", "unauthorized");
        if (_draining) return Error(503, "the server is shutting down", "unhealthy");
        if (!_ready.Task.IsCompletedSuccessfully) return Error(503, "models are not loaded yet; poll /health", "unhealthy");
        if (!needsBody) return await handler(null, ctx);
        // When every queue is full the answer is 429 whatever the body says: refuse before reading and parsing it.
        bool full;
        lock (_models) full = _models.Values.All(m => m.Queue.IsFull);
        if (full) throw new QueueFullException($"every model's queue holds {_options.Limits.MaxConcurrentRequests} requests (--max-concurrent-requests)");
        if (ctx.Request.ContentLength > _options.PayloadLimit) return TooLarge();
        var bytes = await ReadLimited(ctx);
        if (bytes is null) return TooLarge();
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(bytes);
        }
        catch (JsonException e)
        {
            return Error(422, $"the body is not valid JSON (line {(e.LineNumber ?? 0) + 1}): {e.Message}", "validation");
        }
        using (document) return await handler(new RequestBody(document.RootElement), ctx);
    }

    IResult TooLarge() => Error(413, $"the request body is larger than {_options.PayloadLimit} bytes (--payload-limit)", "payload_too_large");

    async Task<byte[]?> ReadLimited(HttpContext ctx)
    {
        using var buffer = new MemoryStream();
        var chunk = new byte[16384];
        int read;
        while ((read = await ctx.Request.Body.ReadAsync(chunk, ctx.RequestAborted)) > 0)
        {
            if (buffer.Length + read > _options.PayloadLimit) return null;
            buffer.Write(chunk, 0, read);
        }
        return buffer.ToArray();
    }

    static IResult Error(int status, string message, string type) =>
        Results.Json(new { error = message, error_type = type }, statusCode: status);

    static IResult Json(Action<Utf8JsonWriter> write) => Results.Text(ResultJson.Text(write), "application/json", System.Text.Encoding.UTF8);

    static IResult JsonArray<T>(IEnumerable<T> items, Action<Utf8JsonWriter, T> write) => Json(w =>
    {
        w.WriteStartArray();
        foreach (var item in items) write(w, item);
        w.WriteEndArray();
    });

    Task<IResult?> Info(RequestBody? _, HttpContext ctx)
    {
        List<ServedModel> models;
        lock (_models) models = [.. _models.Values];
        var limits = _options.Limits;
        return Task.FromResult<IResult?>(Json(w =>
        {
            w.WriteStartObject();
            w.WriteString("version", typeof(UnmaskServer).Assembly.GetName().Version?.ToString());
            ResultJson.Array(w, "models", models, m =>
            {
                w.WriteStartObject();
                w.WriteString("name", m.Name);
                w.WriteString("folder", Path.GetFullPath(m.Folder));
                w.WriteString("architecture", m.Model.Architecture);
                w.WriteString("model_type", m.Model.HfConfig.ModelType);
                w.WriteString("device", m.Model.Device.ToString());
                ResultJson.Array(w, "routes", m.Capabilities, c => w.WriteStringValue("/" + c));
                w.WriteNumber("max_input_length", m.MaxInputLength);
                w.WriteNumber("vocab_size", m.Tokenizer.VocabSize);
                w.WriteString("mask_token", m.Tokenizer.MaskToken);
                w.WriteNumber("hidden_size", m.Model.HfConfig.HiddenSize);
                var pooling = m.Embedder.Resolve(null);
                w.WriteString("pooling", pooling.Pooling!.Value.ToString().ToLowerInvariant());
                w.WriteBoolean("normalize", pooling.Normalize ?? false);
                if (m.Classifier is { } c)
                {
                    ResultJson.Array(w, "labels", c.Labels, w.WriteStringValue);
                    w.WriteString("problem_type", c.Model.Head == Modeling.HeadKind.TokenClassification ? "token_classification" : c.ProblemType);
                }
                w.WriteEndObject();
            });
            w.WriteNumber("max_batch_tokens", limits.MaxBatchTokens);
            w.WriteNumber("max_client_batch_size", limits.MaxClientBatchSize);
            w.WriteNumber("max_concurrent_requests", limits.MaxConcurrentRequests);
            w.WriteNumber("payload_limit", _options.PayloadLimit);
            w.WriteBoolean("auto_truncate", limits.AutoTruncate);
            w.WriteEndObject();
        }));
    }

    static async Task<IResult?> Fill(RequestBody body, ServedModel model, HttpContext ctx)
    {
        var texts = body.Texts("inputs");
        var targets = body.String("targets")?.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        var request = new FillRequest(texts, body.Int("top_k", 5), targets);
        body.RejectUnknown();
        return JsonArray(await model.Fill(request, ctx.RequestAborted), ResultJson.Fill);
    }

    static async Task<IResult?> Score(RequestBody body, ServedModel model, HttpContext ctx)
    {
        var texts = body.Texts("inputs");
        bool perToken = body.Bool("per_token", false);
        body.RejectUnknown();
        return JsonArray(await model.Score(texts, ctx.RequestAborted), (w, r) => ResultJson.Score(w, r, perToken));
    }

    async Task<IResult?> Embed(RequestBody body, ServedModel model, HttpContext ctx)
    {
        var (texts, options, truncate) = EmbeddingRequest(body, "inputs");
        body.RejectUnknown();
        return JsonArray(await model.Embed(texts, options, truncate, ctx.RequestAborted), (w, v) =>
        {
            w.WriteStartArray();
            foreach (var x in v) w.WriteNumberValue(x);
            w.WriteEndArray();
        });
    }

    /// <summary>TEI's embed fields (normalize defaults to true, as there) and Unmask's pooling and layer.</summary>
    (IReadOnlyList<string> Texts, EmbeddingOptions Options, bool Truncate) EmbeddingRequest(RequestBody body, string inputs)
    {
        var texts = body.Texts(inputs);
        var pooling = body.String("pooling") switch
        {
            null => (Pooling?)null,
            "cls" => Pooling.Cls,
            "mean" => Pooling.Mean,
            "max" => Pooling.Max,
            "pooler" => Pooling.Pooler,
            var other => throw new RequestException($"\"pooling\" must be cls, mean, max or pooler, not \"{other}\""),
        };
        var options = new EmbeddingOptions(pooling, body.Int("layer"), body.Bool("normalize", true));
        return (texts, options, body.Bool("truncate", _options.Limits.AutoTruncate));
    }

    async Task<IResult?> EmbedSparse(RequestBody body, ServedModel model, HttpContext ctx)
    {
        var texts = body.Texts("inputs");
        int topTerms = body.Int("top_terms", 32);
        bool truncate = body.Bool("truncate", _options.Limits.AutoTruncate);
        body.RejectUnknown();
        return JsonArray(await model.Sparse(texts, topTerms, truncate, ctx.RequestAborted), (w, terms) =>
        {
            w.WriteStartArray();
            foreach (var t in terms)
            {
                w.WriteStartObject();
                w.WriteNumber("index", t.Id);
                w.WriteNumber("value", t.Weight);
                w.WriteString("token", t.Token);
                w.WriteEndObject();
            }
            w.WriteEndArray();
        });
    }

    async Task<IResult?> Predict(RequestBody body, ServedModel model, HttpContext ctx)
    {
        var (inputs, batched) = body.Sequences("inputs");
        bool raw = body.Bool("raw_scores", false);
        bool truncate = body.Bool("truncate", _options.Limits.AutoTruncate);
        body.RejectUnknown();
        if (model.Model.Head == Modeling.HeadKind.TokenClassification)
        {
            if (inputs.Any(i => i.Pair is not null)) throw new RequestException($"model '{model.Name}' tags tokens of single texts, not pairs");
            var tagged = await model.PredictTokens([.. inputs.Select(i => i.Text)], truncate, ctx.RequestAborted);
            return JsonArray(tagged, ResultJson.Entities);
        }
        var predictions = await model.Predict(inputs, truncate, ctx.RequestAborted);
        var labels = model.Classifier!.Labels;
        void Scores(Utf8JsonWriter w, TextPrediction p)
        {
            // TEI: every label with its probability (or raw logit), best first; a regression's one value under its label.
            var scored = labels.Select((label, k) => (label, score: raw || p.Value is not null ? p.Logits[k] : p.Scores![label]))
                .OrderByDescending(s => s.score).ToList();
            w.WriteStartArray();
            foreach (var (label, score) in scored)
            {
                w.WriteStartObject();
                w.WriteNumber("score", score);
                w.WriteString("label", label);
                w.WriteEndObject();
            }
            w.WriteEndArray();
        }
        if (!batched) return Json(w => Scores(w, predictions[0]));
        return JsonArray(predictions, Scores);
    }

    static async Task<IResult?> Classify(RequestBody body, ServedModel model, HttpContext ctx)
    {
        var texts = body.Texts("inputs");
        var pairs = body.Has("text_pairs") ? body.Texts("text_pairs") : null;
        if (pairs is not null && pairs.Count != texts.Count) throw new RequestException($"\"text_pairs\" has {pairs.Count} texts for {texts.Count} inputs");
        var inputs = texts.Select((t, i) => (t, pairs?[i])).ToList();
        var template = body.String("template") ?? throw new RequestException("\"template\" is required: a pattern with {text} and one [MASK]");
        var request = new ClassifyRequest(inputs, template, body.Verbalizer("verbalizer"), body.Bool("calibrate", false));
        body.RejectUnknown();
        return JsonArray(await model.Classify(request, ctx.RequestAborted), ResultJson.Prompt);
    }

    static async Task<IResult?> Generate(RequestBody body, ServedModel model, HttpContext ctx)
    {
        var texts = body.TextsOrNone("inputs");
        bool stream = body.Bool("stream", false);
        bool trace = body.Bool("trace", false);
        var sampler = body.String("sampler") ?? "confidence";
        var sampling = new SamplingOptions
        {
            Sampler = sampler switch
            {
                "ancestral" => SamplerKind.Ancestral,
                "confidence" => SamplerKind.Confidence,
                "dilated" => SamplerKind.Dilated,
                "mask-predict" => SamplerKind.MaskPredict,
                _ => throw new RequestException($"\"sampler\" must be ancestral, confidence, dilated or mask-predict, not \"{sampler}\""),
            },
            Steps = body.Int("steps", 32),
            BlockLength = body.Int("block_length"),
            Score = body.String("score") switch
            {
                null or "probability" => ConfidenceScore.Probability,
                "margin" => ConfidenceScore.Margin,
                "entropy" => ConfidenceScore.Entropy,
                var other => throw new RequestException($"\"score\" must be probability, margin or entropy, not \"{other}\""),
            },
            Temperature = body.Double("temperature", 1.0),
            TopK = body.Int("top_k"),
            TopP = body.Double("top_p"),
            RemaskEta = body.Double("remask_eta", 0),
            Seed = body.Int("seed"),
            Trace = trace,
        };
        if (sampling.Steps < 1) throw new RequestException($"\"steps\" must be at least 1, got {sampling.Steps}");
        var request = new GenerateRequest { Texts = texts, Length = body.Int("length", 0), NumSamples = body.Int("num_samples", 1), Sampling = sampling };
        body.RejectUnknown();
        if (!stream) return JsonArray(await model.Generate(request, null, ctx.RequestAborted), ResultJson.Generated);

        var events = Channel.CreateUnbounded<string>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        var generation = model.Generate(request, p => events.Writer.TryWrite(StepEvent(model, p)), ctx.RequestAborted);
        _ = generation.ContinueWith(_ => events.Writer.TryComplete(), TaskScheduler.Default);
        // Until the first step, a failure is still an ordinary JSON error with its status.
        if (!await events.Reader.WaitToReadAsync(ctx.RequestAborted)) await generation;
        ctx.Response.ContentType = "text/event-stream";
        ctx.Response.Headers.CacheControl = "no-cache";
        await foreach (var step in events.Reader.ReadAllAsync(ctx.RequestAborted)) await Send(ctx, "step", step);
        try
        {
            var results = await generation;
            await Send(ctx, "result", ResultJson.Text(w =>
            {
                w.WriteStartArray();
                foreach (var r in results) ResultJson.Generated(w, r);
                w.WriteEndArray();
            }));
        }
        catch (Exception e) when (e is RequestException or UnmaskException)
        {
            await Send(ctx, "error", JsonSerializer.Serialize(new { error = e.Message, error_type = "validation" }));
        }
        return null;
    }

    static string StepEvent(ServedModel model, GenerationProgress p) => ResultJson.Text(w =>
    {
        w.WriteStartObject();
        w.WriteNumber("forward_passes", p.ForwardPasses);
        w.WriteNumber("masked_remaining", p.MaskedRemaining);
        ResultJson.Array(w, "rows", p.Rows, row =>
        {
            w.WriteStartObject();
            ResultJson.Array(w, "ids", row, w.WriteNumberValue);
            ResultJson.Array(w, "tokens", row, id => w.WriteStringValue(id < model.Tokenizer.VocabSize ? model.Tokenizer.IdToToken((int)id) : $"<id {id}>"));
            w.WriteEndObject();
        });
        w.WriteEndObject();
    });

    static async Task Send(HttpContext ctx, string name, string data)
    {
        await ctx.Response.WriteAsync($"event: {name}\ndata: {data}\n\n", ctx.RequestAborted);
        await ctx.Response.Body.FlushAsync(ctx.RequestAborted);
    }

    static Task<IResult?> Tokenize(RequestBody body, ServedModel model, HttpContext ctx)
    {
        var texts = body.Texts("inputs");
        bool special = body.Bool("add_special_tokens", true);
        body.RejectUnknown();
        var tokenizer = model.Tokenizer;
        return Task.FromResult<IResult?>(JsonArray(texts, (w, text) =>
        {
            var encoding = tokenizer.Encode(text, addSpecialTokens: special);
            w.WriteStartArray();
            for (int i = 0; i < encoding.InputIds.Length; i++)
            {
                bool isSpecial = encoding.SpecialTokensMask[i];
                var offset = encoding.Offsets?[i];
                w.WriteStartObject();
                w.WriteNumber("id", encoding.InputIds[i]);
                w.WriteString("text", encoding.Tokens[i]);
                w.WriteBoolean("special", isSpecial);
                if (isSpecial || offset is null) { w.WriteNull("start"); w.WriteNull("stop"); }
                else { w.WriteNumber("start", offset.Value.Start); w.WriteNumber("stop", offset.Value.End); }
                w.WriteEndObject();
            }
            w.WriteEndArray();
        }));
    }

    static Task<IResult?> Decode(RequestBody body, ServedModel model, HttpContext ctx)
    {
        var (rows, _) = body.Ids("ids");
        bool skip = body.Bool("skip_special_tokens", true);
        body.RejectUnknown();
        for (int r = 0; r < rows.Count; r++)
            foreach (var id in rows[r])
                if (id >= model.Tokenizer.VocabSize) throw new RequestException($"\"ids\" row {r}: {id} is outside the vocabulary of {model.Tokenizer.VocabSize}");
        return Task.FromResult<IResult?>(JsonArray(rows, (w, row) => w.WriteStringValue(model.Tokenizer.Decode(row, skip))));
    }

    async Task<IResult?> OpenAiEmbeddings(RequestBody body, ServedModel model, HttpContext ctx)
    {
        var texts = body.Texts("input");
        var format = body.String("encoding_format") ?? "float";
        if (format != "float") throw new RequestException($"\"encoding_format\" \"{format}\" is not offered; use \"float\"");
        body.String("user");
        bool truncate = _options.Limits.AutoTruncate;
        body.RejectUnknown();
        var vectors = await model.Embed(texts, new EmbeddingOptions(Normalize: true), truncate, ctx.RequestAborted);
        int tokens = texts.Sum(t => model.Tokenizer.Encode(t).InputIds.Length);
        return Json(w =>
        {
            w.WriteStartObject();
            w.WriteString("object", "list");
            ResultJson.Array(w, "data", vectors.Select((v, i) => (v, i)), e =>
            {
                w.WriteStartObject();
                w.WriteString("object", "embedding");
                ResultJson.Array(w, "embedding", e.v, w.WriteNumberValue);
                w.WriteNumber("index", e.i);
                w.WriteEndObject();
            });
            w.WriteString("model", model.Name);
            w.WriteStartObject("usage");
            w.WriteNumber("prompt_tokens", tokens);
            w.WriteNumber("total_tokens", tokens);
            w.WriteEndObject();
            w.WriteEndObject();
        });
    }
}
