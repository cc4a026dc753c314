using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;
using Unmask.Checkpoints;
using Unmask.Data;
using Unmask.Evaluation;
using Unmask.Inference;
using Unmask.Modeling;
using Unmask.Tokenization;

namespace Unmask.Training;

public enum EmbeddingObjective
{
    /// <summary>Mirror-BERT: a text and its copy with a random span masked, in-batch negatives; no labels.</summary>
    Mirror,

    /// <summary>Supervised contrastive: (anchor, positive[, negative]) rows, the other rows' texts as negatives.</summary>
    Pairs,
}

/// <summary>Settings of <c>unmask train-embeddings</c>; the defaults are Mirror-BERT's (Liu et al. 2021) for sentences.</summary>
public sealed record EmbeddingTrainingOptions
{
    public required string ModelDir { get; init; }
    public required string TrainPath { get; init; }
    public required string OutputDir { get; init; }
    public EmbeddingObjective Objective { get; init; } = EmbeddingObjective.Mirror;

    /// <summary>Where the encoder trains (see <see cref="ComputeDevice"/>); null: auto.</summary>
    public Device? Device { get; init; }

    /// <summary>Scored pairs (STS-B's CSV) to report Spearman on before training and after each epoch.</summary>
    public string? ValidationPath { get; init; }

    public int Epochs { get; init; } = 1;
    public int BatchSize { get; init; } = 200;
    public double LearningRate { get; init; } = 2e-5;
    public double Temperature { get; init; } = 0.04;

    /// <summary>Mirror: tokens in the masked span of the second view.</summary>
    public int SpanMask { get; init; } = 5;

    /// <summary>Texts (mirror) or rows (pairs) drawn by the seed; Mirror-BERT used 10k sentences.</summary>
    public int? MaxExamples { get; init; } = 10_000;

    /// <summary>Pairs: read scored pairs (sentence1,sentence2,score) and keep those scoring at least this as positives.</summary>
    public double? MinScore { get; init; }

    public int MaxSeqLength { get; init; } = 64;

    /// <summary>Encoder dropout while training (Mirror-BERT relies on it; a model pretrained without has none);
    /// null keeps the config's. Written into the saved config.</summary>
    public double? Dropout { get; init; }
    public Pooling Pooling { get; init; } = Pooling.Mean;
    public bool Normalize { get; init; } = true;
    public int Seed { get; init; } = 42;
}

public sealed record EmbeddingTrainingProgress(string Phase, long Step, long TotalSteps, double? Loss, double? Spearman);

/// <param name="Validation">Spearman on the validation pairs before training (step 0) and after each epoch.</param>
public sealed record EmbeddingTrainingResult(string OutputDir, long Steps, int Examples, IReadOnlyList<(long Step, double Spearman)> Validation, TimeSpan Elapsed);

