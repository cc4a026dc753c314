using Unmask.Checkpoints;
using System.Text.Json;
using System.Text.Json.Serialization;
using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Unmask.Modeling;

// ModernBERT for masked language modelling, numerically equivalent to Hugging Face's ModernBertForMaskedLM
// (transformers 4.48, eager attention, no unpadding): pre-norm layers without biases, rotary position embeddings
// (global_rope_theta on global layers, local_rope_theta on local ones), a GeGLU feed-forward, every
// global_attn_every_n_layers-th layer attending globally and the others within a sliding window, a final norm and a
// prediction head whose decoder shares the token embedding matrix.

/// <summary>ModernBERT hyper-parameters, spelled as in a Hugging Face config.json.</summary>
public sealed record ModernBertConfig : IHfConfig
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
    [JsonPropertyName("classifier_bias")] public bool ClassifierBias { get; init; }
    [JsonPropertyName("model_type")] public string ModelType { get; init; } = "modernbert";
    [JsonPropertyName("architectures")] public IReadOnlyList<string>? Architectures { get; init; } = [ModernBertForMaskedLM.ArchitectureName];
    [JsonPropertyName("tie_word_embeddings")] public bool TieWordEmbeddings { get; init; } = true;
    [JsonPropertyName("torch_dtype")] public string TorchDtype { get; init; } = "float32";
    [JsonPropertyName("transformers_version")] public string TransformersVersion { get; init; } = "4.48.0";
    [JsonExtensionData] public Dictionary<string, JsonElement>? ExtraFields { get; init; }

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

    internal LayerNorm Norm() => nn.LayerNorm(HiddenSize, NormEps, elementwise_affine: true, bias: NormBias);
}

/// <summary>Token embeddings (no positions: those are rotary), norm, dropout.</summary>
internal sealed class ModernBertEmbeddings : nn.Module
{
    [ComponentName(Name = "tok_embeddings")] readonly Embedding tokEmbeddings;
    [ComponentName(Name = "norm")] readonly LayerNorm norm;
    readonly double dropout;

    public ModernBertEmbeddings(ModernBertConfig c) : base(nameof(ModernBertEmbeddings))
    {
        tokEmbeddings = new Embedding(c.VocabSize, c.HiddenSize, c.InitializerRange, c.PadTokenId);
        norm = c.Norm();
        dropout = c.EmbeddingDropout;
        RegisterComponents();
    }

    public Parameter WordEmbeddingWeight => tokEmbeddings.Weight;

    public Tensor forward(Tensor inputIds) => F.dropout(norm.forward(tokEmbeddings.forward(inputIds)), dropout, training);
}

/// <summary>Rotary position embedding with the rotate_half layout (first half / second half of each head).</summary>
internal static class Rope
{
    /// <returns>cos and sin, [seq, head_dim] each, computed in float32 as HF does.</returns>
    public static (Tensor Cos, Tensor Sin) CosSin(long seq, int headDim, double theta)
    {
        var exponents = torch.arange(0, headDim, 2, dtype: ScalarType.Int64).to(ScalarType.Float32) / headDim; // [head_dim / 2]
        var invFreq = 1.0f / torch.tensor((float)theta).pow(exponents); // [head_dim / 2]
        var positions = torch.arange(seq, dtype: ScalarType.Int64).to(ScalarType.Float32); // [seq]
        var freqs = positions.unsqueeze(1) * invFreq.unsqueeze(0); // [seq, head_dim / 2]
        var angles = torch.cat([freqs, freqs], -1); // [seq, head_dim]
        return (angles.cos(), angles.sin());
    }

    /// <param name="x">[batch, heads, seq, head_dim]</param>
    public static Tensor Apply(Tensor x, Tensor cos, Tensor sin)
    {
        var half = x.shape[^1] / 2;
        var rotated = torch.cat([-x.narrow(-1, half, half), x.narrow(-1, 0, half)], -1); // [batch, heads, seq, head_dim]
        return x * cos + rotated * sin;
    }
}

