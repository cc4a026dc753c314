using System.IO.Compression;
using System.Text;
using Unmask.Masking;
using Unmask.Tokenization;
using Xunit.Abstractions;

namespace Unmask.Tests;

/// <summary>
/// Two UTF-8 Gutenberg books with three made-up collocations woven in, tokenized by a 3,000-token WordPiece vocabulary
/// trained here (small, so many words have several pieces), packed into rows of 128 with [CLS] … [SEP] and some padding.
/// </summary>
public sealed class GutenbergMaskingData
{
    public const int SeqLength = 128;
    static readonly string[] Books = ["austen-persuasion.txt.gz", "chesterton-brown.txt.gz"];
    public static readonly string[] Phrases = ["zorbly quantex vimmerfold", "plimsy dorravane", "kettering snoffle brackwise"];

    public WordPieceTokenizer Tokenizer { get; }
    public MaskingVocabulary Vocabulary { get; }
    public WordBoundaries Boundaries { get; }
    public long[] Rows { get; }
    public int RowCount => Rows.Length / SeqLength;
    public CorpusStatistics Statistics { get; }

    public GutenbergMaskingData()
    {
        var lines = new List<string>();
        foreach (var book in Books)
        {
            using var reader = new StreamReader(new GZipStream(File.OpenRead(Path.Combine(SharedFixtures.Gutenberg, "nltk", book)), CompressionMode.Decompress), Encoding.UTF8);
            while (reader.ReadLine() is { } line)
                if (line.Trim().Length > 0) lines.Add(line);
        }
        for (int i = 0; i < lines.Count; i += 40) lines[i] += " " + Phrases[i / 40 % Phrases.Length];
        Tokenizer = WordPieceTrainer.Train(lines, new WordPieceTrainerOptions(VocabSize: 3000, Threads: 1));
        Vocabulary = MaskingVocabulary.FromTokenizer(Tokenizer, Tokenizer.VocabSize);
        Boundaries = WordBoundaries.FromTokenizer(Tokenizer, Vocabulary);
        var documents = lines.Select(l => Tokenizer.Encode(l, addSpecialTokens: false).InputIds).ToList();
        Statistics = CorpusStatistics.Compute(documents, Boundaries, new PmiOptions());
        var rows = new List<long>();
        var stream = documents.SelectMany(d => d).GetEnumerator();
        for (int r = 0; ; r++)
        {
            // Every fifth row ends early with padding, as the last row of a corpus would.
            int content = r % 5 == 4 ? SeqLength - 2 - 20 : SeqLength - 2;
            var row = new List<long> { Tokenizer.ClsId };
            while (row.Count <= content && stream.MoveNext()) row.Add(stream.Current);
            if (row.Count <= content) break;
            row.Add(Tokenizer.SepId);
            while (row.Count < SeqLength) row.Add(Tokenizer.PadId);
            rows.AddRange(row);
        }
        Rows = rows.ToArray();
    }
}

public class MaskingStrategyTests(GutenbergMaskingData data, ITestOutputHelper output) : IClassFixture<GutenbergMaskingData>
{
    static readonly string[] AllStrategies = [.. MaskingStrategies.Names];

    IMaskingStrategy Create(MaskingOptions options) => MaskingStrategies.Create(options, data.Vocabulary, data.Boundaries, data.Statistics);

    /// <summary>The whole corpus through the strategy in batches of 16 rows, like the trainer.</summary>
    List<MaskedBatch> MaskAll(IMaskingStrategy strategy, int seed, double progress)
    {
        var rng = new Random(seed);
        var batches = new List<MaskedBatch>();
        int seq = GutenbergMaskingData.SeqLength;
        for (int start = 0; start < data.RowCount; start += 16)
        {
            int size = Math.Min(16, data.RowCount - start);
            batches.Add(strategy.Apply(data.Rows.AsSpan(start * seq, size * seq).ToArray(), size, seq, rng, progress));
        }
        return batches;
    }

    /// <summary>(selected, eligible) over all batches, checking on the way that labels hold the original ids.</summary>
    (long Selected, long Eligible) Count(List<MaskedBatch> batches)
    {
        long selected = 0, eligible = 0;
        int seq = GutenbergMaskingData.SeqLength, offset = 0;
        foreach (var batch in batches)
        {
            for (int i = 0; i < batch.Labels.Length; i++)
            {
                long original = data.Rows[offset + i];
                bool special = data.Tokenizer.IsSpecial((int)original);
                if (!special) eligible++;
                if (batch.Labels[i] == MaskedBatch.Ignore)
                {
                    Assert.Equal(original, batch.InputIds[i]);
                    continue;
                }
                Assert.False(special, "a special token was selected");
                Assert.Equal(original, batch.Labels[i]);
                selected++;
            }
            offset += batch.BatchSize * seq;
        }
        return (selected, eligible);
    }

