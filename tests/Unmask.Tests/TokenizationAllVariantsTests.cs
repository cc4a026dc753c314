using System.Text.Json;
using Unmask.Tokenization;

namespace Unmask.Tests;

/// <summary>
/// Every reference tokenizer variant, opened the way the CLI and the model loader open it (TokenizerLoader), gives
/// transformers' tokens, ids, pair layouts, truncation and decoded text.
/// </summary>
public class TokenizationAllVariantsTests
{
    public static TheoryData<string> Variants() =>
    [
        "bert-cased", "bert-cased-strip-accents", "bert-uncased", "bert-uncased-keep-accents", "bert-uncased-no-cjk-split",
        "roberta", "roberta-add-prefix-space", "modernbert-bpe",
    ];

    internal static (JsonElement Root, ITokenizer Tokenizer) Open(string variant)
    {
        var path = Path.Combine(SharedFixtures.HfReference, "tokenizer-cases", variant + ".json");
        var root = JsonDocument.Parse(File.ReadAllText(path)).RootElement;
        var dir = Path.Combine(SharedFixtures.HfReference, root.GetProperty("tokenizer_dir").GetString()!);
        return (root, TokenizerLoader.Load(dir));
    }

    static int[] Ints(JsonElement e) => e.EnumerateArray().Select(x => x.GetInt32()).ToArray();
    static string[] Strings(JsonElement e) => e.EnumerateArray().Select(x => x.GetString()!).ToArray();
    static string Show(string? s) => JsonSerializer.Serialize(s);

