using System.Text.Json;
using Unmask.Tokenization;

namespace Unmask.Tests;

/// <summary>
/// The exact inputs HF fed the reference models (cases/*.json): single texts, pairs and left/right padded batches,
/// truncated to 64, with attention masks and token type ids; and the PLL fixtures' special-token masks.
/// </summary>
public class TokenizationModelCasesTests
{
    public static TheoryData<string> Models() =>
        ["bert-cased", "bert-uncased", "distilbert", "electra-discriminator", "electra-generator", "modernbert", "roberta"];

    static int[] Ints(JsonElement e) => e.EnumerateArray().Select(x => x.GetInt32()).ToArray();

    static string[] Texts(JsonElement e) =>
        e.ValueKind == JsonValueKind.Array ? e.EnumerateArray().Select(x => x.GetString()!).ToArray() : [e.GetString()!];

    [Theory]
    [MemberData(nameof(Models))]
    public void EveryCaseEncodesAsHfDid(string model)
    {
        var root = JsonDocument.Parse(File.ReadAllText(Path.Combine(SharedFixtures.HfReference, "cases", model + ".json"))).RootElement;
        var tok = TokenizerLoader.Load(Path.Combine(SharedFixtures.HfReference, root.GetProperty("model_dir").GetString()!));
        var failures = new List<string>();
        bool sawPadding = false, sawPair = false, sawTruncation = false;
        foreach (var c in root.GetProperty("cases").EnumerateArray())
        {
            var name = c.GetProperty("name").GetString();
            var call = c.GetProperty("tokenizer_call");
            var texts = Texts(c.GetProperty("text"));
            var pairs = c.TryGetProperty("text_pair", out var p) && p.ValueKind != JsonValueKind.Null ? Texts(p) : null;
            bool pad = call.GetProperty("padding").ValueKind == JsonValueKind.String;
            var side = call.GetProperty("padding_side").GetString() == "left" ? PaddingSide.Left : PaddingSide.Right;
            var batch = tok.EncodeBatch(texts, pairs, call.GetProperty("add_special_tokens").GetBoolean(),
                call.GetProperty("max_length").GetInt32(), pad, side);

            var expectedIds = c.GetProperty("input_ids").EnumerateArray().Select(Ints).ToArray();
            var expectedMask = c.GetProperty("attention_mask").EnumerateArray().Select(Ints).ToArray();
            var expectedTokens = c.GetProperty("tokens").EnumerateArray()
                .Select(r => r.EnumerateArray().Select(x => x.GetString()!).ToArray()).ToArray();
            for (int row = 0; row < texts.Length; row++)
            {
                void Check<T>(string what, T[] expected, T[] actual)
                {
                    if (!expected.SequenceEqual(actual))
                        failures.Add($"{name} row {row} {what}: expected [{string.Join(", ", expected)}], got [{string.Join(", ", actual)}]");
                }
                Check("input_ids", expectedIds[row], batch.InputIds[row]);
                Check("attention_mask", expectedMask[row], batch.AttentionMask[row]);
                Check("tokens", expectedTokens[row], batch.Rows[row].Tokens);
                if (c.TryGetProperty("token_type_ids", out var types))
                    Check("token_type_ids", Ints(types[row]), batch.TokenTypeIds[row]);
                else if (tok.ReturnsTokenTypeIds) failures.Add($"{name}: HF returned no token_type_ids, the tokenizer claims it does");
            }
            sawPadding |= expectedMask.Any(m => m.Contains(0));
            sawPair |= pairs != null;
            sawTruncation |= c.GetProperty("was_truncated").EnumerateArray().Any(t => t.GetBoolean());
        }
        Assert.True(sawPadding && sawTruncation, $"{model}: the fixture should exercise padding and truncation");
        Assert.True(sawPair || model == "modernbert", $"{model}: the fixture should have pairs");
        Assert.True(failures.Count == 0, $"{failures.Count} mismatches for {model}:\n" + string.Join("\n", failures.Take(30)));
    }

    [Theory]
    [InlineData("bert-cased")]
    [InlineData("bert-uncased")]
    [InlineData("roberta")]
    public void PllSentencesHaveHfSpecialTokenMasks(string model)
    {
        var root = JsonDocument.Parse(File.ReadAllText(Path.Combine(SharedFixtures.HfReference, "pll", model + ".json"))).RootElement;
        var tok = TokenizerLoader.Load(Path.Combine(SharedFixtures.HfReference, root.GetProperty("model_dir").GetString()!));
        int n = 0;
        foreach (var s in root.GetProperty("sentences").EnumerateArray())
        {
            var encoded = tok.Encode(s.GetProperty("sentence").GetString()!);
            Assert.Equal(Ints(s.GetProperty("input_ids")), encoded.InputIds);
            Assert.Equal(Ints(s.GetProperty("special_tokens_mask")), encoded.SpecialTokensMask.Select(b => b ? 1 : 0).ToArray());
            n++;
        }
        Assert.True(n >= 5);
    }
}
