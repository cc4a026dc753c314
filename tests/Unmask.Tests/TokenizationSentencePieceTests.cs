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
