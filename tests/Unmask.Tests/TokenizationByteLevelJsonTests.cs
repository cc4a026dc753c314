using System.Text.Json;
using System.Text.Json.Nodes;
using Unmask.Tokenization;

namespace Unmask.Tests;

/// <summary>
/// tokenizer.json files written for the reference folders' vocab.json and merges.txt, in the shape of the real
/// checkpoints' files (ModernBERT ships only tokenizer.json; RoBERTa's fast tokenizer uses RobertaProcessing), must
/// give the ids of the slow tokenizers the fixtures used.
/// </summary>
public sealed class TokenizationByteLevelJsonTests : IDisposable
{
    readonly string temp = Directory.CreateTempSubdirectory("unmask-bytelevel-json-").FullName;

    public void Dispose() => Directory.Delete(temp, recursive: true);

    static JsonNode Special(string token, int typeId) => new JsonObject { ["SpecialToken"] = new JsonObject { ["id"] = token, ["type_id"] = typeId } };
    static JsonNode Sequence(string id, int typeId) => new JsonObject { ["Sequence"] = new JsonObject { ["id"] = id, ["type_id"] = typeId } };

    static int[] Ints(JsonElement e) => e.EnumerateArray().Select(x => x.GetInt32()).ToArray();

    /// <summary>The folder's special tokens as tokenizer.json added_tokens, with the flags of special_tokens_map.json.</summary>
    static (JsonArray Added, Dictionary<string, int> Ids) AddedTokens(string source, Func<string, int> idOf)
    {
        var map = JsonNode.Parse(File.ReadAllText(Path.Combine(source, "special_tokens_map.json")))!.AsObject();
        var added = new JsonArray();
        var ids = new Dictionary<string, int>();
        foreach (var (_, t) in map)
        {
            var content = t!["content"]!.GetValue<string>();
            if (ids.ContainsKey(content)) continue;
            ids[content] = idOf(content);
            added.Add(new JsonObject
            {
                ["id"] = ids[content], ["content"] = content, ["single_word"] = false, ["lstrip"] = t["lstrip"]!.GetValue<bool>(),
                ["rstrip"] = false, ["normalized"] = false, ["special"] = true,
            });
        }
        return (added, ids);
    }

