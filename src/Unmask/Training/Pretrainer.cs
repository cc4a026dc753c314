using System.Diagnostics;
using Unmask.Checkpoints;
using Unmask.Data;
using Unmask.Masking;
using Unmask.Modeling;
using Unmask.Tokenization;

namespace Unmask.Training;

/// <summary>Where a run stands, reported to the caller after every optimizer step and at each phase change.</summary>
public sealed record PretrainProgress(
    string Phase, long Step, long Tokens, double Fraction, double? Loss, double TokensPerSecond, TimeSpan Elapsed, TimeSpan? Remaining);

/// <summary>A validation pass on the fixed masked copy of the validation split.</summary>
public sealed record ValidationResult(double Loss, double MaskedAccuracy, double BaselineAccuracy, long MaskedTokens)
{
    /// <summary>The objective's own validation metrics (ELECTRA's rtd_accuracy, MDLM's elbo_nll, ...).</summary>
    public IReadOnlyDictionary<string, double> ObjectiveMetrics { get; init; } = new Dictionary<string, double>();
}

public sealed record PretrainResult(
    string OutputDirectory, long Steps, long Tokens, TimeSpan TrainingTime, double TokensPerSecond, ValidationResult Validation,
    bool Interrupted, string Precision, string? CheckpointDirectory);

/// <summary>
/// Runs masked-language-model pretraining: corpus → tokenizer → token store → packed batches → objective (MLM with a
/// masking strategy, or MDLM, on a BertForMaskedLM; or ELECTRA's generator and discriminator) with sparse prediction →
/// AdamW. Writes Hugging Face folders (final model in the output folder, intermediate ones in checkpoint-&lt;step&gt;;
/// ELECTRA's two models in generator/ and discriminator/ beneath those), metrics.jsonl and loss.png. Cancelling saves
/// a checkpoint first.
/// </summary>
public static class Pretrainer
{
    const int ValidationSeed = 0x5eed;

    public static PretrainResult Run(PretrainOptions options, IProgress<PretrainProgress>? progress = null, CancellationToken ct = default)
        => Run(options, resumeFrom: null, progress, ct);

    /// <summary>Continues the run saved in <paramref name="checkpoint"/> (a checkpoint-&lt;step&gt; folder or a run folder).</summary>
    public static PretrainResult Resume(string checkpoint, Func<PretrainOptions, PretrainOptions>? adjust = null,
        IProgress<PretrainProgress>? progress = null, CancellationToken ct = default)
    {
        var folder = TrainerState.FindCheckpoint(checkpoint);
        var state = TrainerState.Load(folder);
        var options = adjust is null ? state.Options : adjust(state.Options);
        return Run(options, (folder, state), progress, ct);
    }

