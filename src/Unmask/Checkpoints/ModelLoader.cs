using System.Text.Json;
using Unmask.Modeling;

namespace Unmask.Checkpoints;

/// <summary>
/// Picks the model family of a Hugging Face folder from config.json (<c>architectures</c>, else <c>model_type</c>),
/// builds it and loads its weights (model.safetensors, pytorch_model.bin, or their sharded forms).
/// </summary>
public static class ModelLoader
{
    /// <summary>The HF classes this library implements: the model_type each expects and the head it has.</summary>
    static readonly (string Architecture, string ModelType, HeadKind Head)[] Classes =
    [
        .. new[] { "bert", "roberta", "xlm-roberta" }.SelectMany(type => new[]
        {
            (BertConfig.ClassName(type, "ForMaskedLM"), type, HeadKind.MaskedLm),
            (BertConfig.ClassName(type, "ForSequenceClassification"), type, HeadKind.SequenceClassification),
            (BertConfig.ClassName(type, "ForTokenClassification"), type, HeadKind.TokenClassification),
        }),
        (DistilBertForMaskedLM.ArchitectureName, "distilbert", HeadKind.MaskedLm),
        (DistilBertForSequenceClassification.ArchitectureName, "distilbert", HeadKind.SequenceClassification),
        (DistilBertForTokenClassification.ArchitectureName, "distilbert", HeadKind.TokenClassification),
        (ElectraForMaskedLM.ArchitectureName, "electra", HeadKind.MaskedLm),
        (ElectraForPreTraining.ArchitectureName, "electra", HeadKind.ReplacedToken),
        (ElectraForSequenceClassification.ArchitectureName, "electra", HeadKind.SequenceClassification),
        (ElectraForTokenClassification.ArchitectureName, "electra", HeadKind.TokenClassification),
        (ModernBertForMaskedLM.ArchitectureName, "modernbert", HeadKind.MaskedLm),
        (ModernBertForSequenceClassification.ArchitectureName, "modernbert", HeadKind.SequenceClassification),
        (ModernBertForTokenClassification.ArchitectureName, "modernbert", HeadKind.TokenClassification),
        // The bare encoders come last: a config with only a model_type reads as the family's masked LM.
        .. new[] { "bert", "roberta", "xlm-roberta" }.Select(type => (BertConfig.ClassName(type, "Model"), type, HeadKind.None)),
        (EncoderModel.DistilBertClassName, "distilbert", HeadKind.None),
        (EncoderModel.ElectraClassName, "electra", HeadKind.None),
        (EncoderModel.ModernBertClassName, "modernbert", HeadKind.None),
    ];

    /// <summary>The HF classes this library implements, with the model_type each expects.</summary>
    public static IReadOnlyDictionary<string, string> SupportedArchitectures { get; } =
        Classes.ToDictionary(c => c.Architecture, c => c.ModelType);

    /// <summary>Reads a model folder in eval mode, as the class its config.json names.</summary>
    /// <param name="device">Where the model is built; null: <see cref="Parameters.Device"/>, the CPU unless a
    /// caller's <see cref="Parameters.On"/> scope says otherwise.</param>
    public static PretrainedModel Load(string dir, Device? device = null) => LoadWithReport(dir, device: device).Model;

