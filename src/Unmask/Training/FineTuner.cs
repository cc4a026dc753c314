using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;
using Unmask.Checkpoints;
using Unmask.Data;
using Unmask.Distributed;
using Unmask.Evaluation;
using Unmask.Inference;
using Unmask.Modeling;
using Unmask.Tokenization;

namespace Unmask.Training;

/// <summary>
/// Fine-tunes a model folder into a sequence or token classifier, as transformers' run_glue.py / run_ner.py with
/// Trainer: AdamW, linear warm-up and decay, batches grouped by length and padded per batch, evaluation every N steps
/// or each epoch, the best model kept, early stopping. Each evaluation also writes a checkpoint (model, optimizer,
/// state) that <see cref="Resume"/> continues exactly: the data order is a function of (seed, epoch) and dropout is
/// reseeded per micro-batch.
/// </summary>
public static partial class FineTuner
{
    public const string StateFileName = "finetune_state.json";
    public const string BestFolderName = "best";
    const string CheckpointPrefix = "checkpoint-";

    static readonly JsonSerializerOptions Json = new() { WriteIndented = true, Converters = { new JsonStringEnumConverter() } };

    /// <summary>Where a run stands; written into every checkpoint.</summary>
    sealed record State(FineTuneOptions Options, IReadOnlyList<string> Labels, long Step, long Tokens, int Epoch, int BatchInEpoch,
        IReadOnlyList<FineTuneEvaluation> History, FineTuneEvaluation? Best, int EvaluationsWithoutImprovement, double ElapsedSeconds);

    public static FineTuneResult Run(FineTuneOptions options, IProgress<FineTuneProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        options.Validate();
        var output = Path.GetFullPath(options.OutputDir);
        if (Directory.Exists(output) && Directory.EnumerateFileSystemEntries(output).Any())
            throw new UnmaskException($"{output}: the output folder is not empty; choose another or resume with --resume {output}.");
        // Under mpiexec no rank writes into the folder before every rank has found it empty.
        MpiWorld.Current.Barrier();
        return Train(options, null, progress, cancellationToken);
    }

    /// <summary>Continues the run whose newest checkpoint is in <paramref name="path"/> (a run folder or a checkpoint).</summary>
    /// <param name="device">Where to continue (see <see cref="ComputeDevice"/>); null: auto.</param>
    public static FineTuneResult Resume(string path, IProgress<FineTuneProgress>? progress = null, CancellationToken cancellationToken = default,
        Device? device = null)
    {
        var checkpoint = File.Exists(Path.Combine(path, StateFileName)) ? path
            : Checkpoints(path).LastOrDefault().Folder ?? throw new UnmaskException($"{path}: no fine-tuning checkpoint to resume from.");
        var state = JsonSerializer.Deserialize<State>(File.ReadAllText(Path.Combine(checkpoint, StateFileName)), Json)
            ?? throw new UnmaskException($"{checkpoint}: {StateFileName} is empty.");
        return Train(state.Options with { Device = device }, (checkpoint, state), progress, cancellationToken);
    }

