using System.Text;
using Unmask.Tokenization;

namespace Unmask.Tests;

/// <summary>SentencePiece model files (ModelProto written here field by field) as XLM-R's and DeBERTa-v2's slow tokenizers read them.</summary>
public sealed class TokenizationSentencePieceTests : IDisposable
{
    readonly string temp = Directory.CreateTempSubdirectory("unmask-spm-").FullName;

    public void Dispose() => Directory.Delete(temp, recursive: true);

    static void Varint(List<byte> o, ulong v)
    {
        while (v >= 0x80)
        {
            o.Add((byte)(v | 0x80));
            v >>= 7;
        }
        o.Add((byte)v);
    }

    static void Field(List<byte> o, int field, byte[] bytes)
    {
        Varint(o, (ulong)(field << 3 | 2));
        Varint(o, (ulong)bytes.Length);
        o.AddRange(bytes);
    }

    static byte[] ModelProto((string Piece, float Score, int Type)[] pieces, int modelType)
    {
        var o = new List<byte>();
        foreach (var (piece, score, type) in pieces)
        {
            var p = new List<byte>();
            Field(p, 1, Encoding.UTF8.GetBytes(piece));
            Varint(p, 2 << 3 | 5);
            p.AddRange(BitConverter.GetBytes(score));
            Varint(p, 3 << 3);
            Varint(p, (ulong)type);
            Field(o, 1, p.ToArray());
        }
        var trainer = new List<byte>();
        Varint(trainer, 3 << 3);
        Varint(trainer, (ulong)modelType);
        Varint(trainer, 99 << 3);  // a field this reader does not know, to be skipped
        Varint(trainer, 12345);
        Field(o, 2, trainer.ToArray());
        var normalizer = new List<byte>();
        Field(normalizer, 1, Encoding.UTF8.GetBytes("identity"));
        Field(o, 3, normalizer.ToArray());
        return o.ToArray();
    }

