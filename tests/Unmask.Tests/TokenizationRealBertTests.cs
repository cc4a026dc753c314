using System.IO.Compression;
using System.Text;
using System.Text.Json;
using Unmask.Tokenization;

namespace Unmask.Tests;

/// <summary>The real bert-base-uncased vocabulary, read from vocab.txt and from tokenizer.json, on real sentences.</summary>
public class TokenizationRealBertTests
{
    static readonly WordPieceTokenizer FromVocab = WordPieceTokenizer.Load(SharedFixtures.BertBaseUncasedTokenizer);

    // The same folder's tokenizer.json read by the generic pipeline, with the fast tokenizer's semantics.
    static readonly PipelineTokenizer FromPipeline = TokenizerJson.Load(SharedFixtures.BertBaseUncasedTokenizer);

    [Fact]
    public void ALongTextAfterAShorterOneThatNeededNfcEncodes()
    {
        // The per-thread character buffer grows for the first text and is rewritten (NFC) for the second; the third
        // must find room in every one of its arrays.
        var texts = new[]
        {
            string.Join(" ", Enumerable.Repeat("plain words", 60)),
            string.Join(" ", Enumerable.Repeat("cafe\u0301 ", 30)),
            string.Join(" ", Enumerable.Repeat("more plain words", 50)),
        };
        foreach (var text in texts)
            Assert.Equal(FromPipeline.Encode(text).InputIds, FromVocab.Encode(text).InputIds);
    }

    [Fact]
    public void KnownIds()
    {
        foreach (var tok in new ITokenizer[] { FromVocab, FromPipeline })
        {
            Assert.Equal(30522, tok.VocabSize);
            Assert.Equal((0, 100, 101, 102, 103), (tok.PadId, tok.UnkId, tok.ClsId, tok.SepId, tok.MaskId));
            Assert.Equal(1996, tok.TokenToId("the"));
            Assert.Equal([101, 7592, 1010, 2088, 102], tok.Encode("Hello, World").InputIds);
            Assert.Equal(["john", "johan", "##son", "'", "s", "house"], tok.Tokenize("John Johanson's house"));
            Assert.Equal([101, 1996, 103, 102], tok.Encode("The [MASK]").InputIds);
            Assert.True(tok.IsContinuation(tok.TokenToId("##son")!.Value));
            Assert.False(tok.IsContinuation(tok.TokenToId("son")!.Value));
            Assert.True(tok.IsSpecial(103) && !tok.IsSpecial(1996));
            Assert.Null(tok.ModelMaxLength);
        }
        Assert.True(FromVocab.Normalization.LowerCase);

        Assert.Equal(30522, FromPipeline.VocabSize);
        Assert.Equal((0, 100, 101, 102, 103), (FromPipeline.PadId, FromPipeline.UnkId, FromPipeline.ClsId, FromPipeline.SepId, FromPipeline.MaskId));
        Assert.Equal(["john", "johan", "##son", "'", "s", "house"], FromPipeline.Tokenize("John Johanson's house"));
        var e = FromPipeline.Encode("John Johanson's house");
        Assert.Equal([null, 0, 1, 1, 2, 3, 4, null], e.WordIds);
        Assert.Equal(new TokenOffset[] { new(0, 0), new(0, 4), new(5, 10), new(10, 13), new(13, 14), new(14, 15), new(16, 21), new(0, 0) }, e.Offsets);
        Assert.Equal(e.Offsets, FromVocab.Encode("John Johanson's house").Offsets);
        Assert.Equal(e.WordIds, FromVocab.Encode("John Johanson's house").WordIds);
        Assert.Equal("john johanson's house", FromPipeline.Decode(e.InputIds, skipSpecialTokens: true));
        Assert.True(FromPipeline.IsContinuation(FromPipeline.TokenToId("##son")!.Value));
        Assert.False(FromPipeline.IsContinuation(FromPipeline.TokenToId("son")!.Value));
    }