    static FineTuneResult Train(FineTuneOptions options, (string Folder, State State)? resume, IProgress<FineTuneProgress>? progress,
        CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var output = Path.GetFullPath(options.OutputDir);
        var task = options.Task;
        var head = task switch
        {
            ClassificationTask.TokenClassification => HeadKind.TokenClassification,
            ClassificationTask.Prompt => HeadKind.MaskedLm,
            _ => HeadKind.SequenceClassification,
        };
        progress?.Report(new FineTuneProgress("reading data", 0, 0, null, null));
        var tokenizer = TokenizerLoader.Load(resume?.Folder ?? options.ModelDir);
        var pet = task == ClassificationTask.Prompt ? new PetHead(options, tokenizer) : null;
        void WriteExtraFiles(string folder)
        {
            tokenizer.Save(folder);
            pet?.Save(folder);
        }
        var (trainTexts, trainWords) = Read(options.TrainPath, options);
        var (validTexts, validWords) = options.ValidationPath is { } v ? Read(v, options) : ([], []);
        if (options.MaxTrainExamples is int limit)
        {
            var pick = new Random(options.Seed);
            trainTexts = [.. trainTexts.OrderBy(_ => pick.Next()).Take(limit)];
            trainWords = [.. trainWords.OrderBy(_ => pick.Next()).Take(limit)];
        }

        var labels = resume?.State.Labels ?? pet?.Labels ?? ChooseLabels(options, head, trainTexts, trainWords);
        var device = options.Device ?? ComputeDevice.Default;
        PretrainedModel built;
        using (Parameters.On(device)) built = resume is { } r ? ModelLoader.Load(r.Folder) : CreateModel(options, head, labels);
        using var model = built;
        model.ComputeDtype = ResolvePrecision(options, model.HfConfig, device) == Precision.Bf16 ? ComputeDtype.BFloat16 : ComputeDtype.Float32;

        var maxLength = Math.Min(options.MaxSeqLength, model.MaxSequenceLength);
        var train = pet?.Encode(trainTexts, maxLength) ?? Encode(tokenizer, task, labels, trainTexts, trainWords, maxLength, options.LabelAllPieces);
        var valid = pet?.Encode(validTexts, maxLength) ?? Encode(tokenizer, task, labels, validTexts, validWords, maxLength, labelAllPieces: false);
        IReadOnlyList<IReadOnlyList<string>> goldTags = [.. validWords.Select(s => s.Tags)];

        var trainable = TrainableParameters(model, options.FreezeEncoder);
        using var optimizer = new AdamW(ParameterGroups(trainable, options.WeightDecay, options.LayerLrDecay));
        int batchesPerEpoch = (train.Count + options.BatchSize - 1) / options.BatchSize;
        long stepsPerEpoch = (batchesPerEpoch + options.GradientAccumulation - 1) / options.GradientAccumulation;
        long totalSteps = stepsPerEpoch * options.Epochs;
        var schedule = new LearningRateSchedule(options.LearningRate, options.Warmup, DecayKind.Linear);

        var state = resume?.State ?? new State(options, labels, 0, 0, 0, 0, [], null, 0, 0);
        if (resume is { } resumed)
            optimizer.LoadState(SafeTensors.Load(Path.Combine(resumed.Folder, TrainerState.OptimizerFileName)), state.Step, resumed.Folder);
        // Under mpiexec each rank computes its part of every batch and rank 0 alone evaluates and writes.
        var world = MpiWorld.Current;
        world.Broadcast([.. trainable.Select(p => p.Parameter)]);
        Directory.CreateDirectory(output);
        using var metrics = !world.IsRoot ? MetricsLog.InMemory()
            : resume is null ? MetricsLog.Create(Path.Combine(output, "metrics.jsonl"))
            : MetricsLog.Open(Path.Combine(output, "metrics.jsonl"), state.Step);
        var history = state.History.ToList();
        var best = state.Best;
        int patience = state.EvaluationsWithoutImprovement;
        long step = state.Step;
        long tokens = state.Tokens; // real (unpadded) training tokens seen
        bool stoppedEarly = false;
        double elapsedBefore = state.ElapsedSeconds;
        double lossSum = 0, stepLoss = 0;
        int lossCount = 0;

        // Evaluates, keeps the best model, writes a checkpoint; false when early stopping says stop. Under mpiexec rank
        // 0 decides and every rank learns its answer.
        long evaluatedAt = history.Count > 0 ? history[^1].Step : -1; // the same on every rank, unlike the history
        bool EvaluateAndCheckpoint(int epoch, int batchInEpoch)
        {
            evaluatedAt = step;
            return world.RootDecides(() => EvaluateAndCheckpointHere(epoch, batchInEpoch));
        }

        bool EvaluateAndCheckpointHere(int epoch, int batchInEpoch)
        {
            LogTrainingLoss();
            if (valid.Count > 0)
            {
                progress?.Report(new FineTuneProgress("evaluating", step, totalSteps, null, null));
                model.eval();
                var evaluation = pet?.Evaluate(model, valid, options.EvalBatchSize, cancellationToken)
                    ?? ClassificationEvaluator.Evaluate(model, tokenizer.PadId, task, valid, goldTags, options.EvalBatchSize, cancellationToken);
                model.train();
                var record = new FineTuneEvaluation(step, (double)step / stepsPerEpoch, evaluation.Metrics);
                history.Add(record);
                metrics.Write(new MetricsRecord("validation", step, tokens, evaluation.Metrics));
                var primary = ClassificationEvaluation.PrimaryMetric(task);
                if (best is null || evaluation.Metrics[primary] > best.Metrics[primary])
                {
                    best = record;
                    patience = 0;
                    ModelFolder.Save(Path.Combine(output, BestFolderName), model, WriteExtraFiles);
                }
                else patience++;
                progress?.Report(new FineTuneProgress("evaluated", step, totalSteps, null, evaluation.Metrics[primary]));
            }
            var now = new State(options, labels, step, tokens, epoch, batchInEpoch, history, best, patience, elapsedBefore + clock.Elapsed.TotalSeconds);
            SaveCheckpoint(output, model, WriteExtraFiles, optimizer, now);
            LossPlotFor(output, metrics.Records, task);
            return options.EarlyStoppingPatience is not int limit || patience < limit;
        }

        // The mean loss since the last line; evaluations flush it too, so a resumed run logs what an uninterrupted one does.
        void LogTrainingLoss()
        {
            if (lossCount == 0) return;
            metrics.Write(new MetricsRecord("train", step, tokens, new Dictionary<string, double>
            {
                ["loss"] = lossSum / lossCount,
                ["learning_rate"] = schedule.At((double)(step - 1) / totalSteps),
                ["epoch"] = (double)step / stepsPerEpoch,
                ["world_size"] = world.Size,
            }));
            progress?.Report(new FineTuneProgress("training", step, totalSteps, lossSum / lossCount, null));
            (lossSum, lossCount) = (0, 0);
        }

        model.train();
        bool done = false;
        for (int epoch = state.Epoch; epoch < options.Epochs && !done; epoch++)
        {
            var batches = ClassificationData.LengthGroupedBatches(train, options.BatchSize, options.Seed, epoch);
            int first = epoch == state.Epoch ? state.BatchInEpoch : 0;
            for (int b = first; b < batches.Count; b++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                using (var scope = NewDisposeScope())
                {
                    // Dropout draws from the global generator: seeding it per micro-batch makes a resumed run exact.
                    ComputeDevice.Seed(options.Seed * 1_000_003L + epoch * 100_003L + b);
                    var (rows, share) = world.Size == 1 ? (batches[b], 1.0) : RankRows(train, batches[b], task, world);
                    var (ids, mask, types) = Classifier.Collate(train, rows, tokenizer.PadId, model.Device);
                    var labelTensor = Targets(train, rows, task, ids.shape[1], ids.device);
                    var loss = pet?.Loss(model, ids, mask, types, labelTensor) ?? model.Forward(ids, mask, types, labels: labelTensor).Loss!;
                    (loss * share / options.GradientAccumulation).backward();
                    stepLoss += loss.item<float>() * share;
                    lossCount++;
                }
                tokens += batches[b].Sum(i => (long)train[i].InputIds.Length);
                bool lastOfEpoch = b == batches.Count - 1;
                if ((b + 1) % options.GradientAccumulation != 0 && !lastOfEpoch) continue;

                if (world.Size > 1)
                {
                    // Each rank's loss is its rows' share of the batch's, so the summed gradients are one process's.
                    world.AllReduceSum([.. trainable.Select(p => p.Parameter.grad).OfType<Tensor>()]);
                    var total = new[] { stepLoss };
                    world.AllReduceSum(total);
                    stepLoss = total[0];
                }
                lossSum += stepLoss;
                stepLoss = 0;
                nn.utils.clip_grad_norm_(trainable.Select(p => (TorchSharp.Modules.Parameter)p.Parameter), options.MaxGradNorm);
                optimizer.StepWith(schedule.At((double)step / totalSteps));
                foreach (var (_, p) in trainable) p.grad?.zero_();
                step++;
                if (step % 10 == 0) LogTrainingLoss();
                bool limitReached = options.MaxSteps is long max && step >= max;
                bool evaluateNow = options.EvalEvery is int every ? step % every == 0 : lastOfEpoch;
                if (evaluateNow || limitReached)
                {
                    var (nextEpoch, nextBatch) = lastOfEpoch ? (epoch + 1, 0) : (epoch, b + 1);
                    if (!EvaluateAndCheckpoint(nextEpoch, nextBatch)) stoppedEarly = true;
                }
                if (stoppedEarly || limitReached)
                {
                    done = true;
                    break;
                }
            }
        }
        if (evaluatedAt != step) EvaluateAndCheckpoint(options.Epochs, 0);
        if (!world.IsRoot)
        {
            // The other ranks wait for rank 0's final folder, then return what they know (it holds the history).
            world.Barrier();
            return new FineTuneResult(output, best, step, history, labels, TimeSpan.FromSeconds(elapsedBefore + clock.Elapsed.TotalSeconds), stoppedEarly);
        }

        Publish(output, model, WriteExtraFiles, best is not null);
        var result = new FineTuneResult(output, best, step, history, labels, TimeSpan.FromSeconds(elapsedBefore + clock.Elapsed.TotalSeconds), stoppedEarly);
        AtomicFile.WriteAllText(Path.Combine(output, "eval_results.json"), JsonSerializer.Serialize(new
        {
            task = task.ToString(),
            best_step = best?.Step,
            best = best?.Metrics,
            steps = step,
            stopped_early = stoppedEarly,
            train_seconds = result.Elapsed.TotalSeconds,
            train_examples = train.Count,
            validation_examples = valid.Count,
        }, Json) + "\n");
        progress?.Report(new FineTuneProgress("done", step, totalSteps, null, best is null ? null : best.Metrics[ClassificationEvaluation.PrimaryMetric(task)]));
        world.Barrier();
        return result;
    }

