namespace Unmask.Masking;

/// <summary>
/// Options of <see cref="WeightedMasking"/>: a token's weight is (count + 1)^(−1 / <see cref="Temperature"/>), so a
/// token k times rarer is selected k^(1/T) times as often; a high temperature approaches uniform masking.
/// </summary>
public sealed record WeightedOptions(double Temperature = 2)
{
    public void Validate()
    {
        if (Temperature is <= 0 || double.IsNaN(Temperature) || double.IsInfinity(Temperature))
            throw new UnmaskException($"weighted.temperature must be positive, got {Temperature}");
    }

    public double Weight(long count) => Math.Pow(count + 1, -1 / Temperature);
}

/// <summary>
/// Frequency-weighted masking: each non-special token is selected independently with probability min(1, c · weight)
/// (<see cref="WeightedOptions.Weight"/>, counts from <see cref="CorpusStatistics"/>), c set per row so the expected
/// number selected is rate × tokens. Corruption is drawn per token.
/// </summary>
public sealed class WeightedMasking : IMaskingStrategy
{
    readonly MaskingOptions _options;
    readonly MaskingVocabulary _vocab;
    readonly double[] _weights;

    public WeightedMasking(MaskingOptions options, MaskingVocabulary vocab, CorpusStatistics statistics)
    {
        options.Validate();
        _options = options;
        _vocab = vocab;
        _weights = new double[vocab.VocabSize];
        for (int i = 0; i < _weights.Length; i++)
            _weights[i] = options.Weighted.Weight(i < statistics.TokenCounts.Length ? statistics.TokenCounts[i] : 0);
    }

    public MaskedBatch Apply(long[] inputIds, int batchSize, int seqLength, Random rng, double progress)
    {
        var (corrupted, labels) = Corruption.Begin(inputIds, batchSize, seqLength);
        double rate = _options.RateAt(progress);
        var positions = new int[seqLength];
        var weights = new double[seqLength];
        var sizes = new int[seqLength];
        var probabilities = new double[seqLength];
        Array.Fill(sizes, 1);
        for (int b = 0; b < batchSize; b++)
        {
            int n = 0;
            for (int t = b * seqLength; t < (b + 1) * seqLength; t++)
            {
                long id = inputIds[t];
                if (id < _vocab.IsSpecial.Length && _vocab.IsSpecial[id]) continue;
                positions[n] = t;
                weights[n++] = id < _weights.Length ? _weights[id] : 1;
            }
            if (n == 0) continue;
            Corruption.InclusionProbabilities(weights.AsSpan(0, n), sizes.AsSpan(0, n), rate * n, probabilities.AsSpan(0, n));
            for (int i = 0; i < n; i++)
                if (rng.NextDouble() < probabilities[i])
                    Corruption.Token(positions[i], inputIds, corrupted, labels, _options, _vocab, rng);
        }
        return new MaskedBatch(corrupted, labels, batchSize, seqLength);
    }
}