    [Theory]
    [InlineData("random")]
    [InlineData("whole-word")]
    [InlineData("span")]
    [InlineData("ngram")]
    [InlineData("pmi")]
    [InlineData("weighted")]
    public void RealisedRateFollowsTheLinearScheduleAtStartMiddleAndEnd(string name)
    {
        var strategy = Create(new MaskingOptions(0.1) { Strategy = name, Schedule = new RateSchedule(RateScheduleKind.Linear, 0.3) });
        foreach (var (progress, target) in new[] { (0.0, 0.1), (0.5, 0.2), (1.0, 0.3) })
        {
            // Two passes: a unit strategy's count per row varies more than random masking's, so give it more rows.
            long selected = 0, eligible = 0;
            foreach (var seed in new[] { 11, 12 })
            {
                var (s, e) = Count(MaskAll(strategy, seed, progress));
                (selected, eligible) = (selected + s, eligible + e);
            }
            Assert.True(eligible >= 100_000, $"only {eligible} tokens");
            double rate = (double)selected / eligible;
            output.WriteLine($"{name} progress {progress}: target {target:P1}, realised {rate:P2} of {eligible:N0} tokens");
            Assert.InRange(rate, target - 0.005, target + 0.005);
        }
    }

    [Fact]
    public void CosineScheduleIsHalfwayAtTheMiddleAndFlatAtTheEnds()
    {
        var schedule = new RateSchedule(RateScheduleKind.Cosine, 0.35);
        Assert.Equal(0.15, schedule.At(0.15, 0), 9);
        Assert.Equal(0.25, schedule.At(0.15, 0.5), 9);
        Assert.Equal(0.35, schedule.At(0.15, 1), 9);
        Assert.True(schedule.At(0.15, 0.1) - 0.15 < 0.1 * 0.2 / 2, "cosine should start flatter than linear");
        var strategy = Create(new MaskingOptions(0.15) { Strategy = "span", Schedule = schedule });
        var (selected, eligible) = Count(MaskAll(strategy, 5, 0.25));
        double target = schedule.At(0.15, 0.25);
        output.WriteLine($"span cosine at 0.25: target {target:P2}, realised {(double)selected / eligible:P2}");
        Assert.InRange((double)selected / eligible, target - 0.005, target + 0.005);
    }

    [Theory]
    [InlineData("random")]
    [InlineData("whole-word")]
    [InlineData("span")]
    [InlineData("ngram")]
    [InlineData("pmi")]
    [InlineData("weighted")]
    public void EightyTenTenSplitIsRealised(string name)
    {
        var strategy = Create(new MaskingOptions(0.3) { Strategy = name });
        long selected = 0, masked = 0, replaced = 0, kept = 0;
        foreach (var seed in new[] { 1, 2 })
        {
            int offset = 0;
            foreach (var batch in MaskAll(strategy, seed, 0))
            {
                for (int i = 0; i < batch.Labels.Length; i++)
                {
                    if (batch.Labels[i] == MaskedBatch.Ignore) continue;
                    selected++;
                    long corrupted = batch.InputIds[i];
                    if (corrupted == data.Tokenizer.MaskId) masked++;
                    else if (corrupted == data.Rows[offset + i]) kept++;
                    else
                    {
                        Assert.False(data.Tokenizer.IsSpecial((int)corrupted), "a random replacement drew a special token");
                        replaced++;
                    }
                }
                offset += batch.Labels.Length;
            }
        }
        output.WriteLine($"{name}: masked {(double)masked / selected:P2}, random {(double)replaced / selected:P2}, kept {(double)kept / selected:P2} of {selected:N0}");
        Assert.InRange((double)masked / selected, 0.79, 0.81);
        Assert.InRange((double)replaced / selected, 0.09, 0.11);
        Assert.InRange((double)kept / selected, 0.09, 0.11);
    }