    static (List<TextExample> Texts, List<WordExample> Words) Read(string path, FineTuneOptions options) =>
        options.Task == ClassificationTask.TokenClassification
            ? ([], [.. LabelledData.ReadWords(path)])
            : ([.. LabelledData.ReadTexts(path, options.Columns)], []);

    static List<EncodedExample> Encode(ITokenizer tokenizer, ClassificationTask task, IReadOnlyList<string> labels,
        List<TextExample> texts, List<WordExample> words, int maxLength, bool labelAllPieces) =>
        task == ClassificationTask.TokenClassification
            ? ClassificationData.EncodeWords(tokenizer, words, labels, maxLength, labelAllPieces)
            : ClassificationData.EncodeTexts(tokenizer, texts, task, labels, maxLength);

    /// <summary>The training data's labels; a classifier folder of the same head keeps its own, which must cover them.</summary>
    static IReadOnlyList<string> ChooseLabels(FineTuneOptions options, HeadKind head, List<TextExample> texts, List<WordExample> words)
    {
        var fromData = ClassificationData.LabelsOf(options.Task, texts, words);
        var configPath = Path.Combine(options.ModelDir, ModelFolder.ConfigFileName);
        if (options.RandomInit || !File.Exists(configPath)) return fromData;
        string architecture;
        try
        {
            architecture = ModelLoader.Identify(configPath).Architecture;
        }
        catch (UnmaskException)
        {
            return fromData;
        }
        if (ModelLoader.HeadOf(architecture) != head) return fromData;
        var folderLabels = ModelFamilies.LoadConfig(configPath).Labels;
        var missing = fromData.Where(l => !folderLabels.Contains(l)).ToList();
        if (options.Task != ClassificationTask.Regression && missing.Count > 0)
            throw new UnmaskException($"{options.TrainPath}: {fromData.Count} labels, but the classifier in {options.ModelDir} has num_labels {folderLabels.Count} "
                + $"({string.Join(", ", folderLabels)}); not among them: {string.Join(", ", missing.Take(10))}.");
        return folderLabels;
    }

