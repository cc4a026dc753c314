
using TorchSharp.Modules;

namespace Unmask.Modeling;

// BERT, numerically equivalent to Hugging Face's BertModel and BertForMaskedLM (transformers 4.31). RoBERTa and
// XLM-RoBERTa are the same network configured differently (model_type "roberta" / "xlm-roberta"): positions offset
// by the padding id, the encoder named roberta., and RobertaLMHead (lm_head.*, always exact GELU) as the head.

/// <summary>word + token type + absolute position embeddings, then LayerNorm and dropout (ELECTRA's too).</summary>
internal sealed class BertEmbeddings : nn.Module
{
    [ComponentName(Name = "word_embeddings")] readonly Embedding wordEmbeddings;
    [ComponentName(Name = "position_embeddings")] readonly Embedding positionEmbeddings;
    [ComponentName(Name = "token_type_embeddings")] readonly Embedding tokenTypeEmbeddings;
    [ComponentName(Name = "LayerNorm")] readonly LayerNorm layerNorm;
    readonly double dropout;
    readonly long? positionPaddingIdx;

    /// <param name="width">The embedding width: hidden_size for BERT, embedding_size for ELECTRA.</param>
    public BertEmbeddings(BertConfig c, int width) : base(nameof(BertEmbeddings))
    {
        wordEmbeddings = new Embedding(c.VocabSize, width, c.InitializerRange, c.PadTokenId);
        positionPaddingIdx = c.IsRoberta ? c.PadTokenId : null;
        positionEmbeddings = new Embedding(c.MaxPositionEmbeddings, width, c.InitializerRange, positionPaddingIdx);
        tokenTypeEmbeddings = new Embedding(c.TypeVocabSize, width, c.InitializerRange);
        layerNorm = Parameters.LayerNorm(width, c.LayerNormEps);
        dropout = c.HiddenDropoutProb;
        RegisterComponents();
    }

    public Parameter WordEmbeddingWeight => wordEmbeddings.Weight;
    public Parameter PositionEmbeddingWeight => positionEmbeddings.Weight;

    public Tensor forward(Tensor inputIds, Tensor tokenTypeIds)
    {
        // BERT: positions are 0..T-1 whatever the padding, as in HF: left padding shifts the real tokens' positions.
        // RoBERTa: pad + 1 + index among the non-pad tokens, and pad for the pads, judged from the ids (not the mask).
        Tensor positions;
        if (positionPaddingIdx is long pad)
        {
            var real = inputIds.ne(pad).to(ScalarType.Int64); // [batch, seq]
            positions = real.cumsum(1) * real + pad; // [batch, seq]
        }
        else positions = torch.arange(inputIds.shape[1], dtype: ScalarType.Int64, device: inputIds.device).unsqueeze(0); // [1, seq]
        var embeddings = wordEmbeddings.forward(inputIds) + tokenTypeEmbeddings.forward(tokenTypeIds); // [batch, seq, hidden]
        embeddings = embeddings + positionEmbeddings.forward(positions);
        return F.dropout(layerNorm.forward(embeddings), dropout, training);
    }
}

/// <summary>Multi-head scaled dot-product attention over the keys the additive mask leaves open.</summary>
internal sealed class BertSelfAttention : nn.Module, IComputeDtypeAware
{
    [ComponentName(Name = "query")] readonly Linear query;
    [ComponentName(Name = "key")] readonly Linear key;
    [ComponentName(Name = "value")] readonly Linear value;
    readonly long heads;
    readonly long headSize;
    readonly double dropout;

    public BertSelfAttention(BertConfig c) : base(nameof(BertSelfAttention))
    {
        query = new Linear(c.HiddenSize, c.HiddenSize, c.InitializerRange);
        key = new Linear(c.HiddenSize, c.HiddenSize, c.InitializerRange);
        value = new Linear(c.HiddenSize, c.HiddenSize, c.InitializerRange);
        heads = c.NumAttentionHeads;
        headSize = c.HiddenSize / c.NumAttentionHeads;
        dropout = c.AttentionProbsDropoutProb;
        RegisterComponents();
    }

    public ComputeDtype ComputeDtype { get; set; }

    public IEnumerable<Tensor> QueryKeyWeights => [query.Weight, key.Weight];