    [Theory]
    [InlineData("whole-word")]
    [InlineData("span")]
    [InlineData("ngram")]
    [InlineData("pmi")]
    public void WordLevelStrategiesNeverMaskPartOfAWord(string name)
    {
        var strategy = Create(new MaskingOptions(0.3) { Strategy = name });
        int multiPieceWordsSelected = 0;
        int offset = 0;
        foreach (var batch in MaskAll(strategy, 3, 0))
        {
            var ids = data.Rows.AsSpan(offset, batch.Labels.Length).ToArray();
            foreach (var (start, end) in WordPieceWords(ids, GutenbergMaskingData.SeqLength))
            {
                int chosen = Enumerable.Range(start, end - start).Count(i => batch.Labels[i] != MaskedBatch.Ignore);
                Assert.True(chosen == 0 || chosen == end - start, $"{name} selected {chosen} of the {end - start} pieces of word at {offset + start}");
                if (chosen > 1) multiPieceWordsSelected++;
            }
            offset += batch.Labels.Length;
        }
        Assert.True(multiPieceWordsSelected > 1000, $"only {multiPieceWordsSelected} words of several pieces were selected");
    }

    /// <summary>Words written out from the WordPiece rule directly, independent of <see cref="WordBoundaries"/>.</summary>
    IEnumerable<(int Start, int End)> WordPieceWords(long[] ids, int seq)
    {
        int start = -1;
        for (int i = 0; i < ids.Length; i++)
        {
            bool special = data.Tokenizer.IsSpecial((int)ids[i]);
            bool continues = start >= 0 && i % seq != 0 && !special && data.Tokenizer.IdToToken((int)ids[i]).StartsWith("##");
            if (continues) continue;
            if (start >= 0) yield return (start, i);
            start = special ? -1 : i;
        }
        if (start >= 0) yield return (start, ids.Length);
    }

    [Fact]
    public void SpanLengthsFollowTheTruncatedGeometric()
    {
        var options = new MaskingOptions { Strategy = "span", Span = new SpanOptions(0.2, 10) };
        double expected = Enumerable.Range(1, 10).Sum(k => k * 0.2 * Math.Pow(0.8, k - 1)) / Enumerable.Range(1, 10).Sum(k => 0.2 * Math.Pow(0.8, k - 1));
        var units = MaskAll(Create(options), 9, 0).SelectMany(b => b.Units).ToList();
        double mean = units.Average(u => u.Words);
        output.WriteLine($"span: {units.Count:N0} spans, mean {mean:F3} words, truncated geometric mean {expected:F3}");
        Assert.True(units.Count > 5000);
        Assert.InRange(mean, expected * 0.95, expected * 1.05);
        Assert.Equal(10, units.Max(u => u.Words));
    }

    [Fact]
    public void NgramLengthFrequenciesMatchTheConfiguredProbabilities()
    {
        double[] probabilities = [0.4, 0.3, 0.2, 0.1];
        var options = new MaskingOptions { Strategy = "ngram", Ngram = new NgramOptions(probabilities) };
        var units = MaskAll(Create(options), 13, 0).SelectMany(b => b.Units).ToList();
        var frequencies = Enumerable.Range(1, 4).Select(n => (double)units.Count(u => u.Words == n) / units.Count).ToArray();
        output.WriteLine($"ngram: {units.Count:N0} units, length frequencies {string.Join(" / ", frequencies.Select(f => f.ToString("P2")))}");
        Assert.True(units.Count > 5000);
        Assert.All(units, u => Assert.InRange(u.Words, 1, 4));
        for (int n = 0; n < 4; n++) Assert.InRange(frequencies[n], probabilities[n] - 0.02, probabilities[n] + 0.02);
    }

    [Fact]
    public void WeightedMasksRareTokensMoreByTheConfiguredRatio()
    {
        const double temperature = 2;
        var strategy = Create(new MaskingOptions(0.15) { Strategy = "weighted", Weighted = new WeightedOptions(temperature) });
        var counts = data.Statistics.TokenCounts;
        bool Frequent(long id) => counts[id] is >= 500 and <= 3000;
        bool Rare(long id) => counts[id] is >= 20 and <= 60;
        double frequentSeen = 0, frequentHit = 0, frequentWeight = 0, rareSeen = 0, rareHit = 0, rareWeight = 0;
        foreach (var seed in new[] { 21, 22, 23 })
        {
            int offset = 0;
            foreach (var batch in MaskAll(strategy, seed, 0))
            {
                for (int i = 0; i < batch.Labels.Length; i++)
                {
                    long id = data.Rows[offset + i];
                    if (data.Tokenizer.IsSpecial((int)id)) continue;
                    bool hit = batch.Labels[i] != MaskedBatch.Ignore;
                    double weight = Math.Pow(counts[id] + 1, -1 / temperature);
                    if (Frequent(id)) (frequentSeen, frequentHit, frequentWeight) = (frequentSeen + 1, frequentHit + (hit ? 1 : 0), frequentWeight + weight);
                    else if (Rare(id)) (rareSeen, rareHit, rareWeight) = (rareSeen + 1, rareHit + (hit ? 1 : 0), rareWeight + weight);
                }
                offset += batch.Labels.Length;
            }
        }
        double measured = rareHit / rareSeen / (frequentHit / frequentSeen);
        double configured = rareWeight / rareSeen / (frequentWeight / frequentSeen);
        output.WriteLine($"weighted T={temperature}: rare tokens masked {rareHit / rareSeen:P2}, frequent {frequentHit / frequentSeen:P2}; ratio {measured:F3}, configured {configured:F3}");
        Assert.True(rareSeen > 5000 && frequentSeen > 5000);
        Assert.True(configured > 3, $"the test needs buckets far apart, configured ratio {configured}");
        Assert.InRange(measured, configured * 0.9, configured * 1.1);
    }

