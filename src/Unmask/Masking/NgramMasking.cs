using System.Text.Json.Serialization;

namespace Unmask.Masking;

/// <summary>
/// ERNIE-Gram-style n-gram lengths: <see cref="Probabilities"/>[n − 1] is the probability of an n-word unit.
/// The default, 1/n normalised over n = 1..3, favours single words while keeping a fair share of bi- and trigrams.
/// </summary>
public sealed record NgramOptions(double[]? Probabilities = null)
{
    static readonly double[] Default = [6.0 / 11, 3.0 / 11, 2.0 / 11];

    [JsonIgnore]
    public double[] Lengths => Probabilities ?? Default;

    public void Validate()
    {
        var p = Lengths;
        if (p.Length is < 1 or > 10) throw new UnmaskException($"ngram.probabilities must give 1 to 10 lengths, got {p.Length}");
        if (p.Any(x => x < 0 || double.IsNaN(x))) throw new UnmaskException("ngram.probabilities must not be negative");
        if (Math.Abs(p.Sum() - 1) > 1e-6) throw new UnmaskException($"ngram.probabilities must sum to 1, got {p.Sum()}");
    }

    public double MeanLength() => Lengths.Select((p, k) => p * (k + 1)).Sum();
}

/// <summary>
/// N-gram masking: units of 1..N consecutive whole words with the configured length probabilities, placed at random
/// without overlap until rate × words are covered in expectation; each n-gram is corrupted as one unit.
/// </summary>
public sealed class NgramMasking : UnitMasking
{
    readonly double[] _probabilities;
    readonly double _mean;

    public NgramMasking(MaskingOptions options, MaskingVocabulary vocab, WordBoundaries boundaries) : base(options, vocab, boundaries)
    {
        _probabilities = options.Ngram.Lengths;
        _mean = options.Ngram.MeanLength();
    }

    protected override void Choose(List<WordSpan> words, long[] ids, double rate, Random rng, List<(int First, int Count)> units)
    {
        var lengths = new List<int>();
        DrawLengths(_probabilities, _mean, rate * words.Count, rng, lengths);
        PlaceSpans(lengths, words.Count, rng, units);
    }
}
