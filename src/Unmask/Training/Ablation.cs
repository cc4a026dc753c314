using System.Diagnostics;
using Unmask.Evaluation;
using Unmask.Inference;
using Unmask.Masking;
using Unmask.Modeling;
using Unmask.Tokenization;

namespace Unmask.Training;

/// <summary>One run of an ablation: an objective, with a masking strategy when the objective takes one.</summary>
public sealed record AblationVariant(string Name, ObjectiveKind Objective, string? Strategy);

/// <summary>
/// An ablation trains the same model on the same data with the same seed once per variant (objectives × masking
/// strategies), every variant for the same number of tokens, and compares them on the same masked validation copy.
/// </summary>
public sealed record AblationOptions
{
    /// <summary>
    /// What every variant shares. Its <see cref="PretrainOptions.Output"/> is the ablation folder (each variant
    /// trains in a subfolder named after it); its budget fields stay unset because the ablation sets them.
    /// </summary>
    public required PretrainOptions Base { get; init; }

    /// <summary>Masking strategies (<see cref="MaskingStrategies.Names"/>); the masking options of <see cref="Base"/> apply to each.</summary>
    public IReadOnlyList<string> Strategies { get; init; } = [MaskingStrategies.Random];

    public IReadOnlyList<ObjectiveKind> Objectives { get; init; } = [ObjectiveKind.Mlm];

    /// <summary>Wall time for the whole ablation: calibration, every variant's training and evaluation.</summary>
    public TimeSpan? Budget { get; init; }

    /// <summary>Training tokens for every variant, instead of deriving them from a time budget (no calibration).</summary>
    public long? TokensPerVariant { get; init; }

    /// <summary>BLiMP-format data (a folder of .jsonl files or one file) to score every final model on; null: none.</summary>
    public string? BlimpData { get; init; }

    public BlimpOptions Blimp { get; init; } = new();

    /// <summary>The time budget: <see cref="Budget"/>, or 10 minutes when no budget at all is set.</summary>
    public TimeSpan? EffectiveBudget => TokensPerVariant is null ? Budget ?? TimeSpan.FromMinutes(10) : null;

    public static string ObjectiveName(ObjectiveKind objective) => objective.ToString().ToLowerInvariant();

    /// <summary>MDLM corrupts each sequence at its own rate with the mask token only, so a strategy would not change it.</summary>
    public static bool TakesMasking(ObjectiveKind objective) => objective != ObjectiveKind.Mdlm;

    /// <summary>
    /// Objectives × strategies, in the order given. Named by the strategy when there is one objective, else
    /// <c>objective-strategy</c>; an objective that takes no masking gives one variant named after itself.
    /// </summary>
    public IReadOnlyList<AblationVariant> Variants()
    {
        var variants = new List<AblationVariant>();
        foreach (var objective in Objectives)
        {
            var name = ObjectiveName(objective);
            if (!TakesMasking(objective)) variants.Add(new AblationVariant(name, objective, null));
            else
                foreach (var strategy in Strategies)
                    variants.Add(new AblationVariant(Objectives.Count == 1 ? strategy : $"{name}-{strategy}", objective, strategy));
        }
        return variants;
    }

    /// <summary>The pretraining options of one variant with a budget of <paramref name="tokens"/> training tokens.</summary>
    public PretrainOptions OptionsFor(AblationVariant variant, long tokens) => Base with
    {
        Output = Path.Combine(Base.Output, variant.Name),
        Objective = variant.Objective,
        Masking = variant.Strategy is { } strategy ? Base.Masking with { Strategy = strategy } : new MaskingOptions(),
        MaxTokens = tokens,
        // Intermediate checkpoints would spend the budget on saving runs that are compared, not resumed.
        SaveSteps = 0,
    };