    [Fact]
    public void PmiMasksConstructedCollocationsAsUnits()
    {
        var found = data.Statistics.Collocations.Select(c => string.Join(" ", c.Words.Select(w => data.Tokenizer.Decode(w)))).ToHashSet();
        foreach (var phrase in GutenbergMaskingData.Phrases) Assert.Contains(phrase, found);
        var phrases = GutenbergMaskingData.Phrases.Select(p => data.Tokenizer.Encode(p, addSpecialTokens: false).InputIds.Select(x => (long)x).ToArray()).ToArray();

        (int Touched, int Whole) Units(string name)
        {
            int touched = 0, whole = 0, offset = 0;
            foreach (var seed in new[] { 31, 32, 33, 34 })
            {
                offset = 0;
                foreach (var batch in MaskAll(Create(new MaskingOptions(0.15) { Strategy = name }), seed, 0))
                {
                    for (int row = 0; row < batch.BatchSize; row++)
                        foreach (var phrase in phrases)
                        {
                            int rowStart = row * GutenbergMaskingData.SeqLength;
                            for (int t = 0; t + phrase.Length <= GutenbergMaskingData.SeqLength; t++)
                            {
                                if (!data.Rows.AsSpan(offset + rowStart + t, phrase.Length).SequenceEqual(phrase)) continue;
                                int chosen = Enumerable.Range(rowStart + t, phrase.Length).Count(i => batch.Labels[i] != MaskedBatch.Ignore);
                                if (chosen > 0) touched++;
                                if (chosen == phrase.Length) whole++;
                            }
                        }
                    offset += batch.Labels.Length;
                }
            }
            return (touched, whole);
        }

        var pmi = Units("pmi");
        var wholeWord = Units("whole-word");
        double pmiRate = (double)pmi.Whole / pmi.Touched, chance = (double)wholeWord.Whole / wholeWord.Touched;
        output.WriteLine($"collocations masked whole when touched: pmi {pmiRate:P1} of {pmi.Touched}, whole-word {chance:P1} of {wholeWord.Touched}; {data.Statistics.Collocations.Count} collocations");
        Assert.True(pmi.Touched > 100 && wholeWord.Touched > 100);
        Assert.True(pmiRate > 0.99, $"pmi masked only {pmiRate:P1} of touched collocations whole");
        Assert.True(chance < 0.2, $"whole-word masked {chance:P1} of touched collocations whole");
    }

    [Theory]
    [InlineData("random")]
    [InlineData("whole-word")]
    [InlineData("span")]
    [InlineData("ngram")]
    [InlineData("pmi")]
    [InlineData("weighted")]
    public void SameSeedSameCorruptionDifferentSeedDifferent(string name)
    {
        var strategy = Create(new MaskingOptions { Strategy = name });
        var ids = data.Rows.AsSpan(0, 8 * GutenbergMaskingData.SeqLength).ToArray();
        var a = strategy.Apply(ids, 8, GutenbergMaskingData.SeqLength, new Random(5), 0.3);
        var b = strategy.Apply(ids, 8, GutenbergMaskingData.SeqLength, new Random(5), 0.3);
        var c = strategy.Apply(ids, 8, GutenbergMaskingData.SeqLength, new Random(6), 0.3);
        Assert.Equal(a.InputIds, b.InputIds);
        Assert.Equal(a.Labels, b.Labels);
        Assert.NotEqual(a.Labels, c.Labels);
    }

    [Fact]
    public void AllMaskSplitOnlyMasks()
    {
        foreach (var name in AllStrategies)
        {
            var batch = MaskAll(Create(new MaskingOptions(0.3, 1, 0, 0) { Strategy = name }), 4, 0)[0];
            Assert.True(batch.SelectedCount > 0);
            for (int i = 0; i < batch.Labels.Length; i++)
                if (batch.Labels[i] != MaskedBatch.Ignore) Assert.Equal(data.Tokenizer.MaskId, batch.InputIds[i]);
        }
    }
}
