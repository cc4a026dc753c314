using Unmask.Data;
using Unmask.Masking;

namespace Unmask.Evaluation;

/// <summary>Which lines of a corpus to evaluate on (the split is the one pretraining uses).</summary>
public enum CorpusSplit
{
    All,
    Train,
    Validation,
}

public sealed record MlmEvalOptions
{
    public CorpusSplit Split { get; init; } = CorpusSplit.All;
    public int MaxSeqLength { get; init; } = 128;
    public int BatchSize { get; init; } = 32;

    /// <summary>Seed of the masking: the same seed, corpus and sequence length give the same masked copy.</summary>
    public int Seed { get; init; } = 0x5eed;

    public MaskingOptions Masking { get; init; } = new();

    /// <summary>Evaluate only the first N packed sequences.</summary>
    public long? MaxSequences { get; init; }
}

/// <summary>Mean cross-entropy (natural log) over the selected tokens, its exponential, top-1 and top-5 accuracy.</summary>
public sealed record MlmEvalResult(string Corpus, CorpusSplit Split, long Sequences, int SeqLength, long MaskedTokens,
    double Loss, double Perplexity, double Accuracy, double Top5Accuracy);

/// <summary>
/// Masked-token evaluation on a fixed-seed masked copy of a corpus: packed like pretraining (SequencePacker), masked
/// like pretraining (RandomMasking, 80/10/10 by default), one batch at a time so memory does not grow with the corpus.
/// </summary>
public static class MlmEvaluator
{
    public static MlmEvalResult Evaluate(ScoringContext context, string corpusPath, MlmEvalOptions? options = null,
        IProgress<ScoringProgress>? progress = null, CancellationToken ct = default)
    {
        options ??= new MlmEvalOptions();
        if (options.BatchSize < 1) throw new UnmaskException($"batch size must be positive, got {options.BatchSize}");
        if (options.MaxSeqLength < 3 || options.MaxSeqLength > context.Model.MaxSequenceLength)
            throw new UnmaskException($"sequence length must be in [3, {context.Model.MaxSequenceLength}] for this model, got {options.MaxSeqLength}");
        options.Masking.Validate();
        var tokenizer = context.Tokenizer;
        var corpus = Corpus.Load(corpusPath, ct);
        var splits = new List<DataSplit>();
        if (options.Split != CorpusSplit.Validation) splits.Add(DataSplit.Train);
        if (options.Split != CorpusSplit.Train) splits.Add(DataSplit.Validation);

        using var data = TokenizedCorpus.Open(corpus, tokenizer, splits, ct);
        var packers = splits.Select(s => data.Pack(s, options.MaxSeqLength)).ToList();
        long total = Math.Min(packers.Sum(p => p.Count), options.MaxSequences ?? long.MaxValue);
        if (total == 0)
            throw new UnmaskException($"{corpusPath}: the corpus does not fill one sequence of {options.MaxSeqLength} tokens");

        var vocab = new MaskingVocabulary(context.Model.VocabSize, tokenizer.MaskId,
            Enumerable.Range(0, context.Model.VocabSize).Select(i => i >= tokenizer.VocabSize || tokenizer.IsSpecial(i)).ToArray());
        var batches = MaskedTokenEvaluation.MaskedCopy(packers, total, options.BatchSize, options.MaxSeqLength,
            new RandomMasking(options.Masking, vocab), options.Seed);
        var score = MaskedTokenEvaluation.Score(context.Model, batches.Select(b => b.Masked), baselineId: null,
            s => progress?.Report(new ScoringProgress(s.Sequences, total)), ct, Distributed.MpiWorld.Current);
        return new MlmEvalResult(corpus.Name, options.Split, total, options.MaxSeqLength, score.Selected, score.Loss, Math.Exp(score.Loss),
            score.Accuracy, score.Top5Accuracy);
    }
}
