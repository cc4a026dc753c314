using Unmask.Checkpoints;
using Unmask.Evaluation;
using Unmask.Generation;
using Unmask.Inference;
using Unmask.Modeling;
using Unmask.Tokenization;

namespace Unmask.Serving;

/// <summary>A request the model cannot answer as asked (HTTP 422): bad field values, inputs too long, a missing head.</summary>
public sealed class RequestException(string message) : Exception(message);

/// <summary>The limits every served model's queue and inputs run under.</summary>
public sealed record ServingLimits
{
    public int MaxBatchTokens { get; init; } = 16384;
    public int MaxClientBatchSize { get; init; } = 32;
    public int MaxConcurrentRequests { get; init; } = 512;

    /// <summary>Truncate inputs longer than the model takes (embed, predict) instead of refusing them.</summary>
    public bool AutoTruncate { get; init; }
}

/// <summary>What a fill, score, ... request asks beyond its texts, with the CLI's defaults.</summary>
public sealed record FillRequest(IReadOnlyList<string> Texts, int TopK = 5, IReadOnlyList<string>? Targets = null);

public sealed record ClassifyRequest(IReadOnlyList<(string Text, string? Pair)> Inputs, string Template, Verbalizer Verbalizer, bool Calibrate = false);

/// <summary>
/// One model folder loaded once and served through one <see cref="InferenceQueue"/>: the masked-LM head (fill, score,
/// classify, generate, sparse vectors) or the classification head (predict), and the encoder's pooled vectors (embed)
/// for every folder. Each operation checks its inputs before they are queued, so one bad input fails its own request
/// and no batch it would have joined.
/// </summary>
public sealed class ServedModel : IDisposable
{
    readonly PllScorer? _scorer;

    ServedModel(string name, string folder, PretrainedModel model, ITokenizer tokenizer, SentenceTransformersConfig? sentenceConfig, ServingLimits limits)
    {
        Name = name;
        Folder = folder;
        Model = model;
        Tokenizer = tokenizer;
        Limits = limits;
        model.eval();
        Embedder = new SentenceEmbedder(tokenizer, model, sentenceConfig);
        if (model.Head == HeadKind.MaskedLm)
        {
            Mlm = new MaskedLanguageModel(tokenizer, model);
            _scorer = new PllScorer(ScoringContext.From(Mlm));
        }
        if (model.Head is HeadKind.SequenceClassification or HeadKind.TokenClassification) Classifier = new Classifier(tokenizer, model);
        Queue = new InferenceQueue(name, limits.MaxBatchTokens, limits.MaxClientBatchSize, limits.MaxConcurrentRequests);
    }

    public string Name { get; }
    public string Folder { get; }
    public PretrainedModel Model { get; }
    public ITokenizer Tokenizer { get; }
    public ServingLimits Limits { get; }
    public InferenceQueue Queue { get; }
    public MaskedLanguageModel? Mlm { get; }
    public Classifier? Classifier { get; }
    public SentenceEmbedder Embedder { get; }

    public int MaxInputLength => Model.MaxSequenceLength;

    /// <summary>The routes this model answers, by the heads it has.</summary>
    public IReadOnlyList<string> Capabilities =>
    [
        .. Mlm is null ? Array.Empty<string>() : ["fill", "score", "classify", "generate", "embed_sparse"],
        .. Classifier is null ? Array.Empty<string>() : ["predict"],
        "embed", "tokenize", "decode",
    ];