    static PretrainResult Run(PretrainOptions options, (string Folder, TrainerState State)? resumeFrom,
        IProgress<PretrainProgress>? progress, CancellationToken ct)
    {
        options.Validate();
        // A resumed run finds its folder from anywhere, so the state records an absolute path.
        options = options with { Output = Path.GetFullPath(options.Output) };
        var clock = Stopwatch.StartNew();
        void Phase(string name) => progress?.Report(new PretrainProgress(name, 0, 0, 0, null, 0, clock.Elapsed, null));

        Phase("reading corpus");
        var corpus = Corpus.Load(options.Corpus, ct, options.CorpusLatin1Fallback);
        if (corpus.Validation.Count == 0)
            throw new UnmaskException($"corpus '{corpus.Name}' has no validation lines: it needs more text");

        // A resumed run continues its checkpoint; --init-from continues a Hugging Face model with its own tokenizer.
        var modelFolder = resumeFrom?.Folder ?? options.InitFrom;
        bool electra = options.Objective == ObjectiveKind.Electra;
        ITokenizer tokenizer;
        if (modelFolder is not null) tokenizer = TokenizerLoader.Load(electra ? Path.Combine(modelFolder, ElectraModels.DiscriminatorFolder) : modelFolder);
        else
        {
            Phase("training tokenizer");
            tokenizer = WordPieceTrainer.Train(corpus.Train,
                new WordPieceTrainerOptions(VocabSize: options.VocabSize, LowerCase: options.LowerCase), null, ct);
        }

        Phase("tokenizing");
        var cache = TokenStoreCache.Directory(corpus.Name + "/" + corpus.ContentHash, tokenizer.Fingerprint);
        using var trainStore = TokenStore.OpenOrBuild(Path.Combine(cache, "train"), corpus.Train,
            t => tokenizer.Encode(t, addSpecialTokens: false).InputIds, new TokenStoreInfo(tokenizer.Fingerprint, corpus.Name + "/train", tokenizer.VocabSize), null, ct);
        using var validStore = TokenStore.OpenOrBuild(Path.Combine(cache, "validation"), corpus.Validation,
            t => tokenizer.Encode(t, addSpecialTokens: false).InputIds, new TokenStoreInfo(tokenizer.Fingerprint, corpus.Name + "/validation", tokenizer.VocabSize), null, ct);

        var trainSequences = new SequencePacker(trainStore, options.MaxSeqLength, tokenizer.ClsId, tokenizer.SepId);
        var validSequences = new SequencePacker(validStore, options.MaxSeqLength, tokenizer.ClsId, tokenizer.SepId);
        if (trainSequences.Count == 0 || validSequences.Count == 0)
            throw new UnmaskException(
                $"corpus '{corpus.Name}' is too small: its {(trainSequences.Count == 0 ? "training" : "validation")} split does not fill one sequence of {options.MaxSeqLength} tokens");

        // ELECTRA sizes its discriminator from this config; a resumed pair is then read back from its own folders.
        var config = modelFolder is not null && !electra ? BertFamilyConfig(modelFolder)
            : options.ConfigPath is { } cp
            ? BertConfig.Load(cp) with { VocabSize = tokenizer.VocabSize }
            : BertConfig.Preset(options.Size, tokenizer.VocabSize) with
            {
                HiddenDropoutProb = options.PresetDropout, AttentionProbsDropoutProb = options.PresetDropout,
            };
        if (config.MaxSequenceLength < options.MaxSeqLength)
            throw new UnmaskException($"max sequence length {options.MaxSeqLength} exceeds the model's {config.MaxSequenceLength} positions");
        if (tokenizer.VocabSize > config.VocabSize)
            throw new UnmaskException($"the tokenizer has {tokenizer.VocabSize} tokens but the model's vocab_size is {config.VocabSize}");

        // The benchmark draws random matrices, so it runs before seeding the weights' initialisation.
        var precision = ChoosePrecision(options.Precision, config);
        torch.manual_seed(options.Seed);
        var computeDtype = precision == "bf16" ? ComputeDtype.BFloat16 : ComputeDtype.Float32;
        var vocab = MaskingVocabulary.FromTokenizer(tokenizer, config.VocabSize);
        IObjective objective;
        TrainedModels models;
        if (electra)
        {
            var (generator, discriminator) = modelFolder is not null ? ElectraModels.Load(modelFolder)
                : ElectraModels.Create(ElectraModels.DiscriminatorConfig(config), options.GeneratorSize);
            if (modelFolder is null && options.AttentionInit == AttentionInit.Local)
            {
                discriminator.InitialiseLocalAttention();
                generator.InitialiseLocalAttention();
            }
            (discriminator.ComputeDtype, generator.ComputeDtype) = (computeDtype, computeDtype);
            models = ElectraModels.AsTrained(generator, discriminator);
            objective = new ElectraObjective(generator, discriminator,
                CreateMasking(options.EffectiveMasking, vocab, tokenizer, trainStore, cache, Phase, ct), vocab, options.DiscriminatorWeight);
        }
        else
        {
            var model = modelFolder is not null ? ModelFolder.LoadBert(modelFolder) : BertForMaskedLM.Create(config);
            if (modelFolder is null && options.AttentionInit == AttentionInit.Local) model.InitialiseLocalAttention();
            model.ComputeDtype = computeDtype;
            models = TrainedModels.Single(model);
            objective = options.Objective == ObjectiveKind.Mdlm ? new MdlmObjective(model, vocab)
                : new MlmObjective(model, CreateMasking(options.Masking, vocab, tokenizer, trainStore, cache, Phase, ct));
        }
        using var disposeModels = models;
        models.SetTraining(true);

        using var optimizer = new AdamW(AdamW.DecayGroups(models.Parameters, options.WeightDecay), options.AdamBeta1, options.AdamBeta2, options.AdamEpsilon);
        var schedule = new LearningRateSchedule(options.LearningRate, options.WarmupRatio, options.Decay);

        long step = 0, tokens = 0;
        var previousElapsed = TimeSpan.Zero;
        var position = new BatcherPosition(0, 0);
        if (resumeFrom is { } res)
        {
            optimizer.LoadState(TrainerState.LoadOptimizer(res.Folder), res.State.Step, res.Folder);
            (step, tokens, previousElapsed, position) = (res.State.Step, res.State.Tokens, res.State.Elapsed, res.State.Position);
        }

        Directory.CreateDirectory(options.Output);
        var metricsPath = Path.Combine(options.Output, "metrics.jsonl");
        using var metrics = resumeFrom is null ? MetricsLog.Create(metricsPath) : MetricsLog.Open(metricsPath, step);

        // Validation keeps BERT's random masking at the start rate and split asked for, whatever the strategy or the
        // objective's own corruption (ELECTRA's 85/0/15), so runs stay comparable.
        var (validationIds, validation) = PrepareValidation(validSequences, options,
            new RandomMasking(options.Masking with { Strategy = MaskingStrategies.Random, Schedule = new() }, vocab));
        long baselineId = MostFrequentToken(trainStore, vocab);

        using var batcher = new Batcher(trainSequences, options.BatchSize, options.Seed, position);
        var loopClock = Stopwatch.StartNew();
        TimeSpan Elapsed() => previousElapsed + loopClock.Elapsed;
        double lastEvalMark = Math.Floor(options.Progress(step, tokens, Elapsed()) / options.EvalFraction);
        double lossWindow = 0;
        var partsWindow = new Dictionary<string, double>();
        int lossCount = 0;
        long tokensAtLoopStart = tokens;
        double startFraction = options.Progress(step, tokens, previousElapsed);
        bool interrupted = false;
        ValidationResult? lastValidation = null;

        void SaveCheckpoint(string folder)
        {
            var state = new TrainerState(options, step, tokens, Elapsed(), batcher.Position);
            CheckpointWriter.Save(folder, models.Folders, tokenizer, state, optimizer);
        }

        while (options.Progress(step, tokens, Elapsed()) < 1)
        {
            if (ct.IsCancellationRequested)
            {
                interrupted = true;
                break;
            }
            double fraction = options.Progress(step, tokens, Elapsed());
            double lr = schedule.At(fraction);
            double stepLoss = 0;
            using (var scope = NewDisposeScope())
            {
                // Seeding by step makes dropout and masking a function of the step alone, so a resumed run repeats exactly.
                torch.manual_seed(options.Seed * 1_000_003L + step);
                var rng = new Random(unchecked((int)(options.Seed * 2_654_435_761L + step * 40_503L)));
                for (int micro = 0; micro < options.GradientAccumulationSteps; micro++)
                {
                    var batch = batcher.Next(ct);
                    var result = objective.Loss(batch.InputIds, batch.BatchSize, batch.SeqLength, rng, fraction);
                    var loss = result.Loss / options.GradientAccumulationSteps;
                    // An objective may find nothing to predict in a micro-batch; its zero loss has no graph to run back through.
                    if (loss.requires_grad) loss.backward();
                    stepLoss += loss.item<float>();
                    foreach (var (name, part) in result.Parts)
                        partsWindow[name] = partsWindow.GetValueOrDefault(name) + part.item<float>() / options.GradientAccumulationSteps;
                }
                nn.utils.clip_grad_norm_(models.Parameters.Select(p => (TorchSharp.Modules.Parameter)p.Parameter), options.MaxGradNorm);
                optimizer.StepWith(lr);
                models.ZeroGrad();
            }
            step++;
            tokens += options.TokensPerStep;
            lossWindow += stepLoss;
            lossCount++;

            var elapsed = Elapsed();
            fraction = options.Progress(step, tokens, elapsed);
            double tps = (tokens - tokensAtLoopStart) / Math.Max(loopClock.Elapsed.TotalSeconds, 1e-9);
            double doneThisRun = fraction - startFraction;
            TimeSpan? remaining = doneThisRun > 0 ? loopClock.Elapsed * ((1 - fraction) / doneThisRun) : null;
            progress?.Report(new PretrainProgress("training", step, tokens, fraction, stepLoss, tps, elapsed, remaining));

            if (step % options.LoggingSteps == 0)
            {
                var values = new Dictionary<string, double>
                {
                    ["loss"] = lossWindow / lossCount, ["learning_rate"] = lr, ["tokens_per_second"] = tps,
                    ["elapsed_seconds"] = elapsed.TotalSeconds,
                };
                foreach (var (name, sum) in partsWindow) values[name] = sum / lossCount;
                metrics.Write(new MetricsRecord("train", step, tokens, values));
                lossWindow = 0;
                partsWindow.Clear();
                lossCount = 0;
            }
            double mark = Math.Floor(fraction / options.EvalFraction);
            if (mark > lastEvalMark && fraction < 1)
            {
                lastEvalMark = mark;
                lastValidation = Validate(models, objective, validationIds, validation, baselineId, metrics, step, tokens, progress, elapsed);
            }
            if (options.SaveSteps > 0 && step % options.SaveSteps == 0 && fraction < 1)
            {
                SaveCheckpoint(Path.Combine(options.Output, $"checkpoint-{step}"));
                TrainerState.PruneCheckpoints(options.Output, options.SaveTotalLimit);
            }
        }

        string? checkpointFolder = null;
        if (interrupted)
        {
            checkpointFolder = Path.Combine(options.Output, $"checkpoint-{step}");
            SaveCheckpoint(checkpointFolder);
        }
        else
        {
            lastValidation = Validate(models, objective, validationIds, validation, baselineId, metrics, step, tokens, progress, Elapsed());
            SaveCheckpoint(options.Output);
        }
        lastValidation ??= Validate(models, objective, validationIds, validation, baselineId, metrics, step, tokens, progress, Elapsed());
        LossPlot.Save(Path.Combine(options.Output, "loss.png"), metrics.Records,
            $"{Path.GetFileName(Path.GetFullPath(options.Output))}: {(electra ? $"ELECTRA {options.Size}" : options.InitFrom is null ? $"BERT {options.Size}" : config.Architecture)}, {precision}");
        double overallTps = (tokens - tokensAtLoopStart) / Math.Max(loopClock.Elapsed.TotalSeconds, 1e-9);
        return new PretrainResult(options.Output, step, tokens, Elapsed(), overallTps, lastValidation, interrupted, precision, checkpointFolder);
    }

