using System.Text.Json.Serialization;
using Unmask.Masking;

namespace Unmask.Training;

public enum Precision { Auto, Bf16, Fp32 }

/// <summary>How a new model's attention starts: HF's random initialisation, or local (see PretrainedModel.InitialiseLocalAttention).</summary>
public enum AttentionInit { Random, Local }

/// <summary>
/// Everything a pretraining run is configured by. Field names follow Hugging Face's TrainingArguments where one
/// exists. The budget is whichever of steps, tokens or time is set (time 10 minutes when none is).
/// </summary>
public sealed record PretrainOptions
{
    /// <summary>A corpus file or folder; null means the .NET SDK's API documentation.</summary>
    public string? Corpus { get; init; }
    /// <summary>Read corpus files that are not valid UTF-8 as Latin-1 instead of stopping with an error.</summary>
    public bool CorpusLatin1Fallback { get; init; }
    public required string Output { get; init; }
    /// <summary>A size preset (tiny, mini, small, medium, base) used when <see cref="ConfigPath"/> is null.</summary>
    public string Size { get; init; } = "mini";
    public string? ConfigPath { get; init; }
    /// <summary>
    /// A Hugging Face BERT-family model folder (BERT, RoBERTa, XLM-RoBERTa) to continue pretraining: its weights, config
    /// and tokenizer replace <see cref="Size"/>, <see cref="ConfigPath"/>, <see cref="VocabSize"/> and <see cref="LowerCase"/>.
    /// </summary>
    public string? InitFrom { get; init; }

    public long? MaxSteps { get; init; }
    public long? MaxTokens { get; init; }
    public TimeSpan? MaxTime { get; init; }

    /// <summary>
    /// Dropout for a size preset (a --config file keeps its own). Off by default: a budget of minutes is far from
    /// overfitting, and dropout only slows learning there.
    /// </summary>
    public double PresetDropout { get; init; } = 0.0;
    /// <summary>
    /// Local by default: from HF's random start a BERT spends its first thousands of steps predicting any word of the
    /// sequence. Default 10-minute run on the default corpus: validation masked accuracy 0.41 local, 0.18 random.
    /// </summary>
    public AttentionInit AttentionInit { get; init; } = AttentionInit.Local;
    public int BatchSize { get; init; } = 16;
    public int GradientAccumulationSteps { get; init; } = 1;
    public int MaxSeqLength { get; init; } = 128;
    public double LearningRate { get; init; } = 5e-4;
    public double WarmupRatio { get; init; } = 0.05;
    public DecayKind Decay { get; init; } = DecayKind.Linear;
    public double WeightDecay { get; init; } = 0.01;
    public double MaxGradNorm { get; init; } = 1.0;
    public double AdamBeta1 { get; init; } = 0.9;
    public double AdamBeta2 { get; init; } = 0.98;
    public double AdamEpsilon { get; init; } = 1e-6;
    /// <summary>What the model is trained to do; <see cref="Masking"/> configures <see cref="ObjectiveKind.Mlm"/> and
    /// <see cref="ObjectiveKind.Electra"/>'s generator.</summary>
    public ObjectiveKind Objective { get; init; } = ObjectiveKind.Mlm;
    public MaskingOptions Masking { get; init; } = new();
    /// <summary>ELECTRA: the generator's hidden size and heads as a fraction of the discriminator's (the paper finds
    /// 1/4 to 1/2 best; a stronger generator makes the discriminator's task too hard).</summary>
    public double GeneratorSize { get; init; } = 0.25;
    /// <summary>ELECTRA: weight λ of the discriminator's binary cross-entropy beside the generator's MLM loss (the paper's 50).</summary>
    public double DiscriminatorWeight { get; init; } = 50;

    /// <summary>The masking the objective uses: ELECTRA's own split when the masking options are left at BERT's defaults.</summary>
    [JsonIgnore]
    public MaskingOptions EffectiveMasking => Objective == ObjectiveKind.Electra && Masking == new MaskingOptions() ? ElectraObjective.DefaultMasking : Masking;

    public int VocabSize { get; init; } = 16384;
    public bool LowerCase { get; init; } = true;
    public Precision Precision { get; init; } = Precision.Auto;
    public int Seed { get; init; } = 42;

    /// <summary>Where the models train (see <see cref="Modeling.ComputeDevice"/>); null: auto. A property of the
    /// process, not of the run: a checkpoint resumes on any device.</summary>
    [JsonIgnore]
    public Device? Device { get; init; }

