using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Unmask.Tokenization;

/// <summary>Loads the tokenizer of a Hugging Face model folder: vocab.txt with its configs, or tokenizer.json.</summary>
public static class TokenizerLoader
{
    public static ITokenizer Load(string directory)
    {
        if (!Directory.Exists(directory)) throw new UnmaskException($"{directory}: tokenizer folder not found");
        var vocabPath = Path.Combine(directory, "vocab.txt");
        var jsonPath = Path.Combine(directory, "tokenizer.json");
        if (File.Exists(vocabPath)) return LoadVocabTxt(directory, vocabPath);
        if (File.Exists(jsonPath)) return LoadTokenizerJson(directory, jsonPath);
        throw new UnmaskException($"{directory}: no tokenizer files (looked for vocab.txt and tokenizer.json)");
    }

    static WordPieceTokenizer LoadVocabTxt(string directory, string vocabPath)
    {
        var vocab = File.ReadAllText(vocabPath, Encoding.UTF8).Split('\n');
        // vocab.txt ends with a newline; every line, even an empty one before it, is an entry.
        var entries = vocab[^1].Length == 0 ? vocab[..^1] : vocab;
        var config = ReadObject(Path.Combine(directory, "tokenizer_config.json"));
        var map = ReadObject(Path.Combine(directory, "special_tokens_map.json"));
        string Special(string key, string fallback) => TokenString(map?[key]) ?? TokenString(config?[key]) ?? fallback;
        var specials = new BertSpecialTokens(Special("unk_token", "[UNK]"), Special("sep_token", "[SEP]"), Special("pad_token", "[PAD]"),
            Special("cls_token", "[CLS]"), Special("mask_token", "[MASK]"));
        var options = new BertNormalizationOptions(
            Bool(config, "do_lower_case") ?? true, Bool(config, "strip_accents"), Bool(config, "tokenize_chinese_chars") ?? true);
        return new WordPieceTokenizer(entries.Select(e => e.TrimEnd('\r')).ToList(), options, specials, ModelMaxLength(config),
            Bool(config, "clean_up_tokenization_spaces") ?? true, vocabPath);
    }

    static WordPieceTokenizer LoadTokenizerJson(string directory, string path)
    {
        var root = ReadObject(path)!;
        var model = root["model"] as JsonObject ?? throw new UnmaskException($"{path}: no \"model\" object");
        var type = (string?)model["type"];
        if (type != "WordPiece")
            throw new UnmaskException($"{path}: tokenizer model type '{type}' is not supported yet (supported: WordPiece)");
        if (model["vocab"] is not JsonObject vocabObject) throw new UnmaskException($"{path}: model.vocab is missing");
        var vocab = new string[vocabObject.Count];
        foreach (var (token, id) in vocabObject)
        {
            int i = (int?)id ?? throw new UnmaskException($"{path}: model.vocab['{token}'] is not an id");
            if (i < 0 || i >= vocab.Length) throw new UnmaskException($"{path}: model.vocab['{token}'] = {i} is outside 0..{vocab.Length - 1}");
            vocab[i] = token;
        }
        var normalizer = root["normalizer"] as JsonObject;
        if (normalizer is not null && (string?)normalizer["type"] != "BertNormalizer")
            throw new UnmaskException($"{path}: normalizer '{(string?)normalizer["type"]}' is not supported yet (supported: BertNormalizer)");
        var config = ReadObject(Path.Combine(directory, "tokenizer_config.json"));
        var map = ReadObject(Path.Combine(directory, "special_tokens_map.json"));
        var added = (root["added_tokens"] as JsonArray)?.OfType<JsonObject>().Select(a => (string?)a["content"]).OfType<string>().ToHashSet() ?? [];
        string Special(string key, string conventional) =>
            TokenString(map?[key]) ?? TokenString(config?[key]) ?? (added.Contains(conventional) || Array.IndexOf(vocab, conventional) >= 0
                ? conventional
                : throw new UnmaskException($"{path}: cannot tell the {key} (no '{conventional}' and no tokenizer_config.json)"));
        var specials = new BertSpecialTokens((string?)model["unk_token"] ?? Special("unk_token", "[UNK]"), Special("sep_token", "[SEP]"),
            Special("pad_token", "[PAD]"), Special("cls_token", "[CLS]"), Special("mask_token", "[MASK]"));
        var options = new BertNormalizationOptions(
            Bool(normalizer, "lowercase") ?? true, Bool(normalizer, "strip_accents"), Bool(normalizer, "handle_chinese_chars") ?? true);
        bool cleanup = Bool(root["decoder"] as JsonObject, "cleanup") ?? Bool(config, "clean_up_tokenization_spaces") ?? true;
        return new WordPieceTokenizer(vocab, options, specials, ModelMaxLength(config), cleanup, path);
    }

    static int ModelMaxLength(JsonObject? config)
    {
        // transformers writes a huge sentinel (int(1e30)) when the length is unknown.
        if (config?["model_max_length"] is JsonValue v && v.TryGetValue<double>(out var d) && d > 0 && d < int.MaxValue) return (int)d;
        return 512;
    }

    static string? TokenString(JsonNode? node) => node switch
    {
        JsonValue v when v.TryGetValue<string>(out var s) => s,
        JsonObject o => (string?)o["content"],
        _ => null,
    };

    static bool? Bool(JsonObject? obj, string key) =>
        obj?[key] is JsonValue v && v.TryGetValue<bool>(out var b) ? b : null;

    static JsonObject? ReadObject(string path)
    {
        if (!File.Exists(path)) return null;
        try
        {
            return JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new UnmaskException($"{path}: expected a JSON object");
        }
        catch (JsonException e)
        {
            throw new UnmaskException($"{path}: invalid JSON ({e.Message})", e);
        }
    }
}
