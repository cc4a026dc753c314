namespace Unmask.Masking;

/// <summary>The strategies by name, as --masking and the "strategy" field of a masking config spell them.</summary>
public static class MaskingStrategies
{
    public const string Random = "random";
    public const string WholeWord = "whole-word";
    public const string Span = "span";
    public const string Ngram = "ngram";
    public const string Pmi = "pmi";
    public const string Weighted = "weighted";

    public static IReadOnlyList<string> Names { get; } = [Random, WholeWord, Span, Ngram, Pmi, Weighted];

    public static void CheckName(string name)
    {
        if (!Names.Contains(name))
            throw new UnmaskException($"unknown masking strategy '{name}' (valid: {string.Join(", ", Names)})");
    }

    /// <summary>Whether the strategy needs <see cref="CorpusStatistics"/>, and whether those include collocations.</summary>
    public static bool NeedsStatistics(string name) => name is Pmi or Weighted;

    /// <summary>The collocation options to compute statistics with (null: token counts only).</summary>
    public static PmiOptions? CollocationOptions(MaskingOptions options) => options.Strategy == Pmi ? options.Pmi : null;

    public static IMaskingStrategy Create(MaskingOptions options, MaskingVocabulary vocab, WordBoundaries boundaries,
        CorpusStatistics? statistics = null)
    {
        options.Validate();
        CorpusStatistics Statistics() => statistics
            ?? throw new UnmaskException($"masking strategy '{options.Strategy}' needs corpus statistics");
        return options.Strategy switch
        {
            Random => new RandomMasking(options, vocab),
            WholeWord => new WholeWordMasking(options, vocab, boundaries),
            Span => new SpanMasking(options, vocab, boundaries),
            Ngram => new NgramMasking(options, vocab, boundaries),
            Pmi => new PmiMasking(options, vocab, boundaries, Statistics()),
            _ => new WeightedMasking(options, vocab, Statistics()),
        };
    }
}
