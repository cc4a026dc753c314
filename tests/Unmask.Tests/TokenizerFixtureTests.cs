using System.IO.Compression;
using System.Text.Json;
using Unmask.Tokenization;

namespace Unmask.Tests;

public class TokenizerFixtureTests
{
    public static TheoryData<string> BertVariants() =>
        new(Directory.GetFiles(Path.Combine(SharedFixtures.HfReference, "tokenizer-cases"), "bert-*.json").Select(Path.GetFileNameWithoutExtension).Order()!);

    static int[] Ints(JsonElement e) => e.EnumerateArray().Select(x => x.GetInt32()).ToArray();

    [Theory]
    [MemberData(nameof(BertVariants))]
    public void EveryStringMatchesTransformersSlowBertTokenizer(string variant)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(SharedFixtures.HfReference, "tokenizer-cases", variant + ".json")));
        var root = doc.RootElement;
        var tokenizer = TokenizerLoader.Load(Path.Combine(SharedFixtures.HfReference, root.GetProperty("tokenizer_dir").GetString()!));
        Assert.Equal(root.GetProperty("vocab_size").GetInt32(), tokenizer.VocabSize);
        int checkedCases = 0;
        foreach (var c in root.GetProperty("cases").EnumerateArray())
        {
            var text = c.GetProperty("text").GetString()!;
            var label = $"{variant}: {JsonSerializer.Serialize(text)}";
            Assert.True(c.GetProperty("tokens").EnumerateArray().Select(t => t.GetString()!).SequenceEqual(tokenizer.Tokenize(text)),
                $"{label}: tokens {string.Join(" ", tokenizer.Tokenize(text))}");
            var ids = tokenizer.Encode(text).InputIds;
            Assert.True(Ints(c.GetProperty("input_ids")).SequenceEqual(ids), $"{label}: input_ids");
            Assert.True(Ints(c.GetProperty("input_ids_no_special")).SequenceEqual(tokenizer.Encode(text, addSpecialTokens: false).InputIds), $"{label}: no special");
            Assert.Equal(c.GetProperty("decoded").GetString(), tokenizer.Decode(ids));
            Assert.Equal(c.GetProperty("decoded_skip_special").GetString(), tokenizer.Decode(ids, skipSpecialTokens: true));
            checkedCases++;
        }
        foreach (var p in root.GetProperty("pairs").EnumerateArray())
        {
            var (a, b) = (p.GetProperty("text").GetString()!, p.GetProperty("text_pair").GetString()!);
            var full = tokenizer.Encode(a, b);
            Assert.Equal(Ints(p.GetProperty("input_ids")), full.InputIds);
            Assert.Equal(Ints(p.GetProperty("token_type_ids")), full.TokenTypeIds);
            var truncated = tokenizer.Encode(a, b, maxLength: 24);
            var expected = p.GetProperty("truncated_max_length_24_longest_first");
            Assert.Equal(Ints(expected.GetProperty("input_ids")), truncated.InputIds);
            Assert.Equal(Ints(expected.GetProperty("token_type_ids")), truncated.TokenTypeIds);
            Assert.Equal(p.GetProperty("decoded").GetString(), tokenizer.Decode(full.InputIds));
        }
        Assert.True(checkedCases > 100);
    }

    [Fact]
    public void RealBertVocabularyLoadsFromVocabTxtAndTokenizerJsonWithIdenticalIds()
    {
        var dir = SharedFixtures.BertBaseUncasedTokenizer;
        var fromVocab = TokenizerLoader.Load(dir);
        var jsonOnly = Directory.CreateTempSubdirectory("unmask-tokjson");
        File.Copy(Path.Combine(dir, "tokenizer.json"), Path.Combine(jsonOnly.FullName, "tokenizer.json"));
        var fromJson = TokenizerLoader.Load(jsonOnly.FullName);
        Assert.Equal(30522, fromVocab.VocabSize);
        Assert.Equal(30522, fromJson.VocabSize);
        Assert.Equal((101, 102, 103, 0, 100), (fromVocab.ClsId, fromVocab.SepId, fromVocab.MaskId, fromVocab.PadId, fromVocab.UnkId));
        Assert.Equal((101, 102, 103, 0, 100), (fromJson.ClsId, fromJson.SepId, fromJson.MaskId, fromJson.PadId, fromJson.UnkId));
        Assert.Equal(new[] { 101, 1996, 4937, 2938, 1012, 102 }, fromVocab.Encode("The cat sat.").InputIds);

        int sentences = 0;
        foreach (var sentence in BlimpAndCrowsSentences())
        {
            Assert.True(fromVocab.Encode(sentence).InputIds.SequenceEqual(fromJson.Encode(sentence).InputIds), sentence);
            if (sentence.All(ch => ch < 128)) Assert.DoesNotContain(fromVocab.UnkId, fromVocab.Encode(sentence).InputIds);
            sentences++;
        }
        Assert.True(sentences > 130_000, $"only {sentences} sentences read");
        jsonOnly.Delete(true);
    }

    static IEnumerable<string> BlimpAndCrowsSentences()
    {
        foreach (var file in Directory.GetFiles(Path.Combine(SharedFixtures.Data, "blimp", "data"), "*.jsonl.gz").Order())
        {
            using var reader = new StreamReader(new GZipStream(File.OpenRead(file), CompressionMode.Decompress));
            while (reader.ReadLine() is { } line)
            {
                using var doc = JsonDocument.Parse(line);
                yield return doc.RootElement.GetProperty("sentence_good").GetString()!;
                yield return doc.RootElement.GetProperty("sentence_bad").GetString()!;
            }
        }
        foreach (var row in Csv.Read(Path.Combine(SharedFixtures.Data, "crows-pairs", "crows_pairs_anonymized.csv")).Skip(1))
        {
            yield return row[1];
            yield return row[2];
        }
    }
}

/// <summary>A small RFC 4180 reader (quoted fields, doubled quotes, newlines inside quotes) for test data.</summary>
public static class Csv
{
    public static IEnumerable<List<string>> Read(string path)
    {
        var text = File.ReadAllText(path);
        var row = new List<string>();
        var field = new System.Text.StringBuilder();
        bool quoted = false;
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (quoted)
            {
                if (c == '"' && i + 1 < text.Length && text[i + 1] == '"') { field.Append('"'); i++; }
                else if (c == '"') quoted = false;
                else field.Append(c);
            }
            else if (c == '"') quoted = true;
            else if (c == ',') { row.Add(field.ToString()); field.Clear(); }
            else if (c == '\n')
            {
                row.Add(field.ToString().TrimEnd('\r'));
                field.Clear();
                yield return row;
                row = [];
            }
            else field.Append(c);
        }
        if (field.Length > 0 || row.Count > 0)
        {
            row.Add(field.ToString());
            yield return row;
        }
    }
}