    [Theory]
    [MemberData(nameof(Variants))]
    public void SpecialTokensAndSizeMatch(string variant)
    {
        var (root, tok) = Open(variant);
        Assert.Equal(root.GetProperty("vocab_size").GetInt32(), tok.VocabSize);
        Assert.Equal(root.GetProperty("init_kwargs").GetProperty("model_max_length").GetInt32(), tok.ModelMaxLength);
        var specials = root.GetProperty("special_tokens");
        Assert.Equal(specials.GetProperty("mask_token").GetString(), tok.Specials.Mask);
        Assert.Equal(tok.TokenToId(specials.GetProperty("mask_token").GetString()!), tok.MaskId);
        Assert.Equal(tok.TokenToId(specials.GetProperty("cls_token").GetString()!), tok.ClsId);
        Assert.Equal(tok.TokenToId(specials.GetProperty("pad_token").GetString()!), tok.PadId);
        foreach (var role in specials.EnumerateObject())
            Assert.True(tok.IsSpecial(tok.TokenToId(role.Value.GetString()!)!.Value), $"{role.Name} is special");
        Assert.Equal(tok.Specials.AllIds.Count, tok.Specials.AllIds.Distinct().Count());
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public void EveryCaseMatches(string variant)
    {
        var (root, tok) = Open(variant);
        var failures = new List<string>();
        int count = 0;
        foreach (var c in root.GetProperty("cases").EnumerateArray())
        {
            count++;
            var text = c.GetProperty("text").GetString()!;
            void Check(string what, string? expected, string actual)
            {
                if (expected != actual) failures.Add($"{what} of {Show(text)}: expected {Show(expected)}, got {Show(actual)}");
            }
            void CheckSeq<T>(string what, T[] expected, IReadOnlyList<T> actual)
            {
                if (!expected.SequenceEqual(actual))
                    failures.Add($"{what} of {Show(text)}: expected [{string.Join(", ", expected)}], got [{string.Join(", ", actual)}]");
            }
            CheckSeq("tokens", Strings(c.GetProperty("tokens")), tok.Tokenize(text));
            var ids = Ints(c.GetProperty("input_ids"));
            var encoded = tok.Encode(text);
            CheckSeq("input_ids", ids, encoded.InputIds);
            CheckSeq("input_ids_no_special", Ints(c.GetProperty("input_ids_no_special")), tok.Encode(text, addSpecialTokens: false).InputIds);
            Check("decoded", c.GetProperty("decoded").GetString(), tok.Decode(ids));
            Check("decoded_skip_special", c.GetProperty("decoded_skip_special").GetString(), tok.Decode(ids, skipSpecialTokens: true));
            CheckSeq("word ids of special tokens", ids.Select((_, i) => i == 0 || i == ids.Length - 1).ToArray(),
                encoded.WordIds.Select(w => w == null).ToArray());
            var offsets = encoded.Offsets;
            if (offsets == null) failures.Add($"no offsets for {Show(text)}");
            else
            {
                for (int i = 1; i < offsets.Length - 1; i++)
                {
                    var (start, end) = (offsets[i].Start, offsets[i].End);
                    if (start < 0 || end > text.Length || start > end || (i > 1 && start < offsets[i - 1].Start))
                        failures.Add($"offset {i} ({start}, {end}) of {Show(text)}");
                }
            }
        }
        Assert.True(count > 100, $"only {count} cases in {variant}");
        Assert.True(failures.Count == 0, $"{failures.Count} mismatches in {variant}:\n" + string.Join("\n", failures.Take(40)));
    }

    /// <summary>
    /// BERT's fast tokenizer: the tokenizer.json a WordPiece tokenizer writes, read by the generic pipeline, gives the
    /// slow tokenizer's ids, offsets and text for every string, except decomposed text, which only the slow one puts in NFC.
    /// </summary>
    [Theory]
    [InlineData("bert-cased")]
    [InlineData("bert-cased-strip-accents")]
    [InlineData("bert-uncased")]
    [InlineData("bert-uncased-keep-accents")]
    [InlineData("bert-uncased-no-cjk-split")]
    public void BertTokenizerJsonThroughThePipelineMatches(string variant)
    {
        var (root, tok) = Open(variant);
        var dir = Directory.CreateTempSubdirectory("unmask-bert-json-").FullName;
        try
        {
            ((WordPieceTokenizer)tok).Save(dir, writeTokenizerJson: true);
            var fast = TokenizerJson.Load(dir);
            var failures = new List<string>();
            int compared = 0;
            foreach (var c in root.GetProperty("cases").EnumerateArray())
            {
                var text = c.GetProperty("text").GetString()!;
                if (text.Normalize(System.Text.NormalizationForm.FormC) != text) continue;
                compared++;
                var ids = Ints(c.GetProperty("input_ids"));
                var fastEncoded = fast.Encode(text);
                if (!ids.SequenceEqual(fastEncoded.InputIds)) failures.Add($"input_ids of {Show(text)}");
                else if (!fastEncoded.Offsets!.SequenceEqual(tok.Encode(text).Offsets!))
                    failures.Add($"offsets of {Show(text)}: [{string.Join(", ", tok.Encode(text).Offsets!)}], the fast tokenizer's [{string.Join(", ", fastEncoded.Offsets!)}]");
                if (c.GetProperty("decoded").GetString() != fast.Decode(ids)) failures.Add($"decoded of {Show(text)}: {Show(fast.Decode(ids))}");
                if (c.GetProperty("decoded_skip_special").GetString() != fast.Decode(ids, true))
                    failures.Add($"decoded_skip_special of {Show(text)}: {Show(fast.Decode(ids, true))}");
            }
            foreach (var p in root.GetProperty("pairs").EnumerateArray())
            {
                var e = fast.Encode(p.GetProperty("text").GetString()!, p.GetProperty("text_pair").GetString()!);
                if (!Ints(p.GetProperty("input_ids")).SequenceEqual(e.InputIds)) failures.Add($"pair input_ids of {p.GetProperty("text")}");
                if (!Ints(p.GetProperty("token_type_ids")).SequenceEqual(e.TokenTypeIds)) failures.Add($"pair token_type_ids of {p.GetProperty("text")}");
            }
            Assert.True(compared > 160, $"only {compared} cases compared");
            Assert.True(failures.Count == 0, $"{failures.Count} mismatches in {variant}:\n" + string.Join("\n", failures.Take(40)));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public void EveryPairMatches(string variant)
    {
        var (root, tok) = Open(variant);
        var failures = new List<string>();
        foreach (var p in root.GetProperty("pairs").EnumerateArray())
        {
            var text = p.GetProperty("text").GetString()!;
            var pair = p.GetProperty("text_pair").GetString()!;
            var label = $"{Show(text)} + {Show(pair)}";
            var full = tok.Encode(text, pair);
            if (!Ints(p.GetProperty("input_ids")).SequenceEqual(full.InputIds))
                failures.Add($"input_ids of {label}: got [{string.Join(", ", full.InputIds)}]");
            var types = p.GetProperty("token_type_ids");
            if (types.ValueKind == JsonValueKind.Null)
            {
                if (tok.ReturnsTokenTypeIds) failures.Add("HF returns no token_type_ids");
                if (full.TokenTypeIds.Any(t => t != 0)) failures.Add($"token_type_ids of {label} are not all 0");
            }
            else if (!Ints(types).SequenceEqual(full.TokenTypeIds)) failures.Add($"token_type_ids of {label}");
            var truncatedExpected = p.GetProperty("truncated_max_length_24_longest_first");
            var truncated = tok.Encode(text, pair, maxLength: 24);
            if (!Ints(truncatedExpected.GetProperty("input_ids")).SequenceEqual(truncated.InputIds))
                failures.Add($"truncated input_ids of {label}: got [{string.Join(", ", truncated.InputIds)}]");
            var decoded = tok.Decode(Ints(p.GetProperty("input_ids")));
            if (p.GetProperty("decoded").GetString() != decoded) failures.Add($"decoded of {label}: got {Show(decoded)}");
            if (full.SequenceIds.Count(s => s == 1) == 0) failures.Add($"no token of {label} belongs to the pair");
        }
        Assert.True(failures.Count == 0, $"{failures.Count} mismatches in {variant}:\n" + string.Join("\n", failures));
    }
}