    /// <summary>The model to train: the folder's encoder under the task's head (a classifier folder of the same head
    /// keeps its head), or with --random-init the same architecture from random weights; the head is seeded.</summary>
    static PretrainedModel CreateModel(FineTuneOptions options, HeadKind head, IReadOnlyList<string> labels)
    {
        var problemType = ClassificationData.ProblemType(options.Task);
        IHfConfig Labelled(IHfConfig c) => ModelFamilies.WithDropout(head == HeadKind.MaskedLm || (c.Labels.SequenceEqual(labels) && c.ProblemType == problemType)
            ? c
            : c.WithLabels(labels, problemType), options.Dropout);
        ComputeDevice.Seed(options.Seed);
        if (options.RandomInit)
            return ModelFamilies.Create(Labelled(ModelFamilies.LoadConfig(Path.Combine(options.ModelDir, ModelFolder.ConfigFileName))), head);
        return ModelLoader.LoadWithReport(options.ModelDir, head, Labelled).Model;
    }

    static Precision ResolvePrecision(FineTuneOptions options, IHfConfig config, Device device) => options.Precision switch
    {
        Precision.Auto => MatmulBenchmark.Bf16IsFaster(config.HiddenSize, config.IntermediateSize, device) ? Precision.Bf16 : Precision.Fp32,
        var chosen => chosen,
    };