/// <summary>
/// Contrastive training of a sentence encoder: InfoNCE over in-batch negatives on normalised pooled vectors divided by
/// a temperature, with dropout on. The result is a sentence-transformers folder (the bare encoder at its root).
/// </summary>
public static class EmbeddingTrainer
{
    public static EmbeddingTrainingResult Run(EmbeddingTrainingOptions options, IProgress<EmbeddingTrainingProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        Check(options);
        // Under mpiexec each rank encodes its part of every batch's views; see Step.
        var world = Distributed.MpiWorld.Current;
        var clock = Stopwatch.StartNew();
        progress?.Report(new EmbeddingTrainingProgress("reading data", 0, 0, null, null));
        var tokenizer = TokenizerLoader.Load(options.ModelDir);
        var random = new Random(options.Seed);
        var rows = options.Objective == EmbeddingObjective.Mirror
            ? ReadSentences(options.TrainPath).Select(s => new[] { s }).ToList()
            : ReadRows(options.TrainPath, options.MinScore);
        rows = [.. rows.OrderBy(_ => random.Next())];
        if (options.MaxExamples is int limit) rows = [.. rows.Take(limit)];
        if (rows.Count < 2) throw new UnmaskException($"{options.TrainPath}: {rows.Count} example(s); in-batch negatives need at least 2.");

        var (model, _) = ModelLoader.LoadWithReport(options.ModelDir, HeadKind.None, c => ModelFamilies.WithDropout(c, options.Dropout),
            options.Device ?? ComputeDevice.Default);
        using var disposeModel = model;
        var maxLength = Math.Min(options.MaxSeqLength, model.MaxSequenceLength);
        var validation = options.ValidationPath is { } v ? StsEvaluator.ReadPairs(v, requireScores: true) : null;
        var parameters = model.NamedParametersOnce().Select(p => (p.Name, (Tensor)p.Parameter)).ToList();
        using var optimizer = new AdamW(AdamW.DecayGroups(parameters, 0.0));
        int batchesPerEpoch = (rows.Count + options.BatchSize - 1) / options.BatchSize;
        long totalSteps = (long)batchesPerEpoch * options.Epochs;
        var schedule = new LearningRateSchedule(options.LearningRate, 0, DecayKind.Constant);

        world.Broadcast([.. parameters.Select(p => p.Item2)]);
        Directory.CreateDirectory(options.OutputDir);
        using var metrics = world.IsRoot ? MetricsLog.Create(Path.Combine(options.OutputDir, "metrics.jsonl")) : MetricsLog.InMemory();
        var history = new List<(long, double)>();
        long step = 0, tokens = 0;
        void Validate()
        {
            if (validation is null) return;
            double spearman = Spearman(model, tokenizer, validation, options, maxLength);
            history.Add((step, spearman));
            metrics.Write(new MetricsRecord("validation", step, tokens, new Dictionary<string, double> { ["spearman"] = spearman }));
            progress?.Report(new EmbeddingTrainingProgress("evaluated", step, totalSteps, null, spearman));
        }

        Validate();
        ComputeDevice.Seed(options.Seed); // dropout draws from the global generator
        for (int epoch = 0; epoch < options.Epochs; epoch++)
        {
            var order = Enumerable.Range(0, rows.Count).OrderBy(_ => random.Next()).ToList();
            model.train();
            for (int b = 0; b < batchesPerEpoch; b++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var batch = order.Skip(b * options.BatchSize).Take(options.BatchSize).Select(i => rows[i]).ToList(); // the last one may be smaller
                if (batch.Count < 2 || 2 * batch.Count < world.Size) continue; // every rank needs a view of its own
                float lossValue;
                using (var scope = torch.NewDisposeScope())
                {
                    var views = options.Objective == EmbeddingObjective.Mirror
                        ? MirrorViews(tokenizer, batch.Select(r => r[0]).ToList(), maxLength, options.SpanMask, random)
                        : PairViews(tokenizer, batch, maxLength);
                    tokens += views.Sum(v => v.InputIds.Length);
                    var vectors = world.Size == 1 ? Encode(model, views, tokenizer.PadId, options) : Gathered(model, views, tokenizer.PadId, options, world); // [views, hidden]
                    var anchors = vectors.narrow(0, 0, batch.Count); // [batch, hidden]
                    var candidates = vectors.narrow(0, batch.Count, vectors.shape[0] - batch.Count); // [batch or 2·batch, hidden]
                    var similarity = anchors.matmul(candidates.t()).div(options.Temperature); // [batch, candidates]
                    var loss = F.cross_entropy(similarity, torch.arange(batch.Count, dtype: ScalarType.Int64, device: model.Device));
                    loss.backward();
                    lossValue = loss.item<float>();
                }
                // Every rank computed the whole batch's loss, each through its own views only: the summed gradients are
                // the whole loss's gradient.
                world.AllReduceSum([.. parameters.Select(p => p.Item2.grad).OfType<Tensor>()]);
                nn.utils.clip_grad_norm_(parameters.Select(p => (TorchSharp.Modules.Parameter)p.Item2), 1.0);
                optimizer.StepWith(schedule.At((double)step / totalSteps));
                foreach (var (_, p) in parameters) p.grad?.zero_();
                step++;
                metrics.Write(new MetricsRecord("train", step, tokens, new Dictionary<string, double> { ["loss"] = lossValue, ["epoch"] = (double)step / batchesPerEpoch, ["world_size"] = world.Size }));
                progress?.Report(new EmbeddingTrainingProgress("training", step, totalSteps, lossValue, null));
            }
            model.eval();
            Validate();
        }

        model.eval();
        var result = new EmbeddingTrainingResult(options.OutputDir, step, rows.Count, history, clock.Elapsed);
        if (!world.IsRoot)
        {
            world.Barrier();
            return result;
        }
        var folderConfig = new SentenceTransformersConfig(options.Pooling, options.Normalize, maxLength, model.HfConfig.HiddenSize);
        ModelFolder.Save(options.OutputDir + ".model", model, folder =>
        {
            tokenizer.Save(folder);
            SentenceTransformersFolder.Write(folder, folderConfig, model.HfConfig.HiddenSize);
        });
        Publish(options.OutputDir);
        LossPlot.Save(Path.Combine(options.OutputDir, "training.png"), metrics.Records, $"train-embeddings --objective {options.Objective.ToString().ToLowerInvariant()}");
        AtomicFile.WriteAllText(Path.Combine(options.OutputDir, "train_results.json"), JsonSerializer.Serialize(new
        {
            objective = options.Objective.ToString().ToLowerInvariant(),
            steps = step,
            examples = rows.Count,
            train_seconds = result.Elapsed.TotalSeconds,
            validation_spearman = history.Select(h => new { step = h.Item1, spearman = h.Item2 }),
        }, new JsonSerializerOptions { WriteIndented = true }) + "\n");
        world.Barrier();
        return result;
    }

