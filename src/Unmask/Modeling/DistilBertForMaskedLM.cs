using Unmask.Checkpoints;
using System.Text.Json;
using System.Text.Json.Serialization;
using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Unmask.Modeling;

// DistilBERT for masked language modelling, numerically equivalent to Hugging Face's DistilBertForMaskedLM
// (transformers 4.31): no token types, post-LayerNorm blocks, every LayerNorm with a hard-coded eps of 1e-12.

/// <summary>DistilBERT hyper-parameters, spelled as in a Hugging Face config.json.</summary>
public sealed record DistilBertConfig : IHfConfig
{
    [JsonPropertyName("vocab_size")] public required int VocabSize { get; init; }
    [JsonPropertyName("dim")] public required int Dim { get; init; }
    [JsonPropertyName("n_layers")] public required int NLayers { get; init; }
    [JsonPropertyName("n_heads")] public required int NHeads { get; init; }
    [JsonPropertyName("hidden_dim")] public required int HiddenDim { get; init; }
    [JsonPropertyName("activation")] public string Activation { get; init; } = "gelu";
    [JsonPropertyName("dropout")] public double Dropout { get; init; } = 0.1;
    [JsonPropertyName("attention_dropout")] public double AttentionDropout { get; init; } = 0.1;
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

/// <summary>word + position embeddings (no token types), LayerNorm, dropout.</summary>
internal sealed class DistilBertEmbeddings : nn.Module
{
    [ComponentName(Name = "word_embeddings")] readonly Embedding wordEmbeddings;
    [ComponentName(Name = "position_embeddings")] readonly Embedding positionEmbeddings;
    [ComponentName(Name = "LayerNorm")] readonly LayerNorm layerNorm;
    readonly double dropout;

    public DistilBertEmbeddings(DistilBertConfig c) : base(nameof(DistilBertEmbeddings))
    {
        wordEmbeddings = new Embedding(c.VocabSize, c.Dim, c.InitializerRange, c.PadTokenId);
        positionEmbeddings = new Embedding(c.MaxPositionEmbeddings, c.Dim, c.InitializerRange);
        if (c.SinusoidalPosEmbds) FillSinusoidal(positionEmbeddings.Weight);
        layerNorm = nn.LayerNorm(c.Dim, DistilBertConfig.LayerNormEps);
        dropout = c.Dropout;
        RegisterComponents();
    }

    public Parameter WordEmbeddingWeight => wordEmbeddings.Weight;

    public Tensor forward(Tensor inputIds)
    {
        var positions = torch.arange(inputIds.shape[1], dtype: ScalarType.Int64).unsqueeze(0); // [1, seq]
        var embeddings = wordEmbeddings.forward(inputIds) + positionEmbeddings.forward(positions); // [batch, seq, dim]
        return F.dropout(layerNorm.forward(embeddings), dropout, training);
    }

    // HF's create_sinusoidal_embeddings, used only for fresh models: checkpoints store the table like any weight.
    static void FillSinusoidal(Parameter weight)
    {
        var (count, dim) = (weight.shape[0], weight.shape[1]);
        var table = new float[count * dim];
        for (long pos = 0; pos < count; pos++)
            for (long j = 0; j < dim; j++)
            {
                var angle = pos / Math.Pow(10000, 2 * (j / 2) / (double)dim);
                table[pos * dim + j] = (float)(j % 2 == 0 ? Math.Sin(angle) : Math.Cos(angle));
            }
        using var noGrad = torch.no_grad();
        using var values = torch.tensor(table, [count, dim]);
        weight.copy_(values);
    }
}

/// <summary>Multi-head attention as DistilBERT computes it: q scaled before the product, padded keys filled with float32.min.</summary>
internal sealed class DistilBertAttention : nn.Module
{
    [ComponentName(Name = "q_lin")] readonly Linear qLin;
    [ComponentName(Name = "k_lin")] readonly Linear kLin;
    [ComponentName(Name = "v_lin")] readonly Linear vLin;
    [ComponentName(Name = "out_lin")] readonly Linear outLin;
    readonly long heads;
    readonly long headSize;
    readonly double dropout;

    public DistilBertAttention(DistilBertConfig c) : base(nameof(DistilBertAttention))
    {
        qLin = new Linear(c.Dim, c.Dim, c.InitializerRange);
        kLin = new Linear(c.Dim, c.Dim, c.InitializerRange);
        vLin = new Linear(c.Dim, c.Dim, c.InitializerRange);
        outLin = new Linear(c.Dim, c.Dim, c.InitializerRange);
        heads = c.NHeads;
        headSize = c.Dim / c.NHeads;
        dropout = c.AttentionDropout;
        RegisterComponents();
    }

