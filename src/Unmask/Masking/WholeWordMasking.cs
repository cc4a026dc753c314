namespace Unmask.Masking;

/// <summary>
/// Whole-word masking: per row, round(rate × words) words chosen uniformly (stochastically rounded), every piece of a
/// chosen word selected. Each word is chosen with probability rate, so the expected share of tokens is the rate too.
/// </summary>
public sealed class WholeWordMasking(MaskingOptions options, MaskingVocabulary vocab, WordBoundaries boundaries)
    : UnitMasking(options, vocab, boundaries)
{
    protected override void Choose(List<WordSpan> words, long[] ids, double rate, Random rng, List<(int First, int Count)> units)
    {
        int n = words.Count;
        int count = Math.Min(n, Corruption.StochasticRound(rate * n, rng));
        var order = new int[n];
        for (int i = 0; i < n; i++) order[i] = i;
        for (int i = 0; i < count; i++)
        {
            int j = i + rng.Next(n - i);
            (order[i], order[j]) = (order[j], order[i]);
            units.Add((order[i], 1));
        }
    }
}