/// <summary>Fused QKV projection laid out [q | k | v], each [heads, head_dim]; rotary q and k; output projection.</summary>
internal sealed class ModernBertAttention : nn.Module
{
    [ComponentName(Name = "Wqkv")] readonly Linear wqkv;
    [ComponentName(Name = "Wo")] readonly Linear wo;
    readonly long heads;
    readonly long headDim;
    readonly double dropout;

    public ModernBertAttention(ModernBertConfig c) : base(nameof(ModernBertAttention))
    {
        wqkv = new Linear(c.HiddenSize, 3 * c.HiddenSize, c.InitializerRange, c.AttentionBias);
        wo = new Linear(c.HiddenSize, c.HiddenSize, c.InitializerRange, c.AttentionBias);
        heads = c.NumAttentionHeads;
        headDim = c.HeadDim;
        dropout = c.AttentionDropout;
        RegisterComponents();
    }

    /// <param name="hidden">[batch, seq, hidden]</param>
    /// <param name="additiveMask">[batch, 1, seq or 1, seq]: 0 where a key is visible, float32.min elsewhere.</param>
    public Tensor forward(Tensor hidden, Tensor additiveMask, Tensor cos, Tensor sin)
    {
        var (batch, seq) = (hidden.shape[0], hidden.shape[1]);
        var qkv = wqkv.forward(hidden).view(batch, seq, 3, heads, headDim).permute(2, 0, 3, 1, 4); // [3, batch, heads, seq, head]
        var q = Rope.Apply(qkv[0], cos, sin);
        var k = Rope.Apply(qkv[1], cos, sin);
        var context = F.scaled_dot_product_attention(q, k, qkv[2], additiveMask, training ? dropout : 0.0); // [batch, heads, seq, head]
        return wo.forward(context.transpose(1, 2).reshape(batch, seq, heads * headDim));
    }
}

/// <summary>GeGLU: Wi projects to twice intermediate_size, the first half through the activation gates the second.</summary>
internal sealed class ModernBertMlp : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "Wi")] readonly Linear wi;
    [ComponentName(Name = "Wo")] readonly Linear wo;
    readonly Func<Tensor, Tensor> activation;
    readonly double dropout;

    public ModernBertMlp(ModernBertConfig c) : base(nameof(ModernBertMlp))
    {
        wi = new Linear(c.HiddenSize, 2 * c.IntermediateSize, c.InitializerRange, c.MlpBias);
        wo = new Linear(c.IntermediateSize, c.HiddenSize, c.InitializerRange, c.MlpBias);
        activation = HfActivations.Get(c.HiddenActivation);
        dropout = c.MlpDropout;
        RegisterComponents();
    }

    public override Tensor forward(Tensor hidden)
    {
        var halves = wi.forward(hidden).chunk(2, -1); // [batch, seq, intermediate] each
        return wo.forward(F.dropout(activation(halves[0]) * halves[1], dropout, training));
    }
}

/// <summary>Pre-norm layer: x + attn(attn_norm(x)), then x + mlp(mlp_norm(x)). Layer 0 has no attn_norm (the
/// embedding norm precedes it).</summary>
internal sealed class ModernBertEncoderLayer : nn.Module
{
    [ComponentName(Name = "attn_norm")] readonly LayerNorm? attnNorm;
    [ComponentName(Name = "attn")] readonly ModernBertAttention attn;
    [ComponentName(Name = "mlp_norm")] readonly LayerNorm mlpNorm;
    [ComponentName(Name = "mlp")] readonly ModernBertMlp mlp;

    public ModernBertEncoderLayer(ModernBertConfig c, int layer) : base(nameof(ModernBertEncoderLayer))
    {
        if (layer != 0) attnNorm = c.Norm();
        attn = new ModernBertAttention(c);
        mlpNorm = c.Norm();
        mlp = new ModernBertMlp(c);
        IsGlobal = c.IsGlobal(layer);
        RegisterComponents();
    }

