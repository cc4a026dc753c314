using System.IO.Compression;
using Unmask.Tokenization;

namespace Unmask.Tests;

public class WordPieceTrainerTests
{
    static List<string> Book(string name)
    {
        using var reader = new StreamReader(new GZipStream(File.OpenRead(Path.Combine(SharedFixtures.Gutenberg, "extra", name)), CompressionMode.Decompress));
        var lines = new List<string>();
        while (reader.ReadLine() is { } line)
            if (line.Trim().Length > 0) lines.Add(line.Trim());
        return lines;
    }

    [Fact]
    public void LearnsAVocabularyOfTheRequestedSizeThatRoundTripsText()
    {
        var lines = Book("alice_in_wonderland.txt.gz").Concat(Book("sherlock.txt.gz")).ToList();
        var tokenizer = WordPieceTrainer.Train(lines, new WordPieceTrainerOptions(VocabSize: 2000));
        Assert.Equal(2000, tokenizer.VocabSize);
        Assert.Equal(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"], tokenizer.Vocab.Take(5));
        Assert.Equal((0, 1, 2, 3, 4), (tokenizer.PadId, tokenizer.UnkId, tokenizer.ClsId, tokenizer.SepId, tokenizer.MaskId));
        Assert.Equal(tokenizer.Vocab.Count, tokenizer.Vocab.Distinct().Count());
        foreach (var word in new[] { "the", "and", "alice", "holmes", "said" })
            Assert.Single(tokenizer.Tokenize(word));

        int unknown = 0, total = 0;
        foreach (var line in lines.Take(2000))
        {
            var ids = tokenizer.Encode(line, addSpecialTokens: false).InputIds;
            unknown += ids.Count(i => i == tokenizer.UnkId);
            total += ids.Length;
            var words = string.Join(" ", BasicTokenizer.Split(line, tokenizer.Normalization));
            var pieces = string.Join(" ", ids.Select(tokenizer.IdToToken)).Replace(" ##", "", StringComparison.Ordinal);
            Assert.Equal(words, pieces);
        }
        Assert.Equal(0, unknown);
        Assert.True(total > 10_000);

        var again = WordPieceTrainer.Train(lines, new WordPieceTrainerOptions(VocabSize: 2000));
        Assert.Equal(tokenizer.Vocab, again.Vocab);
        Assert.Equal(tokenizer.Fingerprint, again.Fingerprint);
    }

    [Fact]
    public void SavedTokenizerLoadsBackWithIdenticalEncodingsFromBothFileFormats()
    {
        var lines = Book("tom_sawyer.txt.gz");
        var tokenizer = WordPieceTrainer.Train(lines, new WordPieceTrainerOptions(VocabSize: 1500, LowerCase: false));
        var dir = Directory.CreateTempSubdirectory("unmask-tok");
        tokenizer.Save(dir.FullName);
        foreach (var file in new[] { "vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json" })
            Assert.True(File.Exists(Path.Combine(dir.FullName, file)), file);
        var loaded = TokenizerLoader.Load(dir.FullName);
        File.Delete(Path.Combine(dir.FullName, "vocab.txt"));
        var fromJson = TokenizerLoader.Load(dir.FullName);
        Assert.Equal(tokenizer.Fingerprint, loaded.Fingerprint);
        Assert.Equal(tokenizer.Fingerprint, fromJson.Fingerprint);
        foreach (var line in lines.Take(500).Append("Tom said [MASK] to Ünïcödé 東京!"))
        {
            Assert.Equal(tokenizer.Encode(line).InputIds, loaded.Encode(line).InputIds);
            Assert.Equal(tokenizer.Encode(line).InputIds, fromJson.Encode(line).InputIds);
        }
        Assert.Contains("Tom", tokenizer.Tokenize("Tom"));
        dir.Delete(true);
    }
}
