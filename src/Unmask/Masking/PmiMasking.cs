namespace Unmask.Masking;

/// <summary>
/// Options of <see cref="PmiMasking"/>: collocations of 2..<see cref="MaxWords"/> words seen at least
/// <see cref="MinCount"/> times, the <see cref="Collocations"/> best by PMI; unit weights are the mean token
/// surprisal raised to <see cref="InformativenessPower"/> (0: every unit alike).
/// </summary>
public sealed record PmiOptions(int MaxWords = 3, int MinCount = 10, int Collocations = 20_000, double InformativenessPower = 1)
{
    public void Validate()
    {
        if (MaxWords is < 2 or > CorpusStatistics.Gram.MaxLength)
            throw new UnmaskException($"pmi.max_words must be in 2..{CorpusStatistics.Gram.MaxLength}, got {MaxWords}");
        if (MinCount < 2) throw new UnmaskException($"pmi.min_count must be at least 2, got {MinCount}");
        if (Collocations < 1) throw new UnmaskException($"pmi.collocations must be at least 1, got {Collocations}");
        if (InformativenessPower is < 0 or > 10 || double.IsNaN(InformativenessPower))
            throw new UnmaskException($"pmi.informativeness_power must be in [0, 10], got {InformativenessPower}");
    }
}

/// <summary>
/// PMI masking: each row is cut into units. Every occurrence of a collocation of
/// <see cref="CorpusStatistics.Collocations"/> is a candidate (within one segment: special tokens break collocations);
/// candidates are taken highest PMI first, skipping any that overlap one already taken, so a strong collocation is not
/// split by a weaker one that overlaps it (". zorbly quantex" against "zorbly quantex vimmerfold"). The remaining
/// words are units of one word. Units are then selected independently with probability
/// min(1, c · weight), c set per row so the expected number of selected tokens is rate × tokens. A unit's weight is
/// its informativeness: the mean surprisal −log((count + 1) / (total + vocabulary)) of its tokens, to the power
/// <see cref="PmiOptions.InformativenessPower"/>. A collocation is corrupted as one unit.
/// </summary>
public sealed class PmiMasking : UnitMasking
{
    readonly double[] _surprisal;
    readonly CorpusStatistics.WordTable _words;
    readonly Dictionary<CorpusStatistics.Gram, double> _collocations = [];
    readonly int _longest;

    public PmiMasking(MaskingOptions options, MaskingVocabulary vocab, WordBoundaries boundaries, CorpusStatistics statistics)
        : base(options, vocab, boundaries)
    {
        _surprisal = new double[vocab.VocabSize];
        double denominator = statistics.TotalTokens + vocab.VocabSize;
        for (int i = 0; i < _surprisal.Length; i++)
            _surprisal[i] = -Math.Log((i < statistics.TokenCounts.Length ? statistics.TokenCounts[i] + 1 : 1) / denominator);
        _words = new CorpusStatistics.WordTable(vocab.VocabSize);
        foreach (var c in statistics.Collocations)
        {
            var ids = c.Words.Select(w => _words.Intern(Array.ConvertAll(w, x => (long)x))).ToList();
            _collocations[CorpusStatistics.Gram.At(ids, 0, ids.Count)] = c.Pmi;
            _longest = Math.Max(_longest, ids.Count);
        }
    }

    protected override void Choose(List<WordSpan> words, long[] ids, double rate, Random rng, List<(int First, int Count)> units)
    {
        var wordIds = new int[words.Count];
        for (int i = 0; i < words.Count; i++) wordIds[i] = _words.Find(ids.AsSpan(words[i].Start, words[i].Length));
        var found = new List<(double Pmi, int First, int Count)>();
        for (int i = 0; i < words.Count; i++)
            for (int n = 2; n <= Math.Min(_longest, words.Count - i); n++)
                if (Pmi(words, wordIds, i, n) is { } pmi) found.Add((pmi, i, n));
        var unitLength = new int[words.Count];
        foreach (var (_, first, count) in found.OrderByDescending(f => f.Pmi).ThenBy(f => f.First).ThenByDescending(f => f.Count))
        {
            bool free = true;
            for (int w = first; w < first + count && free; w++) free = unitLength[w] == 0;
            if (!free) continue;
            unitLength[first] = count;
            for (int w = first + 1; w < first + count; w++) unitLength[w] = -1;
        }
        var candidates = new List<(int First, int Count)>();
        for (int i = 0; i < words.Count; i++)
            if (unitLength[i] >= 0) candidates.Add((i, Math.Max(1, unitLength[i])));
        var weights = new double[candidates.Count];
        var sizes = new int[candidates.Count];
        int eligible = 0;
        for (int u = 0; u < candidates.Count; u++)
        {
            var (first, count) = candidates[u];
            double surprisal = 0;
            for (int w = first; w < first + count; w++)
                for (int p = words[w].Start; p < words[w].End; p++)
                {
                    surprisal += _surprisal[ids[p]];
                    sizes[u]++;
                }
            weights[u] = Math.Pow(surprisal / sizes[u], Options.Pmi.InformativenessPower);
            eligible += sizes[u];
        }
        var probabilities = new double[candidates.Count];
        Corruption.InclusionProbabilities(weights, sizes, rate * eligible, probabilities);
        for (int u = 0; u < candidates.Count; u++)
            if (rng.NextDouble() < probabilities[u]) units.Add(candidates[u]);
    }

    /// <summary>The PMI of the collocation of <paramref name="n"/> words at <paramref name="first"/>, or null if there is none.</summary>
    double? Pmi(List<WordSpan> words, int[] wordIds, int first, int n)
    {
        for (int k = 0; k < n; k++)
        {
            if (wordIds[first + k] < 0) return null;
            if (k > 0 && words[first + k].Start != words[first + k - 1].End) return null;
        }
        return _collocations.TryGetValue(CorpusStatistics.Gram.At(wordIds, first, n), out var pmi) ? pmi : null;
    }
}
