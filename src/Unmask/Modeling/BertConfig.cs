using System.Text.Json;
using System.Text.Json.Serialization;

namespace Unmask.Modeling;

/// <summary>BERT hyper-parameters, spelled as in a Hugging Face config.json.</summary>
public sealed record BertConfig : HfConfigLabels, IHfConfig
{
    [JsonPropertyName("vocab_size")] public required int VocabSize { get; init; }
    [JsonPropertyName("hidden_size")] public required int HiddenSize { get; init; }
    [JsonPropertyName("num_hidden_layers")] public required int NumHiddenLayers { get; init; }
    [JsonPropertyName("num_attention_heads")] public required int NumAttentionHeads { get; init; }
    [JsonPropertyName("intermediate_size")] public required int IntermediateSize { get; init; }
    [JsonPropertyName("hidden_act")] public string HiddenAct { get; init; } = "gelu";
    [JsonPropertyName("hidden_dropout_prob")] public double HiddenDropoutProb { get; init; } = 0.1;
    [JsonPropertyName("attention_probs_dropout_prob")] public double AttentionProbsDropoutProb { get; init; } = 0.1;
    [JsonPropertyName("max_position_embeddings")] public int MaxPositionEmbeddings { get; init; } = 512;
    [JsonPropertyName("type_vocab_size")] public int TypeVocabSize { get; init; } = 2;
    [JsonPropertyName("initializer_range")] public double InitializerRange { get; init; } = 0.02;
    [JsonPropertyName("layer_norm_eps")] public double LayerNormEps { get; init; } = 1e-12;
    [JsonPropertyName("pad_token_id")] public int? PadTokenId { get; init; } = 0;
    [JsonPropertyName("classifier_dropout")] public double? ClassifierDropout { get; init; }
    [JsonPropertyName("position_embedding_type")] public string PositionEmbeddingType { get; init; } = "absolute";
    [JsonPropertyName("model_type")] public string ModelType { get; init; } = "bert";
    [JsonPropertyName("architectures")] public IReadOnlyList<string>? Architectures { get; init; } = ["BertForMaskedLM"];
    [JsonPropertyName("tie_word_embeddings")] public bool TieWordEmbeddings { get; init; } = true;
    [JsonPropertyName("torch_dtype")] public string TorchDtype { get; init; } = "float32";
    [JsonPropertyName("transformers_version")] public string TransformersVersion { get; init; } = "4.31.0";

    /// <summary>Fields this record does not model (use_cache, bos_token_id, ...), kept so that saving preserves them.</summary>
    [JsonExtensionData] public Dictionary<string, JsonElement>? ExtraFields { get; init; }

    /// <summary>RoBERTa and XLM-RoBERTa: positions start after the padding id, HF names under roberta. and lm_head.</summary>
    [JsonIgnore] public bool IsRoberta => ModelType is "roberta" or "xlm-roberta";

    /// <summary>The longest input the position embeddings can take (RoBERTa spends pad_token_id + 1 rows on its offset).</summary>
    [JsonIgnore] public int MaxSequenceLength => IsRoberta ? MaxPositionEmbeddings - PadTokenId.GetValueOrDefault() - 1 : MaxPositionEmbeddings;

    public IHfConfig WithVocabulary(int vocabSize, int? padTokenId) => this with { VocabSize = vocabSize, PadTokenId = padTokenId };

    /// <summary>The HF class name: the first entry of <c>architectures</c>, else the masked-LM class of the model type.</summary>
    [JsonIgnore] public string Architecture => Architectures is [var first, ..] ? first : DefaultArchitecture(ModelType);

    internal static string DefaultArchitecture(string modelType) => ClassName(modelType, "ForMaskedLM");

    /// <summary>The HF class of <paramref name="modelType"/> with <paramref name="head"/>: Bert/Roberta/XLMRoberta + head.</summary>
    internal static string ClassName(string modelType, string head) => modelType switch
    {
        "roberta" => "Roberta" + head,
        "xlm-roberta" => "XLMRoberta" + head,
        _ => "Bert" + head,
    };

    /// <summary>Activation names accepted in <c>hidden_act</c>, as HF's ACT2FN spells them.</summary>
    public static IReadOnlyList<string> SupportedActivations { get; } = ["gelu", "gelu_new", "gelu_pytorch_tanh", "relu"];