    /// <summary>
    /// Reads a model folder in eval mode. With <paramref name="head"/>, the model is built with that head over the
    /// folder's encoder, as transformers' <c>BertForMaskedLM.from_pretrained</c> does on a checkpoint of another class
    /// of the family (a classifier's, BertForPreTraining's): the encoder loads completely, head weights the folder has
    /// under the same names load too, and the report lists the head parameters left newly initialised and the folder's
    /// tensors left unused.
    /// </summary>
    /// <param name="configure">Changes the folder's config before the model is built (a classifier's labels).</param>
    public static (PretrainedModel Model, LoadReport Report) LoadWithReport(string dir, HeadKind? head = null, Func<IHfConfig, IHfConfig>? configure = null,
        Device? device = null)
    {
        if (!Directory.Exists(dir)) throw new UnmaskException($"Model folder '{dir}' does not exist.");
        var configPath = Path.Combine(dir, ModelFolder.ConfigFileName);
        if (!File.Exists(configPath))
            throw new UnmaskException($"Model folder '{dir}' has no {ModelFolder.ConfigFileName}; is it a Hugging Face model folder?");
        var (folderClass, modelType) = head is null ? Identify(configPath) : IdentifyFamily(configPath);
        var architecture = head is null ? folderClass! : ClassFor(modelType, head.Value, configPath);
        var (weightsPath, source) = HfWeightFiles.Open(dir);
        using (source)
        {
            var weights = WithEncoderPrefix(WithCurrentLayerNormNames(source), EncoderPrefixOf(modelType));
            bool encoderOnly = architecture != folderClass;
            PretrainedModel model;
            // Loading the folder's own class, every parameter is copied from the file or tied to one that is (a missing
            // one is an error below), so random initialisation would be wasted; another head starts from HF's random one.
            using (device is null ? null : Parameters.On(device))
            using (encoderOnly ? null : Parameters.SkipInitialisation())
                model = Create(configPath, architecture, modelType, weights, configure);
            try
            {
                var report = model.LoadHfWeights(weights, encoderOnly);
                model.eval();
                return (model, report);
            }
            catch (UnmaskException ex)
            {
                model.Dispose();
                throw new UnmaskException($"{weightsPath}: {ex.Message}", ex);
            }
            catch
            {
                model.Dispose();
                throw;
            }
        }
    }