    public int LoggingSteps { get; init; } = 20;

    /// <summary>Under mpiexec, how often the ranks compare a checksum of their parameters (steps).</summary>
    public int DriftCheckSteps { get; init; } = 100;
    /// <summary>Validation runs each time training progress crosses a multiple of this fraction, and at the end.</summary>
    public double EvalFraction { get; init; } = 0.1;
    /// <summary>A checkpoint is saved every this many optimizer steps (0: only at the end and on interruption).</summary>
    public int SaveSteps { get; init; } = 1000;
    /// <summary>Older intermediate checkpoints beyond this count are deleted.</summary>
    public int SaveTotalLimit { get; init; } = 2;
    /// <summary>Validation uses at most this many packed sequences, masked once with a fixed seed.</summary>
    public int ValidationSequences { get; init; } = 256;

    [JsonIgnore]
    public long TokensPerStep => (long)BatchSize * GradientAccumulationSteps * MaxSeqLength;

    [JsonIgnore]
    public TimeSpan? EffectiveMaxTime => MaxSteps is null && MaxTokens is null && MaxTime is null ? TimeSpan.FromMinutes(10) : MaxTime;

    public void Validate()
    {
        if (BatchSize < 1) throw new UnmaskException($"batch size must be at least 1, got {BatchSize}");
        if (LoggingSteps < 1) throw new UnmaskException($"--logging-steps must be at least 1, got {LoggingSteps}");
        if (DriftCheckSteps < 1) throw new UnmaskException($"the drift check interval must be at least 1 step, got {DriftCheckSteps}");
        var world = Distributed.MpiWorld.Current;
        if (BatchSize % world.Size != 0)
            throw new UnmaskException($"--batch-size {BatchSize} does not split over {world.Size} ranks: each rank takes --batch-size / ranks rows of every micro-batch, so make it a multiple of {world.Size}");
        if (GradientAccumulationSteps < 1) throw new UnmaskException("gradient accumulation steps must be at least 1");
        if (MaxSeqLength < 8) throw new UnmaskException($"max sequence length must be at least 8, got {MaxSeqLength}");
        if (MaxSteps is < 1) throw new UnmaskException("--steps must be at least 1");
        if (MaxTokens is < 1) throw new UnmaskException("--tokens must be at least 1");
        if (MaxTime is { } t && t <= TimeSpan.Zero) throw new UnmaskException("--time must be positive");
        if (LearningRate <= 0) throw new UnmaskException("learning rate must be positive");
        if (WarmupRatio is < 0 or >= 1) throw new UnmaskException("warm-up ratio must be in [0, 1)");
        if (PresetDropout is < 0 or >= 1) throw new UnmaskException($"dropout must be in [0, 1), got {PresetDropout}");
        if (InitFrom is not null && ConfigPath is not null) throw new UnmaskException("--init-from takes the model's own config; leave out --config");
        if (InitFrom is not null && !Directory.Exists(InitFrom)) throw new UnmaskException($"{InitFrom}: model folder not found");
        if (VocabSize < 256) throw new UnmaskException($"vocabulary size must be at least 256, got {VocabSize}");
        Masking.Validate();
        // MDLM's corruption is fixed by the method (rate t per sequence, mask token only): a masking option would be silently ignored.
        if (Objective == ObjectiveKind.Mdlm && Masking != new MaskingOptions())
            throw new UnmaskException("--objective mdlm masks each sequence at its own rate with the mask token only; leave out the masking options (--masking, --mask-rate, --mask-split, --masking-config, ...)");
        if (GeneratorSize is <= 0 or > 1) throw new UnmaskException($"--generator-size must be in (0, 1], got {GeneratorSize}");
        if (DiscriminatorWeight <= 0) throw new UnmaskException($"--disc-weight must be positive, got {DiscriminatorWeight}");
        if (Objective == ObjectiveKind.Electra && InitFrom is not null)
            throw new UnmaskException("--objective electra trains a new generator and discriminator; --init-from continues a BERT-family masked LM with --objective mlm or mdlm");
    }

    /// <summary>Fraction of the budget used, by whichever budget runs out first.</summary>
    public double Progress(long step, long tokens, TimeSpan elapsed)
    {
        double p = 0;
        if (MaxSteps is { } s) p = Math.Max(p, (double)step / s);
        if (MaxTokens is { } n) p = Math.Max(p, (double)tokens / n);
        if (EffectiveMaxTime is { } t) p = Math.Max(p, elapsed / t);
        return Math.Min(p, 1);
    }
}