    /// <param name="hidden">[batch, seq, hidden]</param>
    /// <param name="additiveMask">[batch, 1, 1, seq] in the compute dtype: 0 for visible keys, dtype.min for padding.</param>
    public Tensor forward(Tensor hidden, Tensor? additiveMask)
    {
        var (batch, seq) = (hidden.shape[0], hidden.shape[1]);
        var dtype = ComputeDtype == ComputeDtype.BFloat16 ? ScalarType.BFloat16 : ScalarType.Float32;
        Tensor SplitHeads(Tensor x) => x.view(batch, seq, heads, headSize).transpose(1, 2).to(dtype); // [batch, heads, seq, head]

        // One product against the stacked query/key/value weights instead of three: a third of the GEMM calls, and
        // the small matrices of the miniature presets are far from the GEMM's peak rate on their own.
        var weight = torch.cat([query.Weight, key.Weight, value.Weight]).to(dtype); // [3 * hidden, hidden]
        var bias = torch.cat([query.Bias!, key.Bias!, value.Bias!]).to(dtype); // [3 * hidden]
        var projected = F.linear(hidden.to(dtype), weight, bias); // [batch, seq, 3 * hidden]
        var parts = projected.chunk(3, dim: -1);
        var (q, k, v) = (SplitHeads(parts[0]), SplitHeads(parts[1]), SplitHeads(parts[2]));
        var context = F.scaled_dot_product_attention(q, k, v, additiveMask, training ? dropout : 0.0); // [batch, heads, seq, head]
        return context.transpose(1, 2).reshape(batch, seq, heads * headSize); // [batch, seq, hidden] in the compute dtype
    }
}

internal sealed class BertAttention : nn.Module
{
    [ComponentName(Name = "self")] readonly BertSelfAttention self;
    [ComponentName(Name = "output")] readonly BertOutput output;

    public BertAttention(BertConfig c) : base(nameof(BertAttention))
    {
        self = new BertSelfAttention(c);
        output = new BertOutput(c, c.HiddenSize);
        RegisterComponents();
    }

    public IEnumerable<Tensor> QueryKeyWeights => self.QueryKeyWeights;

    public Tensor forward(Tensor hidden, Tensor? additiveMask) => output.forward(self.forward(hidden, additiveMask), hidden);
}

/// <summary>The feed-forward expansion: dense to intermediate_size, then hidden_act.</summary>
internal sealed class BertIntermediate : nn.Module
{
    [ComponentName(Name = "dense")] readonly Linear dense;
    readonly Func<Tensor, Tensor> activation;

    public BertIntermediate(BertConfig c) : base(nameof(BertIntermediate))
    {
        dense = new Linear(c.HiddenSize, c.IntermediateSize, c.InitializerRange);
        activation = HfActivations.Get(c.HiddenAct);
        RegisterComponents();
    }

    public Tensor forward(Tensor hidden) => activation(dense.forward(hidden));
}

/// <summary>
/// Projection back to hidden_size, dropout, residual connection and post-LayerNorm: HF's BertSelfOutput after the
/// attention (from hidden_size) and BertOutput after the feed-forward (from intermediate_size) are this one module.
/// </summary>
internal sealed class BertOutput : nn.Module
{
    [ComponentName(Name = "dense")] readonly Linear dense;
    [ComponentName(Name = "LayerNorm")] readonly LayerNorm layerNorm;
    readonly double dropout;

    public BertOutput(BertConfig c, int inputSize) : base(nameof(BertOutput))
    {
        dense = new Linear(inputSize, c.HiddenSize, c.InitializerRange);
        layerNorm = Parameters.LayerNorm(c.HiddenSize, c.LayerNormEps);
        dropout = c.HiddenDropoutProb;
        RegisterComponents();
    }

    public Tensor forward(Tensor input, Tensor residual) =>
        layerNorm.forward(F.dropout(dense.forward(input), dropout, training) + residual);
}

internal sealed class BertLayer : nn.Module
{
    [ComponentName(Name = "attention")] readonly BertAttention attention;
    [ComponentName(Name = "intermediate")] readonly BertIntermediate intermediate;
    [ComponentName(Name = "output")] readonly BertOutput output;

    public BertLayer(BertConfig c) : base(nameof(BertLayer))
    {
        attention = new BertAttention(c);
        intermediate = new BertIntermediate(c);
        output = new BertOutput(c, c.IntermediateSize);
        RegisterComponents();
    }

    public IEnumerable<Tensor> QueryKeyWeights => attention.QueryKeyWeights;

    public Tensor forward(Tensor hidden, Tensor? additiveMask)
    {
        var attended = attention.forward(hidden, additiveMask); // [batch, seq, hidden]
        return output.forward(intermediate.forward(attended), attended);
    }
}

internal sealed class BertEncoder : nn.Module
{
    [ComponentName(Name = "layer")] readonly ModuleList<BertLayer> layers;

