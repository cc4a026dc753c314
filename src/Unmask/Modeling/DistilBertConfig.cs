using System.Text.Json;
using System.Text.Json.Serialization;

namespace Unmask.Modeling;

/// <summary>DistilBERT hyper-parameters, spelled as in a Hugging Face config.json.</summary>
public sealed record DistilBertConfig : HfConfigLabels, IHfConfig
{
    [JsonPropertyName("vocab_size")] public required int VocabSize { get; init; }
    [JsonPropertyName("dim")] public required int Dim { get; init; }
    [JsonPropertyName("n_layers")] public required int NLayers { get; init; }
    [JsonPropertyName("n_heads")] public required int NHeads { get; init; }
    [JsonPropertyName("hidden_dim")] public required int HiddenDim { get; init; }
    [JsonPropertyName("activation")] public string Activation { get; init; } = "gelu";
    [JsonPropertyName("dropout")] public double Dropout { get; init; } = 0.1;
    [JsonPropertyName("attention_dropout")] public double AttentionDropout { get; init; } = 0.1;
    [JsonPropertyName("seq_classif_dropout")] public double SeqClassifDropout { get; init; } = 0.2;
    [JsonPropertyName("qa_dropout")] public double QaDropout { get; init; } = 0.1;
    [JsonPropertyName("max_position_embeddings")] public int MaxPositionEmbeddings { get; init; } = 512;
    [JsonPropertyName("sinusoidal_pos_embds")] public bool SinusoidalPosEmbds { get; init; }
    [JsonPropertyName("initializer_range")] public double InitializerRange { get; init; } = 0.02;
    [JsonPropertyName("pad_token_id")] public int? PadTokenId { get; init; } = 0;
    [JsonPropertyName("model_type")] public string ModelType { get; init; } = "distilbert";
    [JsonPropertyName("architectures")] public IReadOnlyList<string>? Architectures { get; init; } = [DistilBertForMaskedLM.ArchitectureName];
    [JsonPropertyName("tie_word_embeddings")] public bool TieWordEmbeddings { get; init; } = true;
    [JsonPropertyName("torch_dtype")] public string TorchDtype { get; init; } = "float32";
    [JsonPropertyName("transformers_version")] public string TransformersVersion { get; init; } = "4.31.0";
    [JsonExtensionData] public Dictionary<string, JsonElement>? ExtraFields { get; init; }

    int IHfConfig.HiddenSize => Dim;
    int IHfConfig.IntermediateSize => HiddenDim;
    [JsonIgnore] public int MaxSequenceLength => MaxPositionEmbeddings;

    public IHfConfig WithVocabulary(int vocabSize, int? padTokenId) => this with { VocabSize = vocabSize, PadTokenId = padTokenId };

    /// <summary>DistilBERT's modeling code fixes every LayerNorm's eps; config.json does not carry it.</summary>
    internal const double LayerNormEps = 1e-12;

    public static DistilBertConfig Load(string path)
    {
        var config = HfConfigJson.Load<DistilBertConfig>(path, "DistilBERT");
        config.Validate(path);
        return config;
    }

    public void Save(string path) => HfConfigJson.Save(this, path);

    internal void Validate(string source)
    {
        void Require(bool ok, string field, string problem) => HfConfigJson.Require(source, ok, field, problem);
        Require(ModelType == "distilbert", "model_type", $"is '{ModelType}', expected 'distilbert'.");
        ValidateLabels(source);
        Require(SeqClassifDropout is >= 0 and < 1, "seq_classif_dropout", $"must be in [0, 1) (got {SeqClassifDropout}).");
        Require(VocabSize > 0, "vocab_size", $"must be positive (got {VocabSize}).");
        Require(Dim > 0, "dim", $"must be positive (got {Dim}).");
        Require(NLayers >= 0, "n_layers", $"must not be negative (got {NLayers}).");
        Require(NHeads > 0 && Dim % NHeads == 0, "n_heads", $"({NHeads}) must be positive and divide dim ({Dim}).");
        Require(HiddenDim > 0, "hidden_dim", $"must be positive (got {HiddenDim}).");
        Require(MaxPositionEmbeddings > 0, "max_position_embeddings", $"must be positive (got {MaxPositionEmbeddings}).");
        Require(HfActivations.Supported.Contains(Activation), "activation",
            $"'{Activation}' is not supported; supported: {string.Join(", ", HfActivations.Supported)}.");
        Require(PadTokenId is null || (PadTokenId >= 0 && PadTokenId < VocabSize), "pad_token_id",
            $"({PadTokenId}) must be a token id below vocab_size ({VocabSize}).");
    }
}
