using System.Diagnostics;
using Unmask.Data;
using Unmask.Distributed;
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
/// masking strategy, or MDLM, on a masked LM of any family; or ELECTRA's generator and discriminator) with sparse prediction →
/// AdamW. Writes Hugging Face folders (final model in the output folder, intermediate ones in checkpoint-&lt;step&gt;;
/// ELECTRA's two models in generator/ and discriminator/ beneath those), metrics.jsonl and loss.png. Cancelling saves
/// a checkpoint first. The parts: <see cref="TokenizedCorpus"/> (data, shared with <c>eval mlm</c>), <see
/// cref="TrainingSetup"/> (models and objective), <see cref="TrainingLoop"/> (steps and saves), <see
/// cref="PretrainValidation"/> (validation, scored as <c>eval mlm</c> scores), <see cref="CheckpointWriter"/> (folders).
/// </summary>
public static class Pretrainer
{
    public static PretrainResult Run(PretrainOptions options, IProgress<PretrainProgress>? progress = null, CancellationToken ct = default)
        => Run(options, resumeFrom: null, PretrainHooks.None, progress, ct);

    internal static PretrainResult Run(PretrainOptions options, PretrainHooks hooks, IProgress<PretrainProgress>? progress = null, CancellationToken ct = default)
        => Run(options, resumeFrom: null, hooks, progress, ct);

    /// <summary>Continues the run saved in <paramref name="checkpoint"/> (a checkpoint-&lt;step&gt; folder or a run folder).</summary>
    public static PretrainResult Resume(string checkpoint, Func<PretrainOptions, PretrainOptions>? adjust = null,
        IProgress<PretrainProgress>? progress = null, CancellationToken ct = default)
        => Resume(checkpoint, PretrainHooks.None, adjust, progress, ct);

    internal static PretrainResult Resume(string checkpoint, PretrainHooks hooks, Func<PretrainOptions, PretrainOptions>? adjust = null,
        IProgress<PretrainProgress>? progress = null, CancellationToken ct = default)
    {
        var folder = TrainerState.FindCheckpoint(checkpoint);
        var state = TrainerState.Load(folder);
        var options = adjust is null ? state.Options : adjust(state.Options);
        return Run(options, (folder, state), hooks, progress, ct);
    }

    /// <summary>The bf16 probe times this machine; under mpiexec rank 0's answer holds for every rank.</summary>
    static Func<int, int, bool> RootDecides(MpiWorld world, Func<int, int, bool> probe) =>
        (hidden, intermediate) => world.RootDecides(() => probe(hidden, intermediate));

