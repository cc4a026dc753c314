
using TorchSharp.Modules;

namespace Unmask.Modeling;

// ModernBERT, numerically equivalent to Hugging Face's ModernBertModel and ModernBertForMaskedLM (transformers 4.48,
// eager attention, no unpadding): pre-norm layers without biases, rotary position embeddings (global_rope_theta on
// global layers, local_rope_theta on local ones), a GeGLU feed-forward, every global_attn_every_n_layers-th layer
// attending globally and the others within a sliding window, a final norm and a prediction head whose decoder shares
// the token embedding matrix.

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
    /// <returns>cos and sin, [seq, head_dim] each, computed in float32 as HF does and then cast to <paramref name="dtype"/>.</returns>
    public static (Tensor Cos, Tensor Sin) CosSin(long seq, int headDim, double theta, ScalarType dtype, Device device)
    {
        var exponents = torch.arange(0, headDim, 2, dtype: ScalarType.Int64, device: device).to(ScalarType.Float32) / headDim; // [head_dim / 2]
        var invFreq = 1.0f / torch.tensor((float)theta, device: device).pow(exponents); // [head_dim / 2]
        var positions = torch.arange(seq, dtype: ScalarType.Int64, device: device).to(ScalarType.Float32); // [seq]
        var freqs = positions.unsqueeze(1) * invFreq.unsqueeze(0); // [seq, head_dim / 2]
        var angles = torch.cat([freqs, freqs], -1); // [seq, head_dim]
        return (angles.cos().to(dtype), angles.sin().to(dtype));
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

    /// <summary>The query and key rows of the fused projection, [hidden, hidden] views each.</summary>
    public IEnumerable<Tensor> QueryKeyWeights => [wqkv.Weight.narrow(0, 0, heads * headDim), wqkv.Weight.narrow(0, heads * headDim, heads * headDim)];

    /// <param name="hidden">[batch, seq, hidden]</param>
    /// <param name="additiveMask">[batch, 1, seq or 1, seq] in the compute dtype: 0 where a key is visible, dtype.min elsewhere.</param>
    public Tensor forward(Tensor hidden, Tensor additiveMask, Tensor cos, Tensor sin)
    {
        var (batch, seq) = (hidden.shape[0], hidden.shape[1]);
        var qkv = wqkv.forward(hidden).view(batch, seq, 3, heads, headDim).permute(2, 0, 3, 1, 4); // [3, batch, heads, seq, head]
        // cos and sin arrive in the compute dtype, so q, k and v share one type for the attention kernel.
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

    public IEnumerable<Tensor> QueryKeyWeights => attn.QueryKeyWeights;

    public Tensor forward(Tensor hidden, Tensor additiveMask, Tensor cos, Tensor sin)
    {
        var normed = attnNorm is null ? hidden : attnNorm.forward(hidden);
        hidden = hidden + attn.forward(normed, additiveMask, cos, sin); // [batch, seq, hidden]
        return hidden + mlp.forward(mlpNorm.forward(hidden));
    }
}

/// <summary>HF's ModernBertModel: embeddings, alternating global and sliding-window layers, final norm. No pooler.</summary>
internal sealed class ModernBertModel : Encoder
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

    public override Parameter WordEmbeddingWeight => embeddings.WordEmbeddingWeight;
    public override int MaxSequenceLength => config.MaxPositionEmbeddings;
    public override bool UsesTokenTypeIds => false;

    /// <param name="hiddenStates">Receives the embedding output and each layer's output; the last of them comes
    /// before final_norm, as in HF.</param>
    /// <returns>[batch, seq, hidden] after final_norm.</returns>
    public override Tensor forward(Tensor inputIds, Tensor? attentionMask, Tensor? tokenTypeIds, List<Tensor>? hiddenStates)
    {
        var (batch, seq) = (inputIds.shape[0], inputIds.shape[1]);
        var dtype = ComputeDtype.ScalarType();
        var hidden = embeddings.forward(inputIds); // [batch, seq, hidden]
        hiddenStates?.Add(hidden);

        var globalMask = AttentionMasks.Additive(attentionMask, dtype) ?? torch.zeros(batch, 1, 1, seq, dtype: dtype, device: inputIds.device); // [batch, 1, 1, seq]
        // Local layers also hide keys further than local_attention / 2 from the query; HF fills (not adds) dtype.min.
        var rows = torch.arange(seq, dtype: ScalarType.Int64, device: inputIds.device); // [seq]
        var outsideWindow = (rows.unsqueeze(0) - rows.unsqueeze(1)).abs().gt(config.LocalAttention / 2); // [seq, seq]
        var localMask = globalMask.expand(batch, 1, seq, seq).masked_fill(outsideWindow, torch.finfo(dtype).min); // [batch, 1, seq, seq]

        var (globalCos, globalSin) = Rope.CosSin(seq, config.HeadDim, config.GlobalRopeTheta, dtype, inputIds.device);
        var (localCos, localSin) = Rope.CosSin(seq, config.HeadDim, config.LocalRopeTheta ?? config.GlobalRopeTheta, dtype, inputIds.device);
        foreach (var layer in layers)
        {
            hidden = layer.IsGlobal
                ? layer.forward(hidden, globalMask, globalCos, globalSin)
                : layer.forward(hidden, localMask, localCos, localSin);
            hiddenStates?.Add(hidden);
        }
        return finalNorm.forward(hidden);
    }

    /// <summary>No position embeddings to set: the rotary angles already give identity queries and keys a
    /// relative-position kernel.</summary>
    internal override void InitialiseLocalAttention(double initializerRange, double queryKeyScale) =>
        LocalAttention.Initialise(null, layers.SelectMany(l => l.QueryKeyWeights), initializerRange, queryKeyScale);
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

    // The norm runs in float32 under a bf16 compute dtype.
    public override Tensor forward(Tensor hidden) => norm.forward(activation(dense.forward(hidden)).to(ScalarType.Float32));
}

