using System.IO.Compression;
using System.Text;
using System.Text.RegularExpressions;
using Unmask.Tokenization;

namespace Unmask.Tests;

/// <summary>WordPiece training on two Gutenberg books with a 2,000-token vocabulary.</summary>
public class TokenizationTrainerTests
{
    static readonly string[] Books = ["austen-persuasion.txt.gz", "chesterton-brown.txt.gz"];
    static readonly Lazy<string[]> Lines = new(() => Books.SelectMany(ReadBook).ToArray());
    static readonly Lazy<WordPieceTokenizer> Trained = new(() =>
        WordPieceTrainer.Train(Lines.Value, new WordPieceTrainerOptions(VocabSize: 2000, Threads: 2)));

    static IEnumerable<string> ReadBook(string name)
    {
        var path = Path.Combine(SharedFixtures.Gutenberg, "nltk", name);
        using var reader = new StreamReader(new GZipStream(File.OpenRead(path), CompressionMode.Decompress), Encoding.UTF8);
        var lines = new List<string>();
        while (reader.ReadLine() is { } line) lines.Add(line);
        Assert.True(lines.Count > 1000, $"{path} has only {lines.Count} lines");
        return lines;
    }

    [Fact]
    public void VocabularyHasTheRequestedShape()
    {
        var tok = Trained.Value;
        Assert.Equal(2000, tok.VocabSize);
        Assert.Equal(2000, tok.Vocabulary.Count);
        Assert.Equal(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"], tok.Vocabulary.Take(5));
        Assert.Equal((0, 1, 2, 3, 4), (tok.PadId, tok.UnkId, tok.ClsId, tok.SepId, tok.MaskId));
        Assert.Equal(tok.Vocabulary.Count, tok.Vocabulary.Distinct(StringComparer.Ordinal).Count());
        foreach (var word in new[] { "the", "and", "of", "to", "she", "was", "father" })
            Assert.Equal([word], tok.Tokenize(word));
        Assert.Equal(["the", "[MASK]", "was", "."], tok.Tokenize("The [MASK] was."));
        Assert.True(tok.IsContinuation(tok.TokenToId("##e")!.Value));
        Assert.Null(tok.TokenToId("##."));
        Assert.DoesNotContain(tok.Vocabulary.Skip(5), t => t.Any(char.IsUpper));
    }

    [Fact]
    public void TrainingIsDeterministicWhateverTheThreadCount()
    {
        var single = WordPieceTrainer.Train(Lines.Value, new WordPieceTrainerOptions(VocabSize: 2000, Threads: 1));
        Assert.Equal(Trained.Value.Vocabulary, single.Vocabulary);
        Assert.Equal(Trained.Value.Fingerprint, single.Fingerprint);
    }

    [Fact]
    public void EncodeDecodeRoundTripsLowercasedText()
    {
        var tok = Trained.Value;
        int checkedLines = 0;
        foreach (var line in Lines.Value.Where(l => l.Length > 0 && l.All(c => c is >= ' ' and < '\x7f')).Take(3000))
        {
            var encoded = tok.Encode(line);
            Assert.DoesNotContain(tok.UnkId, encoded.InputIds);
            Assert.Equal(ExpectedDecoding(line), tok.Decode(encoded.InputIds, skipSpecialTokens: true));
            checkedLines++;
        }
        Assert.True(checkedLines > 1000, $"only {checkedLines} ASCII lines");
    }

    // BERT's view of ASCII text, written independently of the tokenizer: lowercase, punctuation as words, single
    // spaces, then HF's clean-up of spaces before punctuation and contractions.
    static string ExpectedDecoding(string line)
    {
        var spaced = Regex.Replace(line.ToLowerInvariant(), @"[!-/:-@\[-`{-~]", " $0 ");
        var text = string.Join(' ', spaced.Split(' ', StringSplitOptions.RemoveEmptyEntries));
        foreach (var (from, to) in new[] { (" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
                     (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re") })
            text = text.Replace(from, to, StringComparison.Ordinal);
        return text;
    }

    [Fact]
    public void SaveThenLoadGivesIdenticalEncodings()
    {
        var tok = Trained.Value;
        var dir = Directory.CreateTempSubdirectory("unmask-tok-").FullName;
        try
        {
            tok.Save(dir);
            Assert.Equal(
                new[] { "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt" },
                Directory.GetFiles(dir).Select(Path.GetFileName).Order(StringComparer.Ordinal));
            var fromVocab = WordPieceTokenizer.Load(dir);
            var fromJson = TokenizerJson.Load(dir);
            var viaLoader = TokenizerLoader.Load(dir);
            // The pipeline's fingerprint hashes the files it read, so only the slow tokenizers share the trainer's.
            Assert.Equal(tok.Fingerprint, fromVocab.Fingerprint);
            Assert.Equal(tok.Fingerprint, viaLoader.Fingerprint);
            foreach (var loaded in new ITokenizer[] { fromVocab, fromJson, viaLoader })
            {
                Assert.Equal(tok.VocabSize, loaded.VocabSize);
                Assert.Equal((tok.ClsId, tok.SepId, tok.PadId, tok.MaskId, tok.UnkId),
                    (loaded.ClsId, loaded.SepId, loaded.PadId, loaded.MaskId, loaded.UnkId));
                foreach (var line in Lines.Value.Take(2000))
                    Assert.Equal(tok.Encode(line).InputIds, loaded.Encode(line).InputIds);
            }
            Assert.Equal(512, fromVocab.ModelMaxLength);
            Assert.Equal(512, fromJson.ModelMaxLength);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void CasedTrainingKeepsCaseAndRespectsOptions()
    {
        var tok = WordPieceTrainer.Train(Lines.Value.Take(3000),
            new WordPieceTrainerOptions(VocabSize: 600, LowerCase: false, MinFrequency: 3));
        Assert.False(tok.Normalization.LowerCase);
        Assert.Contains(tok.Vocabulary, t => t.Any(char.IsUpper));
        Assert.True(tok.VocabSize <= 600);
        Assert.Throws<ArgumentOutOfRangeException>(() =>
            WordPieceTrainer.Train(["a b"], new WordPieceTrainerOptions(VocabSize: 5)));
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        Assert.ThrowsAny<OperationCanceledException>(() =>
            WordPieceTrainer.Train(Lines.Value, new WordPieceTrainerOptions(VocabSize: 2000), ct: cts.Token));
    }
}
