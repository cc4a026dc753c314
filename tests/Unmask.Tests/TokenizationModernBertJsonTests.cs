using System.Text.Json;
using System.Text.Json.Nodes;
using Unmask.Tokenization;

namespace Unmask.Tests;

/// <summary>
/// Real ModernBERT checkpoints ship only tokenizer.json. Written here for the reference folder's vocab.json and
/// merges.txt in the shape of ModernBERT's own file, it must give the ids of the slow tokenizer the fixtures used.
/// </summary>
public sealed class TokenizationModernBertJsonTests : IDisposable
{
    static readonly string Source = Path.Combine(SharedFixtures.HfReference, "models", "modernbert");
    readonly string temp = Directory.CreateTempSubdirectory("unmask-modernbert-json-").FullName;

    public void Dispose() => Directory.Delete(temp, recursive: true);

    static JsonNode Special(string token, int typeId) => new JsonObject { ["SpecialToken"] = new JsonObject { ["id"] = token, ["type_id"] = typeId } };
    static JsonNode Sequence(string id, int typeId) => new JsonObject { ["Sequence"] = new JsonObject { ["id"] = id, ["type_id"] = typeId } };

    string WriteTokenizerJson(JsonNode? normalizer)
    {
        var dir = Directory.CreateDirectory(Path.Combine(temp, normalizer == null ? "plain" : "nfc")).FullName;
        var vocab = JsonNode.Parse(File.ReadAllText(Path.Combine(Source, "vocab.json")))!;
        var merges = new JsonArray(File.ReadAllLines(Path.Combine(Source, "merges.txt")).Skip(1)
            .Where(l => l.Length > 0).Select(l => (JsonNode)JsonValue.Create(l)!).ToArray());
        var added = new JsonArray();
        var ids = new Dictionary<string, int>();
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(Source, "tokenizer_config.json")))!;
        foreach (var (id, t) in config["added_tokens_decoder"]!.AsObject())
        {
            ids[t!["content"]!.GetValue<string>()] = int.Parse(id);
            added.Add(new JsonObject
            {
                ["id"] = int.Parse(id), ["content"] = t["content"]!.GetValue<string>(), ["single_word"] = false,
                ["lstrip"] = t["lstrip"]!.GetValue<bool>(), ["rstrip"] = false, ["normalized"] = false, ["special"] = true,
            });
        }
        var json = new JsonObject
        {
            ["version"] = "1.0", ["truncation"] = null, ["padding"] = null, ["added_tokens"] = added,
            ["normalizer"] = normalizer,
            ["pre_tokenizer"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = true },
            ["post_processor"] = new JsonObject
            {
                ["type"] = "TemplateProcessing",
                ["single"] = new JsonArray(Special("[CLS]", 0), Sequence("A", 0), Special("[SEP]", 0)),
                ["pair"] = new JsonArray(Special("[CLS]", 0), Sequence("A", 0), Special("[SEP]", 0), Sequence("B", 0), Special("[SEP]", 0)),
                ["special_tokens"] = new JsonObject
                {
                    ["[CLS]"] = new JsonObject { ["id"] = "[CLS]", ["ids"] = new JsonArray(ids["[CLS]"]), ["tokens"] = new JsonArray("[CLS]") },
                    ["[SEP]"] = new JsonObject { ["id"] = "[SEP]", ["ids"] = new JsonArray(ids["[SEP]"]), ["tokens"] = new JsonArray("[SEP]") },
                },
            },
            ["decoder"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = true, ["trim_offsets"] = true, ["use_regex"] = true },
            ["model"] = new JsonObject
            {
                ["type"] = "BPE", ["dropout"] = null, ["unk_token"] = null, ["continuing_subword_prefix"] = "",
                ["end_of_word_suffix"] = "", ["fuse_unk"] = false, ["byte_fallback"] = false, ["vocab"] = vocab, ["merges"] = merges,
            },
        };
        File.WriteAllText(Path.Combine(dir, "tokenizer.json"), json.ToJsonString());
        config.AsObject().Remove("added_tokens_decoder");
        config["tokenizer_class"] = "PreTrainedTokenizerFast";
        config["model_input_names"] = new JsonArray("input_ids", "attention_mask");
        File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), config.ToJsonString());
        File.Copy(Path.Combine(Source, "special_tokens_map.json"), Path.Combine(dir, "special_tokens_map.json"));
        return dir;
    }

    static int[] Ints(JsonElement e) => e.EnumerateArray().Select(x => x.GetInt32()).ToArray();

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void TokenizerJsonGivesTheSlowTokenizersIds(bool nfc)
    {
        var dir = WriteTokenizerJson(nfc ? new JsonObject { ["type"] = "NFC" } : null);
        var fast = TokenizerLoader.Load(dir);
        var slow = TokenizerLoader.Load(Source);
        Assert.IsType<PipelineTokenizer>(fast);
        Assert.False(((PipelineTokenizer)fast).IsSlow);
        Assert.True(((PipelineTokenizer)slow).IsSlow);
        Assert.Equal(slow.VocabSize, fast.VocabSize);
        Assert.Equal((slow.ClsId, slow.SepId, slow.PadId, slow.MaskId, slow.UnkId), (fast.ClsId, fast.SepId, fast.PadId, fast.MaskId, fast.UnkId));
        Assert.False(fast.ReturnsTokenTypeIds);

        var root = JsonDocument.Parse(File.ReadAllText(Path.Combine(SharedFixtures.HfReference, "tokenizer-cases", "modernbert-bpe.json"))).RootElement;
        var failures = new List<string>();
        int compared = 0;
        foreach (var c in root.GetProperty("cases").EnumerateArray())
        {
            var text = c.GetProperty("text").GetString()!;
            // NFC changes decomposed input, which the slow tokenizer keeps as it is.
            if (nfc && text.Normalize(System.Text.NormalizationForm.FormC) != text) continue;
            compared++;
            var ids = Ints(c.GetProperty("input_ids"));
            if (!ids.SequenceEqual(fast.Encode(text).InputIds)) failures.Add($"input_ids of {JsonSerializer.Serialize(text)}");
            if (!Ints(c.GetProperty("input_ids_no_special")).SequenceEqual(fast.Encode(text, addSpecialTokens: false).InputIds))
                failures.Add($"input_ids_no_special of {JsonSerializer.Serialize(text)}");
            if (!c.GetProperty("tokens").EnumerateArray().Select(t => t.GetString()).SequenceEqual(fast.Tokenize(text)))
                failures.Add($"tokens of {JsonSerializer.Serialize(text)}");
            if (c.GetProperty("decoded").GetString() != fast.Decode(ids)) failures.Add($"decoded of {JsonSerializer.Serialize(text)}: {fast.Decode(ids)}");
            if (c.GetProperty("decoded_skip_special").GetString() != fast.Decode(ids, true))
                failures.Add($"decoded_skip_special of {JsonSerializer.Serialize(text)}: {fast.Decode(ids, true)}");
        }
        Assert.True(compared > 160, $"only {compared} cases compared");
        Assert.True(failures.Count == 0, $"{failures.Count} mismatches:\n" + string.Join("\n", failures.Take(30)));

        var cases = JsonDocument.Parse(File.ReadAllText(Path.Combine(SharedFixtures.HfReference, "cases", "modernbert.json"))).RootElement;
        foreach (var c in cases.GetProperty("cases").EnumerateArray())
        {
            var t = c.GetProperty("text");
            string[] texts = t.ValueKind == JsonValueKind.Array ? t.EnumerateArray().Select(x => x.GetString()!).ToArray() : [t.GetString()!];
            var call = c.GetProperty("tokenizer_call");
            var batch = fast.EncodeBatch(texts, null, true, 64, call.GetProperty("padding").ValueKind == JsonValueKind.String,
                call.GetProperty("padding_side").GetString() == "left" ? PaddingSide.Left : PaddingSide.Right);
            Assert.Equal(c.GetProperty("input_ids").EnumerateArray().Select(Ints).ToArray(), batch.InputIds);
            Assert.Equal(c.GetProperty("attention_mask").EnumerateArray().Select(Ints).ToArray(), batch.AttentionMask);
        }
    }
}
