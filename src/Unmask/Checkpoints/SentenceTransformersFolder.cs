using System.Text.Json;
using System.Text.Json.Nodes;
using Unmask.Inference;

namespace Unmask.Checkpoints;

/// <summary>
/// What a sentence-transformers folder says about turning token vectors into a sentence vector: the pooling of
/// <c>1_Pooling/config.json</c>, the <c>max_seq_length</c> of <c>sentence_bert_config.json</c>, and whether
/// <c>modules.json</c> ends in a Normalize module. The transformer itself is the Hugging Face folder at the root.
/// </summary>
public sealed record SentenceTransformersConfig(Pooling Pooling, bool Normalize, int? MaxSeqLength, int? WordEmbeddingDimension);

/// <summary>Reads and writes the files sentence-transformers (v3–v5) keeps beside a transformer at a folder's root.</summary>
public static class SentenceTransformersFolder
{
    public const string ModulesFileName = "modules.json";
    public const string PoolingFolder = "1_Pooling";
    public const string NormalizeFolder = "2_Normalize";
    public const string SentenceBertConfigFileName = "sentence_bert_config.json";
    public const string ConfigFileName = "config_sentence_transformers.json";

    const string TransformerType = "sentence_transformers.models.Transformer";
    const string PoolingType = "sentence_transformers.models.Pooling";
    const string NormalizeType = "sentence_transformers.models.Normalize";

    static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    /// <summary>The folder's sentence-transformers configuration, or null when it has no modules.json.</summary>
    public static SentenceTransformersConfig? Read(string directory)
    {
        var modulesPath = Path.Combine(directory, ModulesFileName);
        if (!File.Exists(modulesPath)) return null;
        var modules = ParseFile(modulesPath) as JsonArray
            ?? throw new UnmaskException($"{modulesPath}: expected a JSON array of modules.");
        string? poolingPath = null;
        bool normalize = false;
        bool transformerAtRoot = false;
        foreach (var (module, index) in modules.Select((m, i) => (m, i)))
        {
            var type = (string?)module?["type"] ?? throw new UnmaskException($"{modulesPath}: module {index} has no \"type\".");
            var path = (string?)module?["path"] ?? "";
            switch (type)
            {
                case TransformerType:
                    if (path.Length > 0)
                        throw new UnmaskException($"{modulesPath}: the Transformer module lies in '{path}'; only a transformer at the folder's root is read.");
                    transformerAtRoot = true;
                    break;
                case PoolingType:
                    poolingPath = Path.Combine(directory, path);
                    break;
                case NormalizeType:
                    normalize = true;
                    break;
                default:
                    throw new UnmaskException($"{modulesPath}: module {index} is {type}, which is not supported (Transformer, Pooling and Normalize are).");
            }
        }
        if (!transformerAtRoot) throw new UnmaskException($"{modulesPath}: no sentence_transformers.models.Transformer module.");
        if (poolingPath is null) throw new UnmaskException($"{modulesPath}: no sentence_transformers.models.Pooling module.");
        var (pooling, dimension) = ReadPooling(Path.Combine(poolingPath, "config.json"));

        int? maxSeqLength = null;
        var sbertPath = Path.Combine(directory, SentenceBertConfigFileName);
        if (File.Exists(sbertPath) && ParseFile(sbertPath)?["max_seq_length"] is JsonValue max)
            maxSeqLength = max.TryGetValue<int>(out var m) && m > 0 ? m
                : throw new UnmaskException($"{sbertPath}: max_seq_length must be a positive integer.");
        return new SentenceTransformersConfig(pooling, normalize, maxSeqLength, dimension);
    }

