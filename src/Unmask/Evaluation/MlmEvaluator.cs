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
        var cache = TokenStoreCache.Directory(corpus.Name + "/" + corpus.ContentHash, tokenizer.Fingerprint);
        var splits = new List<(string Name, IReadOnlyList<string> Lines)>();
        if (options.Split != CorpusSplit.Validation) splits.Add(("train", corpus.Train));
        if (options.Split != CorpusSplit.Train) splits.Add(("validation", corpus.Validation));

        var stores = new List<TokenStore>();
        try
        {
            foreach (var (name, lines) in splits)
                stores.Add(TokenStore.OpenOrBuild(Path.Combine(cache, name), lines, t => tokenizer.Encode(t, addSpecialTokens: false).InputIds,
                    new TokenStoreInfo(tokenizer.Fingerprint, corpus.Name + "/" + name, tokenizer.VocabSize), null, ct));
            var packers = stores.Select(s => new SequencePacker(s, options.MaxSeqLength, tokenizer.ClsId, tokenizer.SepId)).ToList();
            long available = packers.Sum(p => p.Count);
            long total = Math.Min(available, options.MaxSequences ?? long.MaxValue);
            if (total == 0)
                throw new UnmaskException($"{corpusPath}: the corpus does not fill one sequence of {options.MaxSeqLength} tokens");

            var vocab = new MaskingVocabulary(context.Model.VocabSize, tokenizer.MaskId,
                Enumerable.Range(0, context.Model.VocabSize).Select(i => i >= tokenizer.VocabSize || tokenizer.IsSpecial(i)).ToArray());
            var masking = new RandomMasking(options.Masking, vocab);
            var rng = new Random(options.Seed);
            double lossSum = 0;
            long correct = 0, top5 = 0, selected = 0, done = 0;
            var sequences = packers.SelectMany(p => Enumerable.Range(0, checked((int)p.Count)).Select(i => (Packer: p, Index: (long)i)));
            foreach (var chunk in sequences.Take(checked((int)total)).Chunk(options.BatchSize))
            {
                ct.ThrowIfCancellationRequested();
                int length = options.MaxSeqLength;
                var ids = new long[chunk.Length * length];
                for (int b = 0; b < chunk.Length; b++) chunk[b].Packer.CopySequence(chunk[b].Index, ids.AsSpan(b * length, length));
                var batch = masking.Apply(ids, chunk.Length, length, rng, progress: 0);
                var (loss, hits, hits5, n) = Score(context, batch);
                (lossSum, correct, top5, selected) = (lossSum + loss, correct + hits, top5 + hits5, selected + n);
                done += chunk.Length;
                progress?.Report(new ScoringProgress(done, total));
            }
            double meanLoss = selected == 0 ? double.NaN : lossSum / selected;
            return new MlmEvalResult(corpus.Name, options.Split, total, options.MaxSeqLength, selected, meanLoss, Math.Exp(meanLoss),
                selected == 0 ? double.NaN : (double)correct / selected, selected == 0 ? double.NaN : (double)top5 / selected);
        }
        finally
        {
            foreach (var store in stores) store.Dispose();
        }
    }

    static (double LossSum, long Correct, long Top5, long Count) Score(ScoringContext context, MaskedBatch batch)
    {
        using var scope = NewDisposeScope();
        using var mode = inference_mode();
        var shape = new long[] { batch.BatchSize, batch.SeqLength };
        var labels = tensor(batch.Labels, shape); // [batch, seq]
        var selected = labels.ne(MaskedBatch.Ignore); // [batch, seq]
        var targets = labels.masked_select(selected).unsqueeze(1); // [n, 1]
        long n = targets.shape[0];
        if (n == 0) return (0, 0, 0, 0);
        var input = tensor(batch.InputIds, shape);
        var logits = context.Model.LogitsAt(input, ones_like(input), zeros_like(input), selected); // [n, vocab]
        var logProbs = logits.log_softmax(-1); // [n, vocab]
        double lossSum = -logProbs.gather(1, targets).to(ScalarType.Float64).sum().item<double>();
        long correct = logits.argmax(-1, keepdim: true).eq(targets).sum().item<long>();
        int k = (int)Math.Min(5, logits.shape[1]);
        var (_, best) = logits.topk(k); // [n, k]
        long top5 = best.eq(targets).any(1).sum().item<long>();
        return (lossSum, correct, top5, n);
    }
}