    /// <summary>The config of a model folder to train on, which must hold a BERT-family masked LM.</summary>
    static BertConfig BertFamilyConfig(string folder)
    {
        var path = Path.Combine(folder, ModelFolder.ConfigFileName);
        if (!File.Exists(path)) throw new UnmaskException($"{folder}: no {ModelFolder.ConfigFileName}; is it a Hugging Face model folder?");
        var (architecture, _) = ModelLoader.Identify(path);
        if (architecture is not ("BertForMaskedLM" or "RobertaForMaskedLM" or "XLMRobertaForMaskedLM"))
            throw new UnmaskException($"{folder} holds a {architecture}; pretraining continues BERT, RoBERTa and XLM-RoBERTa masked LMs only");
        return BertConfig.Load(path);
    }

    static string ChoosePrecision(Precision requested, BertConfig config) => requested switch
    {
        Precision.Bf16 => "bf16",
        Precision.Fp32 => "fp32",
        _ => MatmulBenchmark.Bf16IsFaster(config.HiddenSize, config.IntermediateSize) ? "bf16" : "fp32",
    };

    /// <summary>The validation batches, uncorrupted (for the objective's own metrics) and masked once with a fixed seed.</summary>
    static (IReadOnlyList<long[]> Ids, IReadOnlyList<MaskedBatch> Masked) PrepareValidation(SequencePacker sequences, PretrainOptions options,
        IMaskingStrategy masking)
    {
        var rng = new Random(ValidationSeed);
        var ids = new List<long[]>();
        var batches = new List<MaskedBatch>();
        int count = (int)Math.Min(sequences.Count, options.ValidationSequences);
        for (int start = 0; start < count; start += options.BatchSize)
        {
            int size = Math.Min(options.BatchSize, count - start);
            var batch = new long[size * options.MaxSeqLength];
            for (int i = 0; i < size; i++) sequences.CopySequence(start + i, batch.AsSpan(i * options.MaxSeqLength, options.MaxSeqLength));
            ids.Add(batch);
            batches.Add(masking.Apply(batch, size, options.MaxSeqLength, rng, progress: 0));
        }
        return (ids, batches);
    }

