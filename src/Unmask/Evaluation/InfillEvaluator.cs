using System.Diagnostics;
using Unmask.Data;
using Unmask.Generation;
using Unmask.Inference;

namespace Unmask.Evaluation;

/// <summary>Which positions of a window <c>eval infill</c> hides.</summary>
public enum InfillMasking
{
    /// <summary>Tokens chosen uniformly at the mask rate.</summary>
    Random,

    /// <summary>Non-overlapping spans of <see cref="InfillOptions.SpanLength"/> tokens, as many as the mask rate asks.</summary>
    Span,
}

public sealed record InfillOptions
{
    public CorpusSplit Split { get; init; } = CorpusSplit.Validation;
    public int MaxSeqLength { get; init; } = 128;
    public int Windows { get; init; } = 64;
    public int BatchSize { get; init; } = 16;
    public InfillMasking Masking { get; init; } = InfillMasking.Random;
    public double MaskRate { get; init; } = 0.15;
    public int SpanLength { get; init; } = 4;
    public int Seed { get; init; } = 0x5eed;
    public bool Latin1Fallback { get; init; }

    /// <summary>The sampler settings to compare, each on the same windows and masks.</summary>
    public IReadOnlyList<SamplingOptions> Settings { get; init; } = [new()];
}

/// <param name="Recovery">Fraction of hidden tokens filled with the true token.</param>
/// <param name="ForwardPasses">Forward passes per batch of windows (NFE), averaged over batches.</param>
/// <param name="TokensPerSecond">Hidden tokens filled per second of sampling.</param>
public sealed record InfillRow(SamplingOptions Setting, double Recovery, double ForwardPasses, double TokensPerSecond, double Seconds);

/// <param name="BaselineRecovery">Recovery of predicting the most common hidden token everywhere.</param>
/// <param name="TrueLogLikelihood">Mean natural-log probability the model gives each hidden true token, all hidden at once.</param>
public sealed record InfillResult(string Corpus, CorpusSplit Split, int Windows, int SeqLength, string Masking, long HiddenTokens,
    double BaselineRecovery, double TrueLogLikelihood, IReadOnlyList<InfillRow> Rows);

