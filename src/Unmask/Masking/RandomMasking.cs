namespace Unmask.Masking;

/// <summary>
/// BERT's masking: per sequence, select round(rate × eligible) non-special positions uniformly (an exact count,
/// stochastically rounded, so the realised rate does not drift with sequence length), then replace each with the
/// mask token, a random non-special token, or keep it.
/// </summary>
public sealed class RandomMasking : IMaskingStrategy
{
    readonly MaskingOptions _options;
    readonly MaskingVocabulary _vocab;

    public RandomMasking(MaskingOptions options, MaskingVocabulary vocab)
    {
        options.Validate();
        _options = options;
        _vocab = vocab;
    }

    public MaskedBatch Apply(long[] inputIds, int batchSize, int seqLength, Random rng, double progress)
    {
        var (corrupted, labels) = Corruption.Begin(inputIds, batchSize, seqLength);
        var eligible = new int[seqLength];
        for (int b = 0; b < batchSize; b++)
        {
            int row = b * seqLength, n = 0;
            for (int t = 0; t < seqLength; t++)
                if (!IsSpecial(inputIds[row + t])) eligible[n++] = row + t;
            double expected = _options.RateAt(progress) * n;
            int count = (int)Math.Floor(expected);
            if (rng.NextDouble() < expected - count) count++;
            for (int i = 0; i < count; i++)
            {
                int j = i + rng.Next(n - i);
                (eligible[i], eligible[j]) = (eligible[j], eligible[i]);
                Corrupt(eligible[i], inputIds, corrupted, labels, rng);
            }
        }
        return new MaskedBatch(corrupted, labels, batchSize, seqLength);
    }

    void Corrupt(int position, long[] original, long[] corrupted, long[] labels, Random rng)
    {
        labels[position] = original[position];
        double u = rng.NextDouble();
        if (u < _options.MaskFraction) corrupted[position] = _vocab.MaskId;
        else if (u < _options.MaskFraction + _options.RandomFraction)
            corrupted[position] = _vocab.ReplacementIds[rng.Next(_vocab.ReplacementIds.Length)];
    }

    bool IsSpecial(long id) => id < _vocab.IsSpecial.Length && _vocab.IsSpecial[id];
}