    public void Validate()
    {
        if (Base.MaxSteps is not null || Base.MaxTokens is not null || Base.MaxTime is not null)
            throw new UnmaskException("an ablation sets each run's budget itself: leave the steps, tokens and time of the shared options unset");
        if (Budget is not null && TokensPerVariant is not null)
            throw new UnmaskException("give a time budget for the whole ablation (--budget) or tokens per variant (--tokens), not both");
        if (Budget is { } b && b <= TimeSpan.Zero) throw new UnmaskException("--budget must be positive");
        if (TokensPerVariant is < 1) throw new UnmaskException("--tokens must be at least 1");
        if (Strategies.Count == 0) throw new UnmaskException("--strategies: name at least one masking strategy");
        foreach (var strategy in Strategies) MaskingStrategies.CheckName(strategy);
        if (Strategies.Distinct().Count() != Strategies.Count) throw new UnmaskException("--strategies: a strategy is named twice");
        if (Objectives.Count == 0) throw new UnmaskException("--objectives: name at least one objective");
        if (Objectives.Distinct().Count() != Objectives.Count) throw new UnmaskException("--objectives: an objective is named twice");
        if (!Objectives.Any(TakesMasking) && !Strategies.SequenceEqual([MaskingStrategies.Random]))
            throw new UnmaskException($"{string.Join(", ", Objectives.Select(ObjectiveName))} takes no masking strategy; leave out --strategies");
        // Validation masks at the run's own rate and split, and an objective without masking runs at the defaults:
        // any other rate or split would give the runs different validation copies.
        var m = Base.Masking;
        var defaults = new MaskingOptions();
        if (Objectives.Any(o => !TakesMasking(o)) && (m.Rate, m.MaskFraction, m.RandomFraction, m.KeepFraction) != (defaults.Rate, defaults.MaskFraction, defaults.RandomFraction, defaults.KeepFraction))
            throw new UnmaskException("every run is validated on a copy masked at --mask-rate with --mask-split, which objectives without masking options (mdlm) keep at their defaults; leave both at their defaults to compare with them");
        foreach (var variant in Variants())
        {
            try
            {
                OptionsFor(variant, 1).Validate();
            }
            catch (UnmaskException e)
            {
                throw new UnmaskException($"variant {variant.Name}: {e.Message}", e);
            }
        }
    }
}

/// <summary>Where an ablation stands: the phase, which variant (when one is running) and its own training progress.</summary>
public sealed record AblationProgress(string Phase, string? Variant, int Index, int Variants, PretrainProgress? Training, TimeSpan Elapsed);

/// <summary>
/// What a short run of the first (or the costliest to set up) variant measured, in seconds: setting a run up (corpus,
/// tokenizer, cached token store and corpus statistics, model, first step's extra cost), one optimizer step, one
/// validation pass, the final validation with saving, BLiMP for one model (estimated from a sample of pairs), and the
/// whole calibration including its warm-up run.
/// </summary>
public sealed record AblationCalibration(string Variant, long Steps, double SetupSeconds, double StepSeconds, double ValidationSeconds,
    double FinishSeconds, double BlimpSeconds, double SpentSeconds);

public sealed record AblationRun(
    string Name, ObjectiveKind Objective, string? Strategy, string Output, long Steps, long Tokens, double TrainingSeconds, double WallSeconds,
    double TokensPerSecond, string Precision, double ValidationLoss, double MaskedAccuracy, double BaselineAccuracy, long MaskedTokens,
    IReadOnlyDictionary<string, double> FinalValidation, double? BlimpAccuracy, string TokenizerFingerprint);

/// <param name="InterruptedVariant">The variant that was training when the ablation was cancelled (its checkpoint is in its folder).</param>
/// <param name="Warnings">Anything that makes the runs less comparable than an ablation promises.</param>
public sealed record AblationResult(
    string Output, IReadOnlyList<AblationRun> Runs, long StepsPerVariant, long TokensPerVariant, double? BudgetSeconds, double WallSeconds,
    AblationCalibration? Calibration, string? BlimpData, string? InterruptedVariant, IReadOnlyList<string> Warnings)
{
    public const string ReportFileName = "ablation.json";
    public const string PlotFileName = "ablation.png";
}

/// <summary>
/// Runs an ablation: each variant is a normal <see cref="Pretrainer"/> run in &lt;output&gt;/&lt;variant&gt;/ (HF model,
/// metrics.jsonl, loss.png), then optionally BLiMP; finally ablation.json and ablation.png in the output folder.
/// </summary>
public static class Ablation
{
    /// <summary>
    /// Share of a time budget held back for timing noise: the plan rests on a dozen measured steps, and the steps of a
    /// long run come out slower than those. With 10% held back, a 10-minute five-strategy ablation on the idle 2-core
    /// development machine took 10:18 (calibrated step 0.27 s, 0.33 s in the runs).
    /// </summary>
    internal const double BudgetMargin = 0.25;