    public bool IsGlobal { get; }

    public Tensor forward(Tensor hidden, Tensor additiveMask, Tensor cos, Tensor sin)
    {
        var normed = attnNorm is null ? hidden : attnNorm.forward(hidden);
        hidden = hidden + attn.forward(normed, additiveMask, cos, sin); // [batch, seq, hidden]
        return hidden + mlp.forward(mlpNorm.forward(hidden));
    }
}

internal sealed class ModernBertModel : nn.Module
{
    [ComponentName(Name = "embeddings")] readonly ModernBertEmbeddings embeddings;
    [ComponentName(Name = "layers")] readonly ModuleList<ModernBertEncoderLayer> layers;
    [ComponentName(Name = "final_norm")] readonly LayerNorm finalNorm;
    readonly ModernBertConfig config;

    public ModernBertModel(ModernBertConfig c) : base(nameof(ModernBertModel))
    {
        embeddings = new ModernBertEmbeddings(c);
        layers = nn.ModuleList(Enumerable.Range(0, c.NumHiddenLayers).Select(i => new ModernBertEncoderLayer(c, i)).ToArray());
        finalNorm = c.Norm();
        config = c;
        RegisterComponents();
    }

    public Parameter WordEmbeddingWeight => embeddings.WordEmbeddingWeight;

    /// <param name="hiddenStates">Receives the embedding output and each layer's output; the last of them comes
    /// before final_norm, as in HF.</param>
    /// <returns>[batch, seq, hidden] after final_norm.</returns>
    public Tensor forward(Tensor inputIds, Tensor? attentionMask, List<Tensor>? hiddenStates)
    {
        var (batch, seq) = (inputIds.shape[0], inputIds.shape[1]);
        var hidden = embeddings.forward(inputIds); // [batch, seq, hidden]
        hiddenStates?.Add(hidden);

        var globalMask = AttentionMasks.Additive(attentionMask) ?? torch.zeros(batch, 1, 1, seq); // [batch, 1, 1, seq]
        // Local layers also hide keys further than local_attention / 2 from the query; HF fills (not adds) dtype.min.
        var rows = torch.arange(seq, dtype: ScalarType.Int64);
        var outsideWindow = (rows.unsqueeze(0) - rows.unsqueeze(1)).abs().gt(config.LocalAttention / 2); // [seq, seq]
        var localMask = globalMask.expand(batch, 1, seq, seq).masked_fill(outsideWindow, torch.finfo(ScalarType.Float32).min); // [batch, 1, seq, seq]

        var (globalCos, globalSin) = Rope.CosSin(seq, config.HeadDim, config.GlobalRopeTheta);
        var (localCos, localSin) = Rope.CosSin(seq, config.HeadDim, config.LocalRopeTheta ?? config.GlobalRopeTheta);
        foreach (var layer in layers)
        {
            hidden = layer.IsGlobal
                ? layer.forward(hidden, globalMask, globalCos, globalSin)
                : layer.forward(hidden, localMask, localCos, localSin);
            hiddenStates?.Add(hidden);
        }
        return finalNorm.forward(hidden);
    }
}

/// <summary>dense, classifier_activation, norm: the transform before the decoder.</summary>
internal sealed class ModernBertPredictionHead : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "dense")] readonly Linear dense;
    [ComponentName(Name = "norm")] readonly LayerNorm norm;
    readonly Func<Tensor, Tensor> activation;

    public ModernBertPredictionHead(ModernBertConfig c) : base(nameof(ModernBertPredictionHead))
    {
        dense = new Linear(c.HiddenSize, c.HiddenSize, c.InitializerRange, c.ClassifierBias);
        norm = c.Norm();
        activation = HfActivations.Get(c.ClassifierActivation);
        RegisterComponents();
    }

    public override Tensor forward(Tensor hidden) => norm.forward(activation(dense.forward(hidden)));
}

