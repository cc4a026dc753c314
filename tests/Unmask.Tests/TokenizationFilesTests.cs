using System.Text.Json;
using System.Text.Json.Nodes;
using Unmask.Tokenization;

namespace Unmask.Tests;

/// <summary>Hugging Face file formats: saving, loading, and clear errors on bad folders.</summary>
public sealed class TokenizationFilesTests : IDisposable
{
    readonly string temp = Directory.CreateTempSubdirectory("unmask-tokfiles-").FullName;

    public void Dispose() => Directory.Delete(temp, recursive: true);

    string NewDir(string name) => Directory.CreateDirectory(Path.Combine(temp, name)).FullName;

    [Fact]
    public void SavedTokenizerJsonEqualsTheOneTransformersWrote()
    {
        var tok = WordPieceTokenizer.Load(SharedFixtures.BertBaseUncasedTokenizer);
        var dir = NewDir("bert");
        tok.Save(dir);
        var original = JsonNode.Parse(File.ReadAllText(Path.Combine(SharedFixtures.BertBaseUncasedTokenizer, "tokenizer.json")));
        var saved = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "tokenizer.json")));
        Assert.True(JsonNode.DeepEquals(original, saved), "tokenizer.json differs from the one written by transformers");
        Assert.Equal(File.ReadAllText(Path.Combine(SharedFixtures.BertBaseUncasedTokenizer, "vocab.txt")),
            File.ReadAllText(Path.Combine(dir, "vocab.txt")));
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "tokenizer_config.json")))!;
        Assert.Equal("BertTokenizer", (string?)config["tokenizer_class"]);
        Assert.True((bool)config["do_lower_case"]!);
        Assert.True((bool)config["clean_up_tokenization_spaces"]!);
        Assert.Null(config["strip_accents"]);
    }

    [Fact]
    public void FixtureTokenizerWithUnusualIdsRoundTrips()
    {
        var source = Path.Combine(SharedFixtures.HfReference, "tokenizers", "bert-cased-strip-accents");
        var original = WordPieceTokenizer.Load(source);
        var dir = NewDir("cased");
        original.Save(dir);
        Assert.False(File.Exists(Path.Combine(dir, "tokenizer.json")), "the source folder has no tokenizer.json");
        original.Save(dir, writeTokenizerJson: true);
        var texts = JsonDocument.Parse(File.ReadAllText(Path.Combine(SharedFixtures.HfReference, "tokenizer-cases", "bert-cased-strip-accents.json")))
            .RootElement.GetProperty("cases").EnumerateArray().Select(c => c.GetProperty("text").GetString()!).ToArray();
        var reloaded = WordPieceTokenizer.Load(dir);
        Assert.Equal(original.Fingerprint, reloaded.Fingerprint);
        Assert.Equal(new BertNormalizationOptions(false, true, true), reloaded.Normalization);
        // The written tokenizer.json, read as the fast tokenizer: the same ids, except for decomposed text, which
        // only the slow tokenizer puts in NFC.
        var fast = TokenizerJson.Load(dir);
        foreach (var loaded in new ITokenizer[] { reloaded, fast })
        {
            Assert.Equal(64, loaded.ModelMaxLength);
            Assert.Equal((4, 6), (loaded.ClsId, loaded.MaskId));
            foreach (var text in texts)
            {
                var a = original.Encode(text);
                if (loaded == reloaded || text.Normalize(System.Text.NormalizationForm.FormC) == text)
                    Assert.Equal(a.InputIds, loaded.Encode(text).InputIds);
                Assert.Equal(original.Decode(a.InputIds), loaded.Decode(a.InputIds));
            }
        }
    }

    [Fact]
    public void SpecialTokenMissingFromTheVocabularyIsAddedAfterIt()
    {
        var tok = WordPieceTokenizer.FromVocab(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "##b", "c"]);
        Assert.Equal(7, tok.MaskId);
        Assert.Equal(8, tok.VocabSize);
        var encoded = tok.Encode("A [MASK] ab x");
        Assert.Equal([2, 4, 7, 4, 5, 1, 3], encoded.InputIds);
        Assert.Equal(["[CLS]", "a", "[MASK]", "a", "##b", "[UNK]", "[SEP]"], encoded.Tokens);
        Assert.Equal("[CLS] a [MASK] ab [UNK] [SEP]", tok.Decode(encoded.InputIds));
        Assert.Equal("a ab", tok.Decode(encoded.InputIds, skipSpecialTokens: true));

        var dir = NewDir("added");
        tok.Save(dir);
        Assert.Equal("{\"[MASK]\":7}", JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "added_tokens.json")))!.ToJsonString());
        var reloaded = WordPieceTokenizer.Load(dir);
        Assert.Equal(encoded.InputIds, reloaded.Encode("A [MASK] ab x").InputIds);
        Assert.Equal(encoded.InputIds, TokenizerJson.Load(dir).Encode("A [MASK] ab x").InputIds);

        File.WriteAllText(Path.Combine(dir, "added_tokens.json"), "{\"[MASK]\": 7, \"<extra>\": 8}");
        var e = Assert.Throws<UnmaskException>(() => WordPieceTokenizer.Load(dir));
        Assert.Contains("added_tokens.json", e.Message);
        Assert.Contains("<extra>", e.Message);
    }

    [Fact]
    public void LowercaseSpecialTokenIsFoundAfterLowercasing()
    {
        // HF lowercases the text first and then looks for special tokens, so "<MASK>" becomes the special "<mask>".
        string[] vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "<mask>", "a", "b", "<", ">", "mask"];
        var specials = new BertSpecialTokens(Mask: "<mask>");
        var uncased = WordPieceTokenizer.FromVocab(vocab, specialTokens: specials);
        Assert.Equal(["a", "<mask>", "b"], uncased.Tokenize("A <MASK> b"));
        var cased = WordPieceTokenizer.FromVocab(vocab, new BertNormalizationOptions(LowerCase: false), specials);
        Assert.Equal(["a", "<", "[UNK]", ">", "b", "<mask>"], cased.Tokenize("a <MASK> b <mask>"));
    }

    [Fact]
    public void EncodeTruncatesAndValidates()
    {
        var tok = WordPieceTokenizer.Load(SharedFixtures.BertBaseUncasedTokenizer);
        var text = "the quick brown fox jumps over the lazy dog again and again";
        var truncated = tok.Encode(text, maxLength: 6);
        Assert.Equal([101, 1996, 4248, 2829, 4419, 102], truncated.InputIds);
        Assert.Equal([true, false, false, false, false, true], truncated.SpecialTokensMask);
        var pair = tok.Encode("one two three four five", "six", maxLength: 7);
        Assert.Equal(["[CLS]", "one", "two", "three", "[SEP]", "six", "[SEP]"], pair.Tokens);
        Assert.Equal([0, 0, 0, 0, 0, 1, 1], pair.TokenTypeIds);
        Assert.Equal(tok.Encode(text).InputIds, tok.Encode(text, maxLength: 512).InputIds);
        Assert.Throws<ArgumentOutOfRangeException>(() => tok.Encode(text, maxLength: 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => tok.IdToToken(tok.VocabSize));
        Assert.Throws<ArgumentOutOfRangeException>(() => tok.Decode([-1]));
        var plain = tok.Encode("hello world", addSpecialTokens: false);
        Assert.Equal([7592, 2088], plain.InputIds);
        Assert.All(plain.SpecialTokensMask, Assert.False);
    }

    [Fact]
    public void FingerprintDependsOnVocabularyAndFlags()
    {
        string[] vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a"];
        var baseline = WordPieceTokenizer.FromVocab(vocab).Fingerprint;
        Assert.Equal(baseline, WordPieceTokenizer.FromVocab(vocab.ToList()).Fingerprint);
        Assert.NotEqual(baseline, WordPieceTokenizer.FromVocab(vocab, new BertNormalizationOptions(LowerCase: false)).Fingerprint);
        Assert.NotEqual(baseline, WordPieceTokenizer.FromVocab(vocab, new BertNormalizationOptions(StripAccents: false)).Fingerprint);
        Assert.NotEqual(baseline, WordPieceTokenizer.FromVocab([.. vocab, "b"]).Fingerprint);
    }

    [Fact]
    public void BadFoldersGiveClearErrors()
    {
        var missing = Path.Combine(temp, "nope");
        Assert.Contains(missing, Assert.Throws<UnmaskException>(() => TokenizerLoader.Load(missing)).Message);

        var empty = NewDir("empty");
        var e = Assert.Throws<UnmaskException>(() => TokenizerLoader.Load(empty));
        Assert.Contains(empty, e.Message);
        Assert.Contains("vocab.txt", e.Message);
        Assert.Contains("tokenizer.json", e.Message);

        var foo = NewDir("foo");
        File.WriteAllText(Path.Combine(foo, "tokenizer.json"), "{\"model\": {\"type\": \"Foo\", \"vocab\": {}}}");
        e = Assert.Throws<UnmaskException>(() => TokenizerLoader.Load(foo));
        Assert.Contains("tokenizer.json: model.type 'Foo' is not supported (supported: BPE, WordPiece, Unigram)", e.Message);

        var noMerges = NewDir("nomerges");
        File.WriteAllText(Path.Combine(noMerges, "tokenizer.json"), "{\"model\": {\"type\": \"BPE\", \"vocab\": {}}}");
        Assert.Contains("model.merges", Assert.Throws<UnmaskException>(() => TokenizerLoader.Load(noMerges)).Message);

        var noUnk = NewDir("nounk");
        File.WriteAllText(Path.Combine(noUnk, "vocab.txt"), "[PAD]\n[CLS]\n[SEP]\n[MASK]\na\n");
        e = Assert.Throws<UnmaskException>(() => TokenizerLoader.Load(noUnk));
        Assert.Contains("vocab.txt", e.Message);
        Assert.Contains("[UNK]", e.Message);

        var badFlag = NewDir("badflag");
        File.WriteAllText(Path.Combine(badFlag, "vocab.txt"), "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n");
        File.WriteAllText(Path.Combine(badFlag, "tokenizer_config.json"), "{\"do_lower_case\": \"yes\"}");
        e = Assert.Throws<UnmaskException>(() => TokenizerLoader.Load(badFlag));
        Assert.Contains("tokenizer_config.json", e.Message);
        Assert.Contains("do_lower_case", e.Message);

        File.WriteAllText(Path.Combine(badFlag, "tokenizer_config.json"), "{\"do_lower_case\": tru");
        Assert.Contains("invalid JSON", Assert.Throws<UnmaskException>(() => TokenizerLoader.Load(badFlag)).Message);
    }
}
