using System.Text.Json;

namespace Unmask.Tokenization;

/// <summary>
/// The settings of a Hugging Face tokenizer folder from tokenizer_config.json and special_tokens_map.json
/// (the latter wins for special tokens, as in transformers). Null means "not given".
/// </summary>
internal sealed class HfTokenizerConfig
{
    public bool? LowerCase { get; private set; }
    public bool StripAccentsGiven { get; private set; }
    public bool? StripAccents { get; private set; }
    public bool? TokenizeChineseChars { get; private set; }
    public bool? CleanUp { get; private set; }
    public int? ModelMaxLength { get; private set; }
    public IReadOnlyList<string>? Additional { get; private set; }
    public bool? AddPrefixSpace { get; private set; }
    public string? PaddingSide { get; private set; }
    public string? TokenizerClass { get; private set; }
    public IReadOnlyList<string>? ModelInputNames { get; private set; }

    /// <summary>transformers >= 4.34 writes every added token with its id and flags here.</summary>
    public IReadOnlyList<AddedToken>? AddedTokensDecoder { get; private set; }

    /// <summary>The AddedToken flags given for a special token's text (as an object in either file).</summary>
    public IReadOnlyDictionary<string, AddedToken> TokenFlags => flags;

    readonly Dictionary<string, string> named = [];
    readonly Dictionary<string, AddedToken> flags = new(StringComparer.Ordinal);

    /// <summary>The special token of a role ("cls_token", "bos_token", ...), null when the files name none.</summary>
    public string? Role(string key) => named.TryGetValue(key, out var v) ? v : null;

    /// <summary>Whether transformers returns token_type_ids (model_input_names, or the tokenizer class's default).</summary>
    public bool ReturnsTokenTypeIds()
    {
        if (ModelInputNames != null) return ModelInputNames.Contains("token_type_ids");
        var cls = (TokenizerClass ?? "").Replace("Fast", "", StringComparison.Ordinal);
        return cls is not ("RobertaTokenizer" or "GPT2Tokenizer" or "DistilBertTokenizer" or "XLMRobertaTokenizer"
            or "CamembertTokenizer" or "BartTokenizer" or "LongformerTokenizer" or "MPNetTokenizer");
    }

    public static HfTokenizerConfig Read(string directory)
    {
        var config = new HfTokenizerConfig();
        var configPath = Path.Combine(directory, WordPieceTokenizer.ConfigFile);
        if (File.Exists(configPath))
        {
            using var doc = ParseJson(configPath);
            var root = RequireObject(doc, configPath);
            config.LowerCase = Bool(root, "do_lower_case", configPath);
            if (root.TryGetProperty("strip_accents", out _))
            {
                config.StripAccentsGiven = true;
                config.StripAccents = Bool(root, "strip_accents", configPath);
            }
            config.TokenizeChineseChars = Bool(root, "tokenize_chinese_chars", configPath);
            config.CleanUp = Bool(root, "clean_up_tokenization_spaces", configPath);
            if (Bool(root, "do_basic_tokenize", configPath) == false)
                throw new UnmaskException($"{configPath}: do_basic_tokenize false is not supported.");
            if (root.TryGetProperty("never_split", out var neverSplit) && neverSplit.ValueKind != JsonValueKind.Null
                && !(neverSplit.ValueKind == JsonValueKind.Array && neverSplit.GetArrayLength() == 0))
                throw new UnmaskException($"{configPath}: never_split is not supported.");
            if (root.TryGetProperty("model_max_length", out var max) && max.ValueKind != JsonValueKind.Null)
            {
                if (max.ValueKind != JsonValueKind.Number)
                    throw new UnmaskException($"{configPath}: field 'model_max_length' must be a number.");
                // transformers writes 1e30 for "no limit".
                config.ModelMaxLength = max.TryGetInt32(out var m) && m > 0 ? m : null;
            }
            config.ReadSpecialTokens(root, configPath);
            config.AddPrefixSpace = Bool(root, "add_prefix_space", configPath);
            config.PaddingSide = String(root, "padding_side", configPath);
            config.TokenizerClass = String(root, "tokenizer_class", configPath);
            if (root.TryGetProperty("model_input_names", out var names) && names.ValueKind == JsonValueKind.Array)
                config.ModelInputNames = names.EnumerateArray().Select(n => n.GetString() ?? "").ToArray();
            if (root.TryGetProperty("added_tokens_decoder", out var decoder) && decoder.ValueKind == JsonValueKind.Object)
                config.AddedTokensDecoder = ReadAddedTokensDecoder(decoder, configPath);
        }
        var mapPath = Path.Combine(directory, WordPieceTokenizer.SpecialTokensMapFile);
        if (File.Exists(mapPath))
        {
            using var doc = ParseJson(mapPath);
            config.ReadSpecialTokens(RequireObject(doc, mapPath), mapPath);
        }
        return config;
    }