    const int CalibrationSteps = 12;
    const int BlimpSamplePairs = 32;

    public static AblationResult Run(AblationOptions options, IProgress<AblationProgress>? progress = null, CancellationToken ct = default)
    {
        options.Validate();
        var output = Path.GetFullPath(options.Base.Output);
        if (Directory.Exists(output) && Directory.EnumerateFileSystemEntries(output).Any())
            throw new UnmaskException($"{output}: output folder exists and is not empty");
        options = options with { Base = options.Base with { Output = output } };
        var clock = Stopwatch.StartNew();
        var variants = options.Variants();
        void Report(string phase, int index, PretrainProgress? training = null) =>
            progress?.Report(new AblationProgress(phase, index < variants.Count ? variants[index].Name : null, index, variants.Count, training, clock.Elapsed));

        IReadOnlyList<BlimpPair>? pairs = null;
        var blimpIssues = new List<InputIssue>();
        if (options.BlimpData is { } data)
            pairs = BlimpEvaluator.Load(data, options.Blimp.BadLines, blimpIssues, options.Blimp.LimitPerParadigm);

        long tokensPerStep = options.Base.TokensPerStep;
        var precision = options.Base.Precision;
        AblationCalibration? calibration = null;
        long steps;
        if (options.TokensPerVariant is { } tokens) steps = (tokens + tokensPerStep - 1) / tokensPerStep;
        else
        {
            var calibrated = CalibrationVariant(variants);
            string measuredPrecision;
            (calibration, measuredPrecision) = Calibrate(options, calibrated, pairs, blimpIssues, clock,
                p => progress?.Report(new AblationProgress("calibrating", calibrated.Name, 0, variants.Count, p, clock.Elapsed)), ct);
            steps = PlanSteps(options.EffectiveBudget!.Value, calibration, variants.Count, InLoopValidations(options.Base.EvalFraction));
            precision = ParsePrecision(measuredPrecision, precision);
        }

        var runs = new List<AblationRun>();
        string? interrupted = null;
        for (int i = 0; i < variants.Count && interrupted is null; i++)
        {
            var variant = variants[i];
            int index = i;
            var runOptions = options.OptionsFor(variant, steps * tokensPerStep) with { Precision = precision };
            var variantClock = Stopwatch.StartNew();
            var result = Pretrainer.Run(runOptions, new SyncProgress<PretrainProgress>(p => Report("training", index, p)), ct);
            if (result.Interrupted)
            {
                interrupted = variant.Name;
                break;
            }
            // Every later variant keeps the precision the first one chose, so the benchmark's noise cannot split them.
            precision = ParsePrecision(result.Precision, precision);

            var modelFolder = ModelFolder(variant, result.OutputDirectory);
            string fingerprint;
            double? blimp = null;
            if (pairs is null) fingerprint = TokenizerLoader.Load(modelFolder).Fingerprint;
            else
            {
                Report("evaluating BLiMP", index);
                using var mlm = MaskedLanguageModel.Load(modelFolder);
                fingerprint = mlm.Tokenizer.Fingerprint;
                try
                {
                    if (mlm.Model.Head == HeadKind.MaskedLm)
                        blimp = BlimpEvaluator.Evaluate(ScoringContext.From(mlm), pairs, options.Blimp, blimpIssues, null, ct).Overall.Accuracy;
                }
                catch (OperationCanceledException)
                {
                    interrupted = variant.Name;
                    break;
                }
            }
            var finalValidation = MetricsLog.Read(Path.Combine(result.OutputDirectory, "metrics.jsonl")).Last(r => r.Split == "validation").Values;
            runs.Add(new AblationRun(variant.Name, variant.Objective, variant.Strategy, result.OutputDirectory, result.Steps, result.Tokens,
                result.TrainingTime.TotalSeconds, variantClock.Elapsed.TotalSeconds, result.TokensPerSecond, result.Precision,
                result.Validation.Loss, result.Validation.MaskedAccuracy, result.Validation.BaselineAccuracy, result.Validation.MaskedTokens,
                finalValidation, blimp, fingerprint));
        }

        Report("writing report", variants.Count);
        var ablation = new AblationResult(output, runs, steps, steps * tokensPerStep, options.EffectiveBudget?.TotalSeconds, clock.Elapsed.TotalSeconds,
            calibration, options.BlimpData, interrupted, Warnings(runs, pairs is not null));
        AblationPlot.Save(Path.Combine(output, AblationResult.PlotFileName),
            runs.Select(r => (r.Name, MetricsLog.Read(Path.Combine(r.Output, "metrics.jsonl")))).ToList(),
            $"{Path.GetFileName(output)}: {runs.Count} variants, {steps * tokensPerStep:N0} tokens each");
        EvalReport.Write(Path.Combine(output, AblationResult.ReportFileName), ablation);
        return ablation;
    }