    string WriteTokenizerJson(string model, JsonNode? normalizer, string tokenizerClass)
    {
        var source = Path.Combine(SharedFixtures.HfReference, "models", model);
        var dir = Directory.CreateDirectory(Path.Combine(temp, $"{model}-{normalizer != null}")).FullName;
        var vocab = JsonNode.Parse(File.ReadAllText(Path.Combine(source, "vocab.json")))!.AsObject();
        var merges = new JsonArray(File.ReadAllLines(Path.Combine(source, "merges.txt")).Skip(1)
            .Where(l => l.Length > 0).Select(l => (JsonNode)JsonValue.Create(l)!).ToArray());
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(source, "tokenizer_config.json")))!.AsObject();
        var decoder = config["added_tokens_decoder"]?.AsObject();
        var (added, ids) = AddedTokens(source, t => vocab[t]?.GetValue<int>()
            ?? int.Parse(decoder!.First(kv => kv.Value!["content"]!.GetValue<string>() == t).Key));
        JsonNode post = model == "roberta"
            ? new JsonObject
            {
                ["type"] = "RobertaProcessing", ["sep"] = new JsonArray("</s>", ids["</s>"]), ["cls"] = new JsonArray("<s>", ids["<s>"]),
                ["trim_offsets"] = true, ["add_prefix_space"] = false,
            }
            : new JsonObject
            {
                ["type"] = "TemplateProcessing",
                ["single"] = new JsonArray(Special("[CLS]", 0), Sequence("A", 0), Special("[SEP]", 0)),
                ["pair"] = new JsonArray(Special("[CLS]", 0), Sequence("A", 0), Special("[SEP]", 0), Sequence("B", 1), Special("[SEP]", 1)),
                ["special_tokens"] = new JsonObject
                {
                    ["[CLS]"] = new JsonObject { ["id"] = "[CLS]", ["ids"] = new JsonArray(ids["[CLS]"]), ["tokens"] = new JsonArray("[CLS]") },
                    ["[SEP]"] = new JsonObject { ["id"] = "[SEP]", ["ids"] = new JsonArray(ids["[SEP]"]), ["tokens"] = new JsonArray("[SEP]") },
                },
            };
        var json = new JsonObject
        {
            ["version"] = "1.0", ["truncation"] = null, ["padding"] = null, ["added_tokens"] = added,
            ["normalizer"] = normalizer,
            ["pre_tokenizer"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = true },
            ["post_processor"] = post,
            ["decoder"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = true, ["trim_offsets"] = true, ["use_regex"] = true },
            ["model"] = new JsonObject
            {
                ["type"] = "BPE", ["dropout"] = null, ["unk_token"] = null, ["continuing_subword_prefix"] = "",
                ["end_of_word_suffix"] = "", ["fuse_unk"] = false, ["byte_fallback"] = false, ["vocab"] = vocab.DeepClone(), ["merges"] = merges,
            },
        };
        File.WriteAllText(Path.Combine(dir, "tokenizer.json"), json.ToJsonString());
        config.Remove("added_tokens_decoder");
        config["tokenizer_class"] = tokenizerClass;
        if (model == "modernbert") config["model_input_names"] = new JsonArray("input_ids", "attention_mask");
        File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), config.ToJsonString());
        File.Copy(Path.Combine(source, "special_tokens_map.json"), Path.Combine(dir, "special_tokens_map.json"));
        return dir;
    }

    [Theory]
    [InlineData("modernbert", "modernbert-bpe", false, "PreTrainedTokenizerFast")]
    [InlineData("modernbert", "modernbert-bpe", true, "PreTrainedTokenizerFast")]
    [InlineData("roberta", "roberta", false, "RobertaTokenizerFast")]
    public void TokenizerJsonGivesTheSlowTokenizersIds(string model, string variant, bool nfc, string tokenizerClass)
    {
        var dir = WriteTokenizerJson(model, nfc ? new JsonObject { ["type"] = "NFC" } : null, tokenizerClass);
        var fast = Assert.IsType<PipelineTokenizer>(TokenizerLoader.Load(dir));
        var slow = Assert.IsType<PipelineTokenizer>(TokenizerLoader.Load(Path.Combine(SharedFixtures.HfReference, "models", model)));
        Assert.False(fast.IsSlow);
        Assert.True(slow.IsSlow);
        Assert.Equal(slow.VocabSize, fast.VocabSize);
        Assert.Equal((slow.ClsId, slow.SepId, slow.PadId, slow.MaskId, slow.UnkId), (fast.ClsId, fast.SepId, fast.PadId, fast.MaskId, fast.UnkId));
        Assert.False(fast.ReturnsTokenTypeIds);

        var root = JsonDocument.Parse(File.ReadAllText(Path.Combine(SharedFixtures.HfReference, "tokenizer-cases", variant + ".json"))).RootElement;
        var failures = new List<string>();
        int compared = 0;
        foreach (var c in root.GetProperty("cases").EnumerateArray())
        {
            var text = c.GetProperty("text").GetString()!;
            // NFC changes decomposed input, which the slow tokenizer keeps as it is.
            if (nfc && text.Normalize(System.Text.NormalizationForm.FormC) != text) continue;
            compared++;
            var show = JsonSerializer.Serialize(text);
            var ids = Ints(c.GetProperty("input_ids"));
            if (!ids.SequenceEqual(fast.Encode(text).InputIds)) failures.Add($"input_ids of {show}");
            if (!Ints(c.GetProperty("input_ids_no_special")).SequenceEqual(fast.Encode(text, addSpecialTokens: false).InputIds))
                failures.Add($"input_ids_no_special of {show}");
            if (!c.GetProperty("tokens").EnumerateArray().Select(t => t.GetString()).SequenceEqual(fast.Tokenize(text)))
                failures.Add($"tokens of {show}");
            if (c.GetProperty("decoded").GetString() != fast.Decode(ids)) failures.Add($"decoded of {show}: {fast.Decode(ids)}");
            if (c.GetProperty("decoded_skip_special").GetString() != fast.Decode(ids, true))
                failures.Add($"decoded_skip_special of {show}: {fast.Decode(ids, true)}");
        }
        foreach (var p in root.GetProperty("pairs").EnumerateArray())
        {
            var encoded = fast.Encode(p.GetProperty("text").GetString()!, p.GetProperty("text_pair").GetString()!);
            if (!Ints(p.GetProperty("input_ids")).SequenceEqual(encoded.InputIds)) failures.Add($"pair {p.GetProperty("text")}");
        }
        Assert.True(compared > 160, $"only {compared} cases compared");
        Assert.True(failures.Count == 0, $"{failures.Count} mismatches:\n" + string.Join("\n", failures.Take(30)));

        var cases = JsonDocument.Parse(File.ReadAllText(Path.Combine(SharedFixtures.HfReference, "cases", model + ".json"))).RootElement;
        foreach (var c in cases.GetProperty("cases").EnumerateArray())
        {
            var t = c.GetProperty("text");
            string[] texts = t.ValueKind == JsonValueKind.Array ? t.EnumerateArray().Select(x => x.GetString()!).ToArray() : [t.GetString()!];
            string[]? pairs = null;
            if (c.TryGetProperty("text_pair", out var tp) && tp.ValueKind != JsonValueKind.Null)
                pairs = tp.ValueKind == JsonValueKind.Array ? tp.EnumerateArray().Select(x => x.GetString()!).ToArray() : [tp.GetString()!];
            var call = c.GetProperty("tokenizer_call");
            var batch = fast.EncodeBatch(texts, pairs, true, 64, call.GetProperty("padding").ValueKind == JsonValueKind.String,
                call.GetProperty("padding_side").GetString() == "left" ? PaddingSide.Left : PaddingSide.Right);
            Assert.Equal(c.GetProperty("input_ids").EnumerateArray().Select(Ints).ToArray(), batch.InputIds);
            Assert.Equal(c.GetProperty("attention_mask").EnumerateArray().Select(Ints).ToArray(), batch.AttentionMask);
        }
    }
}
