using Unmask.Tokenization;

namespace Unmask.Masking;

/// <summary>How a vocabulary marks where words begin.</summary>
public enum WordMarker
{
    /// <summary>WordPiece: "##" marks a piece that continues a word; every other piece starts one.</summary>
    WordPiece,
    /// <summary>Byte-level BPE (GPT-2, RoBERTa): "Ġ" (an encoded space) marks a piece that starts a word.</summary>
    ByteLevel,
    /// <summary>SentencePiece: "▁" marks a piece that starts a word.</summary>
    SentencePiece,
}

/// <summary>A word of a sequence: its first position and its number of tokens.</summary>
public readonly record struct WordSpan(int Start, int Length)
{
    public int End => Start + Length;
}

/// <summary>
/// Per token id, whether the token starts a word, derived from the token strings. Special tokens are never part of a
/// word, so the token after one always starts a word, even a continuation piece (a packed sequence may cut a word).
/// In Ġ and ▁ vocabularies a piece without the marker continues the word before it, so punctuation written against a
/// word ("end.") belongs to that word; in WordPiece punctuation is a word of its own.
/// </summary>
public sealed class WordBoundaries
{
    readonly bool[] _startsWord;
    readonly bool[] _isSpecial;

    public WordBoundaries(bool[] startsWord, bool[] isSpecial)
    {
        if (startsWord.Length != isSpecial.Length)
            throw new ArgumentException($"{startsWord.Length} word-start flags for {isSpecial.Length} special flags", nameof(startsWord));
        _startsWord = startsWord;
        _isSpecial = isSpecial;
    }

    public WordMarker Marker { get; private init; }

    public int VocabSize => _startsWord.Length;

    public bool StartsWord(long id) => id >= _startsWord.Length || _startsWord[id];

    public bool IsSpecial(long id) => id < _isSpecial.Length && _isSpecial[id];

    /// <summary>Flags from token strings (index = id); the marker is the one most tokens carry.</summary>
    public static WordBoundaries FromTokens(IReadOnlyList<string> tokens, bool[] isSpecial)
    {
        if (tokens.Count > isSpecial.Length)
            throw new ArgumentException($"{tokens.Count} tokens for {isSpecial.Length} special flags", nameof(tokens));
        int hashes = 0, g = 0, underline = 0;
        for (int i = 0; i < tokens.Count; i++)
        {
            if (isSpecial[i]) continue;
            var t = tokens[i];
            if (t.StartsWith("##", StringComparison.Ordinal)) hashes++;
            else if (t.StartsWith('Ġ')) g++;
            else if (t.StartsWith('▁')) underline++;
        }
        var marker = g > hashes && g >= underline ? WordMarker.ByteLevel
            : underline > hashes && underline > g ? WordMarker.SentencePiece
            : WordMarker.WordPiece;
        var starts = new bool[isSpecial.Length];
        for (int i = 0; i < starts.Length; i++)
        {
            // Ids past the tokenizer's vocabulary (embedding rows rounded up) never occur; calling them word starts is harmless.
            if (i >= tokens.Count) { starts[i] = true; continue; }
            var t = tokens[i];
            starts[i] = marker switch
            {
                WordMarker.WordPiece => !t.StartsWith("##", StringComparison.Ordinal),
                WordMarker.ByteLevel => t.StartsWith('Ġ'),
                _ => t.StartsWith('▁'),
            };
        }
        return new WordBoundaries(starts, isSpecial) { Marker = marker };
    }

    /// <summary>Flags for a tokenizer's vocabulary padded to the model's <paramref name="vocabSize"/> rows.</summary>
    public static WordBoundaries FromTokenizer(ITokenizer tokenizer, MaskingVocabulary vocab)
    {
        var tokens = Enumerable.Range(0, Math.Min(tokenizer.VocabSize, vocab.VocabSize)).Select(tokenizer.IdToToken).ToArray();
        var special = new bool[vocab.VocabSize];
        for (int i = 0; i < special.Length; i++) special[i] = i < vocab.IsSpecial.Length && vocab.IsSpecial[i];
        return FromTokens(tokens, special);
    }

    /// <summary>Appends the words of <paramref name="row"/> (positions offset by <paramref name="offset"/>) to <paramref name="words"/>.</summary>
    public void Words(ReadOnlySpan<long> row, int offset, List<WordSpan> words)
    {
        int start = -1;
        for (int t = 0; t < row.Length; t++)
        {
            long id = row[t];
            if (IsSpecial(id))
            {
                if (start >= 0) words.Add(new WordSpan(offset + start, t - start));
                start = -1;
            }
            else if (start < 0) start = t;
            else if (StartsWord(id))
            {
                words.Add(new WordSpan(offset + start, t - start));
                start = t;
            }
        }
        if (start >= 0) words.Add(new WordSpan(offset + start, row.Length - start));
    }
}
