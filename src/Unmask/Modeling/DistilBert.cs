
using TorchSharp.Modules;

namespace Unmask.Modeling;

// DistilBERT, numerically equivalent to Hugging Face's DistilBertModel and DistilBertForMaskedLM (transformers 4.31):
// no token types, post-LayerNorm blocks, every LayerNorm with a hard-coded eps of 1e-12.

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
        layerNorm = Parameters.LayerNorm(c.Dim, DistilBertConfig.LayerNormEps);
        dropout = c.Dropout;
        RegisterComponents();
    }

    public Parameter WordEmbeddingWeight => wordEmbeddings.Weight;
    public Parameter PositionEmbeddingWeight => positionEmbeddings.Weight;

    public Tensor forward(Tensor inputIds)
    {
        var positions = torch.arange(inputIds.shape[1], dtype: ScalarType.Int64, device: inputIds.device).unsqueeze(0); // [1, seq]
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
        using var values = torch.tensor(table, [count, dim], device: ComputeDevice.Cpu);
        weight.copy_(values);
    }
}

/// <summary>Multi-head attention as DistilBERT computes it: q scaled before the product, padded keys filled with dtype.min.</summary>
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

    public IEnumerable<Tensor> QueryKeyWeights => [qLin.Weight, kLin.Weight];

    /// <param name="hidden">[batch, seq, dim]</param>
    /// <param name="keyPadding">[batch, 1, 1, seq], true on padded keys.</param>
    public Tensor forward(Tensor hidden, Tensor keyPadding)
    {
        var (batch, seq) = (hidden.shape[0], hidden.shape[1]);
        Tensor SplitHeads(Tensor x) => x.view(batch, seq, heads, headSize).transpose(1, 2); // [batch, heads, seq, head]

        var q = SplitHeads(qLin.forward(hidden)) / Math.Sqrt(headSize);
        var k = SplitHeads(kLin.forward(hidden));
        var v = SplitHeads(vLin.forward(hidden));
        var scores = q.matmul(k.transpose(2, 3)); // [batch, heads, seq, seq] in the compute dtype
        // dtype.min of the scores' own type: float32.min would round to -inf in bfloat16 and a fully padded row to NaN.
        scores = scores.masked_fill(keyPadding, torch.finfo(scores.dtype).min);
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
        saLayerNorm = Parameters.LayerNorm(c.Dim, DistilBertConfig.LayerNormEps);
        ffn = new DistilBertFfn(c);
        outputLayerNorm = Parameters.LayerNorm(c.Dim, DistilBertConfig.LayerNormEps);
        RegisterComponents();
    }

    public IEnumerable<Tensor> QueryKeyWeights => attention.QueryKeyWeights;

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

    public IEnumerable<Tensor> QueryKeyWeights => layers.SelectMany(l => l.QueryKeyWeights);

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

/// <summary>HF's DistilBertModel: embeddings and transformer blocks; no token types, no pooler.</summary>
internal sealed class DistilBertModel : Encoder
{
    [ComponentName(Name = "embeddings")] readonly DistilBertEmbeddings embeddings;
    [ComponentName(Name = "transformer")] readonly DistilBertTransformer transformer;
    readonly DistilBertConfig config;

    public DistilBertModel(DistilBertConfig c) : base(nameof(DistilBertModel))
    {
        embeddings = new DistilBertEmbeddings(c);
        transformer = new DistilBertTransformer(c);
        config = c;
        RegisterComponents();
    }

    public override Parameter WordEmbeddingWeight => embeddings.WordEmbeddingWeight;
    public override int MaxSequenceLength => config.MaxPositionEmbeddings;
    public override bool UsesTokenTypeIds => false;

    public override Tensor forward(Tensor inputIds, Tensor? attentionMask, Tensor? tokenTypeIds, List<Tensor>? hiddenStates)
    {
        var hidden = embeddings.forward(inputIds); // [batch, seq, dim]
        hiddenStates?.Add(hidden);
        var keyPadding = attentionMask is null
            ? torch.zeros(inputIds.shape[0], 1, 1, inputIds.shape[1], dtype: ScalarType.Bool, device: inputIds.device)
            : attentionMask.eq(0).unsqueeze(1).unsqueeze(2); // [batch, 1, 1, seq]
        return transformer.forward(hidden, keyPadding, hiddenStates);
    }

    internal override void InitialiseLocalAttention(double initializerRange, double queryKeyScale) =>
        LocalAttention.Initialise(embeddings.PositionEmbeddingWeight, transformer.QueryKeyWeights, initializerRange, queryKeyScale);
}

/// <summary>
/// DistilBERT with its masked-LM head (vocab_transform, activation, vocab_layer_norm, vocab_projector). The projector's
/// weight is the word embedding matrix unless <c>tie_word_embeddings</c> is false; HF then writes it.
/// </summary>
public sealed class DistilBertForMaskedLM : PretrainedModel
{
    public const string ArchitectureName = "DistilBertForMaskedLM";