/// <summary>
/// ModernBERT with its masked-LM head. <c>decoder.weight</c> is <c>model.embeddings.tok_embeddings.weight</c> unless
/// <c>tie_word_embeddings</c> is false; HF then does not write it.
/// </summary>
public sealed class ModernBertForMaskedLM : nn.Module, IMaskedLmModel
{
    static ModernBertForMaskedLM() => NativeAllocator.Configure();

    public const string ArchitectureName = "ModernBertForMaskedLM";
    const string DecoderWeight = "decoder.weight";

    [ComponentName(Name = "model")] readonly ModernBertModel model;
    [ComponentName(Name = "head")] readonly ModernBertPredictionHead head;
    [ComponentName(Name = "decoder")] readonly Linear decoder;

    ModernBertForMaskedLM(ModernBertConfig c) : base(nameof(ModernBertForMaskedLM))
    {
        Config = c;
        model = new ModernBertModel(c);
        head = new ModernBertPredictionHead(c);
        var weight = c.TieWordEmbeddings ? model.WordEmbeddingWeight : Parameters.Normal([c.VocabSize, c.HiddenSize], c.InitializerRange);
        decoder = new Linear(weight, c.DecoderBias ? Parameters.Zeros([c.VocabSize]) : null);
        RegisterComponents();
    }

    /// <summary>A randomly initialised model (normal weights, zero biases, unit norms), in training mode.</summary>
    public static ModernBertForMaskedLM Create(ModernBertConfig config)
    {
        config.Validate("ModernBERT config");
        return new ModernBertForMaskedLM(config);
    }

    public ModernBertConfig Config { get; }
    public string Architecture => ArchitectureName;
    IHfConfig IMaskedLmModel.HfConfig => Config;
    public HeadKind Head => HeadKind.MaskedLm;
    public int MaxSequenceLength => Config.MaxPositionEmbeddings;
    public bool UsesTokenTypeIds => false;
    nn.Module IMaskedLmModel.Module => this;

    /// <returns>LastHiddenState after final_norm; HiddenStates[^1] is the last layer's output before it.</returns>
    public MaskedLmOutput Forward(Tensor inputIds, Tensor? attentionMask = null, Tensor? tokenTypeIds = null,
        Tensor? labels = null, bool outputHiddenStates = false, bool sparsePrediction = false)
    {
        HfWeights.CheckInputs(inputIds, attentionMask, tokenTypeIds, labels, sparsePrediction, MaxSequenceLength, Config.VocabSize);
        using var scope = torch.NewDisposeScope();
        var hiddenStates = outputHiddenStates ? new List<Tensor>() : null;
        var sequence = model.forward(inputIds, attentionMask, hiddenStates); // [batch, seq, hidden]
        var (logits, loss) = HfWeights.MaskedLmHead(h => decoder.forward(head.forward(h)), sequence, labels, sparsePrediction, Config.VocabSize);
        return HfWeights.Output(logits, loss, sequence, hiddenStates);
    }

    public Dictionary<string, Tensor> StateDictForSave()
    {
        var state = state_dict();
        if (Config.TieWordEmbeddings) state.Remove(DecoderWeight);
        return state;
    }

    public void LoadHfStateDict(IReadOnlyDictionary<string, Tensor> source) => LoadHfWeights(new TensorDictionarySource(source));

    public void LoadHfWeights(IHfTensorSource source)
    {
        var tied = Config.TieWordEmbeddings;
        HfWeights.Copy(Architecture, state_dict(), source,
            optional: tied ? new HashSet<string> { DecoderWeight } : new HashSet<string>(),
            ignored: _ => false,
            aliasOf: tied ? new Dictionary<string, string> { [DecoderWeight] = "model.embeddings.tok_embeddings.weight" } : new Dictionary<string, string>());
    }
}
