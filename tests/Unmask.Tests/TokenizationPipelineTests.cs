using Unmask.Tokenization;

namespace Unmask.Tests;

/// <summary>The tokenizer.json building blocks, with the tokenizers library's documented behaviour.</summary>
public sealed class TokenizationPipelineTests : IDisposable
{
    readonly string temp = Directory.CreateTempSubdirectory("unmask-pipeline-").FullName;

    public void Dispose() => Directory.Delete(temp, recursive: true);

    PipelineTokenizer Load(string tokenizerJson, string? config = null)
    {
        var dir = Directory.CreateDirectory(Path.Combine(temp, Guid.NewGuid().ToString("N"))).FullName;
        File.WriteAllText(Path.Combine(dir, "tokenizer.json"), tokenizerJson);
        if (config != null) File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), config);
        return Assert.IsType<PipelineTokenizer>(TokenizerLoader.Load(dir));
    }

    const string BertTemplate = """
        {"type": "TemplateProcessing",
         "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
         "pair": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "[SEP]", "type_id": 0}},
                  {"Sequence": {"id": "B", "type_id": 1}}, {"SpecialToken": {"id": "[SEP]", "type_id": 1}}],
         "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [1], "tokens": ["[CLS]"]}, "[SEP]": {"id": "[SEP]", "ids": [2], "tokens": ["[SEP]"]}}}
        """;

    PipelineTokenizer WordPieceTokenizer(string config = "{}") => Load("""
        {"added_tokens": [
            {"id": 0, "content": "[PAD]", "special": true, "normalized": false, "lstrip": false, "rstrip": false, "single_word": false},
            {"id": 1, "content": "[CLS]", "special": true, "normalized": false, "lstrip": false, "rstrip": false, "single_word": false},
            {"id": 2, "content": "[SEP]", "special": true, "normalized": false, "lstrip": false, "rstrip": false, "single_word": false},
            {"id": 3, "content": "[UNK]", "special": true, "normalized": false, "lstrip": false, "rstrip": false, "single_word": false},
            {"id": 4, "content": "[MASK]", "special": true, "normalized": false, "lstrip": true, "rstrip": false, "single_word": false},
            {"id": 13, "content": "new_tok", "special": false, "normalized": true, "lstrip": false, "rstrip": false, "single_word": false},
            {"id": 14, "content": "cat", "special": false, "normalized": true, "lstrip": false, "rstrip": false, "single_word": true}],
         "normalizer": {"type": "Sequence", "normalizers": [{"type": "NFD"}, {"type": "Lowercase"}, {"type": "StripAccents"}]},
         "pre_tokenizer": {"type": "Whitespace"},
         "post_processor": TEMPLATE,
         "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
         "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 100,
                   "vocab": {"[PAD]": 0, "[CLS]": 1, "[SEP]": 2, "[UNK]": 3, "[MASK]": 4, "hello": 5, ",": 6, "world": 7, "!": 8, "wor": 9, "##ld": 10, "a": 11, "##s": 12}}}
        """.Replace("TEMPLATE", BertTemplate), config);

    [Fact]
    public void NormalizersKeepOffsetsIntoTheOriginalText()
    {
        var tok = WordPieceTokenizer();
        var e = tok.Encode("Héllo, WORLDs!");
        Assert.Equal(["[CLS]", "hello", ",", "world", "##s", "!", "[SEP]"], e.Tokens);
        Assert.Equal([new(0, 0), new(0, 5), new(5, 6), new(7, 12), new(12, 13), new(13, 14), new(0, 0)], e.Offsets!);
        Assert.Equal([null, 0, 1, 2, 2, 3, null], e.WordIds);
        Assert.Equal("hello, worlds!", tok.Decode(e.InputIds, skipSpecialTokens: true));
        Assert.True(tok.IsContinuation(12));
        Assert.False(tok.IsContinuation(7));
    }

    [Fact]
    public void AddedTokensSplitBeforeThePipeline()
    {
        var tok = WordPieceTokenizer();
        // A normalized added token matches after lowercasing; the mask token takes the space before it.
        var e = tok.Encode("a NEW_TOK [MASK]", addSpecialTokens: false);
        Assert.Equal([11, 13, 4], e.InputIds);
        Assert.Equal([new(0, 1), new(2, 9), new(9, 16)], e.Offsets!);
        // single_word: "cat" inside "cats" is not the added token.
        Assert.Equal([14], tok.Encode("cat", addSpecialTokens: false).InputIds);
        Assert.Equal([3], tok.Encode("cats", addSpecialTokens: false).InputIds);
        Assert.True(tok.IsSpecial(4));
        Assert.False(tok.IsSpecial(13));
        Assert.Equal("a new_tok", tok.Decode([11, 13, 4], skipSpecialTokens: true));
    }

    [Fact]
    public void TemplatePairsAndTruncation()
    {
        var tok = WordPieceTokenizer();
        var e = tok.Encode("hello", "world");
        Assert.Equal([1, 5, 2, 7, 2], e.InputIds);
        Assert.Equal([0, 0, 0, 1, 1], e.TokenTypeIds);
        Assert.Equal([null, 0, null, 1, null], e.SequenceIds);
        Assert.Equal([true, false, true, false, true], e.SpecialTokensMask);
        // Without special tokens the fast tokenizer still gives the template's type ids.
        Assert.Equal([0, 1], tok.Encode("hello", "world", addSpecialTokens: false).TokenTypeIds);
        // tokenizers' longest_first: 10 + 10 tokens into 15 keeps 7 of the first and 8 of the second.
        var ten = string.Join(' ', Enumerable.Repeat("a", 10));
        var t = tok.Encode(ten, ten, maxLength: 18);
        Assert.Equal(18, t.InputIds.Length);
        Assert.Equal(7, t.SequenceIds.Count(s => s == 0));
        Assert.Equal(8, t.SequenceIds.Count(s => s == 1));
        Assert.Equal(3, tok.Encode(ten, maxLength: 3).InputIds.Length);
        Assert.Throws<ArgumentOutOfRangeException>(() => tok.Encode(ten, maxLength: 2));
    }

    [Fact]
    public void BatchesPadOnTheConfiguredSide()
    {
        var tok = WordPieceTokenizer("""{"padding_side": "left", "model_max_length": 8, "pad_token": "[PAD]", "mask_token": "[MASK]"}""");
        Assert.Equal(PaddingSide.Left, tok.PaddingSide);
        Assert.Equal(8, tok.ModelMaxLength);
        var batch = tok.EncodeBatch(["hello", "hello world !"]);
        Assert.Equal([0, 0, 1, 5, 2], batch.InputIds[0]);
        Assert.Equal([0, 0, 1, 1, 1], batch.AttentionMask[0]);
        Assert.Equal([null, null, null, 0, null], batch.Rows[0].WordIds);
        Assert.Equal([1, 1, 1, 1, 1], batch.AttentionMask[1]);
        var right = tok.EncodeBatch(["hello", "hello world !"], side: PaddingSide.Right);
        Assert.Equal([1, 5, 2, 0, 0], right.InputIds[0]);
    }

    [Fact]
    public void MetaspaceUnigram()
    {
        var tok = Load("""
            {"added_tokens": [{"id": 0, "content": "<unk>", "special": true, "normalized": false, "lstrip": false, "rstrip": false, "single_word": false}],
             "normalizer": null,
             "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": true},
             "decoder": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": true},
             "model": {"type": "Unigram", "unk_id": 0, "byte_fallback": false,
                       "vocab": [["<unk>", 0.0], ["▁a", -1.0], ["b", -2.0], ["▁", -3.0], ["a", -3.0], ["▁ab", -2.5]]}}
            """);
        Assert.Equal(["▁a", "▁", "b"], tok.Tokenize("a b"));
        // ▁ab (-2.5) beats ▁a + b (-3); two unknown characters fuse into one unknown token.
        Assert.Equal(["▁ab", "▁", "<unk>"], tok.Tokenize("ab xy"));
        var e = tok.Encode("ab xy");
        Assert.Equal([new(0, 2), new(2, 3), new(3, 5)], e.Offsets!);
        Assert.Equal("ab <unk>", tok.Decode(e.InputIds));
        Assert.True(tok.IsContinuation(tok.TokenToId("b")!.Value));
        Assert.False(tok.IsContinuation(tok.TokenToId("▁a")!.Value));
    }

    [Fact]
    public void BpeWithPrefixSuffixUnknownsAndByteFallback()
    {
        var tok = Load("""
            {"pre_tokenizer": {"type": "WhitespaceSplit"},
             "decoder": {"type": "BPEDecoder", "suffix": "</w>"},
             "model": {"type": "BPE", "unk_token": "<unk>", "fuse_unk": true, "end_of_word_suffix": "</w>",
                       "vocab": {"<unk>": 0, "l": 1, "o</w>": 2, "lo</w>": 3, "h": 4, "e": 5, "he": 6, "hel": 7, "lo": 8},
                       "merges": [["h", "e"], "l o</w>", "he l"]}}
            """);
        Assert.Equal(["hel", "lo</w>"], tok.Tokenize("hello"));
        Assert.Equal(["<unk>", "o</w>"], tok.Tokenize("xyo"));
        Assert.Equal("hello o", tok.Decode(tok.Encode("hello xyo").InputIds.Where(i => i != 0).ToArray()));

        var bytes = Load("""
            {"normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"}, {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
             "decoder": {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"},
                         {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
             "model": {"type": "BPE", "unk_token": "<unk>", "byte_fallback": true, "fuse_unk": true,
                       "vocab": {"<unk>": 0, "<0xE2>": 1, "<0x98>": 2, "<0x83>": 3, "▁": 4, "h": 5, "i": 6, "▁h": 7, "▁hi": 8},
                       "merges": ["▁ h", "▁h i"]}}
            """);
        Assert.Equal(["▁hi", "▁", "<0xE2>", "<0x98>", "<0x83>"], bytes.Tokenize("hi ☃"));
        Assert.Equal("hi ☃", bytes.Decode(bytes.Encode("hi ☃").InputIds));
    }

    [Fact]
    public void ByteLevelTokenizerJsonWithPrefixSpace()
    {
        var vocab = string.Join(", ", Enumerable.Range(0, 256).Select(b => $"\"{Escape(ByteLevel.ByteToChar[b])}\": {b}"));
        var tok = Load("""
            {"pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": true, "use_regex": true},
             "decoder": {"type": "ByteLevel"},
             "post_processor": {"type": "ByteLevel", "trim_offsets": true},
             "model": {"type": "BPE", "vocab": {BYTES, "Ġh": 256, "Ġhi": 257}, "merges": ["Ġ h", "Ġh i"]}}
            """.Replace("BYTES", vocab));
        Assert.Equal(["Ġhi", "Ġ", "Ã", "©"], tok.Tokenize("hi é"));
        var e = tok.Encode("hi é");
        // trim_offsets: a token's leading 'Ġ' is left out of its span, except the added prefix space.
        Assert.Equal([new(0, 2), new(3, 3), new(3, 4), new(3, 4)], e.Offsets!);
        Assert.Equal(" hi é", tok.Decode(e.InputIds));
        Assert.False(tok.IsContinuation(257));
        Assert.True(tok.IsContinuation(tok.TokenToId("h")!.Value));
    }

    static string Escape(char c) => c switch
    {
        '"' => "\\\"",
        '\\' => "\\\\",
        _ => c.ToString(),
    };

    [Theory]
    [InlineData("Removed", "a|b|c")]
    [InlineData("Isolated", "a|-|b|-|-|c")]
    [InlineData("MergedWithPrevious", "a-|b-|-|c")]
    [InlineData("MergedWithNext", "a|-b|-|-c")]
    [InlineData("Contiguous", "a|-|b|--|c")]
    public void SplitBehaviors(string behavior, string expected)
    {
        var words = new List<AlignedText>();
        new PatternPreTokenizer(new System.Text.RegularExpressions.Regex("-"), Splitting.ParseBehavior(behavior, "test"), false)
            .PreTokenize(AlignedText.Original("a-b--c"), words);
        Assert.Equal(expected, string.Join('|', words.Select(w => w.Text)));
    }

    [Fact]
    public void CharacterClassPreTokenizers()
    {
        string Run(IPreTokenizer p, string text)
        {
            var words = new List<AlignedText>();
            p.PreTokenize(AlignedText.Original(text), words);
            return string.Join('|', words.Select(w => w.Text));
        }
        Assert.Equal("ab|1|2|3|c", Run(new CharClassPreTokenizer(Splitting.IsNumeric, SplitBehavior.Isolated), "ab123c"));
        Assert.Equal("ab|123|c", Run(new CharClassPreTokenizer(Splitting.IsNumeric, SplitBehavior.Contiguous), "ab123c"));
        Assert.Equal("hi|!|?| there", Run(new CharClassPreTokenizer(Splitting.IsPunctuation, SplitBehavior.Isolated), "hi!? there"));
        Assert.Equal("hello|,|world|!", Run(new BertPreTokenizer(), " hello,\u00A0world! "));
        Assert.Equal("it|'|s|,|x", Run(new WhitespacePreTokenizer(), "it's, x"));
        Assert.Equal("Hello|Ġworld|'s|ĠĠ|Ġ1|.", Run(new ByteLevelPreTokenizer(false, true), "Hello world's   1."));
        Assert.Equal("▁Hey|▁friend", Run(new MetaspacePreTokenizer('▁', "first", true), "Hey friend"));
    }

    [Fact]
    public void SlowByteLevelAddedTokensFromAddedTokensJson()
    {
        // transformers 4.31 kept added_tokens.json entries as plain strings: they strip the spaces on both sides and
        // decode on their own, between spaces.
        var source = Path.Combine(SharedFixtures.HfReference, "models", "roberta");
        var dir = Directory.CreateDirectory(Path.Combine(temp, "roberta-added")).FullName;
        foreach (var f in new[] { "vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json" })
            File.Copy(Path.Combine(source, f), Path.Combine(dir, f));
        File.WriteAllText(Path.Combine(dir, "added_tokens.json"), "{\"newword\": 461}");
        var tok = Assert.IsType<PipelineTokenizer>(TokenizerLoader.Load(dir));
        Assert.Equal(462, tok.VocabSize);
        var hello = tok.Encode("Hello, World!");
        Assert.Equal(["<s>", "H", "e", "l", "lo", ",", "Ġ", "W", "or", "ld", "!", "</s>"], hello.Tokens);
        Assert.Equal([new(0, 0), new(0, 1), new(1, 2), new(2, 3), new(3, 5), new(5, 6), new(7, 7), new(7, 8), new(8, 10), new(10, 12), new(12, 13), new(0, 0)],
            hello.Offsets!);
        Assert.Equal([null, 0, 0, 0, 0, 1, 2, 2, 2, 2, 3, null], hello.WordIds);
        Assert.Equal(["a", "newword", "b"], tok.Tokenize("a newword b"));
        var ids = tok.Encode("a newword b").InputIds;
        Assert.Equal(461, ids[2]);
        Assert.False(tok.IsSpecial(461));
        Assert.Equal("<s>a newword b</s>", tok.Decode(ids));
        var saved = Path.Combine(temp, "roberta-saved");
        tok.Save(saved);
        Assert.Equal(ids, TokenizerLoader.Load(saved).Encode("a newword b").InputIds);
        Assert.Equal(tok.Fingerprint, ((PipelineTokenizer)TokenizerLoader.Load(saved)).Fingerprint);
    }

    [Fact]
    public void UnsupportedPartsNameFileAndField()
    {
        var e = Assert.Throws<UnmaskException>(() => Load("""{"model": {"type": "WordLevel", "vocab": {}}}"""));
        Assert.Contains("tokenizer.json: model.type 'WordLevel' is not supported (supported: BPE, WordPiece, Unigram)", e.Message);
        e = Assert.Throws<UnmaskException>(() => Load("""{"normalizer": {"type": "Sequence", "normalizers": [{"type": "Nope"}]}, "model": {"type": "WordPiece", "vocab": {"[UNK]": 0}}}"""));
        Assert.Contains("normalizer.normalizers[0].type 'Nope'", e.Message);
        e = Assert.Throws<UnmaskException>(() => Load("""{"pre_tokenizer": {"type": "UnicodeScripts"}, "model": {"type": "WordPiece", "vocab": {"[UNK]": 0}}}"""));
        Assert.Contains("pre_tokenizer.type 'UnicodeScripts'", e.Message);
    }
}
