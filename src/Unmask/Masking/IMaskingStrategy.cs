namespace Unmask.Masking;

/// <summary>What a strategy needs to know about the vocabulary, independent of any tokenizer type.</summary>
/// <param name="VocabSize">Rows of the model's embedding matrix.</param>
/// <param name="MaskId">Id written at positions replaced by the mask token.</param>
/// <param name="IsSpecial">Per id: true for tokens that are never selected nor drawn as random replacements.</param>
public sealed record MaskingVocabulary(int VocabSize, int MaskId, bool[] IsSpecial)
{
    /// <summary>Ids that may be drawn as a random replacement (every non-special id).</summary>
    public int[] ReplacementIds { get; } = Enumerable.Range(0, VocabSize).Where(i => i >= IsSpecial.Length || !IsSpecial[i]).ToArray();

    /// <summary>
    /// A tokenizer's vocabulary in a model with <paramref name="vocabSize"/> embedding rows: rows past the tokenizer's
    /// vocabulary count as special, so they are never drawn.
    /// </summary>
    public static MaskingVocabulary FromTokenizer(Tokenization.ITokenizer tokenizer, int vocabSize) =>
        new(vocabSize, tokenizer.MaskId, Enumerable.Range(0, vocabSize).Select(i => i >= tokenizer.VocabSize || tokenizer.IsSpecial(i)).ToArray());
}

/// <summary>A corrupted batch: the model's input and the labels (-100 where nothing is predicted).</summary>
public sealed record MaskedBatch(long[] InputIds, long[] Labels, int BatchSize, int SeqLength)
{
    /// <summary>The units selected together (a word, span, n-gram or collocation); empty for per-token strategies.</summary>
    public IReadOnlyList<MaskUnit> Units { get; init; } = [];

    public int SelectedCount => Labels.Count(l => l != MaskedBatch.Ignore);

    /// <summary>The batch with its first position labelled: a rank whose rows select nothing runs this through the same
    /// graph with its loss times zero, so every rank's backward pass reaches the same parameters.</summary>
    public MaskedBatch WithPlaceholderLabel()
    {
        var labels = (long[])Labels.Clone();
        labels[0] = InputIds[0];
        return this with { Labels = labels };
    }

    /// <summary>Rows [start, end) of the batch: the part one data-parallel rank computes. Units are left out.</summary>
    public MaskedBatch Rows(int start, int end) =>
        new(InputIds[(start * SeqLength)..(end * SeqLength)], Labels[(start * SeqLength)..(end * SeqLength)], end - start, SeqLength);

    public const long Ignore = -100;
}

/// <summary>
/// Words selected and corrupted together: positions <see cref="Start"/> to <see cref="End"/> (exclusive) of the
/// flattened batch, <see cref="Words"/> words. A unit may reach across a special token, which stays unselected.
/// </summary>
public readonly record struct MaskUnit(int Start, int End, int Words);

/// <summary>
/// Chooses positions to predict and what replaces them. A pure function of the ids, the rng and the training
/// progress (0..1), so the trainer and the `mask` command see the same corruption for the same seed.
/// </summary>
public interface IMaskingStrategy
{
    MaskedBatch Apply(long[] inputIds, int batchSize, int seqLength, Random rng, double progress);
}
