using System.Text.Json;
using System.Text.Json.Serialization;

namespace Unmask.Modeling;

/// <summary>ELECTRA hyper-parameters, spelled as in a Hugging Face config.json.</summary>
public sealed record ElectraConfig : HfConfigLabels, IHfConfig
{
    [JsonPropertyName("vocab_size")] public required int VocabSize { get; init; }
    [JsonPropertyName("embedding_size")] public int EmbeddingSize { get; init; } = 128;
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
    [JsonPropertyName("model_type")] public string ModelType { get; init; } = "electra";
    [JsonPropertyName("architectures")] public IReadOnlyList<string>? Architectures { get; init; }
    [JsonPropertyName("tie_word_embeddings")] public bool TieWordEmbeddings { get; init; } = true;
    [JsonPropertyName("torch_dtype")] public string TorchDtype { get; init; } = "float32";
    [JsonPropertyName("transformers_version")] public string TransformersVersion { get; init; } = "4.31.0";
    [JsonExtensionData] public Dictionary<string, JsonElement>? ExtraFields { get; init; }

    [JsonIgnore] public int MaxSequenceLength => MaxPositionEmbeddings;

    public IHfConfig WithVocabulary(int vocabSize, int? padTokenId) => this with { VocabSize = vocabSize, PadTokenId = padTokenId };

    public static ElectraConfig Load(string path)
    {
        var config = HfConfigJson.Load<ElectraConfig>(path, "ELECTRA");
        config.Validate(path);
        return config;
    }

    public void Save(string path) => HfConfigJson.Save(this, path);

    internal void Validate(string source)
    {
        void Require(bool ok, string field, string problem) => HfConfigJson.Require(source, ok, field, problem);
        Require(ModelType == "electra", "model_type", $"is '{ModelType}', expected 'electra'.");
        ValidateLabels(source);
        Require(ClassifierDropout is null or (>= 0 and < 1), "classifier_dropout", $"must be in [0, 1) (got {ClassifierDropout}).");
        Require(EmbeddingSize > 0, "embedding_size", $"must be positive (got {EmbeddingSize}).");
        Require(PositionEmbeddingType == "absolute", "position_embedding_type",
            $"'{PositionEmbeddingType}' is not supported; only 'absolute' is.");
        EncoderConfig().Validate(source);
    }

    /// <summary>The BERT encoder ELECTRA runs on hidden_size (the rest of BERT's config is unused).</summary>
    internal BertConfig EncoderConfig() => new()
    {
        VocabSize = VocabSize,
        HiddenSize = HiddenSize,
        NumHiddenLayers = NumHiddenLayers,
        NumAttentionHeads = NumAttentionHeads,
        IntermediateSize = IntermediateSize,
        HiddenAct = HiddenAct,
        HiddenDropoutProb = HiddenDropoutProb,
        AttentionProbsDropoutProb = AttentionProbsDropoutProb,
        MaxPositionEmbeddings = MaxPositionEmbeddings,
        TypeVocabSize = TypeVocabSize,
        InitializerRange = InitializerRange,
        LayerNormEps = LayerNormEps,
        PadTokenId = PadTokenId,
    };
}
