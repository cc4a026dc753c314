using System.Text.Json;
using Unmask.Tokenization;

namespace Unmask.Tests;

/// <summary>Exact parity with transformers 4.31's slow BertTokenizer on the reference tokenizer cases.</summary>
public class TokenizationHfParityTests
{
    public static TheoryData<string> Variants() =>
        ["bert-cased", "bert-cased-strip-accents", "bert-uncased", "bert-uncased-keep-accents", "bert-uncased-no-cjk-split"];

    static (JsonElement Root, WordPieceTokenizer Tokenizer) Open(string variant)
    {
        var path = Path.Combine(SharedFixtures.HfReference, "tokenizer-cases", variant + ".json");
        var root = JsonDocument.Parse(File.ReadAllText(path)).RootElement;
        var dir = Path.Combine(SharedFixtures.HfReference, root.GetProperty("tokenizer_dir").GetString()!);
        return (root, WordPieceTokenizer.Load(dir));
    }

    static int[] Ints(JsonElement e) => e.EnumerateArray().Select(x => x.GetInt32()).ToArray();
    static string[] Strings(JsonElement e) => e.EnumerateArray().Select(x => x.GetString()!).ToArray();
    static string Show(string s) => JsonSerializer.Serialize(s);

    [Theory]
    [MemberData(nameof(Variants))]
    public void FlagsAndSizeMatchTheFixture(string variant)
    {
        var (root, tok) = Open(variant);
        var kwargs = root.GetProperty("init_kwargs");
        Assert.Equal(root.GetProperty("vocab_size").GetInt32(), tok.VocabSize);
        Assert.Equal(kwargs.GetProperty("do_lower_case").GetBoolean(), tok.Normalization.LowerCase);
        var strip = kwargs.GetProperty("strip_accents");
        Assert.Equal(strip.ValueKind == JsonValueKind.Null ? null : strip.GetBoolean(), tok.Normalization.StripAccents);
        Assert.Equal(kwargs.GetProperty("tokenize_chinese_chars").GetBoolean(), tok.Normalization.TokenizeChineseChars);
        Assert.Equal(kwargs.GetProperty("model_max_length").GetInt32(), tok.ModelMaxLength);
        var specials = root.GetProperty("special_tokens");
        Assert.Equal(specials.GetProperty("mask_token").GetString(), tok.MaskToken);
        Assert.Equal(tok.TokenToId(specials.GetProperty("cls_token").GetString()!), tok.ClsId);
        Assert.Equal(tok.TokenToId(specials.GetProperty("mask_token").GetString()!), tok.MaskId);
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
            void Check<T>(string what, T expected, T actual)
            {
                if (!EqualityComparer<T>.Default.Equals(expected, actual))
                    failures.Add($"{what} of {Show(text)}: expected {Show(expected?.ToString() ?? "")}, got {Show(actual?.ToString() ?? "")}");
            }
            void CheckSeq<T>(string what, T[] expected, IReadOnlyList<T> actual)
            {
                if (!expected.SequenceEqual(actual))
                    failures.Add($"{what} of {Show(text)}: expected [{string.Join(", ", expected)}], got [{string.Join(", ", actual)}]");
            }
            CheckSeq("tokens", Strings(c.GetProperty("tokens")), tok.Tokenize(text));
            var encoded = tok.Encode(text);
            var ids = Ints(c.GetProperty("input_ids"));
            CheckSeq("input_ids", ids, encoded.InputIds);
            CheckSeq("input_ids_no_special", Ints(c.GetProperty("input_ids_no_special")), tok.Encode(text, addSpecialTokens: false).InputIds);
            Check("decoded", c.GetProperty("decoded").GetString(), tok.Decode(ids));
            Check("decoded_skip_special", c.GetProperty("decoded_skip_special").GetString(), tok.Decode(ids, skipSpecialTokens: true));
            CheckSeq("special mask", ids.Select((id, i) => i == 0 || i == ids.Length - 1).ToArray(), encoded.SpecialTokensMask);
        }
        Assert.True(count > 100, $"only {count} cases in {variant}");
        Assert.True(failures.Count == 0, $"{failures.Count} mismatches in {variant}:\n" + string.Join("\n", failures.Take(40)));
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
            if (!Ints(p.GetProperty("input_ids")).SequenceEqual(full.InputIds)) failures.Add($"input_ids of {label}");
            if (!Ints(p.GetProperty("token_type_ids")).SequenceEqual(full.TokenTypeIds)) failures.Add($"token_type_ids of {label}");
            var truncatedExpected = p.GetProperty("truncated_max_length_24_longest_first");
            var truncated = tok.Encode(text, pair, maxLength: 24);
            if (!Ints(truncatedExpected.GetProperty("input_ids")).SequenceEqual(truncated.InputIds))
                failures.Add($"truncated input_ids of {label}: got [{string.Join(", ", truncated.InputIds)}]");
            if (!Ints(truncatedExpected.GetProperty("token_type_ids")).SequenceEqual(truncated.TokenTypeIds))
                failures.Add($"truncated token_type_ids of {label}");
            var decoded = tok.Decode(Ints(p.GetProperty("input_ids")));
            if (p.GetProperty("decoded").GetString() != decoded) failures.Add($"decoded of {label}: got {Show(decoded)}");
        }
        Assert.True(failures.Count == 0, $"{failures.Count} mismatches in {variant}:\n" + string.Join("\n", failures));
    }
}
