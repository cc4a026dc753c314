using Unmask.Data;

namespace Unmask.Training;

/// <summary>Settings of <c>unmask finetune</c>; defaults follow transformers' Trainer where it has one.</summary>
public sealed record FineTuneOptions
{
    public required string ModelDir { get; init; }
    public required string TrainPath { get; init; }
    public string? ValidationPath { get; init; }
    public required string OutputDir { get; init; }
    public ClassificationTask Task { get; init; } = ClassificationTask.Classification;
    public DataColumns Columns { get; init; } = new();

    /// <summary>Token task: label every piece of a word, not only the first.</summary>
    public bool LabelAllPieces { get; init; }

    public int Epochs { get; init; } = 3;
    public double LearningRate { get; init; } = 5e-5;

    /// <summary>Sequences per micro-batch; an optimizer step sees BatchSize × GradientAccumulation.</summary>
    public int BatchSize { get; init; } = 32;

    public int GradientAccumulation { get; init; } = 1;

    /// <summary>Warm-up as a fraction of the optimizer steps.</summary>
    public double Warmup { get; init; }

    public double WeightDecay { get; init; }

    /// <summary>ELECTRA's layer-wise decay: layer i of L gets the rate × decay^(L + 1 − i), embeddings decay^(L + 1),
    /// the head the full rate. 1 switches it off.</summary>
    public double LayerLrDecay { get; init; } = 1;

    public double MaxGradNorm { get; init; } = 1;
    public int MaxSeqLength { get; init; } = 128;
    public Precision Precision { get; init; } = Precision.Fp32;
    public int Seed { get; init; } = 42;

    /// <summary>Where the model trains (see <see cref="Modeling.ComputeDevice"/>); null: auto. Not part of the run's
    /// state: a checkpoint resumes on any device.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public Device? Device { get; init; }

    /// <summary>Evaluate (and checkpoint) every this many optimizer steps; null: at the end of each epoch.</summary>
    public int? EvalEvery { get; init; }

    /// <summary>Stop after this many evaluations without a better validation metric; null: never.</summary>
    public int? EarlyStoppingPatience { get; init; }

    /// <summary>Train only the head (a linear probe): the pretrained encoder stays as loaded.</summary>
    public bool FreezeEncoder { get; init; }

    /// <summary>Start the encoder from random initialisation (the config's architecture, none of its weights): the
    /// baseline that shows what pretraining brought.</summary>
    public bool RandomInit { get; init; }

    /// <summary>Dropout of the encoder's hidden states and attention probabilities while fine-tuning (BERT, RoBERTa,
    /// ELECTRA, DistilBERT), written into the saved config as transformers would; null keeps the config's.</summary>
    public double? Dropout { get; init; }

    /// <summary>Train on this many examples drawn by the seed (few-shot runs); null: all.</summary>
    public int? MaxTrainExamples { get; init; }

    /// <summary>Stop after this many optimizer steps (the schedule still spans the epochs); null: all.</summary>
    public long? MaxSteps { get; init; }

    /// <summary>PET: the pattern, with {text} and one [MASK].</summary>
    public string? Template { get; init; }

    /// <summary>PET: the verbalizer file (label words, one piece each).</summary>
    public string? VerbalizerPath { get; init; }

    /// <summary>Sequences per inference batch during evaluation.</summary>
    public int EvalBatchSize { get; init; } = 64;

    internal void Validate()
    {
        void Require(bool ok, string problem)
        {
            if (!ok) throw new UnmaskException(problem);
        }
        Require(Epochs > 0, $"--epochs must be positive (got {Epochs}).");
        Require(LearningRate > 0, $"--lr must be positive (got {LearningRate}).");
        Require(BatchSize > 0, $"--batch-size must be positive (got {BatchSize}).");
        Require(GradientAccumulation > 0, $"--gradient-accumulation must be positive (got {GradientAccumulation}).");
        Require(Warmup is >= 0 and < 1, $"--warmup is a fraction of the steps in [0, 1) (got {Warmup}).");
        Require(WeightDecay >= 0, $"--weight-decay must not be negative (got {WeightDecay}).");
        Require(LayerLrDecay is > 0 and <= 1, $"--layer-lr-decay must be in (0, 1] (got {LayerLrDecay}).");
        Require(MaxSeqLength >= 8, $"--max-seq-length must be at least 8 (got {MaxSeqLength}).");
        Require(EvalEvery is null or > 0, $"--eval-every must be positive (got {EvalEvery}).");
        Require(EarlyStoppingPatience is null or > 0, $"--early-stopping must be positive (got {EarlyStoppingPatience}).");
        Require(MaxTrainExamples is null or > 0, $"--max-train-examples must be positive (got {MaxTrainExamples}).");
        Require(Dropout is null or (>= 0 and < 1), $"--dropout must be in [0, 1), got {Dropout}.");
        Require(!(FreezeEncoder && RandomInit), "--freeze-encoder with --random-init would train a head over random features; choose one.");
        Require(EarlyStoppingPatience is null || ValidationPath is not null, "early stopping needs --validation data.");
        Require(Task != ClassificationTask.Prompt || (Template is not null && VerbalizerPath is not null), "--task prompt needs --template and --verbalizer.");
        Require(Task == ClassificationTask.Prompt || (Template is null && VerbalizerPath is null), "--template and --verbalizer go with --task prompt.");
        Require(!(Task == ClassificationTask.Prompt && FreezeEncoder), "--freeze-encoder would leave a prompt model nothing but the vocabulary projection to train.");
    }
}

/// <summary>One evaluation during fine-tuning: the step, the epoch (fractional) and the validation metrics.</summary>
public sealed record FineTuneEvaluation(long Step, double Epoch, IReadOnlyDictionary<string, double> Metrics);

/// <summary>What a fine-tuning run left: the folder holding the best (else last) model, its evaluation, and the history.</summary>
public sealed record FineTuneResult(string OutputDir, FineTuneEvaluation? Best, long Steps, IReadOnlyList<FineTuneEvaluation> History,
    IReadOnlyList<string> Labels, TimeSpan Elapsed, bool StoppedEarly);

/// <summary>Progress of a fine-tuning run.</summary>
public sealed record FineTuneProgress(string Phase, long Step, long TotalSteps, double? Loss, double? Metric);