    /// <summary>The configured strategy; corpus statistics, when it needs them, are cached beside the token store.</summary>
    static IMaskingStrategy CreateMasking(MaskingOptions options, MaskingVocabulary vocab, ITokenizer tokenizer, TokenStore store,
        string cache, Action<string> phase, CancellationToken ct)
    {
        var boundaries = WordBoundaries.FromTokenizer(tokenizer, vocab);
        CorpusStatistics? statistics = null;
        if (MaskingStrategies.NeedsStatistics(options.Strategy))
        {
            phase("counting corpus statistics for masking");
            var pmi = MaskingStrategies.CollocationOptions(options);
            var file = pmi is null ? "masking-stats-tokens.json" : $"masking-stats-pmi-{pmi.MaxWords}-{pmi.MinCount}-{pmi.Collocations}.json";
            statistics = CorpusStatistics.LoadOrCompute(Path.Combine(cache, file),
                () => CorpusStatistics.Compute(Documents(store), boundaries, pmi, ct));
        }
        return MaskingStrategies.Create(options, vocab, boundaries, statistics);
    }

    static IEnumerable<int[]> Documents(TokenStore store)
    {
        for (long d = 0; d < store.Documents; d++) yield return store.Document(d).ToArray();
    }

    static long MostFrequentToken(TokenStore store, MaskingVocabulary vocab)
    {
        var counts = new long[vocab.VocabSize];
        for (long d = 0; d < store.Documents; d++)
            foreach (var id in store.Document(d)) counts[id]++;
        long best = -1;
        for (int i = 0; i < counts.Length; i++)
            if (!vocab.IsSpecial[i] && (best < 0 || counts[i] > counts[best])) best = i;
        return best;
    }