    readonly Linear vocabTransform;
    readonly LayerNorm vocabLayerNorm;
    readonly Linear vocabProjector;
    readonly Func<Tensor, Tensor> activation;
    readonly HashSet<string> tiedNames;

    DistilBertForMaskedLM(DistilBertConfig c) : base(nameof(DistilBertForMaskedLM), c, "distilbert", new DistilBertModel(c))
    {
        Config = c;
        vocabTransform = new Linear(c.Dim, c.Dim, c.InitializerRange);
        vocabLayerNorm = Parameters.LayerNorm(c.Dim, DistilBertConfig.LayerNormEps);
        var projectorWeight = c.TieWordEmbeddings ? Encoder.WordEmbeddingWeight : Parameters.Normal([c.VocabSize, c.Dim], c.InitializerRange);
        vocabProjector = new Linear(projectorWeight, Parameters.Zeros([c.VocabSize]));
        activation = HfActivations.Get(c.Activation);
        register_module("vocab_transform", vocabTransform);
        register_module("vocab_layer_norm", vocabLayerNorm);
        register_module("vocab_projector", vocabProjector);
        tiedNames = c.TieWordEmbeddings ? ["vocab_projector.weight"] : [];
    }

    /// <summary>A randomly initialised model (HF's _init_weights), in training mode.</summary>
    public static DistilBertForMaskedLM Create(DistilBertConfig config)
    {
        config.Validate("DistilBERT config");
        return new DistilBertForMaskedLM(config with { Architectures = [ArchitectureName] });
    }

    public DistilBertConfig Config { get; }
    public override HeadKind Head => HeadKind.MaskedLm;
    private protected override double InitializerRange => Config.InitializerRange;
    private protected override IReadOnlySet<string> TiedNames => tiedNames;

    // LayerNorm runs in float32 under a bf16 compute dtype; logits leave in float32.
    private protected override Tensor HeadForward(Tensor hidden, Tensor? attentionMask) =>
        vocabProjector.forward(vocabLayerNorm.forward(activation(vocabTransform.forward(hidden)).to(ScalarType.Float32))).to(ScalarType.Float32);

    private protected override Tensor HeadLoss(Tensor logits, Tensor labels, Tensor? attentionMask) => MaskedLmLoss(logits, labels);
}

/// <summary>DistilBertForSequenceClassification: the first token through pre_classifier, ReLU, dropout
/// (seq_classif_dropout) and classifier.</summary>
public sealed class DistilBertForSequenceClassification : SequenceClassificationModel
{
    public const string ArchitectureName = "DistilBertForSequenceClassification";

    readonly Linear preClassifier;
    readonly Linear classifier;

    DistilBertForSequenceClassification(DistilBertConfig c) : base(nameof(DistilBertForSequenceClassification), c, "distilbert", new DistilBertModel(c))
    {
        Config = c;
        preClassifier = new Linear(c.Dim, c.Dim, c.InitializerRange);
        classifier = new Linear(c.Dim, NumLabels, c.InitializerRange);
        register_module("pre_classifier", preClassifier);
        register_module("classifier", classifier);
    }

    /// <summary>A randomly initialised classifier with the config's labels (id2label), in training mode.</summary>
    public static DistilBertForSequenceClassification Create(DistilBertConfig config)
    {
        config.Validate("DistilBERT config");
        return new DistilBertForSequenceClassification(config with { Architectures = [ArchitectureName] });
    }

    public DistilBertConfig Config { get; }
    private protected override double InitializerRange => Config.InitializerRange;

    private protected override Tensor HeadForward(Tensor hidden, Tensor? attentionMask)
    {
        var pooled = F.relu(preClassifier.forward(hidden.select(1, 0))); // [batch, dim]
        return classifier.forward(F.dropout(pooled, Config.SeqClassifDropout, training)).to(ScalarType.Float32); // [batch, num_labels]
    }
}

/// <summary>DistilBertForTokenClassification: dropout (the config's dropout) and a linear classifier on every position.</summary>
public sealed class DistilBertForTokenClassification : TokenClassificationModel
{
    public const string ArchitectureName = "DistilBertForTokenClassification";

    readonly Linear classifier;

    DistilBertForTokenClassification(DistilBertConfig c) : base(nameof(DistilBertForTokenClassification), c, "distilbert", new DistilBertModel(c))
    {
        Config = c;
        classifier = new Linear(c.Dim, NumLabels, c.InitializerRange);
        register_module("classifier", classifier);
    }

    /// <summary>A randomly initialised token classifier with the config's labels (id2label), in training mode.</summary>
    public static DistilBertForTokenClassification Create(DistilBertConfig config)
    {
        config.Validate("DistilBERT config");
        return new DistilBertForTokenClassification(config with { Architectures = [ArchitectureName] });
    }

    public DistilBertConfig Config { get; }
    private protected override double InitializerRange => Config.InitializerRange;

    private protected override Tensor HeadForward(Tensor hidden, Tensor? attentionMask) =>
        classifier.forward(F.dropout(hidden, Config.Dropout, training)).to(ScalarType.Float32); // [..., num_labels]
}
