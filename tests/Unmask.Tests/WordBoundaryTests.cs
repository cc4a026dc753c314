using Unmask.Masking;

namespace Unmask.Tests;

/// <summary>
/// Word-level strategies on synthetic byte-level BPE ("Ġ" starts a word) and SentencePiece ("▁" starts a word)
/// vocabularies: words of one to four pieces, rows with padding, and a row that begins mid-word.
/// </summary>
public class WordBoundaryTests
{
    const int Pieces = 300, Seq = 96, Specials = 4, Mask = 3;

    /// <summary>Ids 0..3 special (pad, bos, eos, mask); then word-start pieces, then continuation pieces.</summary>
    static (string[] Tokens, bool[] Special) Vocabulary(string marker)
    {
        var tokens = new[] { "<pad>", "<s>", "</s>", "<mask>" }
            .Concat(Enumerable.Range(0, Pieces).Select(i => marker + "w" + i))
            .Concat(Enumerable.Range(0, Pieces).Select(i => "p" + i)).ToArray();
        return (tokens, tokens.Select((_, i) => i < Specials).ToArray());
    }

    /// <summary>Rows of random words; also returns each row's words as (start, end) built alongside.</summary>
    static (long[] Ids, List<(int Start, int End)> Words) Rows(int rows, Random rng)
    {
        var ids = new long[rows * Seq];
        var words = new List<(int, int)>();
        for (int r = 0; r < rows; r++)
        {
            int o = r * Seq, end = Seq - 1 - rng.Next(10), t = 1;
            ids[o] = 1;
            // The first row starts mid-word, as a packed row may: the continuation after <s> is a word of its own.
            if (r == 0)
            {
                ids[o + 1] = Specials + Pieces + 7;
                words.Add((o + 1, o + 2));
                t = 2;
            }
            while (t < end)
            {
                int length = Math.Min(1 + rng.Next(4), end - t);
                ids[o + t] = Specials + rng.Next(Pieces);
                for (int k = 1; k < length; k++) ids[o + t + k] = Specials + Pieces + rng.Next(Pieces);
                words.Add((o + t, o + t + length));
                t += length;
            }
            ids[o + end] = 2;
        }
        return (ids, words);
    }

    [Theory]
    [InlineData("Ġ", WordMarker.ByteLevel)]
    [InlineData("▁", WordMarker.SentencePiece)]
    public void WordStrategiesSelectWholeWordsAtTheConfiguredRate(string marker, WordMarker expected)
    {
        var (tokens, special) = Vocabulary(marker);
        var boundaries = WordBoundaries.FromTokens(tokens, special);
        Assert.Equal(expected, boundaries.Marker);
        var vocab = new MaskingVocabulary(tokens.Length, Mask, special);
        var (ids, words) = Rows(1200, new Random(1));
        long eligible = ids.LongCount(id => id >= Specials);
        Assert.True(eligible > 100_000);
        foreach (var name in new[] { "whole-word", "span", "ngram" })
        {
            var strategy = MaskingStrategies.Create(new MaskingOptions(0.2) { Strategy = name }, vocab, boundaries);
            var batch = strategy.Apply(ids, 1200, Seq, new Random(2), 0);
            int multi = 0;
            foreach (var (start, end) in words)
            {
                int chosen = Enumerable.Range(start, end - start).Count(i => batch.Labels[i] != MaskedBatch.Ignore);
                Assert.True(chosen == 0 || chosen == end - start, $"{name} selected {chosen} of {end - start} pieces at {start}");
                if (chosen > 1) multi++;
            }
            Assert.True(multi > 1000, $"{name}: only {multi} multi-piece words selected");
            Assert.Equal(0, Enumerable.Range(0, ids.Length).Count(i => ids[i] < Specials && batch.Labels[i] != MaskedBatch.Ignore));
            Assert.InRange((double)batch.SelectedCount / eligible, 0.195, 0.205);
        }
    }

    [Fact]
    public void WordPieceMarksContinuationsWithHashes()
    {
        var tokens = new[] { "[PAD]", "[CLS]", "the", "##s", "un", "##believ", "##able", "," };
        var boundaries = WordBoundaries.FromTokens(tokens, tokens.Select(t => t.StartsWith('[')).ToArray());
        Assert.Equal(WordMarker.WordPiece, boundaries.Marker);
        var words = new List<WordSpan>();
        boundaries.Words(new long[] { 1, 3, 2, 4, 5, 6, 7, 2, 3, 0 }, 0, words);
        Assert.Equal([new(1, 1), new(2, 1), new(3, 3), new(6, 1), new(7, 2)], words);
    }
}