    /// <summary>
    /// Checkpoints converted from TensorFlow name LayerNorm parameters gamma and beta; transformers renames them to
    /// weight and bias on load, and so does this.
    /// </summary>
    internal static IHfTensorSource WithCurrentLayerNormNames(IHfTensorSource source)
    {
        static string Current(string name) =>
            name.EndsWith(".gamma", StringComparison.Ordinal) ? name[..^".gamma".Length] + ".weight"
            : name.EndsWith(".beta", StringComparison.Ordinal) ? name[..^".beta".Length] + ".bias"
            : name;
        if (!source.Names.Any(n => Current(n) != n)) return source;
        var sourceName = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var name in source.Names)
            if (!sourceName.TryAdd(Current(name), name))
                throw new UnmaskException($"Tensor '{name}' and '{Current(name)}' are both present.");
        return new RenamedTensorSource(source, sourceName);
    }

    static string EncoderPrefixOf(string modelType) => modelType switch
    {
        "bert" => "bert",
        "roberta" or "xlm-roberta" => "roberta",
        "distilbert" => "distilbert",
        "electra" => "electra",
        _ => "model",
    };

    /// <summary>
    /// A bare encoder's checkpoint (BertModel's, a sentence-transformers folder's) names its tensors without the
    /// encoder prefix; as transformers does, they load under it when no tensor carries the prefix.
    /// </summary>
    internal static IHfTensorSource WithEncoderPrefix(IHfTensorSource source, string prefix)
    {
        if (source.Names.Any(n => n.StartsWith(prefix + ".", StringComparison.Ordinal))) return source;
        return new RenamedTensorSource(source, source.Names.ToDictionary(n => $"{prefix}.{n}", n => n, StringComparer.Ordinal));
    }

    /// <summary>A randomly initialised model of the family and size that config.json describes, in training mode.</summary>
    public static PretrainedModel Create(string configPath)
    {
        var (architecture, modelType) = Identify(configPath);
        return Create(configPath, architecture, modelType, weights: null, configure: null);
    }

    /// <summary>The head of a class this library implements.</summary>
    public static HeadKind HeadOf(string architecture) => Classes.First(c => c.Architecture == architecture).Head;

    /// <param name="weights">The checkpoint about to be loaded: a BERT masked LM builds a pooler when it carries one whole.</param>
    static PretrainedModel Create(string configPath, string architecture, string modelType, IHfTensorSource? weights, Func<IHfConfig, IHfConfig>? configure)
    {
        var config = modelType is "bert" or "roberta" or "xlm-roberta"
            ? CheckedBertConfig(configPath, architecture, modelType)
            : ModelFamilies.LoadConfig(configPath);
        if (configure is not null) config = configure(config);
        var pooler = (modelType == "bert" ? "bert" : "roberta") + ".pooler.dense.";
        bool hasPooler = weights is not null && weights.Contains(pooler + "weight") && weights.Contains(pooler + "bias");
        return ModelFamilies.Create(config, HeadOf(architecture), addPoolingLayer: hasPooler);
    }

    /// <summary>The class of <paramref name="modelType"/>'s family with <paramref name="head"/>.</summary>
    static string ClassFor(string modelType, HeadKind head, string configPath) =>
        Classes.FirstOrDefault(c => c.ModelType == modelType && c.Head == head).Architecture
        ?? throw new UnmaskException($"{configPath}: a '{modelType}' model has no {head} head here.");

    /// <summary>The family of a config.json whose class may be one this library does not build (a classifier's):
    /// the supported class it names (null for another) and its model_type.</summary>
    static (string? Architecture, string ModelType) IdentifyFamily(string configPath)
    {
        try
        {
            return Identify(configPath);
        }
        catch (UnmaskException)
        {
            var modelType = ModelFamilies.ReadModelType(configPath);
            if (modelType is null || !SupportedArchitectures.Values.Contains(modelType)) throw;
            return (null, modelType);
        }
    }


    // A config without model_type reads as BERT's default; the architecture decides the family instead.
    static BertConfig CheckedBertConfig(string configPath, string architecture, string modelType)
    {
        var config = BertConfig.Load(configPath) with { ModelType = modelType };
        config = config with { Architectures = config.Architectures ?? [architecture] };
        config.Validate(configPath);
        return config;
    }

    /// <summary>The architecture config.json names (or the masked-LM class of its model_type), checked against
    /// <see cref="SupportedArchitectures"/>.</summary>
    public static (string Architecture, string ModelType) Identify(string configPath)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(File.ReadAllBytes(configPath),
                new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip });
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new UnmaskException($"Cannot read model config '{configPath}': {ex.Message}", ex);
        }
        catch (JsonException ex)
        {
            throw new UnmaskException($"{configPath}: not valid JSON: {ex.Message}", ex);
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new UnmaskException($"{configPath}: the config must be a JSON object.");
            var modelType = root.TryGetProperty("model_type", out var type) && type.ValueKind == JsonValueKind.String ? type.GetString()! : null;
            string? architecture = null;
            if (root.TryGetProperty("architectures", out var list) && list.ValueKind == JsonValueKind.Array && list.GetArrayLength() > 0)
            {
                var names = list.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.String ? e.GetString()! : "").ToList();
                architecture = names.FirstOrDefault(SupportedArchitectures.ContainsKey)
                    ?? throw Unsupported(configPath, $"field 'architectures' names {string.Join(", ", names)}");
            }
            else if (modelType is not null)
            {
                architecture = SupportedArchitectures.FirstOrDefault(p => p.Value == modelType).Key
                    ?? throw Unsupported(configPath, $"field 'model_type' is '{modelType}'");
            }
            if (architecture is null) throw Unsupported(configPath, "neither 'architectures' nor 'model_type' is given");

            var expectedType = SupportedArchitectures[architecture];
            if (modelType is not null && modelType != expectedType)
                throw new UnmaskException($"{configPath}: field 'model_type' is '{modelType}' but {architecture} needs '{expectedType}'.");
            return (architecture, expectedType);
        }
    }

    static UnmaskException Unsupported(string configPath, string what) =>
        new($"{configPath}: {what}, which is not a supported architecture; supported: {string.Join(", ", SupportedArchitectures.Keys)}.");
}