    /// <summary>
    /// Whole optimizer steps per variant such that every variant fits its share of what the calibration left of the
    /// budget: its setup, its steps, its validation passes, the final validation and save, and BLiMP.
    /// </summary>
    internal static long PlanSteps(TimeSpan budget, AblationCalibration c, int variants, int inLoopValidations)
    {
        double perVariant = (budget.TotalSeconds * (1 - BudgetMargin) - c.SpentSeconds) / variants;
        double overhead = c.SetupSeconds + inLoopValidations * c.ValidationSeconds + c.FinishSeconds + c.BlimpSeconds;
        double steps = Math.Floor((perVariant - overhead) / c.StepSeconds);
        if (steps < 1)
            throw new UnmaskException(
                $"a budget of {budget:hh\\:mm\\:ss} does not fit {variants} runs: calibrating took {c.SpentSeconds:F0} s and each run needs about " +
                $"{overhead:F0} s besides training at {c.StepSeconds:F2} s a step; give a larger --budget, or --tokens");
        return (long)steps;
    }

    /// <summary>Validation passes during training: one each time progress crosses a multiple of the fraction, below 1.</summary>
    internal static int InLoopValidations(double evalFraction) => (int)Math.Ceiling(1 / evalFraction - 1e-9) - 1;

    /// <summary>The variant whose setup costs most (corpus statistics, collocations above all), so the plan errs on the early side.</summary>
    internal static AblationVariant CalibrationVariant(IReadOnlyList<AblationVariant> variants) =>
        variants.OrderBy(v => v.Objective == ObjectiveKind.Electra ? 0 : 1) // its steps run two models: the dearest
            .ThenBy(v => v.Strategy == MaskingStrategies.Pmi ? 0 : v.Strategy is { } s && MaskingStrategies.NeedsStatistics(s) ? 1 : 2)
            .First();

    /// <summary>The folder holding a variant's final model: ELECTRA's product is its discriminator, which has no masked-LM head.</summary>
    static string ModelFolder(AblationVariant variant, string runFolder) =>
        variant.Objective == ObjectiveKind.Electra ? Path.Combine(runFolder, ElectraModels.DiscriminatorFolder) : runFolder;

    static Precision ParsePrecision(string chosen, Precision requested) =>
        requested != Precision.Auto ? requested : chosen == "bf16" ? Precision.Bf16 : Precision.Fp32;