    public BertEncoder(BertConfig c) : base(nameof(BertEncoder))
    {
        layers = nn.ModuleList(Enumerable.Range(0, c.NumHiddenLayers).Select(_ => new BertLayer(c)).ToArray());
        RegisterComponents();
    }

    public IEnumerable<Tensor> QueryKeyWeights => layers.SelectMany(l => l.QueryKeyWeights);

    /// <param name="hiddenStates">When given, receives each layer's output; the last one is the returned tensor.</param>
    public Tensor forward(Tensor hidden, Tensor? additiveMask, List<Tensor>? hiddenStates)
    {
        foreach (var layer in layers)
        {
            hidden = layer.forward(hidden, additiveMask);
            hiddenStates?.Add(hidden);
        }
        return hidden;
    }
}

/// <summary>dense and tanh on the first token: what classification heads read (bert.pooler.*).</summary>
internal sealed class BertPooler : nn.Module
{
    [ComponentName(Name = "dense")] readonly Linear dense;

    public BertPooler(BertConfig c) : base(nameof(BertPooler))
    {
        dense = new Linear(c.HiddenSize, c.HiddenSize, c.InitializerRange);
        RegisterComponents();
    }

    /// <returns>[batch, hidden] float32.</returns>
    public Tensor forward(Tensor sequence) => dense.forward(sequence.select(1, 0)).tanh().to(ScalarType.Float32);
}

/// <summary>HF's BertModel (RobertaModel for RoBERTa configs): embeddings, layers, and the pooler when it has one.</summary>
internal sealed class BertModel : Encoder
{
    [ComponentName(Name = "embeddings")] readonly BertEmbeddings embeddings;
    [ComponentName(Name = "encoder")] readonly BertEncoder encoder;
    [ComponentName(Name = "pooler")] readonly BertPooler? pooler;
    readonly BertConfig config;

    /// <param name="addPoolingLayer">HF's add_pooling_layer: masked-LM classes leave it out, but a checkpoint that
    /// carries bert.pooler.* keeps it, so that saving writes it back.</param>
    public BertModel(BertConfig c, bool addPoolingLayer) : base(nameof(BertModel))
    {
        embeddings = new BertEmbeddings(c, c.HiddenSize);
        encoder = new BertEncoder(c);
        if (addPoolingLayer) pooler = new BertPooler(c);
        config = c;
        RegisterComponents();
    }

    public bool HasPooler => pooler is not null;
    public override Parameter WordEmbeddingWeight => embeddings.WordEmbeddingWeight;
    public override int MaxSequenceLength => config.MaxSequenceLength;
    public override bool UsesTokenTypeIds => true;

    public override Tensor forward(Tensor inputIds, Tensor? attentionMask, Tensor? tokenTypeIds, List<Tensor>? hiddenStates)
    {
        var hidden = embeddings.forward(inputIds, tokenTypeIds ?? torch.zeros_like(inputIds)); // [batch, seq, hidden]
        hiddenStates?.Add(hidden);
        return encoder.forward(hidden, AttentionMasks.Additive(attentionMask, ComputeDtype.ScalarType()), hiddenStates);
    }

    public override Tensor? Pool(Tensor lastHiddenState) => pooler?.forward(lastHiddenState);

    internal override void InitialiseLocalAttention(double initializerRange, double queryKeyScale) =>
        LocalAttention.Initialise(embeddings.PositionEmbeddingWeight, encoder.QueryKeyWeights, initializerRange, queryKeyScale);
}

/// <summary>dense, hidden_act, LayerNorm: the transform before the vocabulary projection.</summary>
internal sealed class BertPredictionHeadTransform : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "dense")] readonly Linear dense;
    [ComponentName(Name = "LayerNorm")] readonly LayerNorm layerNorm;
    readonly Func<Tensor, Tensor> activation;

    public BertPredictionHeadTransform(BertConfig c) : base(nameof(BertPredictionHeadTransform))
    {
        dense = new Linear(c.HiddenSize, c.HiddenSize, c.InitializerRange);
        layerNorm = Parameters.LayerNorm(c.HiddenSize, c.LayerNormEps);
        activation = HfActivations.Get(c.HiddenAct);
        RegisterComponents();
    }

    public override Tensor forward(Tensor hidden) =>
        layerNorm.forward(activation(dense.forward(hidden)).to(ScalarType.Float32));
}