    static (Pooling, int?) ReadPooling(string path)
    {
        if (!File.Exists(path)) throw new UnmaskException($"{path}: missing (the Pooling module's config).");
        var config = ParseFile(path) as JsonObject ?? throw new UnmaskException($"{path}: expected a JSON object.");
        var modes = new (string Field, Pooling? Pooling)[]
        {
            ("pooling_mode_cls_token", Pooling.Cls),
            ("pooling_mode_mean_tokens", Pooling.Mean),
            ("pooling_mode_max_tokens", Pooling.Max),
            ("pooling_mode_mean_sqrt_len_tokens", null),
            ("pooling_mode_weightedmean_tokens", null),
            ("pooling_mode_lasttoken", null),
        };
        var on = modes.Where(m => config[m.Field] is JsonValue v && v.TryGetValue<bool>(out var b) && b).ToList();
        if (on.Count != 1)
            throw new UnmaskException($"{path}: {on.Count} pooling modes are on ({string.Join(", ", on.Select(m => m.Field))}); exactly one of cls, mean or max is supported.");
        var pooling = on[0].Pooling ?? throw new UnmaskException($"{path}: {on[0].Field} is not supported (cls, mean and max are).");
        int? dimension = config["word_embedding_dimension"] is JsonValue d && d.TryGetValue<int>(out var dim) ? dim : null;
        return (pooling, dimension);
    }

    static JsonNode? ParseFile(string path)
    {
        try
        {
            return JsonNode.Parse(File.ReadAllText(path));
        }
        catch (JsonException e)
        {
            throw new UnmaskException($"{path}: not valid JSON ({e.Message})", e);
        }
    }

    /// <summary>
    /// Writes the sentence-transformers files into <paramref name="directory"/>, which already holds the transformer
    /// (config.json, weights, tokenizer): the same files and fields sentence-transformers 3.x writes, so that
    /// <c>SentenceTransformer(directory)</c> loads it. Call it on a temporary folder that is renamed when complete.
    /// </summary>
    public static void Write(string directory, SentenceTransformersConfig config, int hiddenSize)
    {
        if (config.Pooling == Pooling.Pooler)
            throw new UnmaskException("sentence-transformers has no 'pooler' pooling mode; use cls, mean or max.");
        var modules = new JsonArray
        {
            new JsonObject { ["idx"] = 0, ["name"] = "0", ["path"] = "", ["type"] = TransformerType },
            new JsonObject { ["idx"] = 1, ["name"] = "1", ["path"] = PoolingFolder, ["type"] = PoolingType },
        };
        if (config.Normalize)
            modules.Add(new JsonObject { ["idx"] = 2, ["name"] = "2", ["path"] = NormalizeFolder, ["type"] = NormalizeType });
        WriteJson(Path.Combine(directory, ModulesFileName), modules);

        Directory.CreateDirectory(Path.Combine(directory, PoolingFolder));
        WriteJson(Path.Combine(directory, PoolingFolder, "config.json"), new JsonObject
        {
            ["word_embedding_dimension"] = hiddenSize,
            ["pooling_mode_cls_token"] = config.Pooling == Pooling.Cls,
            ["pooling_mode_mean_tokens"] = config.Pooling == Pooling.Mean,
            ["pooling_mode_max_tokens"] = config.Pooling == Pooling.Max,
            ["pooling_mode_mean_sqrt_len_tokens"] = false,
            ["pooling_mode_weightedmean_tokens"] = false,
            ["pooling_mode_lasttoken"] = false,
            ["include_prompt"] = true,
        });
        if (config.Normalize) Directory.CreateDirectory(Path.Combine(directory, NormalizeFolder));

        WriteJson(Path.Combine(directory, SentenceBertConfigFileName), new JsonObject
        {
            ["max_seq_length"] = config.MaxSeqLength ?? 512,
            ["do_lower_case"] = false, // the tokenizer lower-cases where its config says so
        });
        WriteJson(Path.Combine(directory, ConfigFileName), new JsonObject
        {
            ["__version__"] = new JsonObject { ["sentence_transformers"] = "3.0.1", ["transformers"] = "4.41.2", ["pytorch"] = "2.3.0" },
            ["prompts"] = new JsonObject(),
            ["default_prompt_name"] = null,
            ["similarity_fn_name"] = "cosine",
        });
    }

    static void WriteJson(string path, JsonNode node) => File.WriteAllText(path, node.ToJsonString(Indented));
}