    /// <summary>The parameters the optimizer updates: all of them, or with a frozen encoder everything outside it
    /// (BERT's pooler, which masked-LM checkpoints lack, trains with the head).</summary>
    static List<(string Name, Tensor Parameter)> TrainableParameters(PretrainedModel model, bool freezeEncoder)
    {
        var all = model.NamedParametersOnce();
        var prefix = model.EncoderPrefix + ".";
        var trainable = new List<(string, Tensor)>();
        foreach (var (name, parameter) in all)
        {
            bool frozen = freezeEncoder && name.StartsWith(prefix, StringComparison.Ordinal) && !name.StartsWith(prefix + "pooler.", StringComparison.Ordinal);
            parameter.requires_grad = !frozen;
            if (!frozen) trainable.Add((name, parameter));
        }
        return trainable;
    }

    [GeneratedRegex(@"\.layers?\.(\d+)\.")]
    private static partial Regex LayerIndex();

    /// <summary>Decay groups (no decay on biases and norms), split further by depth when layer-wise decay is on.</summary>
    static IReadOnlyList<AdamW.Group> ParameterGroups(List<(string Name, Tensor Parameter)> parameters, double weightDecay, double layerDecay)
    {
        var groups = AdamW.DecayGroups(parameters, weightDecay);
        if (layerDecay >= 1) return groups;
        int Depth(string name)
        {
            var match = LayerIndex().Match(name);
            if (match.Success) return int.Parse(match.Groups[1].Value) + 1;
            return name.Contains(".embeddings.", StringComparison.Ordinal) || name.Contains("embeddings_project", StringComparison.Ordinal) ? 0 : -1;
        }
        int layers = parameters.Select(p => Depth(p.Name)).DefaultIfEmpty(0).Max();
        var split = new List<AdamW.Group>();
        foreach (var group in groups)
            foreach (var byDepth in group.Parameters.GroupBy(p => Depth(p.Name) is var d && d < 0 ? layers + 1 : d))
                split.Add(new AdamW.Group([.. byDepth], group.WeightDecay, Math.Pow(layerDecay, layers + 1 - byDepth.Key)));
        return split;
    }

    /// <summary>
    /// This rank's contiguous part of a batch and its share of the batch's loss: its labelled tokens over the batch's
    /// (token classification), else its rows over the batch's. A rank left without rows or labels runs the batch's
    /// first row with share 0, so every rank's backward pass reaches the same parameters.
    /// </summary>
    static (int[] Rows, double Share) RankRows(IReadOnlyList<EncodedExample> examples, int[] rows, ClassificationTask task, MpiWorld world)
    {
        int start = rows.Length * world.Rank / world.Size, end = rows.Length * (world.Rank + 1) / world.Size;
        var mine = rows[start..end];
        long Units(int[] part) => task == ClassificationTask.TokenClassification
            ? part.Sum(r => (long)examples[r].TokenLabels!.Count(l => l != -100)) : part.Length;
        long total = Units(rows), own = Units(mine);
        return own == 0 || total == 0 ? (rows[..1], 0.0) : (mine, (double)own / total);
    }

