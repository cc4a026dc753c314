namespace Unmask.Masking;

/// <summary>
/// SpanBERT's span lengths: P(length = k words) ∝ p(1 − p)^(k−1) for k = 1..MaxLength (a truncated geometric).
/// </summary>
public sealed record SpanOptions(double P = 0.2, int MaxLength = 10)
{
    public void Validate()
    {
        if (P is <= 0 or > 1) throw new UnmaskException($"span.p must be in (0, 1], got {P}");
        if (MaxLength is < 1 or > 100) throw new UnmaskException($"span.max_length must be in 1..100, got {MaxLength}");
    }

    /// <summary>P(length = k + 1 words), k = 0..MaxLength−1.</summary>
    public double[] Probabilities()
    {
        var p = new double[MaxLength];
        for (int k = 0; k < MaxLength; k++) p[k] = P * Math.Pow(1 - P, k);
        double sum = p.Sum();
        for (int k = 0; k < MaxLength; k++) p[k] /= sum;
        return p;
    }

    public double MeanLength() => Probabilities().Select((p, k) => p * (k + 1)).Sum();
}

/// <summary>
/// SpanBERT-style span masking: spans of whole words with geometric lengths, placed at random without overlap until
/// rate × words are covered in expectation (<see cref="UnitMasking.DrawLengths"/>, <see cref="UnitMasking.PlaceSpans"/>).
/// Each span is corrupted as one unit (all masked, all random or all kept), as in SpanBERT. Spans run over the words of
/// the whole row, so in a packed row a span may reach across a [SEP] (which itself is never selected).
/// </summary>
public sealed class SpanMasking : UnitMasking
{
    readonly double[] _probabilities;
    readonly double _mean;

    public SpanMasking(MaskingOptions options, MaskingVocabulary vocab, WordBoundaries boundaries) : base(options, vocab, boundaries)
    {
        _probabilities = options.Span.Probabilities();
        _mean = options.Span.MeanLength();
    }

    protected override void Choose(List<WordSpan> words, long[] ids, double rate, Random rng, List<(int First, int Count)> units)
    {
        var lengths = new List<int>();
        DrawLengths(_probabilities, _mean, rate * words.Count, rng, lengths);
        PlaceSpans(lengths, words.Count, rng, units);
    }
}
