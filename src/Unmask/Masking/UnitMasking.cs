namespace Unmask.Masking;

/// <summary>
/// The frame of the strategies that select whole words: splits each row into words (<see cref="WordBoundaries"/>),
/// lets the strategy choose units of consecutive words, then corrupts each unit as one (<see cref="Corruption.Unit"/>).
/// </summary>
public abstract class UnitMasking : IMaskingStrategy
{
    protected MaskingOptions Options { get; }
    protected MaskingVocabulary Vocabulary { get; }
    protected WordBoundaries Boundaries { get; }

    protected UnitMasking(MaskingOptions options, MaskingVocabulary vocab, WordBoundaries boundaries)
    {
        options.Validate();
        Options = options;
        Vocabulary = vocab;
        Boundaries = boundaries;
    }

    /// <summary>
    /// Appends the chosen units of one row as (first word, word count) to <paramref name="units"/>; units must not
    /// overlap, and their expected number of tokens must be <paramref name="rate"/> × the row's tokens in words.
    /// </summary>
    protected abstract void Choose(List<WordSpan> words, long[] ids, double rate, Random rng, List<(int First, int Count)> units);

    public MaskedBatch Apply(long[] inputIds, int batchSize, int seqLength, Random rng, double progress)
    {
        var (corrupted, labels) = Corruption.Begin(inputIds, batchSize, seqLength);
        double rate = Options.RateAt(progress);
        var words = new List<WordSpan>();
        var chosen = new List<(int First, int Count)>();
        var units = new List<MaskUnit>();
        for (int b = 0; b < batchSize; b++)
        {
            words.Clear();
            chosen.Clear();
            Boundaries.Words(inputIds.AsSpan(b * seqLength, seqLength), b * seqLength, words);
            if (words.Count == 0) continue;
            Choose(words, inputIds, rate, rng, chosen);
            foreach (var (first, count) in chosen)
            {
                Corruption.Unit(words, first, count, inputIds, corrupted, labels, Options, Vocabulary, rng);
                units.Add(new MaskUnit(words[first].Start, words[first + count - 1].End, count));
            }
        }
        return new MaskedBatch(corrupted, labels, batchSize, seqLength) { Units = units };
    }

    /// <summary>
    /// Places spans of the given word lengths at uniformly random non-overlapping places among
    /// <paramref name="wordCount"/> words: the spans and the uncovered words are arranged in a random order
    /// (stars and bars), so no span length is favoured, unlike placing spans one by one and rejecting overlaps.
    /// Spans that do not fit are dropped from the end.
    /// </summary>
    protected static void PlaceSpans(List<int> lengths, int wordCount, Random rng, List<(int First, int Count)> units)
    {
        int covered = 0;
        for (int i = 0; i < lengths.Count; i++)
        {
            if (covered + lengths[i] > wordCount)
            {
                lengths.RemoveRange(i, lengths.Count - i);
                break;
            }
            covered += lengths[i];
        }
        int k = lengths.Count, items = k + wordCount - covered;
        if (k == 0) return;
        var isSpan = new bool[items];
        var order = new int[items];
        for (int i = 0; i < items; i++) order[i] = i;
        for (int i = 0; i < k; i++)
        {
            int j = i + rng.Next(items - i);
            (order[i], order[j]) = (order[j], order[i]);
            isSpan[order[i]] = true;
        }
        int word = 0, next = 0;
        for (int i = 0; i < items; i++)
        {
            if (isSpan[i])
            {
                units.Add((word, lengths[next]));
                word += lengths[next++];
            }
            else word++;
        }
    }

    /// <summary>Draws span lengths (in words) from <paramref name="probabilities"/> (index 0: one word) until their expected total is met.</summary>
    protected static void DrawLengths(double[] probabilities, double meanLength, double targetWords, Random rng, List<int> lengths)
    {
        // A count with expectation target/mean and lengths drawn independently of it: E[Σ length] = target, and the
        // lengths keep their distribution (stopping once a budget is full would cut long spans more often).
        int count = Corruption.StochasticRound(targetWords / meanLength, rng);
        lengths.Clear();
        for (int i = 0; i < count; i++)
        {
            double u = rng.NextDouble();
            int n = 0;
            while (n < probabilities.Length - 1 && u >= probabilities[n])
            {
                u -= probabilities[n];
                n++;
            }
            lengths.Add(n + 1);
        }
    }
}