    /// <summary>
    /// Trains the variant for one step and then for a few in &lt;output&gt;/.calibration (deleted afterwards), timing
    /// the second run's phases from the trainer's progress reports, with one validation pass halfway so that a pass is
    /// timed apart from the final one.
    /// </summary>
    static (AblationCalibration, string Precision) Calibrate(AblationOptions options, AblationVariant variant, IReadOnlyList<BlimpPair>? pairs,
        List<InputIssue> blimpIssues, Stopwatch clock, Action<PretrainProgress> report, CancellationToken ct)
    {
        var folder = Path.Combine(options.Base.Output, ".calibration");
        var runOptions = options.OptionsFor(variant, 1) with { Output = folder, MaxTokens = null };
        try
        {
            // A one-step run first pays what only the first run pays (loading libtorch, compiling the code paths,
            // building the token store and corpus statistics caches, choosing the precision), so the timed run that
            // follows costs what a variant will.
            var warmUp = Pretrainer.Run(runOptions with { MaxSteps = 1, EvalFraction = 1 }, new SyncProgress<PretrainProgress>(report), ct);
            ct.ThrowIfCancellationRequested();
            Directory.Delete(folder, recursive: true);
            runOptions = runOptions with { MaxSteps = CalibrationSteps, EvalFraction = 0.5, Precision = ParsePrecision(warmUp.Precision, runOptions.Precision) };

            var marks = new List<(string Phase, long Step, double Seconds)>();
            var runClock = Stopwatch.StartNew();
            var result = Pretrainer.Run(runOptions, new SyncProgress<PretrainProgress>(p =>
            {
                marks.Add((p.Phase, p.Step, runClock.Elapsed.TotalSeconds));
                report(p);
            }), ct);
            double end = runClock.Elapsed.TotalSeconds;
            ct.ThrowIfCancellationRequested();

            var stepDone = marks.Where(m => m.Phase == "training").GroupBy(m => m.Step).ToDictionary(g => g.Key, g => g.First().Seconds);
            var validations = marks.Where(m => m.Phase == "validating").ToList();
            if (stepDone.Count != CalibrationSteps || validations.Count != 2)
                throw new InvalidOperationException($"calibration expected {CalibrationSteps} steps and 2 validations, saw {stepDone.Count} and {validations.Count}");
            var (_, validatedAfter, validationStart) = validations[0];
            // Step 1 pays for first-use allocations; every run pays that once, so it is counted with the setup.
            var gaps = Enumerable.Range(2, CalibrationSteps - 2).Where(s => s != validatedAfter).Select(s => stepDone[s + 1] - stepDone[s]).ToList();
            double step = gaps.Average();
            double validation = Math.Max(0, stepDone[validatedAfter + 1] - validationStart - step);
            double setup = Math.Max(0, stepDone[1] - step);
            double finish = end - validations[1].Seconds;

            double blimp = 0;
            if (pairs is not null)
            {
                var blimpClock = Stopwatch.StartNew();
                using var mlm = MaskedLanguageModel.Load(ModelFolder(variant, folder));
                if (mlm.Model.Head == HeadKind.MaskedLm)
                {
                    // Scoring time does not depend on the weights, so a spread-out sample of pairs prices the whole set.
                    int stride = Math.Max(1, pairs.Count / BlimpSamplePairs);
                    var sample = pairs.Where((_, i) => i % stride == 0).Take(BlimpSamplePairs).ToList();
                    double loading = blimpClock.Elapsed.TotalSeconds;
                    var sampleClock = Stopwatch.StartNew();
                    BlimpEvaluator.Evaluate(ScoringContext.From(mlm), sample, options.Blimp, blimpIssues, null, ct);
                    blimp = loading + sampleClock.Elapsed.TotalSeconds * pairs.Count / sample.Count;
                }
            }
            return (new AblationCalibration(variant.Name, CalibrationSteps, setup, step, validation, finish, blimp, clock.Elapsed.TotalSeconds), result.Precision);
        }
        finally
        {
            // A cancelled calibration leaves a checkpoint nobody would resume.
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
    }

    static List<string> Warnings(IReadOnlyList<AblationRun> runs, bool blimp)
    {
        var warnings = new List<string>();
        if (runs.Select(r => r.TokenizerFingerprint).Distinct().Count() > 1)
            warnings.Add("the variants trained different tokenizers, so they saw different token ids: " +
                string.Join(", ", runs.Select(r => $"{r.Name} {r.TokenizerFingerprint}")));
        if (runs.Select(r => r.MaskedTokens).Distinct().Count() > 1)
            warnings.Add("the variants were validated on different masked copies: " + string.Join(", ", runs.Select(r => $"{r.Name} {r.MaskedTokens} masked tokens")));
        if (blimp)
            foreach (var run in runs.Where(r => r.BlimpAccuracy is null))
                warnings.Add($"{run.Name}: no BLiMP accuracy, its model has no masked-language-model head to score sentences with");
        return warnings;
    }
}