    // Google's BERT miniatures (Turc et al. 2019): layers, hidden size, heads; intermediate is always 4 * hidden.
    static readonly Dictionary<string, (int Layers, int Hidden, int Heads)> Presets = new(StringComparer.OrdinalIgnoreCase)
    {
        ["tiny"] = (2, 128, 2),
        ["mini"] = (4, 256, 4),
        ["small"] = (4, 512, 8),
        ["medium"] = (8, 512, 8),
        ["base"] = (12, 768, 12),
    };

    public static IReadOnlyList<string> PresetNames { get; } = [.. Presets.Keys];

    public static BertConfig Preset(string name, int vocabSize)
    {
        if (!Presets.TryGetValue(name, out var size))
            throw new UnmaskException($"Unknown BERT preset '{name}'; known presets: {string.Join(", ", PresetNames)}.");
        var config = new BertConfig
        {
            VocabSize = vocabSize,
            HiddenSize = size.Hidden,
            NumHiddenLayers = size.Layers,
            NumAttentionHeads = size.Heads,
            IntermediateSize = 4 * size.Hidden,
        };
        config.Validate($"preset '{name}'");
        return config;
    }

    public static BertConfig Load(string path)
    {
        var config = HfConfigJson.Load<BertConfig>(path, "BERT");
        config.Validate(path);
        return config;
    }

    /// <summary>Writes config.json with keys sorted, as HF's save_pretrained does.</summary>
    public void Save(string path) => HfConfigJson.Save(this, path);

    /// <summary>Rejects configurations this implementation cannot run; <paramref name="source"/> names where it came from.</summary>
    internal void Validate(string source)
    {
        void Require(bool ok, string field, string problem) => HfConfigJson.Require(source, ok, field, problem);
        ValidateLabels(source);
        Require(ClassifierDropout is null or (>= 0 and < 1), "classifier_dropout", $"must be in [0, 1) (got {ClassifierDropout}).");

        Require(ModelType is "bert" or "roberta" or "xlm-roberta", "model_type",
            $"is '{ModelType}'; only 'bert', 'roberta' and 'xlm-roberta' are supported here.");
        Require(!IsRoberta || PadTokenId is not null, "pad_token_id", "is required by RoBERTa's position ids.");
        Require(MaxSequenceLength > 0, "max_position_embeddings",
            $"({MaxPositionEmbeddings}) leaves no position after RoBERTa's padding offset (pad_token_id {PadTokenId}).");
        Require(VocabSize > 0, "vocab_size", $"must be positive (got {VocabSize}).");
        Require(HiddenSize > 0, "hidden_size", $"must be positive (got {HiddenSize}).");
        Require(NumHiddenLayers >= 0, "num_hidden_layers", $"must not be negative (got {NumHiddenLayers}).");
        Require(NumAttentionHeads > 0, "num_attention_heads", $"must be positive (got {NumAttentionHeads}).");
        Require(HiddenSize % NumAttentionHeads == 0, "num_attention_heads",
            $"({NumAttentionHeads}) must divide hidden_size ({HiddenSize}).");
        Require(IntermediateSize > 0, "intermediate_size", $"must be positive (got {IntermediateSize}).");
        Require(MaxPositionEmbeddings > 0, "max_position_embeddings", $"must be positive (got {MaxPositionEmbeddings}).");
        Require(TypeVocabSize > 0, "type_vocab_size", $"must be positive (got {TypeVocabSize}).");
        Require(LayerNormEps > 0, "layer_norm_eps", $"must be positive (got {LayerNormEps}).");
        Require(InitializerRange >= 0, "initializer_range", $"must not be negative (got {InitializerRange}).");
        Require(HiddenDropoutProb is >= 0 and < 1, "hidden_dropout_prob", $"must be in [0, 1) (got {HiddenDropoutProb}).");
        Require(AttentionProbsDropoutProb is >= 0 and < 1, "attention_probs_dropout_prob",
            $"must be in [0, 1) (got {AttentionProbsDropoutProb}).");
        Require(PadTokenId is null || (PadTokenId >= 0 && PadTokenId < VocabSize), "pad_token_id",
            $"({PadTokenId}) must be a token id below vocab_size ({VocabSize}).");
        Require(SupportedActivations.Contains(HiddenAct), "hidden_act",
            $"'{HiddenAct}' is not supported; supported: {string.Join(", ", SupportedActivations)}.");
        Require(PositionEmbeddingType == "absolute", "position_embedding_type",
            $"'{PositionEmbeddingType}' is not supported; only 'absolute' is.");
        Require(TorchDtype is "float32" or "float16" or "bfloat16", "torch_dtype",
            $"'{TorchDtype}' is not a floating-point dtype this implementation knows.");
    }
}
