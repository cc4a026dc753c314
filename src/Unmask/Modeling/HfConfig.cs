using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

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

    /// <summary>The classifier heads' label names in id order (id2label; LABEL_i for num_labels; two by default).</summary>
    IReadOnlyList<string> Labels { get; }

    /// <summary>problem_type as config.json spells it, or null (then the labels' dtype decides, as in transformers).</summary>
    string? ProblemType { get; }

    /// <summary>The same config with <paramref name="labels"/> as id2label/label2id and the problem type.</summary>
    IHfConfig WithLabels(IReadOnlyList<string> labels, string? problemType);
}

/// <summary>
/// The classifier fields transformers' PretrainedConfig gives every family. id2label keys are strings in JSON and ids
/// in Python; label2id mirrors them. Left out of config.json when unset, as transformers leaves out its defaults.
/// </summary>
public abstract record HfConfigLabels
{
    /// <summary>The problem_type values transformers' *ForSequenceClassification accept.</summary>
    public static IReadOnlyList<string> ProblemTypes { get; } = ["regression", "single_label_classification", "multi_label_classification"];

    [JsonPropertyName("id2label"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyDictionary<string, string>? Id2Label { get; init; }

    [JsonPropertyName("label2id"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyDictionary<string, int>? Label2Id { get; init; }

    [JsonPropertyName("problem_type"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? ProblemType { get; init; }

    /// <summary>num_labels as some configs carry it instead of id2label.</summary>
    [JsonPropertyName("num_labels"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public int? NumLabels { get; init; }

    [JsonIgnore]
    public IReadOnlyList<string> Labels
    {
        get
        {
            if (Id2Label is null) return [.. Enumerable.Range(0, NumLabels ?? 2).Select(i => $"LABEL_{i}")];
            var names = new string[Id2Label.Count];
            foreach (var (key, name) in Id2Label)
                if (int.TryParse(key, out var id) && id >= 0 && id < names.Length) names[id] = name;
            return names;
        }
    }

    public IHfConfig WithLabels(IReadOnlyList<string> labels, string? problemType) => (IHfConfig)(this with
    {
        Id2Label = labels.Select((name, id) => (name, id)).ToDictionary(p => p.id.ToString(System.Globalization.CultureInfo.InvariantCulture), p => p.name),
        Label2Id = labels.Select((name, id) => (name, id)).ToDictionary(p => p.name, p => p.id),
        ProblemType = problemType,
        NumLabels = null,
    });

    /// <summary>Rejects label fields transformers would reject or misread.</summary>
    private protected void ValidateLabels(string source)
    {
        if (Id2Label is not null)
        {
            var ids = Id2Label.Keys.Select(k => int.TryParse(k, out var id) ? id : -1).Order().ToList();
            HfConfigJson.Require(source, ids.SequenceEqual(Enumerable.Range(0, ids.Count)), "id2label",
                $"must map the ids 0..{ids.Count - 1} to names, each once (keys: {string.Join(", ", Id2Label.Keys)}).");
            HfConfigJson.Require(source, Id2Label.Count > 0, "id2label", "must name at least one label.");
            HfConfigJson.Require(source, Id2Label.Values.Distinct().Count() == Id2Label.Count, "id2label", "names a label twice.");
        }
        HfConfigJson.Require(source, NumLabels is null or > 0, "num_labels", $"must be positive (got {NumLabels}).");
        HfConfigJson.Require(source, ProblemType is null || ProblemTypes.Contains(ProblemType), "problem_type",
            $"'{ProblemType}' is not one of {string.Join(", ", ProblemTypes)}.");
    }
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