/// <summary>
/// Fixed-seed windows of held-out text (packed as pretraining packs them) with tokens or spans hidden, filled by each
/// sampler setting; reports exact recovery against the true text.
/// </summary>
public static class InfillEvaluator
{
    public static InfillResult Evaluate(MaskedLanguageModel mlm, string corpusPath, InfillOptions options,
        IProgress<ScoringProgress>? progress = null, CancellationToken ct = default)
    {
        if (options.Windows < 1) throw new UnmaskException($"--windows must be positive, got {options.Windows}");
        if (options.BatchSize < 1) throw new UnmaskException($"--batch-size must be positive, got {options.BatchSize}");
        if (options.MaskRate is <= 0 or >= 1) throw new UnmaskException($"--mask-rate must be in (0, 1), got {options.MaskRate}");
        if (options.SpanLength < 1) throw new UnmaskException($"--span-length must be positive, got {options.SpanLength}");
        if (options.MaxSeqLength < 3 || options.MaxSeqLength > mlm.Model.MaxSequenceLength)
            throw new UnmaskException($"sequence length must be in [3, {mlm.Model.MaxSequenceLength}] for this model, got {options.MaxSeqLength}");
        if (options.Settings.Count == 0) throw new UnmaskException("give at least one sampler setting");
        var logits = new ModelLogits(mlm.Model);
        var tokenizer = mlm.Tokenizer;

        var corpus = Corpus.Load(corpusPath, ct, options.Latin1Fallback);
        var split = options.Split == CorpusSplit.Train ? DataSplit.Train : DataSplit.Validation;
        using var data = TokenizedCorpus.Open(corpus, tokenizer, [split], ct);
        var packer = data.Pack(split, options.MaxSeqLength);
        int windows = (int)Math.Min(packer.Count, options.Windows);
        if (windows == 0) throw new UnmaskException($"{corpusPath}: the {split.ToString().ToLowerInvariant()} split does not fill one window of {options.MaxSeqLength} tokens");

        // Block-wise samplers need each row's hidden count to be a multiple of their block: every row hides the same
        // number of tokens, rounded down to the largest block length asked for.
        int block = options.Settings.Max(s => s.BlockLength ?? 1);
        var truth = new List<long[]>();
        var hidden = new List<long[]>();
        var rng = new Random(options.Seed);
        for (int w = 0; w < windows; w++)
        {
            var ids = new long[options.MaxSeqLength];
            packer.CopySequence(w, ids);
            var positions = Enumerable.Range(0, ids.Length).Where(p => !tokenizer.IsSpecial((int)ids[p])).ToArray();
            int count = Math.Max(block, (int)Math.Round(options.MaskRate * positions.Length) / block * block);
            var chosen = options.Masking == InfillMasking.Random ? RandomPositions(positions, count, rng) : SpanPositions(positions, count, options.SpanLength, rng);
            var masked = (long[])ids.Clone();
            foreach (var p in chosen) masked[p] = tokenizer.MaskId;
            truth.Add(ids);
            hidden.Add(masked);
        }

        long hiddenTokens = 0;
        var trueCounts = new Dictionary<long, long>();
        for (int w = 0; w < windows; w++)
            for (int p = 0; p < truth[w].Length; p++)
                if (hidden[w][p] == tokenizer.MaskId)
                {
                    hiddenTokens++;
                    trueCounts[truth[w][p]] = trueCounts.GetValueOrDefault(truth[w][p]) + 1;
                }
        double baseline = (double)trueCounts.Values.Max() / hiddenTokens;
        double logLikelihood = TrueLogLikelihood(logits, truth, hidden, tokenizer.MaskId, options.BatchSize, ct);

        var forbidden = TextGeneration.ForbiddenIds(tokenizer, logits.VocabSize);
        var rows = new List<InfillRow>();
        int batches = (windows + options.BatchSize - 1) / options.BatchSize;
        for (int s = 0; s < options.Settings.Count; s++)
        {
            var setting = options.Settings[s];
            long correct = 0, passes = 0;
            var clock = new Stopwatch();
            for (int b = 0; b < batches; b++)
            {
                ct.ThrowIfCancellationRequested();
                var range = Enumerable.Range(b * options.BatchSize, Math.Min(options.BatchSize, windows - b * options.BatchSize)).ToList();
                var input = new GenerationInput(range.Select(w => hidden[w]).ToList(), tokenizer.MaskId, tokenizer.PadId, forbidden);
                Sampler.Validate(input, setting);
                clock.Start();
                var result = Sampler.Generate(logits, input, setting with { Trace = false }, null, ct);
                clock.Stop();
                passes += result.ForwardPasses;
                for (int i = 0; i < range.Count; i++)
                    foreach (var p in result.Rows[i].GeneratedPositions)
                        if (result.Rows[i].Ids[p] == truth[range[i]][p]) correct++;
                progress?.Report(new ScoringProgress((long)s * batches + b + 1, (long)options.Settings.Count * batches));
            }
            double seconds = clock.Elapsed.TotalSeconds;
            rows.Add(new InfillRow(setting, (double)correct / hiddenTokens, (double)passes / batches, hiddenTokens / Math.Max(seconds, 1e-9), seconds));
        }
        var masking = options.Masking == InfillMasking.Random ? $"random {options.MaskRate:0.##}" : $"spans of {options.SpanLength} at {options.MaskRate:0.##}";
        return new InfillResult(corpus.Name, options.Split, windows, options.MaxSeqLength, masking, hiddenTokens, baseline, logLikelihood, rows);
    }

    static int[] RandomPositions(int[] positions, int count, Random rng)
    {
        var shuffled = (int[])positions.Clone();
        rng.Shuffle(shuffled);
        return shuffled.Take(Math.Min(count, shuffled.Length)).ToArray();
    }

    /// <summary>Spans of <paramref name="length"/> consecutive non-special positions, in distinct slots of that length.</summary>
    static int[] SpanPositions(int[] positions, int count, int length, Random rng)
    {
        var slots = Enumerable.Range(0, positions.Length / length).ToArray();
        rng.Shuffle(slots);
        var chosen = new List<int>();
        foreach (var slot in slots)
        {
            if (chosen.Count >= count) break;
            chosen.AddRange(positions.Skip(slot * length).Take(Math.Min(length, count - chosen.Count)));
        }
        return [.. chosen];
    }

    /// <summary>Mean log-probability of the true tokens at the hidden positions, every hidden position masked at once.</summary>
    static double TrueLogLikelihood(IMaskedLmLogits model, List<long[]> truth, List<long[]> hidden, long maskId, int batchSize, CancellationToken ct)
    {
        double sum = 0;
        long count = 0;
        for (int start = 0; start < truth.Count; start += batchSize)
        {
            ct.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope();
            int size = Math.Min(batchSize, truth.Count - start);
            int seq = truth[start].Length;
            var input = tensor(hidden.Skip(start).Take(size).SelectMany(r => r).ToArray(), [size, seq], device: model.Device); // [batch, seq]
            var target = tensor(truth.Skip(start).Take(size).SelectMany(r => r).ToArray(), [size, seq], device: model.Device); // [batch, seq]
            var logProbs = model.Logits(input, ones_like(input)).log_softmax(-1); // [batch, seq, vocab]
            var picked = logProbs.gather(2, target.unsqueeze(2)).squeeze(2).masked_select(input.eq(maskId)); // [hidden]
            sum += picked.to(ScalarType.Float64).sum().item<double>();
            count += picked.shape[0];
        }
        return sum / Math.Max(count, 1);
    }
}