    /// <summary>The special tokens given in the files, the others BERT's defaults.</summary>
    public BertSpecialTokens SpecialTokens()
    {
        var b = new BertSpecialTokens();
        string Get(string key, string otherwise) => named.TryGetValue(key, out var v) ? v : otherwise;
        return new BertSpecialTokens(Get("unk_token", b.Unk), Get("sep_token", b.Sep), Get("pad_token", b.Pad),
            Get("cls_token", b.Cls), Get("mask_token", b.Mask), Additional ?? b.Additional);
    }

    void ReadSpecialTokens(JsonElement root, string path)
    {
        foreach (var key in new[] { "unk_token", "sep_token", "pad_token", "cls_token", "mask_token", "bos_token", "eos_token" })
        {
            if (!root.TryGetProperty(key, out var value) || value.ValueKind == JsonValueKind.Null) continue;
            named[key] = TokenContent(value, key, path);
            if (value.ValueKind == JsonValueKind.Object) flags[named[key]] = ReadFlags(value, named[key], -1, path);
        }
        if (root.TryGetProperty("additional_special_tokens", out var extra) && extra.ValueKind != JsonValueKind.Null)
        {
            if (extra.ValueKind != JsonValueKind.Array)
                throw new UnmaskException($"{path}: field 'additional_special_tokens' must be a list.");
            Additional = extra.EnumerateArray().Select(e => TokenContent(e, "additional_special_tokens", path)).ToArray();
        }
    }

    static AddedToken ReadFlags(JsonElement value, string content, int id, string path) => new(content, id,
        Bool(value, "special", path) ?? true, Bool(value, "lstrip", path) ?? false, Bool(value, "rstrip", path) ?? false,
        Bool(value, "single_word", path) ?? false, Bool(value, "normalized", path) ?? false);

    static AddedToken[] ReadAddedTokensDecoder(JsonElement decoder, string path)
    {
        var result = new List<AddedToken>();
        foreach (var entry in decoder.EnumerateObject())
        {
            if (!int.TryParse(entry.Name, out var id) || id < 0)
                throw new UnmaskException($"{path}: added_tokens_decoder key '{entry.Name}' is not a token id.");
            var content = TokenContent(entry.Value, $"added_tokens_decoder.{entry.Name}", path);
            result.Add(entry.Value.ValueKind == JsonValueKind.Object
                ? ReadFlags(entry.Value, content, id, path) with { Special = Bool(entry.Value, "special", path) ?? false }
                : new AddedToken(content, id, false));
        }
        return result.ToArray();
    }

    static string? String(JsonElement root, string name, string path)
    {
        if (!root.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null) return null;
        if (value.ValueKind != JsonValueKind.String) throw new UnmaskException($"{path}: field '{name}' must be a string.");
        return value.GetString();
    }

    // A special token is stored as a string, or as a serialised AddedToken object with its text in "content".
    static string TokenContent(JsonElement value, string key, string path)
    {
        if (value.ValueKind == JsonValueKind.String) return value.GetString()!;
        if (value.ValueKind == JsonValueKind.Object && value.TryGetProperty("content", out var content)
            && content.ValueKind == JsonValueKind.String)
            return content.GetString()!;
        throw new UnmaskException($"{path}: field '{key}' must be a string or an object with a 'content' string.");
    }

    static bool? Bool(JsonElement root, string name, string path)
    {
        if (!root.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null) return null;
        return value.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw new UnmaskException($"{path}: field '{name}' must be true, false or null."),
        };
    }

    static JsonElement RequireObject(JsonDocument doc, string path) =>
        doc.RootElement.ValueKind == JsonValueKind.Object
            ? doc.RootElement
            : throw new UnmaskException($"{path}: expected a JSON object.");

    public static JsonDocument ParseJson(string path)
    {
        try
        {
            using var stream = File.OpenRead(path);
            return JsonDocument.Parse(stream);
        }
        catch (JsonException e)
        {
            throw new UnmaskException($"{path}: invalid JSON at line {e.LineNumber + 1}: {e.Message}", e);
        }
    }
}