    string Folder(string name, string file, byte[] model, string? config = null)
    {
        var dir = Directory.CreateDirectory(Path.Combine(temp, name)).FullName;
        File.WriteAllBytes(Path.Combine(dir, file), model);
        if (config != null) File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), config);
        return dir;
    }

    [Fact]
    public void XlmRobertaUnigramWithFairseqIds()
    {
        (string, float, int)[] pieces =
        [
            ("<unk>", 0, 2), ("<s>", 0, 3), ("</s>", 0, 3), ("\u2581hello", -1, 1), ("\u2581world", -1.5f, 1), ("\u2581", -2, 1),
            ("h", -3, 1), ("e", -3, 1), ("l", -3, 1), ("o", -3, 1), ("w", -3, 1), ("r", -3, 1), ("d", -3, 1),
            ("\u2581he", -2.5f, 1), ("llo", -2.5f, 1), (",", -3, 1), ("\u2581wor", -0.1f, 6),
        ];
        var dir = Folder("xlmr", "sentencepiece.bpe.model", ModelProto(pieces, 1),
            "{\"tokenizer_class\": \"XLMRobertaTokenizer\", \"model_max_length\": 512}");
        var tok = TokenizerLoader.Load(dir);
        Assert.Equal(pieces.Length + 2, tok.VocabSize);
        Assert.Equal((0, 2, 1, 3, pieces.Length + 1), (tok.ClsId, tok.SepId, tok.PadId, tok.UnkId, tok.MaskId));
        Assert.Equal(["\u2581hello", "\u2581world", ",", "\u2581", "h", "<unk>"], tok.Tokenize("hello  world, hi"));
        var e = tok.Encode("  hello  world, hi");
        Assert.Equal([0, 4, 5, 16, 6, 7, 3, 2], e.InputIds);
        Assert.Equal([null, 0, 1, 1, 2, 2, 2, null], e.WordIds);
        Assert.Equal("<s> hello world, h<unk></s>", tok.Decode(e.InputIds));
        Assert.Equal("hello world, h", tok.Decode(e.InputIds, skipSpecialTokens: true));
        // The mask token strips the space before it; each segment gets its own dummy prefix.
        Assert.Equal([0, 4, pieces.Length + 1, 5, 2], tok.Encode("hello <mask> world").InputIds);
        var pair = tok.Encode("hello", "world");
        Assert.Equal([0, 4, 2, 2, 5, 2], pair.InputIds);
        Assert.False(tok.ReturnsTokenTypeIds);
        Assert.All(pair.TokenTypeIds, t => Assert.Equal(0, t));
        Assert.True(tok.IsContinuation(tok.TokenToId("llo")!.Value));
        Assert.False(tok.IsContinuation(tok.TokenToId("\u2581he")!.Value));
        Assert.Equal(512, tok.ModelMaxLength);
    }

    [Fact]
    public void DebertaV2BpeWithBertLayout()
    {
        (string, float, int)[] pieces =
        [
            ("[PAD]", 0, 3), ("[CLS]", 0, 3), ("[SEP]", 0, 3), ("[UNK]", 0, 2), ("\u2581", -6, 1), ("h", -7, 1), ("e", -7, 1),
            ("l", -7, 1), ("o", -7, 1), ("\u2581h", -1, 1), ("ll", -2, 1), ("\u2581he", -3, 1), ("llo", -4, 1), ("\u2581hello", -5, 1),
        ];
        var dir = Folder("deberta", "spm.model", ModelProto(pieces, 2));
        var tok = TokenizerLoader.Load(dir);
        Assert.Equal(pieces.Length + 1, tok.VocabSize);
        Assert.Equal(pieces.Length, tok.MaskId);
        Assert.Equal([1, 13, 2], tok.Encode("hello").InputIds);
        // "▁hex": ▁h, then ▁he; "x" has no piece.
        Assert.Equal([1, 13, 2, 11, 3, 2], tok.Encode("hello", "hex").InputIds);
        Assert.Equal([0, 0, 0, 1, 1, 1], tok.Encode("hello", "hex").TokenTypeIds);
        Assert.Equal([1, 13, pieces.Length, 2], tok.Encode("hello [MASK]").InputIds);
        Assert.Equal("[CLS] hello[SEP]", tok.Decode([1, 13, 2]));
        Assert.Equal("hello", tok.Decode([1, 13, 2], skipSpecialTokens: true));
    }

    /// <summary>
    /// A precompiled charsmap laid out by hand in darts-clone's unit format (label in the low byte, has-leaf bit 8,
    /// offset from bit 10, leaf values with bit 31): "Ａ" (EF BC A1) becomes "A", a tab becomes a space.
    /// </summary>
    static byte[] HandMadeCharsmap()
    {
        var units = new uint[0x501];
        static uint Unit(uint label, uint offset, bool hasLeaf) => label | (hasLeaf ? 1u << 8 : 0) | offset << 10;
        units[0] = Unit(0, 0x100, false);
        units[0x100 ^ 0xEF] = Unit(0xEF, 0x1EF ^ 0x200, false);
        units[0x200 ^ 0xBC] = Unit(0xBC, 0x2BC ^ 0x300, false);
        units[0x300 ^ 0xA1] = Unit(0xA1, 0x3A1 ^ 0x400, true);
        units[0x400] = 1u << 31 | 0;
        units[0x100 ^ 0x09] = Unit(0x09, 0x109 ^ 0x500, true);
        units[0x500] = 1u << 31 | 2;
        var blob = new List<byte>(BitConverter.GetBytes((uint)units.Length * 4));
        foreach (var u in units) blob.AddRange(BitConverter.GetBytes(u));
        blob.AddRange("A\0 \0"u8.ToArray());
        return blob.ToArray();
    }

    [Fact]
    public void PrecompiledCharsmapAndWhitespaceRules()
    {
        var map = PrecompiledNormalizer.FromBytes(HandMadeCharsmap(), "test");
        var normalized = new SentencePieceNormalizer(map, true, true, true).Normalize(AlignedText.Original("\tＡＡ  b\t"));
        Assert.Equal("\u2581AA\u2581b", normalized.Text);
        Assert.Equal((1, 3), normalized.Span(1, 3));
        Assert.Equal("AA b ", map.Normalize(AlignedText.Original("ＡＡ b\t")).Text);

        var dir = Directory.CreateDirectory(Path.Combine(temp, "precompiled")).FullName;
        File.WriteAllText(Path.Combine(dir, "tokenizer.json"), """
            {"normalizer": {"type": "Sequence", "normalizers": [{"type": "Precompiled", "precompiled_charsmap": "MAP"},
                            {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "}]},
             "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": true},
             "model": {"type": "Unigram", "unk_id": 0, "vocab": [["<unk>", 0.0], ["\u2581AA", -1.0], ["\u2581b", -1.0]]}}
            """.Replace("MAP", Convert.ToBase64String(HandMadeCharsmap())));
        var tok = TokenizerLoader.Load(dir);
        Assert.Equal(["\u2581AA", "\u2581b"], tok.Tokenize("ＡＡ\t\tb"));
        Assert.Equal([new(0, 2), new(2, 5)], tok.Encode("ＡＡ\t\tb").Offsets!);
    }

    [Fact]
    public void BrokenModelFilesNameTheFile()
    {
        var dir = Folder("broken", "spm.model", [0x0A, 0x05, 0x01]);
        var e = Assert.Throws<UnmaskException>(() => TokenizerLoader.Load(dir));
        Assert.Contains("spm.model", e.Message);
        var other = Folder("albert", "sentencepiece.bpe.model", ModelProto([("<unk>", 0, 2), ("a", -1, 1)], 1),
            "{\"tokenizer_class\": \"AlbertTokenizer\"}");
        Assert.Contains("tokenizer_class 'AlbertTokenizer'", Assert.Throws<UnmaskException>(() => TokenizerLoader.Load(other)).Message);
    }
}
