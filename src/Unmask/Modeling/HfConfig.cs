using System.Text.Json;
using System.Text.Json.Nodes;

namespace Unmask.Modeling;

/// <summary>The fields every Hugging Face config.json shares, whatever the model family.</summary>
public interface IHfConfig
{
    string ModelType { get; }
    IReadOnlyList<string>? Architectures { get; }
    int VocabSize { get; }
    int? PadTokenId { get; }

    /// <summary>Width of the residual stream (DistilBERT's dim).</summary>
    int HiddenSize { get; }

    /// <summary>Width of the feed-forward block (DistilBERT's hidden_dim).</summary>
    int IntermediateSize { get; }

    /// <summary>The longest input the position embeddings take (less RoBERTa's padding offset).</summary>
    int MaxSequenceLength { get; }

    /// <summary>The same config for another tokenizer (one trained for pretraining): its size and padding id.</summary>
    IHfConfig WithVocabulary(int vocabSize, int? padTokenId);

    /// <summary>Writes config.json with keys sorted, as HF's save_pretrained does.</summary>
    void Save(string path);
}

/// <summary>Reads and writes a family's config record as Hugging Face spells config.json.</summary>
internal static class HfConfigJson
{
    static readonly JsonSerializerOptions Options = new()
    {
        RespectNullableAnnotations = true,
        AllowTrailingCommas = true,
        ReadCommentHandling = JsonCommentHandling.Skip,
    };

    public static T Load<T>(string path, string family) where T : class
    {
        string json;
        try
        {
            json = File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new UnmaskException($"Cannot read model config '{path}': {ex.Message}", ex);
        }
        try
        {
            return JsonSerializer.Deserialize<T>(json, Options)
                ?? throw new UnmaskException($"{path}: the config is JSON null, expected an object.");
        }
        catch (JsonException ex)
        {
            throw new UnmaskException($"{path}: not a valid {family} config: {ex.Message}", ex);
        }
    }

    public static void Save<T>(T config, string path) => Write(JsonSerializer.SerializeToNode(config, Options)!.AsObject(), path);

    /// <summary>Writes a serialized config as transformers' save_pretrained does: keys sorted, indented.</summary>
    public static void Write(JsonObject node, string path)
    {
        // transformers writes only fields that differ from PretrainedConfig's defaults; tie_word_embeddings (true) is
        // the one such default the families' records carry.
        if (node["tie_word_embeddings"] is JsonValue tie && tie.TryGetValue<bool>(out var tied) && tied) node.Remove("tie_word_embeddings");
        var sorted = new JsonObject();
        foreach (var (key, value) in node.OrderBy(p => p.Key, StringComparer.Ordinal)) sorted[key] = value?.DeepClone();
        AtomicFile.WriteAllText(path, sorted.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
    }

    /// <summary>Throws naming the source and field when <paramref name="ok"/> is false.</summary>
    public static void Require(string source, bool ok, string field, string problem)
    {
        if (!ok) throw new UnmaskException($"{source}: field '{field}' {problem}");
    }
}