    /// <summary>
    /// All the batch's vectors on every rank, this rank's own views ([start, end) of the view list) with their graph
    /// and the others' as constants, summed in from zeros. A loss over them, backpropagated, gives this rank's
    /// views' part of the whole loss's gradient.
    /// </summary>
    static Tensor Gathered(PretrainedModel model, List<EncodedExample> views, int padId, EmbeddingTrainingOptions options, Distributed.MpiWorld world)
    {
        int start = views.Count * world.Rank / world.Size, end = views.Count * (world.Rank + 1) / world.Size;
        var own = end > start ? Encode(model, views.GetRange(start, end - start), padId, options) : null; // [own views, hidden]
        int hidden = (int)model.HfConfig.HiddenSize;
        var all = new float[views.Count * hidden];
        if (own is not null) own.detach().to(ScalarType.Float32).contiguous().cpu().data<float>().CopyTo(all, start * hidden);
        world.AllReduceSum(all);
        var gathered = torch.tensor(all, [views.Count, hidden], device: model.Device); // [views, hidden]
        if (own is null) return gathered;
        return torch.cat([gathered.narrow(0, 0, start), own, gathered.narrow(0, end, views.Count - end)]);
    }

    static void Check(EmbeddingTrainingOptions o)
    {
        if (o.Epochs < 1) throw new UnmaskException($"--epochs must be at least 1, got {o.Epochs}.");
        if (o.BatchSize < 2) throw new UnmaskException($"--batch-size must be at least 2 (in-batch negatives), got {o.BatchSize}.");
        if (o.Temperature <= 0) throw new UnmaskException($"--temperature must be positive, got {o.Temperature}.");
        if (o.LearningRate <= 0) throw new UnmaskException($"--lr must be positive, got {o.LearningRate}.");
        if (o.SpanMask < 0) throw new UnmaskException($"--span-mask must be 0 or more, got {o.SpanMask}.");
        if (o.Dropout is < 0 or >= 1) throw new UnmaskException($"--dropout must be in [0, 1), got {o.Dropout}.");
        if (o.Pooling == Pooling.Pooler) throw new UnmaskException("train-embeddings pools with cls, mean or max.");
        if (!File.Exists(o.TrainPath) && !Directory.Exists(o.TrainPath)) throw new UnmaskException($"{o.TrainPath}: not found");
    }

    /// <summary>
    /// The model folder lands in OutputDir/ next to metrics.jsonl: saved whole into a sibling first (ModelFolder.Save
    /// is atomic), then its files moved in; the weights move last, so a folder with model.safetensors is complete.
    /// </summary>
    static void Publish(string outputDir)
    {
        var staged = outputDir + ".model";
        var entries = Directory.EnumerateFileSystemEntries(staged).OrderBy(e => Path.GetFileName(e) == ModelFolder.WeightsFileName ? 1 : 0).ToList();
        foreach (var entry in entries)
        {
            var target = Path.Combine(outputDir, Path.GetFileName(entry));
            if (Directory.Exists(target)) Directory.Delete(target, recursive: true);
            if (Directory.Exists(entry)) Directory.Move(entry, target);
            else File.Move(entry, target, overwrite: true);
        }
        Directory.Delete(staged, recursive: true);
    }

    /// <summary>Sentences from a corpus file or folder as pretraining reads it (.txt, .txt.gz, .jsonl; Latin-1 where
    /// not UTF-8): its training lines joined and cut after ., ! or ? (and a closing quote or bracket); sentences of 5 to
    /// 64 words are kept, in corpus order.</summary>
    public static List<string> ReadSentences(string path)
    {
        var corpus = Corpus.Load(path, latin1Fallback: true);
        var text = Regex.Replace(string.Join(' ', corpus.Train), @"\s+", " ");
        var sentences = new List<string>();
        foreach (var sentence in Regex.Split(text, @"(?<=[.!?][""')\]]?)\s+"))
        {
            int words = sentence.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length;
            if (words is >= 5 and <= 64) sentences.Add(sentence.Trim());
        }
        return sentences;
    }