    [Fact]
    public void VocabTxtAndTokenizerJsonAgreeOnBlimp()
    {
        var files = Directory.GetFiles(Path.Combine(SharedFixtures.Data, "blimp", "data"), "*.jsonl.gz");
        Assert.True(files.Length >= 60, $"expected the 67 BLiMP paradigms, found {files.Length}");
        int sentences = 0;
        foreach (var file in files)
        {
            using var reader = new StreamReader(new GZipStream(File.OpenRead(file), CompressionMode.Decompress), Encoding.UTF8);
            while (reader.ReadLine() is { } line)
            {
                if (line.Length == 0) continue;
                var row = JsonDocument.Parse(line).RootElement;
                foreach (var field in new[] { "sentence_good", "sentence_bad" })
                {
                    AssertSame(row.GetProperty(field).GetString()!, $"{Path.GetFileName(file)} {field}");
                    sentences++;
                }
            }
        }
        Assert.True(sentences > 100_000, $"only {sentences} BLiMP sentences");
    }

    [Fact]
    public void VocabTxtAndTokenizerJsonAgreeOnCrowsPairs()
    {
        var rows = ReadCsv(Path.Combine(SharedFixtures.Data, "crows-pairs", "crows_pairs_anonymized.csv"));
        var header = rows[0];
        int more = Array.IndexOf(header, "sent_more"), less = Array.IndexOf(header, "sent_less");
        Assert.True(more >= 0 && less >= 0, "CrowS-Pairs columns sent_more/sent_less not found");
        Assert.True(rows.Count > 1500, $"only {rows.Count} CrowS-Pairs rows");
        foreach (var row in rows.Skip(1))
        {
            AssertSame(row[more], "sent_more");
            AssertSame(row[less], "sent_less");
            var a = FromVocab.Encode(row[more], row[less], maxLength: 32);
            Assert.True(a.InputIds.Length <= 32);
            var whole = FromVocab.Encode(row[more], row[less]);
            var pipeline = FromPipeline.Encode(row[more], row[less]);
            Assert.Equal(whole.InputIds, pipeline.InputIds);
            Assert.Equal(whole.TokenTypeIds, pipeline.TokenTypeIds);
            Assert.Equal(Math.Min(32, whole.InputIds.Length), FromPipeline.Encode(row[more], row[less], maxLength: 32).InputIds.Length);
        }
    }

    static void AssertSame(string sentence, string where)
    {
        var a = FromVocab.Encode(sentence).InputIds;
        var c = FromPipeline.Encode(sentence).InputIds;
        Assert.True(a.SequenceEqual(c), $"{where}: {JsonSerializer.Serialize(sentence)} gives [{string.Join(", ", a)}] from vocab.txt but [{string.Join(", ", c)}] from the tokenizer.json pipeline");
        Assert.True(a.Length > 2 && a[0] == 101 && a[^1] == 102, $"{where}: {sentence}");
    }

    /// <summary>RFC 4180 CSV: quoted fields may hold commas, doubled quotes and line breaks.</summary>
    static List<string[]> ReadCsv(string path)
    {
        var text = File.ReadAllText(path);
        var rows = new List<string[]>();
        var row = new List<string>();
        var field = new StringBuilder();
        bool quoted = false;
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (quoted)
            {
                if (c != '"') field.Append(c);
                else if (i + 1 < text.Length && text[i + 1] == '"') { field.Append('"'); i++; }
                else quoted = false;
            }
            else if (c == '"') quoted = true;
            else if (c == ',') { row.Add(field.ToString()); field.Clear(); }
            else if (c == '\n' || c == '\r')
            {
                if (c == '\r' && i + 1 < text.Length && text[i + 1] == '\n') i++;
                row.Add(field.ToString());
                field.Clear();
                rows.Add(row.ToArray());
                row.Clear();
            }
            else field.Append(c);
        }
        if (field.Length > 0 || row.Count > 0) { row.Add(field.ToString()); rows.Add(row.ToArray()); }
        return rows;
    }
}