    internal static ValidationResult Evaluate(PretrainedModel model, IReadOnlyList<MaskedBatch> batches, long baselineId)
    {
        bool wasTraining = model.training;
        model.eval();
        double lossSum = 0;
        long correct = 0, baseline = 0, total = 0;
        using (inference_mode())
        {
            foreach (var b in batches)
            {
                using var scope = NewDisposeScope();
                var input = tensor(b.InputIds, new long[] { b.BatchSize, b.SeqLength });   // [batch, seq]
                var labels = tensor(b.Labels, new long[] { b.BatchSize, b.SeqLength });    // [batch, seq]
                using var output = model.Forward(input, labels: labels, positions: labels.ne(-100));
                var targets = labels.flatten().masked_select(labels.flatten().ne(MaskedBatch.Ignore)); // [selected]
                long n = targets.shape[0];
                lossSum += output.Loss!.item<float>() * n;
                correct += output.Logits.argmax(-1).eq(targets).sum().item<long>();
                baseline += targets.eq(baselineId).sum().item<long>();
                total += n;
            }
        }
        if (wasTraining) model.train();
        return new ValidationResult(lossSum / Math.Max(total, 1), (double)correct / Math.Max(total, 1), (double)baseline / Math.Max(total, 1), total);
    }

    static ValidationResult Validate(TrainedModels models, IObjective objective, IReadOnlyList<long[]> ids, IReadOnlyList<MaskedBatch> batches,
        long baselineId, MetricsLog metrics, long step, long tokens, IProgress<PretrainProgress>? progress, TimeSpan elapsed)
    {
        progress?.Report(new PretrainProgress("validating", step, tokens, 0, null, 0, elapsed, null));
        var v = Evaluate(models.MaskedLm, batches, baselineId);
        var values = new Dictionary<string, double>
        {
            ["loss"] = v.Loss, ["masked_accuracy"] = v.MaskedAccuracy, ["baseline_accuracy"] = v.BaselineAccuracy,
            ["masked_tokens"] = v.MaskedTokens,
        };
        bool wasTraining = models.Training;
        models.SetTraining(false);
        IReadOnlyDictionary<string, double> own;
        using (inference_mode()) own = objective.ValidationMetrics(ids, batches[0].SeqLength);
        if (wasTraining) models.SetTraining(true);
        foreach (var (name, value) in own) values[name] = value;
        metrics.Write(new MetricsRecord("validation", step, tokens, values));
        return v with { ObjectiveMetrics = own };
    }
}