    static PretrainResult Run(PretrainOptions options, (string Folder, TrainerState State)? resumeFrom, PretrainHooks hooks,
        IProgress<PretrainProgress>? progress, CancellationToken ct)
    {
        options.Validate();
        // A resumed run finds its folder from anywhere, so the state records an absolute path.
        options = options with { Output = Path.GetFullPath(options.Output) };
        var clock = Stopwatch.StartNew();
        void Phase(string name) => progress?.Report(new PretrainProgress(name, 0, 0, 0, null, 0, clock.Elapsed, null));

        // Under mpiexec rank 0 prepares the tokenizer and the token store; the others wait, then read what it made.
        var world = MpiWorld.Current;
        var sharedTokenizer = Path.Combine(options.Output, ".tokenizer-from-rank-0");
        if (!world.IsRoot) world.Barrier();

        Phase("reading corpus");
        var corpus = Corpus.Load(options.Corpus, ct, options.CorpusLatin1Fallback);
        if (corpus.Validation.Count == 0)
            throw new UnmaskException($"corpus '{corpus.Name}' has no validation lines: it needs more text");

        // A resumed run continues its checkpoint; --init-from continues a Hugging Face model with its own tokenizer.
        var modelFolder = resumeFrom?.Folder ?? options.InitFrom;
        var tokenizer = world.IsRoot || modelFolder is not null
            ? TrainingSetup.Tokenizer(options, modelFolder, corpus, Phase, ct)
            : TokenizerLoader.Load(sharedTokenizer);

        Phase("tokenizing");
        using var data = TokenizedCorpus.Open(corpus, tokenizer, [DataSplit.Train, DataSplit.Validation], ct);
        if (world.Size > 1 && world.IsRoot)
        {
            if (modelFolder is null)
            {
                Directory.CreateDirectory(options.Output);
                tokenizer.Save(sharedTokenizer);
            }
            world.Barrier();
        }
        var trainSequences = data.Pack(DataSplit.Train, options.MaxSeqLength);
        var validSequences = data.Pack(DataSplit.Validation, options.MaxSeqLength);
        if (trainSequences.Count == 0 || validSequences.Count == 0)
            throw new UnmaskException(
                $"corpus '{corpus.Name}' is too small: its {(trainSequences.Count == 0 ? "training" : "validation")} split does not fill one sequence of {options.MaxSeqLength} tokens");

        var device = options.Device ?? ComputeDevice.Default;
        var bf16IsFaster = hooks.Bf16IsFaster ?? ((hidden, intermediate) => MatmulBenchmark.Bf16IsFaster(hidden, intermediate, device));
        TrainingSetup built;
        using (Parameters.On(device)) built = TrainingSetup.Create(options, modelFolder, tokenizer, data, RootDecides(world, bf16IsFaster), Phase, ct);
        using var setup = built;
        if (world.Size > 1)
        {
            world.Barrier();
            if (world.IsRoot && Directory.Exists(sharedTokenizer)) Directory.Delete(sharedTokenizer, recursive: true);
        }
        // The checkpoints keep the precision auto chose, so a resumed run computes as it began rather than probing again.
        options = options with { Precision = setup.Precision };
        setup.Models.SetTraining(true);

        using var optimizer = new AdamW(AdamW.DecayGroups(setup.Models.Parameters, options.WeightDecay), options.AdamBeta1, options.AdamBeta2, options.AdamEpsilon);
        var start = (Step: 0L, Tokens: 0L, Elapsed: TimeSpan.Zero);
        var position = new BatcherPosition(0, 0);
        if (resumeFrom is { } res)
        {
            optimizer.LoadState(TrainerState.LoadOptimizer(res.Folder), res.State.Step, res.Folder);
            start = (res.State.Step, res.State.Tokens, res.State.Elapsed);
            position = res.State.Position;
        }

        // Every rank starts from rank 0's parameters (a resumed one from the same checkpoint), however it initialised.
        world.Broadcast([.. setup.Models.Parameters.Select(p => p.Parameter)]);

        Directory.CreateDirectory(options.Output);
        var metricsPath = Path.Combine(options.Output, "metrics.jsonl");
        using var metrics = !world.IsRoot ? MetricsLog.InMemory()
            : resumeFrom is null ? MetricsLog.Create(metricsPath) : MetricsLog.Open(metricsPath, start.Step);
        var validation = PretrainValidation.Prepare(data, options, setup.Vocab);

        using var batcher = new Batcher(trainSequences, options.BatchSize, options.Seed, position);
        var outcome = new TrainingLoop(options, setup, tokenizer, optimizer, batcher, validation, metrics, hooks, progress).Run(start, ct);

        var model = options.Objective == ObjectiveKind.Electra ? $"ELECTRA {options.Size}"
            : options.InitFrom is null && options.ConfigPath is null ? $"BERT {options.Size}" : setup.Models.MaskedLm.Architecture;
        if (world.IsRoot)
            LossPlot.Save(Path.Combine(options.Output, "loss.png"), metrics.Records,
                $"{Path.GetFileName(Path.GetFullPath(options.Output))}: {model}, {setup.PrecisionName}");
        return new PretrainResult(options.Output, outcome.Steps, outcome.Tokens, outcome.Elapsed, outcome.TokensPerSecond, outcome.Validation,
            outcome.Interrupted, setup.PrecisionName, outcome.CheckpointFolder);
    }
}
