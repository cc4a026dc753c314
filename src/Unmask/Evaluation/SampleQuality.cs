using Unmask.Data;
using Unmask.Generation;
using Unmask.Inference;

namespace Unmask.Evaluation;

public sealed record SampleQualityOptions
{
    public int Samples { get; init; } = 16;
    public int Length { get; init; } = 128;
    public SamplingOptions Sampling { get; init; } = new() { Sampler = SamplerKind.Ancestral, Steps = 128, Seed = 1 };
    public CorpusSplit Split { get; init; } = CorpusSplit.Validation;
    public bool Latin1Fallback { get; init; }
}

/// <summary>Diversity of a set of texts (over the generator's tokens) and their pseudo-perplexity under a judge model.</summary>
/// <param name="DistinctN">distinct-1, -2, -3: distinct n-grams over all n-grams of the set.</param>
/// <param name="UnigramEntropy">Entropy (nats) of the set's token distribution.</param>
/// <param name="JudgePseudoPerplexity">exp(−ΣPLL / tokens) under the judge, or NaN without a judge.</param>
public sealed record TextSetStatistics(int Texts, long Tokens, IReadOnlyList<double> DistinctN, double UnigramEntropy, double JudgePseudoPerplexity);

/// <param name="Samples">The unconditional samples, decoded.</param>
/// <param name="Generated">Their statistics; <paramref name="Real"/> those of as many held-out windows of the same length.</param>
public sealed record SampleQualityResult(string Corpus, int Length, SamplingOptions Sampling, int ForwardPasses, IReadOnlyList<string> Samples,
    TextSetStatistics Generated, TextSetStatistics Real);

/// <summary>
/// Unconditional samples of a masked LM beside real held-out text of the same length: distinct-n, unigram entropy and a
/// judge model's pseudo-perplexity, so a sampler that collapses onto frequent tokens shows low entropy and low
/// perplexity at once.
/// </summary>
public static class SampleQuality
{
    public static SampleQualityResult Evaluate(MaskedLanguageModel generator, MaskedLanguageModel? judge, string corpusPath, SampleQualityOptions options,
        CancellationToken ct = default)
    {
        if (options.Samples < 1) throw new UnmaskException($"--samples must be positive, got {options.Samples}");
        var samples = TextGeneration.Generate(generator, new GenerateRequest { Length = options.Length, NumSamples = options.Samples, Sampling = options.Sampling },
            null, ct);
        var tokenizer = generator.Tokenizer;

        var corpus = Corpus.Load(corpusPath, ct, options.Latin1Fallback);
        var split = options.Split == CorpusSplit.Train ? DataSplit.Train : DataSplit.Validation;
        using var data = TokenizedCorpus.Open(corpus, tokenizer, [split], ct);
        var packer = data.Pack(split, options.Length + 2);
        int count = (int)Math.Min(packer.Count, options.Samples);
        if (count == 0) throw new UnmaskException($"{corpusPath}: the split does not fill one window of {options.Length} tokens");
        var real = new List<long[]>();
        for (int i = 0; i < count; i++)
        {
            var ids = new long[options.Length + 2];
            packer.CopySequence(i, ids);
            real.Add(ids);
        }

        IReadOnlyList<int> Content(IEnumerable<long> ids) => ids.Select(id => (int)id).Where(id => !tokenizer.IsSpecial(id)).ToList();
        var generatedIds = samples.Select(s => Content(s.Ids)).ToList();
        var realIds = real.Select(r => Content(r)).ToList();
        var generatedTexts = samples.Select(s => s.Output).ToList();
        var realTexts = realIds.Select(ids => tokenizer.Decode(ids, skipSpecialTokens: true)).ToList();
        return new SampleQualityResult(corpus.Name, options.Length, options.Sampling, samples[0].ForwardPasses, generatedTexts,
            Statistics(generatedIds, generatedTexts, judge, ct), Statistics(realIds, realTexts, judge, ct));
    }

    public static TextSetStatistics Statistics(IReadOnlyList<IReadOnlyList<int>> ids, IReadOnlyList<string> texts, MaskedLanguageModel? judge,
        CancellationToken ct = default)
    {
        var distinct = new[] { 1, 2, 3 }.Select(n => DistinctN(ids, n)).ToList();
        var counts = ids.SelectMany(r => r).GroupBy(id => id).Select(g => (double)g.Count()).ToList();
        double total = counts.Sum();
        double entropy = total == 0 ? double.NaN : -counts.Sum(c => c / total * Math.Log(c / total));
        double perplexity = double.NaN;
        if (judge is not null)
        {
            var scorer = new PllScorer(ScoringContext.From(judge));
            // A text longer than the judge takes cannot be scored; the others still count.
            perplexity = PseudoPerplexity.From(scorer.Score(texts, null, ct)).TokenLevel;
        }
        return new TextSetStatistics(ids.Count, (long)total, distinct, entropy, perplexity);
    }

    static double DistinctN(IReadOnlyList<IReadOnlyList<int>> rows, int n)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        long all = 0;
        foreach (var row in rows)
            for (int i = 0; i + n <= row.Count; i++)
            {
                all++;
                seen.Add(string.Join(',', row.Skip(i).Take(n)));
            }
        return all == 0 ? double.NaN : (double)seen.Count / all;
    }
}