    /// <summary>
    /// (anchor, positive[, negative]) rows: JSON Lines with those fields, or CSV/TSV with that header or none (two or
    /// three text columns). With <paramref name="minScore"/>, scored pairs instead (STS-B's sentence1,sentence2,score):
    /// the pairs scoring at least that are the positives.
    /// </summary>
    public static List<string[]> ReadRows(string path, double? minScore = null)
    {
        if (minScore is double min)
            return [.. StsEvaluator.ReadPairs(path, requireScores: true).Where(p => p.Score >= min).Select(p => new[] { p.Sentence1, p.Sentence2 })];
        if (path.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase))
            return [.. JsonLinesReader.Read(path, o => JsonLinesReader.OptionalString(o, "negative") is { } negative
                ? new[] { JsonLinesReader.String(o, "anchor"), JsonLinesReader.String(o, "positive"), negative }
                : [JsonLinesReader.String(o, "anchor"), JsonLinesReader.String(o, "positive")]).Select(r => r.Value)];
        var text = File.ReadAllText(path);
        var records = path.EndsWith(".tsv", StringComparison.OrdinalIgnoreCase)
            ? CsvReader.ParseTsv(text)
            : [.. CsvReader.Parse(text, path).Where(r => !(r.Fields.Length == 1 && r.Fields[0].Length == 0))];
        if (records.Count > 0 && records[0].Fields.Select(f => f.Trim().ToLowerInvariant()).ToArray() is ["anchor", "positive", ..]) records.RemoveAt(0);
        var rows = new List<string[]>();
        foreach (var (line, fields) in records)
        {
            if (fields.Length is < 2 or > 3) throw new UnmaskException($"{path}:{line}: {fields.Length} field(s); expected anchor, positive and optionally negative.");
            if (fields.Any(string.IsNullOrWhiteSpace)) throw new UnmaskException($"{path}:{line}: an empty text.");
            rows.Add(fields);
        }
        return rows;
    }

    static List<EncodedExample> MirrorViews(ITokenizer tokenizer, List<string> texts, int maxLength, int span, Random random)
    {
        var plain = texts.Select(t => Example(tokenizer.Encode(t, maxLength: maxLength).InputIds)).ToList();
        var masked = plain.Select(e =>
        {
            var ids = (int[])e.InputIds.Clone();
            int inner = ids.Length - 2; // the special tokens at each end stay
            if (span > 0 && inner > 0)
            {
                int length = Math.Min(span, inner);
                int start = 1 + random.Next(inner - length + 1);
                for (int i = start; i < start + length; i++) ids[i] = tokenizer.MaskId;
            }
            return Example(ids);
        });
        return [.. plain, .. masked];
    }

    /// <summary>Anchors first, then the positives, then the negatives of rows that have one.</summary>
    static List<EncodedExample> PairViews(ITokenizer tokenizer, List<string[]> rows, int maxLength)
    {
        EncodedExample At(string text) => Example(tokenizer.Encode(text, maxLength: maxLength).InputIds);
        return [.. rows.Select(r => At(r[0])), .. rows.Select(r => At(r[1])), .. rows.Where(r => r.Length > 2).Select(r => At(r[2]))];
    }

    static EncodedExample Example(int[] ids) => new(ids, new int[ids.Length], [], null, null, 0);

    /// <returns>[views, hidden], normalised when the options say so.</returns>
    static Tensor Encode(PretrainedModel model, List<EncodedExample> views, int padId, EmbeddingTrainingOptions options)
    {
        var (ids, mask, types) = Classifier.Collate(views, [.. Enumerable.Range(0, views.Count)], padId, model.Device); // [views, seq] each
        var hidden = model.Encoder.forward(ids, mask, model.UsesTokenTypeIds ? types : null, null); // [views, seq, hidden]
        var pooled = SentenceEmbedder.Pool(hidden, mask, options.Pooling); // [views, hidden]
        return options.Normalize ? F.normalize(pooled, p: 2, dim: 1) : pooled;
    }

    static double Spearman(PretrainedModel model, ITokenizer tokenizer, List<SentencePair> pairs, EmbeddingTrainingOptions options, int maxLength) =>
        StsEvaluator.Spearman(StsEvaluator.Similarities(pairs, sentences =>
        {
            var vectors = new List<float[]>(sentences.Count);
            foreach (var chunk in sentences.Chunk(128))
            {
                using var scope = torch.NewDisposeScope();
                using var mode = torch.inference_mode();
                var views = chunk.Select(s => Example(tokenizer.Encode(s, maxLength: maxLength).InputIds)).ToList();
                var pooled = Encode(model, views, tokenizer.PadId, options).contiguous(); // [chunk, hidden]
                var data = pooled.cpu().data<float>().ToArray();
                int width = (int)pooled.shape[1];
                for (int i = 0; i < chunk.Length; i++) vectors.Add(data[(i * width)..((i + 1) * width)]);
            }
            return [.. vectors];
        }));
}