/// <summary>Transform, then the decoder onto the vocabulary. The decoder's bias is this module's <c>bias</c>.</summary>
internal sealed class BertLMPredictionHead : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "bias")] readonly Parameter bias; // [vocab]
    [ComponentName(Name = "transform")] readonly BertPredictionHeadTransform transform;
    [ComponentName(Name = "decoder")] readonly Linear decoder;

    public BertLMPredictionHead(BertConfig c, Parameter wordEmbeddingWeight) : base(nameof(BertLMPredictionHead))
    {
        bias = Parameters.Zeros([c.VocabSize]);
        transform = new BertPredictionHeadTransform(c);
        var decoderWeight = c.TieWordEmbeddings
            ? wordEmbeddingWeight
            : Parameters.Normal([c.VocabSize, c.HiddenSize], c.InitializerRange);
        decoder = new Linear(decoderWeight, bias);
        RegisterComponents();
    }

    public override Tensor forward(Tensor hidden) => decoder.forward(transform.forward(hidden)).to(ScalarType.Float32);
}

internal sealed class BertOnlyMLMHead : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "predictions")] readonly BertLMPredictionHead predictions;

    public BertOnlyMLMHead(BertConfig c, Parameter wordEmbeddingWeight) : base(nameof(BertOnlyMLMHead))
    {
        predictions = new BertLMPredictionHead(c, wordEmbeddingWeight);
        RegisterComponents();
    }

    public override Tensor forward(Tensor hidden) => predictions.forward(hidden);
}

/// <summary>RoBERTa's head: dense, exact GELU (whatever hidden_act says), layer_norm, decoder with the shared bias.</summary>
internal sealed class RobertaLMHead : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "bias")] readonly Parameter bias; // [vocab]
    [ComponentName(Name = "dense")] readonly Linear dense;
    [ComponentName(Name = "layer_norm")] readonly LayerNorm layerNorm;
    [ComponentName(Name = "decoder")] readonly Linear decoder;

    public RobertaLMHead(BertConfig c, Parameter wordEmbeddingWeight) : base(nameof(RobertaLMHead))
    {
        bias = Parameters.Zeros([c.VocabSize]);
        dense = new Linear(c.HiddenSize, c.HiddenSize, c.InitializerRange);
        layerNorm = Parameters.LayerNorm(c.HiddenSize, c.LayerNormEps);
        var decoderWeight = c.TieWordEmbeddings
            ? wordEmbeddingWeight
            : Parameters.Normal([c.VocabSize, c.HiddenSize], c.InitializerRange);
        decoder = new Linear(decoderWeight, bias);
        RegisterComponents();
    }

    public override Tensor forward(Tensor hidden) =>
        decoder.forward(layerNorm.forward(F.gelu(dense.forward(hidden)).to(ScalarType.Float32))).to(ScalarType.Float32);
}

/// <summary>
/// BERT (or RoBERTa, XLM-RoBERTa) with its masked-language-model head. With tied embeddings the decoder weight is the
/// same Parameter as the word embeddings, and the decoder bias always the head's own <c>bias</c>; state_dict() lists
/// both names, <see cref="PretrainedModel.StateDictForSave"/> only the ones HF writes.
/// </summary>
public sealed class BertForMaskedLM : PretrainedModel
{
    readonly nn.Module<Tensor, Tensor> lmHead;
    readonly HashSet<string> tiedNames;
    readonly bool hasPooler;

    BertForMaskedLM(BertConfig c, bool addPoolingLayer) : base(nameof(BertForMaskedLM), c, c.IsRoberta ? "roberta" : "bert", new BertModel(c, addPoolingLayer))
    {
        Config = c;
        hasPooler = addPoolingLayer;
        var headName = c.IsRoberta ? "lm_head" : "cls";
        lmHead = c.IsRoberta ? new RobertaLMHead(c, Encoder.WordEmbeddingWeight) : new BertOnlyMLMHead(c, Encoder.WordEmbeddingWeight);
        register_module(headName, lmHead);
        var decoder = c.IsRoberta ? "lm_head.decoder." : "cls.predictions.decoder.";
        tiedNames = c.TieWordEmbeddings ? [decoder + "bias", decoder + "weight"] : [decoder + "bias"];
    }

    /// <summary>
    /// Builds a randomly initialised model like HF's _init_weights: N(0, initializer_range) for matrices and embeddings,
    /// zero biases and padding row, LayerNorm 1/0. Seed with torch.manual_seed first for reproducible weights.
    /// The model starts in training mode, as in HF; call eval() for inference.
    /// </summary>
    /// <param name="addPoolingLayer">Also build bert.pooler (for checkpoints that carry it).</param>
    public static BertForMaskedLM Create(BertConfig config, ComputeDtype computeDtype = ComputeDtype.Float32, bool addPoolingLayer = false)
    {
        config.Validate("BERT config");
        var named = config with { Architectures = [BertConfig.DefaultArchitecture(config.ModelType)] };
        return new BertForMaskedLM(named, addPoolingLayer) { ComputeDtype = computeDtype };
    }