    /// <param name="hidden">[batch, seq, dim]</param>
    /// <param name="keyPadding">[batch, 1, 1, seq], true on padded keys.</param>
    public Tensor forward(Tensor hidden, Tensor keyPadding)
    {
        var (batch, seq) = (hidden.shape[0], hidden.shape[1]);
        Tensor SplitHeads(Tensor x) => x.view(batch, seq, heads, headSize).transpose(1, 2); // [batch, heads, seq, head]

        var q = SplitHeads(qLin.forward(hidden)) / Math.Sqrt(headSize);
        var k = SplitHeads(kLin.forward(hidden));
        var v = SplitHeads(vLin.forward(hidden));
        var scores = q.matmul(k.transpose(2, 3)).masked_fill(keyPadding, torch.finfo(ScalarType.Float32).min); // [batch, heads, seq, seq]
        var weights = F.dropout(scores.softmax(-1), dropout, training);
        var context = weights.matmul(v).transpose(1, 2).reshape(batch, seq, heads * headSize); // [batch, seq, dim]
        return outLin.forward(context);
    }
}

internal sealed class DistilBertFfn : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "lin1")] readonly Linear lin1;
    [ComponentName(Name = "lin2")] readonly Linear lin2;
    readonly Func<Tensor, Tensor> activation;
    readonly double dropout;

    public DistilBertFfn(DistilBertConfig c) : base(nameof(DistilBertFfn))
    {
        lin1 = new Linear(c.Dim, c.HiddenDim, c.InitializerRange);
        lin2 = new Linear(c.HiddenDim, c.Dim, c.InitializerRange);
        activation = HfActivations.Get(c.Activation);
        dropout = c.Dropout;
        RegisterComponents();
    }

    public override Tensor forward(Tensor hidden) => F.dropout(lin2.forward(activation(lin1.forward(hidden))), dropout, training);
}

/// <summary>Attention and feed-forward, each followed by a residual connection and a LayerNorm.</summary>
internal sealed class DistilBertBlock : nn.Module
{
    [ComponentName(Name = "attention")] readonly DistilBertAttention attention;
    [ComponentName(Name = "sa_layer_norm")] readonly LayerNorm saLayerNorm;
    [ComponentName(Name = "ffn")] readonly DistilBertFfn ffn;
    [ComponentName(Name = "output_layer_norm")] readonly LayerNorm outputLayerNorm;

    public DistilBertBlock(DistilBertConfig c) : base(nameof(DistilBertBlock))
    {
        attention = new DistilBertAttention(c);
        saLayerNorm = nn.LayerNorm(c.Dim, DistilBertConfig.LayerNormEps);
        ffn = new DistilBertFfn(c);
        outputLayerNorm = nn.LayerNorm(c.Dim, DistilBertConfig.LayerNormEps);
        RegisterComponents();
    }

    public Tensor forward(Tensor hidden, Tensor keyPadding)
    {
        var attended = saLayerNorm.forward(attention.forward(hidden, keyPadding) + hidden); // [batch, seq, dim]
        return outputLayerNorm.forward(ffn.forward(attended) + attended);
    }
}

internal sealed class DistilBertTransformer : nn.Module
{
    [ComponentName(Name = "layer")] readonly ModuleList<DistilBertBlock> layers;

    public DistilBertTransformer(DistilBertConfig c) : base(nameof(DistilBertTransformer))
    {
        layers = nn.ModuleList(Enumerable.Range(0, c.NLayers).Select(_ => new DistilBertBlock(c)).ToArray());
        RegisterComponents();
    }

    public Tensor forward(Tensor hidden, Tensor keyPadding, List<Tensor>? hiddenStates)
    {
        foreach (var layer in layers)
        {
            hidden = layer.forward(hidden, keyPadding);
            hiddenStates?.Add(hidden);
        }
        return hidden;
    }
}

internal sealed class DistilBertModel : nn.Module
{
    [ComponentName(Name = "embeddings")] readonly DistilBertEmbeddings embeddings;
    [ComponentName(Name = "transformer")] readonly DistilBertTransformer transformer;

    public DistilBertModel(DistilBertConfig c) : base(nameof(DistilBertModel))
    {
        embeddings = new DistilBertEmbeddings(c);
        transformer = new DistilBertTransformer(c);
        RegisterComponents();
    }

    public Parameter WordEmbeddingWeight => embeddings.WordEmbeddingWeight;