    public static ServedModel Load(string name, string folder, ServingLimits limits, Device? device = null)
    {
        if (!Directory.Exists(folder)) throw new UnmaskException($"{folder}: model folder not found");
        var sentenceConfig = SentenceTransformersFolder.Read(folder);
        var model = ModelLoader.Load(folder, device ?? ComputeDevice.Default);
        try
        {
            return new ServedModel(name, folder, model, TokenizerLoader.Load(folder), sentenceConfig, limits);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    public Task<FillResult[]> Fill(FillRequest request, CancellationToken ct)
    {
        var mlm = Need(Mlm, "fill");
        if (request.TopK < 1) throw new RequestException($"top_k must be at least 1, got {request.TopK}");
        var inputs = request.Texts.Select((text, i) =>
        {
            var ids = mlm.Tokenize(text).InputIds;
            if (!ids.Contains(Tokenizer.MaskId)) throw new RequestException($"input {i}: no mask token ({Tokenizer.MaskToken} or [MASK]): \"{text}\"");
            return new QueuedInput<string>(text, 1, Fits(ids.Length, i));
        }).ToList();
        var key = $"fill\n{request.TopK}\n{string.Join('\u0001', request.Targets ?? [])}";
        return Queue.Submit(key, inputs, texts => mlm.Fill(texts, request.TopK, request.Targets), ct);
    }

    public Task<PllResult[]> Score(IReadOnlyList<string> texts, CancellationToken ct)
    {
        var scorer = _scorer ?? throw Missing("score");
        var inputs = texts.Select((text, i) =>
        {
            var encoding = Tokenizer.Encode(text);
            if (MaskedRowRunner.Check(scorer.Context, encoding) is { } problem) throw new RequestException($"input {i}: {problem}");
            int length = encoding.InputIds.Length;
            return new QueuedInput<string>(text, Math.Max(1, length - 2), length);
        }).ToList();
        return Queue.Submit("score", inputs, batch => scorer.Score(batch), ct);
    }

    public Task<float[][]> Embed(IReadOnlyList<string> texts, EmbeddingOptions options, bool truncate, CancellationToken ct)
    {
        EmbeddingOptions resolved;
        try
        {
            resolved = Embedder.Resolve(options);
        }
        catch (UnmaskException e)
        {
            throw new RequestException(e.Message);
        }
        var inputs = Inputs(texts, truncate, resolved.MaxLength!.Value);
        var run = resolved with { MaxLength = truncate ? resolved.MaxLength : MaxInputLength, TokenBudget = int.MaxValue };
        return Queue.Submit($"embed\n{run}", inputs, batch => Embedder.Embed(batch, run), ct);
    }

    public Task<IReadOnlyList<SparseTerm>[]> Sparse(IReadOnlyList<string> texts, int topTerms, bool truncate, CancellationToken ct)
    {
        Need(Mlm, "embed_sparse");
        if (topTerms < 1) throw new RequestException($"top_terms must be at least 1, got {topTerms}");
        var inputs = Inputs(texts, truncate, MaxInputLength);
        return Queue.Submit($"sparse\n{topTerms}", inputs, batch => Embedder.Sparse(batch, topTerms, MaxInputLength, int.MaxValue), ct);
    }

    public Task<TextPrediction[]> Predict(IReadOnlyList<(string Text, string? Pair)> inputs, bool truncate, CancellationToken ct)
    {
        var classifier = Need(Classifier, "predict");
        if (Model.Head != HeadKind.SequenceClassification) throw new RequestException($"model '{Name}' tags tokens; send single texts to /predict_tokens");
        var queued = inputs.Select((input, i) =>
        {
            if (string.IsNullOrWhiteSpace(input.Text)) throw new RequestException($"input {i}: the text is empty");
            return new QueuedInput<(string, string?)>(input, 1, Fits(Tokenizer.Encode(input.Text, input.Pair).InputIds.Length, i, truncate));
        }).ToList();
        return Queue.Submit("predict", queued, batch => classifier.Predict(batch, MaxInputLength, batch.Count), ct);
    }

    public Task<TokenPrediction[]> PredictTokens(IReadOnlyList<string> texts, bool truncate, CancellationToken ct)
    {
        var classifier = Need(Classifier, "predict_tokens");
        if (Model.Head != HeadKind.TokenClassification) throw new RequestException($"model '{Name}' classifies whole texts; use /predict");
        return Queue.Submit("predict_tokens", Inputs(texts, truncate, MaxInputLength), batch => classifier.PredictTokens(batch, MaxInputLength, batch.Count), ct);
    }

    public Task<PromptPrediction[]> Classify(ClassifyRequest request, CancellationToken ct)
    {
        var mlm = Need(Mlm, "classify");
        PromptClassifier classifier;
        try
        {
            classifier = new PromptClassifier(mlm, request.Template, request.Verbalizer, "verbalizer") { Calibrate = request.Calibrate };
        }
        catch (UnmaskException e)
        {
            throw new RequestException(e.Message);
        }
        var queued = request.Inputs.Select((input, i) =>
        {
            if (string.IsNullOrWhiteSpace(input.Text)) throw new RequestException($"input {i}: the text is empty");
            return new QueuedInput<(string, string?)>(input, 1, Fits(Tokenizer.Encode(input.Text, input.Pair).InputIds.Length, i));
        }).ToList();
        var key = $"classify\n{request.Template}\n{string.Join('\u0001', request.Verbalizer.Labels.Select(l => l + "=" + string.Join(',', request.Verbalizer.Words[l])))}\n{request.Calibrate}";
        return Queue.Submit(key, queued, batch => classifier.Predict(batch), ct);
    }

    /// <summary>Generation runs as its own batch (its sampler settings and seed make each request its own), reporting every
    /// sampler step to <paramref name="onStep"/> on the worker thread as it happens.</summary>
    public async Task<IReadOnlyList<GeneratedText>> Generate(GenerateRequest request, Action<GenerationProgress>? onStep, CancellationToken ct)
    {
        var mlm = Need(Mlm, "generate");
        var progress = onStep is null ? null : new Immediate<GenerationProgress>(onStep);
        var inputs = new[] { new QueuedInput<GenerateRequest>(request, Math.Max(1, request.Texts.Count) * request.NumSamples, MaxInputLength) };
        var results = await Queue.Submit<GenerateRequest, IReadOnlyList<GeneratedText>>($"generate\n{Guid.NewGuid()}", inputs, batch => [Run(batch[0])], ct);
        return results[0];

        IReadOnlyList<GeneratedText> Run(GenerateRequest r)
        {
            try
            {
                return TextGeneration.Generate(mlm, r, progress, ct);
            }
            catch (UnmaskException e)
            {
                throw new RequestException(e.Message);
            }
        }
    }

    List<QueuedInput<string>> Inputs(IReadOnlyList<string> texts, bool truncate, int maxLength) => [.. texts.Select((text, i) =>
    {
        if (string.IsNullOrWhiteSpace(text)) throw new RequestException($"input {i}: the text is empty");
        return new QueuedInput<string>(text, 1, Fits(Tokenizer.Encode(text).InputIds.Length, i, truncate, maxLength));
    })];

    int Fits(int length, int index, bool truncate = false, int? maxLength = null)
    {
        int limit = Math.Min(maxLength ?? MaxInputLength, MaxInputLength);
        if (length <= limit) return length;
        if (truncate) return limit;
        throw new RequestException($"input {index} is {length} tokens, more than the {limit} model '{Name}' takes; send \"truncate\": true or start the server with --auto-truncate");
    }

    T Need<T>(T? head, string route) where T : class => head ?? throw Missing(route);

    RequestException Missing(string route) =>
        new($"model '{Name}' ({Model.Architecture}) cannot serve /{route}; it serves {string.Join(", ", Capabilities.Select(c => "/" + c))}");

    public void Dispose()
    {
        Queue.Dispose();
        Model.Dispose();
    }

    /// <summary>Reports on the calling thread, in order: Progress&lt;T&gt; would post to the thread pool and reorder steps.</summary>
    sealed class Immediate<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