    static Tensor Targets(IReadOnlyList<EncodedExample> examples, int[] rows, ClassificationTask task, long length, Device device)
    {
        switch (task)
        {
            case ClassificationTask.TokenClassification or ClassificationTask.Prompt:
                var labels = new long[rows.Length * length];
                Array.Fill(labels, -100L);
                for (int b = 0; b < rows.Length; b++)
                {
                    var row = examples[rows[b]].TokenLabels!;
                    Array.Copy(row, 0, labels, b * length, row.Length);
                }
                return tensor(labels, [rows.Length, length], device: device);
            case ClassificationTask.Classification:
                return tensor(rows.Select(r => (long)examples[r].Targets[0]).ToArray(), device: device);
            case ClassificationTask.Regression:
                return tensor(rows.Select(r => examples[r].Targets[0]).ToArray(), device: device);
            default:
                int width = examples[rows[0]].Targets.Length;
                return tensor(rows.SelectMany(r => examples[r].Targets).ToArray(), [rows.Length, width], device: device);
        }
    }

    static void SaveCheckpoint(string output, PretrainedModel model, Action<string> writeExtraFiles, AdamW optimizer, State state)
    {
        var temp = Path.Combine(output, $".{CheckpointPrefix}tmp-{Guid.NewGuid():N}");
        var modelFolder = Path.Combine(temp, "model");
        try
        {
            ModelFolder.Save(modelFolder, model, writeExtraFiles);
            foreach (var file in Directory.GetFiles(modelFolder)) File.Move(file, Path.Combine(temp, Path.GetFileName(file)));
            Directory.Delete(modelFolder);
            SafeTensors.Save(Path.Combine(temp, TrainerState.OptimizerFileName), optimizer.StateTensors());
            File.WriteAllText(Path.Combine(temp, StateFileName), JsonSerializer.Serialize(state, Json) + "\n");
            var target = Path.Combine(output, CheckpointPrefix + state.Step);
            if (Directory.Exists(target)) Directory.Delete(target, recursive: true);
            Directory.Move(temp, target);
        }
        catch
        {
            if (Directory.Exists(temp)) Directory.Delete(temp, recursive: true);
            throw;
        }
        foreach (var (folder, step) in Checkpoints(output))
            if (step != state.Step) Directory.Delete(folder, recursive: true);
    }

    static List<(string Folder, long Step)> Checkpoints(string output) =>
        !Directory.Exists(output) ? [] :
        [.. Directory.GetDirectories(output, CheckpointPrefix + "*")
            .Select(d => (Folder: d, Ok: long.TryParse(Path.GetFileName(d)[CheckpointPrefix.Length..], out var s), Step: s))
            .Where(c => c.Ok && File.Exists(Path.Combine(c.Folder, StateFileName))).OrderBy(c => c.Step).Select(c => (c.Folder, c.Step))];

    /// <summary>Puts the final model into the run folder: the best one when validation chose one, else the last.
    /// Files are renamed into place one by one, config.json last, so a reader never pairs a new config with old weights
    /// that do not fit it; the checkpoints are removed after.</summary>
    static void Publish(string output, PretrainedModel model, Action<string> writeExtraFiles, bool haveBest)
    {
        var source = Path.Combine(output, BestFolderName);
        if (!haveBest || !Directory.Exists(source)) ModelFolder.Save(source, model, writeExtraFiles);
        var files = Directory.GetFiles(source).OrderBy(f => Path.GetFileName(f) == ModelFolder.ConfigFileName).ToList();
        foreach (var file in files) File.Move(file, Path.Combine(output, Path.GetFileName(file)), overwrite: true);
        Directory.Delete(source, recursive: true);
        foreach (var (folder, _) in Checkpoints(output)) Directory.Delete(folder, recursive: true);
    }

    static void LossPlotFor(string output, IReadOnlyList<MetricsRecord> records, ClassificationTask task)
    {
        var primary = ClassificationEvaluation.PrimaryMetric(task);
        var plot = new ScottPlot.Plot();
        var train = records.Where(r => r.Split == "train" && r.Values.ContainsKey("loss")).ToList();
        if (train.Count > 0)
        {
            var loss = plot.Add.Scatter(train.Select(r => (double)r.Step).ToArray(), train.Select(r => r.Values["loss"]).ToArray());
            loss.LegendText = "training loss";
            loss.MarkerSize = 0;
        }
        var valid = records.Where(r => r.Split == "validation" && r.Values.ContainsKey(primary)).ToList();
        if (valid.Count > 0)
        {
            var metric = plot.Add.Scatter(valid.Select(r => (double)r.Step).ToArray(), valid.Select(r => r.Values[primary]).ToArray());
            metric.LegendText = $"validation {primary}";
            metric.Axes.YAxis = plot.Axes.Right;
            plot.Axes.Right.Label.Text = primary;
        }
        plot.XLabel("optimizer step");
        plot.YLabel("training loss");
        plot.ShowLegend();
        var path = Path.Combine(output, "training.png");
        var temp = path + ".tmp.png";
        plot.SavePng(temp, 900, 540);
        File.Move(temp, path, overwrite: true);
    }