/// <summary>
/// ModernBERT with its masked-LM head. <c>decoder.weight</c> is <c>model.embeddings.tok_embeddings.weight</c> unless
/// <c>tie_word_embeddings</c> is false; HF then writes it.
/// </summary>
public sealed class ModernBertForMaskedLM : PretrainedModel
{
    public const string ArchitectureName = "ModernBertForMaskedLM";

    readonly ModernBertPredictionHead head;
    readonly Linear decoder;
    readonly HashSet<string> tiedNames;

    ModernBertForMaskedLM(ModernBertConfig c) : base(nameof(ModernBertForMaskedLM), c, "model", new ModernBertModel(c))
    {
        Config = c;
        head = new ModernBertPredictionHead(c);
        var weight = c.TieWordEmbeddings ? Encoder.WordEmbeddingWeight : Parameters.Normal([c.VocabSize, c.HiddenSize], c.InitializerRange);
        decoder = new Linear(weight, c.DecoderBias ? Parameters.Zeros([c.VocabSize]) : null);
        register_module("head", head);
        register_module("decoder", decoder);
        tiedNames = c.TieWordEmbeddings ? ["decoder.weight"] : [];
    }

    /// <summary>A randomly initialised model (normal weights, zero biases, unit norms), in training mode.</summary>
    public static ModernBertForMaskedLM Create(ModernBertConfig config)
    {
        config.Validate("ModernBERT config");
        return new ModernBertForMaskedLM(config with { Architectures = [ArchitectureName] });
    }

    public ModernBertConfig Config { get; }
    public override HeadKind Head => HeadKind.MaskedLm;
    private protected override double InitializerRange => Config.InitializerRange;
    private protected override IReadOnlySet<string> TiedNames => tiedNames;

    /// <remarks>LastHiddenState comes after final_norm; HiddenStates[^1] is the last layer's output before it.</remarks>
    private protected override Tensor HeadForward(Tensor hidden, Tensor? attentionMask) => decoder.forward(head.forward(hidden)).to(ScalarType.Float32);

    private protected override Tensor HeadLoss(Tensor logits, Tensor labels, Tensor? attentionMask) => MaskedLmLoss(logits, labels);
}

/// <summary>
/// ModernBertForSequenceClassification: the last hidden state pooled by classifier_pooling (the first token, or the
/// mean over unpadded positions), then head (dense, classifier_activation, norm), dropout and classifier.
/// </summary>
public sealed class ModernBertForSequenceClassification : SequenceClassificationModel
{
    public const string ArchitectureName = "ModernBertForSequenceClassification";

    readonly ModernBertPredictionHead head;
    readonly Linear classifier;

    ModernBertForSequenceClassification(ModernBertConfig c) : base(nameof(ModernBertForSequenceClassification), c, "model", new ModernBertModel(c))
    {
        Config = c;
        head = new ModernBertPredictionHead(c);
        classifier = new Linear(c.HiddenSize, NumLabels, c.InitializerRange);
        register_module("head", head);
        register_module("classifier", classifier);
    }

    /// <summary>A randomly initialised classifier with the config's labels (id2label), in training mode.</summary>
    public static ModernBertForSequenceClassification Create(ModernBertConfig config)
    {
        config.Validate("ModernBERT config");
        return new ModernBertForSequenceClassification(config with { Architectures = [ArchitectureName] });
    }

    public ModernBertConfig Config { get; }
    private protected override double InitializerRange => Config.InitializerRange;

    private protected override Tensor HeadForward(Tensor hidden, Tensor? attentionMask)
    {
        Tensor pooled;
        if (Config.ClassifierPooling == "mean")
        {
            var mask = (attentionMask ?? torch.ones(hidden.shape[0], hidden.shape[1], dtype: ScalarType.Int64, device: hidden.device)).to(hidden.dtype); // [batch, seq]
            pooled = (hidden * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim: true); // [batch, hidden]
        }
        else pooled = hidden.select(1, 0); // [batch, hidden]
        var transformed = F.dropout(head.forward(pooled), Config.ClassifierDropout, training);
        return classifier.forward(transformed).to(ScalarType.Float32); // [batch, num_labels]
    }
}

/// <summary>ModernBertForTokenClassification: head (dense, classifier_activation, norm), dropout and classifier on
/// every position.</summary>
public sealed class ModernBertForTokenClassification : TokenClassificationModel
{
    public const string ArchitectureName = "ModernBertForTokenClassification";

    readonly ModernBertPredictionHead head;
    readonly Linear classifier;

    ModernBertForTokenClassification(ModernBertConfig c) : base(nameof(ModernBertForTokenClassification), c, "model", new ModernBertModel(c))
    {
        Config = c;
        head = new ModernBertPredictionHead(c);
        classifier = new Linear(c.HiddenSize, NumLabels, c.InitializerRange);
        register_module("head", head);
        register_module("classifier", classifier);
    }

    /// <summary>A randomly initialised token classifier with the config's labels (id2label), in training mode.</summary>
    public static ModernBertForTokenClassification Create(ModernBertConfig config)
    {
        config.Validate("ModernBERT config");
        return new ModernBertForTokenClassification(config with { Architectures = [ArchitectureName] });
    }

    public ModernBertConfig Config { get; }
    private protected override double InitializerRange => Config.InitializerRange;

    private protected override Tensor HeadForward(Tensor hidden, Tensor? attentionMask) =>
        classifier.forward(F.dropout(head.forward(hidden), Config.ClassifierDropout, training)).to(ScalarType.Float32); // [..., num_labels]
}
