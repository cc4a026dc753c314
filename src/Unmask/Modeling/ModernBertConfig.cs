using System.Text.Json;
using System.Text.Json.Serialization;

using TorchSharp.Modules;

namespace Unmask.Modeling;

/// <summary>ModernBERT hyper-parameters, spelled as in a Hugging Face config.json.</summary>
public sealed record ModernBertConfig : HfConfigLabels, IHfConfig
{
    [JsonPropertyName("vocab_size")] public required int VocabSize { get; init; }
    [JsonPropertyName("hidden_size")] public required int HiddenSize { get; init; }
    [JsonPropertyName("intermediate_size")] public required int IntermediateSize { get; init; }
    [JsonPropertyName("num_hidden_layers")] public required int NumHiddenLayers { get; init; }
    [JsonPropertyName("num_attention_heads")] public required int NumAttentionHeads { get; init; }
    [JsonPropertyName("hidden_activation")] public string HiddenActivation { get; init; } = "gelu";
    [JsonPropertyName("max_position_embeddings")] public int MaxPositionEmbeddings { get; init; } = 8192;
    [JsonPropertyName("initializer_range")] public double InitializerRange { get; init; } = 0.02;
    [JsonPropertyName("norm_eps")] public double NormEps { get; init; } = 1e-5;
    [JsonPropertyName("norm_bias")] public bool NormBias { get; init; }
    [JsonPropertyName("pad_token_id")] public int? PadTokenId { get; init; } = 50283;
    [JsonPropertyName("global_rope_theta")] public double GlobalRopeTheta { get; init; } = 160000.0;
    [JsonPropertyName("local_rope_theta")] public double? LocalRopeTheta { get; init; } = 10000.0;
    [JsonPropertyName("global_attn_every_n_layers")] public int GlobalAttnEveryNLayers { get; init; } = 3;
    [JsonPropertyName("local_attention")] public int LocalAttention { get; init; } = 128;
    [JsonPropertyName("attention_bias")] public bool AttentionBias { get; init; }
    [JsonPropertyName("attention_dropout")] public double AttentionDropout { get; init; }
    [JsonPropertyName("embedding_dropout")] public double EmbeddingDropout { get; init; }
    [JsonPropertyName("mlp_bias")] public bool MlpBias { get; init; }
    [JsonPropertyName("mlp_dropout")] public double MlpDropout { get; init; }
    [JsonPropertyName("decoder_bias")] public bool DecoderBias { get; init; } = true;
    [JsonPropertyName("classifier_activation")] public string ClassifierActivation { get; init; } = "gelu";
    [JsonPropertyName("classifier_pooling")] public string ClassifierPooling { get; init; } = "cls";
    [JsonPropertyName("classifier_dropout")] public double ClassifierDropout { get; init; }
    [JsonPropertyName("classifier_bias")] public bool ClassifierBias { get; init; }
    [JsonPropertyName("model_type")] public string ModelType { get; init; } = "modernbert";
    [JsonPropertyName("architectures")] public IReadOnlyList<string>? Architectures { get; init; } = [ModernBertForMaskedLM.ArchitectureName];
    [JsonPropertyName("tie_word_embeddings")] public bool TieWordEmbeddings { get; init; } = true;
    [JsonPropertyName("torch_dtype")] public string TorchDtype { get; init; } = "float32";
    [JsonPropertyName("transformers_version")] public string TransformersVersion { get; init; } = "4.48.0";
    [JsonExtensionData] public Dictionary<string, JsonElement>? ExtraFields { get; init; }

    [JsonIgnore] public int MaxSequenceLength => MaxPositionEmbeddings;

    public IHfConfig WithVocabulary(int vocabSize, int? padTokenId) => this with { VocabSize = vocabSize, PadTokenId = padTokenId };

    [JsonIgnore] internal int HeadDim => HiddenSize / NumAttentionHeads;

    public static ModernBertConfig Load(string path)
    {
        var config = HfConfigJson.Load<ModernBertConfig>(path, "ModernBERT");
        config.Validate(path);
        return config;
    }

    public void Save(string path) => HfConfigJson.Save(this, path);

    /// <summary>Layer 0 and every global_attn_every_n_layers-th after it attend to the whole sequence.</summary>
    internal bool IsGlobal(int layer) => layer % GlobalAttnEveryNLayers == 0;

    internal void Validate(string source)
    {
        void Require(bool ok, string field, string problem) => HfConfigJson.Require(source, ok, field, problem);
        Require(ModelType == "modernbert", "model_type", $"is '{ModelType}', expected 'modernbert'.");
        ValidateLabels(source);
        Require(ClassifierPooling is "cls" or "mean", "classifier_pooling", $"is '{ClassifierPooling}'; transformers knows 'cls' and 'mean'.");
        Require(ClassifierDropout is >= 0 and < 1, "classifier_dropout", $"must be in [0, 1) (got {ClassifierDropout}).");
        Require(VocabSize > 0, "vocab_size", $"must be positive (got {VocabSize}).");
        Require(HiddenSize > 0, "hidden_size", $"must be positive (got {HiddenSize}).");
        Require(NumHiddenLayers >= 0, "num_hidden_layers", $"must not be negative (got {NumHiddenLayers}).");
        Require(NumAttentionHeads > 0 && HiddenSize % NumAttentionHeads == 0, "num_attention_heads",
            $"({NumAttentionHeads}) must be positive and divide hidden_size ({HiddenSize}).");
        Require(HeadDim % 2 == 0, "num_attention_heads", $"gives an odd head size ({HeadDim}); rotary embeddings need an even one.");
        Require(IntermediateSize > 0, "intermediate_size", $"must be positive (got {IntermediateSize}).");
        Require(MaxPositionEmbeddings > 0, "max_position_embeddings", $"must be positive (got {MaxPositionEmbeddings}).");
        Require(GlobalAttnEveryNLayers > 0, "global_attn_every_n_layers", $"must be positive (got {GlobalAttnEveryNLayers}).");
        Require(LocalAttention > 0, "local_attention", $"must be positive (got {LocalAttention}).");
        Require(NormEps > 0, "norm_eps", $"must be positive (got {NormEps}).");
        Require(GlobalRopeTheta > 0, "global_rope_theta", $"must be positive (got {GlobalRopeTheta}).");
        Require(LocalRopeTheta is null or > 0, "local_rope_theta", $"must be positive (got {LocalRopeTheta}).");
        Require(HfActivations.Supported.Contains(HiddenActivation), "hidden_activation",
            $"'{HiddenActivation}' is not supported; supported: {string.Join(", ", HfActivations.Supported)}.");
        Require(HfActivations.Supported.Contains(ClassifierActivation), "classifier_activation",
            $"'{ClassifierActivation}' is not supported; supported: {string.Join(", ", HfActivations.Supported)}.");
        Require(PadTokenId is null || (PadTokenId >= 0 && PadTokenId < VocabSize), "pad_token_id",
            $"({PadTokenId}) must be a token id below vocab_size ({VocabSize}).");
    }

    internal LayerNorm Norm() => Parameters.LayerNorm(HiddenSize, NormEps, bias: NormBias);
}