    public BertConfig Config { get; }
    public override HeadKind Head => HeadKind.MaskedLm;
    private protected override double InitializerRange => Config.InitializerRange;
    private protected override IReadOnlySet<string> TiedNames => tiedNames;

    // BertForPreTraining checkpoints (bert-base-uncased among them) also carry the next-sentence head, unused here.
    private protected override bool IgnoredOnLoad(string name) => base.IgnoredOnLoad(name)
        || name.StartsWith("cls.seq_relationship.", StringComparison.Ordinal)
        || (!hasPooler && name.StartsWith(EncoderPrefix + ".pooler.", StringComparison.Ordinal));

    private protected override Tensor HeadForward(Tensor hidden, Tensor? attentionMask) => lmHead.forward(hidden);

    private protected override Tensor HeadLoss(Tensor logits, Tensor labels, Tensor? attentionMask) => MaskedLmLoss(logits, labels);
}

/// <summary>
/// BertForSequenceClassification: the pooler's output, dropout, classifier. For RoBERTa configs
/// RobertaForSequenceClassification: no pooler; classifier.dense, tanh and classifier.out_proj on the first token.
/// </summary>
public sealed class BertForSequenceClassification : SequenceClassificationModel
{
    readonly nn.Module<Tensor, Tensor>? robertaHead;
    readonly Linear? classifier;
    readonly double dropout;

    BertForSequenceClassification(BertConfig c) : base(nameof(BertForSequenceClassification), c, c.IsRoberta ? "roberta" : "bert", new BertModel(c, addPoolingLayer: !c.IsRoberta))
    {
        Config = c;
        dropout = c.ClassifierDropout ?? c.HiddenDropoutProb;
        if (c.IsRoberta)
        {
            robertaHead = new FirstTokenClassificationHead(c.HiddenSize, NumLabels, c.InitializerRange, dropout, x => x.tanh());
            register_module("classifier", robertaHead);
        }
        else
        {
            classifier = new Linear(c.HiddenSize, NumLabels, c.InitializerRange);
            register_module("classifier", classifier);
        }
    }

    /// <summary>A randomly initialised classifier with the config's labels (id2label), in training mode.</summary>
    public static BertForSequenceClassification Create(BertConfig config)
    {
        config.Validate("BERT config");
        return new BertForSequenceClassification(config with { Architectures = [BertConfig.ClassName(config.ModelType, "ForSequenceClassification")] });
    }

    public BertConfig Config { get; }
    private protected override double InitializerRange => Config.InitializerRange;

    private protected override Tensor HeadForward(Tensor hidden, Tensor? attentionMask)
    {
        if (robertaHead is not null) return robertaHead.forward(hidden);
        var pooled = F.dropout(Encoder.Pool(hidden)!, dropout, training); // [batch, hidden]
        return classifier!.forward(pooled).to(ScalarType.Float32); // [batch, num_labels]
    }
}

/// <summary>BertForTokenClassification (RobertaForTokenClassification for RoBERTa configs): dropout and a linear
/// classifier on every position; no pooler.</summary>
public sealed class BertForTokenClassification : TokenClassificationModel
{
    readonly Linear classifier;
    readonly double dropout;

    BertForTokenClassification(BertConfig c) : base(nameof(BertForTokenClassification), c, c.IsRoberta ? "roberta" : "bert", new BertModel(c, addPoolingLayer: false))
    {
        Config = c;
        dropout = c.ClassifierDropout ?? c.HiddenDropoutProb;
        classifier = new Linear(c.HiddenSize, NumLabels, c.InitializerRange);
        register_module("classifier", classifier);
    }

    /// <summary>A randomly initialised token classifier with the config's labels (id2label), in training mode.</summary>
    public static BertForTokenClassification Create(BertConfig config)
    {
        config.Validate("BERT config");
        return new BertForTokenClassification(config with { Architectures = [BertConfig.ClassName(config.ModelType, "ForTokenClassification")] });
    }

    public BertConfig Config { get; }
    private protected override double InitializerRange => Config.InitializerRange;

    // BERT's pooler is not part of this class; a checkpoint that carries one (a sequence classifier's) leaves it unused.
    private protected override bool IgnoredOnLoad(string name) => base.IgnoredOnLoad(name)
        || name.StartsWith(EncoderPrefix + ".pooler.", StringComparison.Ordinal);

    private protected override Tensor HeadForward(Tensor hidden, Tensor? attentionMask) =>
        classifier.forward(F.dropout(hidden, dropout, training)).to(ScalarType.Float32); // [..., num_labels]
}