    public Tensor forward(Tensor inputIds, Tensor? attentionMask, List<Tensor>? hiddenStates)
    {
        var hidden = embeddings.forward(inputIds); // [batch, seq, dim]
        hiddenStates?.Add(hidden);
        var keyPadding = attentionMask is null
            ? torch.zeros(inputIds.shape[0], 1, 1, inputIds.shape[1], dtype: ScalarType.Bool)
            : attentionMask.eq(0).unsqueeze(1).unsqueeze(2); // [batch, 1, 1, seq]
        return transformer.forward(hidden, keyPadding, hiddenStates);
    }
}

/// <summary>
/// DistilBERT with its masked-LM head (vocab_transform, activation, vocab_layer_norm, vocab_projector). The projector's
/// weight is the word embedding matrix unless <c>tie_word_embeddings</c> is false; HF then does not write it.
/// </summary>
public sealed class DistilBertForMaskedLM : nn.Module, IMaskedLmModel
{
    static DistilBertForMaskedLM() => NativeAllocator.Configure();

    public const string ArchitectureName = "DistilBertForMaskedLM";
    const string ProjectorWeight = "vocab_projector.weight";

    [ComponentName(Name = "distilbert")] readonly DistilBertModel distilbert;
    [ComponentName(Name = "vocab_transform")] readonly Linear vocabTransform;
    [ComponentName(Name = "vocab_layer_norm")] readonly LayerNorm vocabLayerNorm;
    [ComponentName(Name = "vocab_projector")] readonly Linear vocabProjector;
    readonly Func<Tensor, Tensor> activation;

    DistilBertForMaskedLM(DistilBertConfig c) : base(nameof(DistilBertForMaskedLM))
    {
        Config = c;
        distilbert = new DistilBertModel(c);
        vocabTransform = new Linear(c.Dim, c.Dim, c.InitializerRange);
        vocabLayerNorm = nn.LayerNorm(c.Dim, DistilBertConfig.LayerNormEps);
        var projectorWeight = c.TieWordEmbeddings ? distilbert.WordEmbeddingWeight : Parameters.Normal([c.VocabSize, c.Dim], c.InitializerRange);
        vocabProjector = new Linear(projectorWeight, Parameters.Zeros([c.VocabSize]));
        activation = HfActivations.Get(c.Activation);
        RegisterComponents();
    }

    /// <summary>A randomly initialised model (HF's _init_weights), in training mode.</summary>
    public static DistilBertForMaskedLM Create(DistilBertConfig config)
    {
        config.Validate("DistilBERT config");
        return new DistilBertForMaskedLM(config);
    }

    public DistilBertConfig Config { get; }
    public string Architecture => ArchitectureName;
    IHfConfig IMaskedLmModel.HfConfig => Config;
    public HeadKind Head => HeadKind.MaskedLm;
    public int MaxSequenceLength => Config.MaxPositionEmbeddings;
    public bool UsesTokenTypeIds => false;
    nn.Module IMaskedLmModel.Module => this;

    public MaskedLmOutput Forward(Tensor inputIds, Tensor? attentionMask = null, Tensor? tokenTypeIds = null,
        Tensor? labels = null, bool outputHiddenStates = false, bool sparsePrediction = false)
    {
        HfWeights.CheckInputs(inputIds, attentionMask, tokenTypeIds, labels, sparsePrediction, MaxSequenceLength, Config.VocabSize);
        using var scope = torch.NewDisposeScope();
        var hiddenStates = outputHiddenStates ? new List<Tensor>() : null;
        var sequence = distilbert.forward(inputIds, attentionMask, hiddenStates); // [batch, seq, dim]
        var (logits, loss) = HfWeights.MaskedLmHead(PredictionHead, sequence, labels, sparsePrediction, Config.VocabSize);
        return HfWeights.Output(logits, loss, sequence, hiddenStates);
    }

    Tensor PredictionHead(Tensor hidden) =>
        vocabProjector.forward(vocabLayerNorm.forward(activation(vocabTransform.forward(hidden))));

    public Dictionary<string, Tensor> StateDictForSave()
    {
        var state = state_dict();
        if (Config.TieWordEmbeddings) state.Remove(ProjectorWeight);
        return state;
    }

    public void LoadHfStateDict(IReadOnlyDictionary<string, Tensor> source) => LoadHfWeights(new TensorDictionarySource(source));

    public void LoadHfWeights(IHfTensorSource source)
    {
        var tied = Config.TieWordEmbeddings;
        HfWeights.Copy(Architecture, state_dict(), source,
            optional: tied ? new HashSet<string> { ProjectorWeight } : new HashSet<string>(),
            ignored: name => name == "distilbert.embeddings.position_ids",
            aliasOf: tied ? new Dictionary<string, string> { [ProjectorWeight] = "distilbert.embeddings.word_embeddings.weight" } : new Dictionary<string, string>());
    }
}
