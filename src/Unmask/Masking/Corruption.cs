namespace Unmask.Masking;

/// <summary>
/// The mask/random/keep step shared by every strategy. Per-token strategies draw once per token; unit strategies
/// draw once per unit (SpanBERT's choice), so a unit is all masked, all replaced by random tokens, or all kept.
/// </summary>
static class Corruption
{
    /// <summary>A copy of the batch to corrupt and labels that ignore every position, after checking the batch's shape.</summary>
    public static (long[] Corrupted, long[] Labels) Begin(long[] inputIds, int batchSize, int seqLength)
    {
        if (inputIds.Length != batchSize * seqLength)
            throw new ArgumentException($"expected {batchSize}×{seqLength} ids, got {inputIds.Length}", nameof(inputIds));
        var labels = new long[inputIds.Length];
        Array.Fill(labels, MaskedBatch.Ignore);
        return ((long[])inputIds.Clone(), labels);
    }

    public static void Token(int position, long[] original, long[] corrupted, long[] labels, MaskingOptions options,
        MaskingVocabulary vocab, Random rng)
    {
        labels[position] = original[position];
        double u = rng.NextDouble();
        if (u < options.MaskFraction) corrupted[position] = vocab.MaskId;
        else if (u < options.MaskFraction + options.RandomFraction) corrupted[position] = RandomToken(vocab, rng);
    }

    /// <summary>Corrupts the tokens of <paramref name="words"/>[first..first+count) as one unit.</summary>
    public static void Unit(List<WordSpan> words, int first, int count, long[] original, long[] corrupted, long[] labels,
        MaskingOptions options, MaskingVocabulary vocab, Random rng)
    {
        double u = rng.NextDouble();
        for (int w = first; w < first + count; w++)
            for (int p = words[w].Start; p < words[w].End; p++)
            {
                labels[p] = original[p];
                if (u < options.MaskFraction) corrupted[p] = vocab.MaskId;
                else if (u < options.MaskFraction + options.RandomFraction) corrupted[p] = RandomToken(vocab, rng);
            }
    }

    static double ExpectedSize(ReadOnlySpan<double> weights, ReadOnlySpan<int> sizes, double c)
    {
        double s = 0;
        for (int i = 0; i < weights.Length; i++) s += Math.Min(1, c * weights[i]) * sizes[i];
        return s;
    }

    static long RandomToken(MaskingVocabulary vocab, Random rng) => vocab.ReplacementIds[rng.Next(vocab.ReplacementIds.Length)];

    /// <summary>floor(x) plus one with probability frac(x): an integer with expectation exactly x.</summary>
    public static int StochasticRound(double x, Random rng)
    {
        int n = (int)Math.Floor(x);
        return rng.NextDouble() < x - n ? n + 1 : n;
    }

    /// <summary>
    /// Inclusion probabilities min(1, c·weight) with c chosen so that Σ probability·size = target (Poisson sampling
    /// with an exact expected size). Bisection on c: the sum is continuous and increasing in c.
    /// </summary>
    public static void InclusionProbabilities(ReadOnlySpan<double> weights, ReadOnlySpan<int> sizes, double target, Span<double> probabilities)
    {
        double total = 0;
        for (int i = 0; i < sizes.Length; i++) total += sizes[i];
        if (target >= total)
        {
            probabilities.Fill(1);
            return;
        }
        double lo = 0, hi = 1;
        while (ExpectedSize(weights, sizes, hi) < target) hi *= 2;
        for (int iteration = 0; iteration < 60; iteration++)
        {
            double mid = (lo + hi) / 2;
            if (ExpectedSize(weights, sizes, mid) < target) lo = mid; else hi = mid;
        }
        double cFinal = (lo + hi) / 2;
        for (int i = 0; i < weights.Length; i++) probabilities[i] = Math.Min(1, cFinal * weights[i]);
    }
}