    /// <summary>
    /// PET's objective (Schick and Schütze 2021): the masked-LM head at the pattern's mask, each label's logit the
    /// log-sum-exp of its words' logits there, cross-entropy over the labels. Label words must be single pieces.
    /// </summary>
    sealed class PetHead
    {
        readonly ITokenizer _tokenizer;
        readonly PromptTemplate _template;
        readonly Verbalizer _verbalizer;
        readonly long[][] _wordIds;

        public PetHead(FineTuneOptions options, ITokenizer tokenizer)
        {
            _tokenizer = tokenizer;
            _template = PromptTemplate.Parse(options.Template!, tokenizer.MaskToken);
            _verbalizer = Verbalizer.Load(options.VerbalizerPath!);
            _wordIds = [.. _verbalizer.Labels.Select(label => _verbalizer.Words[label].Select(word =>
            {
                var ids = PromptClassifier.WordIds(tokenizer, word, _template.MaskAfterSpace, options.VerbalizerPath!);
                return ids.Length == 1 ? (long)ids[0]
                    : throw new UnmaskException($"{options.VerbalizerPath}: PET trains one-piece label words, but '{word}' splits into "
                        + $"[{string.Join(" ", ids.Select(tokenizer.IdToToken))}]; choose a word the vocabulary holds whole.");
            }).ToArray())];
        }

        public IReadOnlyList<string> Labels => _verbalizer.Labels;

        public List<EncodedExample> Encode(List<TextExample> texts, int maxLength) =>
            ClassificationData.EncodePrompts(_tokenizer, texts, _template, Labels, maxLength);

        public void Save(string folder) => _template.Save(folder, _verbalizer.Labels, _verbalizer.Words);

        /// <returns>[n, labels] from the head's logits at the n masks.</returns>
        Tensor LabelLogits(Tensor logits) =>
            stack(_wordIds.Select(ids => logits.index_select(1, tensor(ids, device: logits.device)).logsumexp(1)).ToArray(), 1);

        public Tensor Loss(PretrainedModel model, Tensor ids, Tensor mask, Tensor types, Tensor labels)
        {
            var at = labels.ne(-100); // [batch, seq], one mask per row
            using var output = model.Forward(ids, mask, types, positions: at);
            return F.cross_entropy(LabelLogits(output.Logits), labels.masked_select(at));
        }

        public ClassificationEvaluation Evaluate(PretrainedModel model, IReadOnlyList<EncodedExample> examples, int batchSize, CancellationToken ct)
        {
            var predicted = new int[examples.Count];
            using (var mode = inference_mode())
                foreach (var rows in ClassificationData.SortedBatches(examples, batchSize))
                {
                    ct.ThrowIfCancellationRequested();
                    using var scope = NewDisposeScope();
                    var (ids, mask, types) = Classifier.Collate(examples, rows, _tokenizer.PadId, model.Device);
                    var labels = Targets(examples, rows, ClassificationTask.Prompt, ids.shape[1], ids.device);
                    using var output = model.Forward(ids, mask, types, positions: labels.ne(-100));
                    var best = LabelLogits(output.Logits).argmax(1).cpu().data<long>().ToArray(); // [rows]
                    for (int r = 0; r < rows.Length; r++) predicted[rows[r]] = (int)best[r];
                }
            var scores = ClassificationMetrics.Classification([.. examples.Select(e => (int)e.Targets[0])], predicted);
            return new ClassificationEvaluation(ClassificationTask.Prompt, examples.Count,
                new Dictionary<string, double> { ["accuracy"] = scores.Accuracy, ["macro_f1"] = scores.MacroF1, ["mcc"] = scores.Mcc }, null);
        }
    }
}
