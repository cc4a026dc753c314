
using TorchSharp.Modules;

namespace Unmask.Modeling;

// ELECTRA's encoder, generator (ElectraForMaskedLM) and discriminator (ElectraForPreTraining), numerically equivalent
// to Hugging Face's (transformers 4.31). The layers are BERT's; the embeddings have their own width (embedding_size),
// projected to hidden_size by electra.embeddings_project when the two differ.

/// <summary>HF's ElectraModel: BERT's embeddings at embedding_size, the projection, BERT's layers. No pooler.</summary>
internal sealed class ElectraModel : Encoder
{
    [ComponentName(Name = "embeddings")] readonly BertEmbeddings embeddings;
    [ComponentName(Name = "embeddings_project")] readonly Linear? embeddingsProject;
    [ComponentName(Name = "encoder")] readonly BertEncoder encoder;
    readonly ElectraConfig config;

    /// <param name="sharedEmbeddings">Another model's embedding module to use instead of new ones (ELECTRA pretraining).</param>
    public ElectraModel(ElectraConfig c, BertEmbeddings? sharedEmbeddings = null) : base(nameof(ElectraModel))
    {
        embeddings = sharedEmbeddings ?? new BertEmbeddings(c.EncoderConfig(), c.EmbeddingSize);
        if (c.EmbeddingSize != c.HiddenSize) embeddingsProject = new Linear(c.EmbeddingSize, c.HiddenSize, c.InitializerRange);
        encoder = new BertEncoder(c.EncoderConfig());
        config = c;
        RegisterComponents();
    }

    public override Parameter WordEmbeddingWeight => embeddings.WordEmbeddingWeight;
    public override int MaxSequenceLength => config.MaxPositionEmbeddings;
    public override bool UsesTokenTypeIds => true;
    public BertEmbeddings Embeddings => embeddings;

    /// <param name="hiddenStates">Receives the encoder's input (after the projection, as HF reports it), then each layer's output.</param>
    public override Tensor forward(Tensor inputIds, Tensor? attentionMask, Tensor? tokenTypeIds, List<Tensor>? hiddenStates)
    {
        var hidden = embeddings.forward(inputIds, tokenTypeIds ?? torch.zeros_like(inputIds)); // [batch, seq, embedding]
        // The residual stream stays float32 whatever the compute dtype, as BERT's embeddings leave it.
        if (embeddingsProject is not null) hidden = embeddingsProject.forward(hidden).to(ScalarType.Float32); // [batch, seq, hidden]
        hiddenStates?.Add(hidden);
        return encoder.forward(hidden, AttentionMasks.Additive(attentionMask, ComputeDtype.ScalarType()), hiddenStates);
    }

    /// <remarks>The sinusoids are embedding_size wide; a generator projecting them to a narrower hidden size sees them
    /// through that random projection, so its start is less sharply local than the discriminator's.</remarks>
    internal override void InitialiseLocalAttention(double initializerRange, double queryKeyScale) =>
        LocalAttention.Initialise(embeddings.PositionEmbeddingWeight, encoder.QueryKeyWeights, initializerRange, queryKeyScale);
}

/// <summary>The generator's head before the vocabulary: dense (hidden → embedding), exact GELU, LayerNorm.</summary>
internal sealed class ElectraGeneratorPredictions : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "dense")] readonly Linear dense;
    [ComponentName(Name = "LayerNorm")] readonly LayerNorm layerNorm;

    public ElectraGeneratorPredictions(ElectraConfig c) : base(nameof(ElectraGeneratorPredictions))
    {
        dense = new Linear(c.HiddenSize, c.EmbeddingSize, c.InitializerRange);
        layerNorm = Parameters.LayerNorm(c.EmbeddingSize, c.LayerNormEps);
        RegisterComponents();
    }

    // HF hard-codes "gelu" here, whatever hidden_act says. LayerNorm runs in float32 under a bf16 compute dtype.
    public override Tensor forward(Tensor hidden) => layerNorm.forward(F.gelu(dense.forward(hidden)).to(ScalarType.Float32));
}

/// <summary>
/// ELECTRA's generator: a small masked LM whose output projection (<c>generator_lm_head</c>) shares the word embedding
/// matrix unless <c>tie_word_embeddings</c> is false.
/// </summary>
public sealed class ElectraForMaskedLM : PretrainedModel
{
    public const string ArchitectureName = "ElectraForMaskedLM";

    readonly ElectraGeneratorPredictions generatorPredictions;
    readonly Linear generatorLmHead;
    readonly HashSet<string> tiedNames;

    ElectraForMaskedLM(ElectraConfig c, BertEmbeddings? sharedEmbeddings) : base(nameof(ElectraForMaskedLM), c, "electra", new ElectraModel(c, sharedEmbeddings))
    {
        Config = c;
        generatorPredictions = new ElectraGeneratorPredictions(c);
        var weight = c.TieWordEmbeddings ? Encoder.WordEmbeddingWeight : Parameters.Normal([c.VocabSize, c.EmbeddingSize], c.InitializerRange);
        generatorLmHead = new Linear(weight, Parameters.Zeros([c.VocabSize]));
        register_module("generator_predictions", generatorPredictions);
        register_module("generator_lm_head", generatorLmHead);
        tiedNames = c.TieWordEmbeddings ? ["generator_lm_head.weight"] : [];
    }

    /// <summary>A randomly initialised model (HF's _init_weights), in training mode.</summary>
    public static ElectraForMaskedLM Create(ElectraConfig config)
    {
        config.Validate("ELECTRA config");
        return new ElectraForMaskedLM(config with { Architectures = [ArchitectureName] }, null);
    }

    /// <summary>
    /// A generator for ELECTRA pretraining that uses <paramref name="discriminator"/>'s embedding module itself (word,
    /// position and token type embeddings and their LayerNorm), as the paper ties them: the two models then hold the
    /// same parameters, and the generator's output projection is tied to that shared word embedding matrix.
    /// </summary>
    public static ElectraForMaskedLM CreateSharingEmbeddings(ElectraConfig config, ElectraForPreTraining discriminator)
    {
        config.Validate("ELECTRA generator config");
        var shared = discriminator.Config;
        if ((config.VocabSize, config.EmbeddingSize, config.MaxPositionEmbeddings, config.TypeVocabSize, config.LayerNormEps, config.PadTokenId, config.HiddenDropoutProb)
            != (shared.VocabSize, shared.EmbeddingSize, shared.MaxPositionEmbeddings, shared.TypeVocabSize, shared.LayerNormEps, shared.PadTokenId, shared.HiddenDropoutProb))
            throw new ArgumentException("the generator's embedding settings (vocab_size, embedding_size, max_position_embeddings, type_vocab_size, layer_norm_eps, pad_token_id, hidden_dropout_prob) must equal the discriminator's to share its embeddings", nameof(config));
        if (!config.TieWordEmbeddings) throw new ArgumentException("a generator sharing embeddings ties its output projection to them", nameof(config));
        return new ElectraForMaskedLM(config with { Architectures = [ArchitectureName] }, ((ElectraModel)discriminator.Encoder).Embeddings)
        {
            ComputeDtype = discriminator.ComputeDtype,
        };
    }

    public ElectraConfig Config { get; }
    public override HeadKind Head => HeadKind.MaskedLm;
    private protected override double InitializerRange => Config.InitializerRange;
    private protected override IReadOnlySet<string> TiedNames => tiedNames;

    private protected override Tensor HeadForward(Tensor hidden, Tensor? attentionMask) =>
        generatorLmHead.forward(generatorPredictions.forward(hidden)).to(ScalarType.Float32);

    private protected override Tensor HeadLoss(Tensor logits, Tensor labels, Tensor? attentionMask) => MaskedLmLoss(logits, labels);
}

/// <summary>The discriminator's head: dense, hidden_act, then one logit per position.</summary>
internal sealed class ElectraDiscriminatorPredictions : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "dense")] readonly Linear dense;
    [ComponentName(Name = "dense_prediction")] readonly Linear densePrediction;
    readonly Func<Tensor, Tensor> activation;

    public ElectraDiscriminatorPredictions(ElectraConfig c) : base(nameof(ElectraDiscriminatorPredictions))
    {
        dense = new Linear(c.HiddenSize, c.HiddenSize, c.InitializerRange);
        densePrediction = new Linear(c.HiddenSize, 1, c.InitializerRange);
        activation = HfActivations.Get(c.HiddenAct);
        RegisterComponents();
    }

    public override Tensor forward(Tensor hidden) =>
        densePrediction.forward(activation(dense.forward(hidden))).squeeze(-1).to(ScalarType.Float32);
}

/// <summary>
/// ELECTRA's discriminator: for every position, the logit that the token was replaced. Labels are 1 (replaced) or
/// 0 (original), -100 to leave a position out; the loss is binary cross-entropy over the unpadded labelled positions.
/// </summary>
public sealed class ElectraForPreTraining : PretrainedModel
{
    public const string ArchitectureName = "ElectraForPreTraining";

    readonly ElectraDiscriminatorPredictions discriminatorPredictions;

    ElectraForPreTraining(ElectraConfig c) : base(nameof(ElectraForPreTraining), c, "electra", new ElectraModel(c))
    {
        Config = c;
        discriminatorPredictions = new ElectraDiscriminatorPredictions(c);
        register_module("discriminator_predictions", discriminatorPredictions);
    }

    /// <summary>A randomly initialised model (HF's _init_weights), in training mode.</summary>
    public static ElectraForPreTraining Create(ElectraConfig config)
    {
        config.Validate("ELECTRA config");
        return new ElectraForPreTraining(config with { Architectures = [ArchitectureName] });
    }

    public ElectraConfig Config { get; }
    public override HeadKind Head => HeadKind.ReplacedToken;
    private protected override double InitializerRange => Config.InitializerRange;
    private protected override IReadOnlySet<string> TiedNames { get; } = new HashSet<string>();

    /// <returns>[batch, seq] (at selected positions: [n]).</returns>
    private protected override Tensor HeadForward(Tensor hidden, Tensor? attentionMask) => discriminatorPredictions.forward(hidden);

    // HF counts only positions whose attention mask is 1; -100 leaves a position out as everywhere else.
    private protected override Tensor HeadLoss(Tensor logits, Tensor labels, Tensor? attentionMask)
    {
        var active = labels.ne(-100);
        if (attentionMask is not null) active = active.logical_and(attentionMask.eq(1));
        var rows = active.reshape(-1).nonzero().squeeze(1); // [n]
        return F.binary_cross_entropy_with_logits(logits.reshape(-1).index_select(0, rows),
            labels.reshape(-1).index_select(0, rows).to(ScalarType.Float32));
    }
}

/// <summary>ElectraForSequenceClassification: classifier.dense, exact GELU (whatever hidden_act says, as in HF) and
/// classifier.out_proj on the first token, with dropout before each.</summary>
public sealed class ElectraForSequenceClassification : SequenceClassificationModel
{
    public const string ArchitectureName = "ElectraForSequenceClassification";

    readonly FirstTokenClassificationHead classifier;

    ElectraForSequenceClassification(ElectraConfig c) : base(nameof(ElectraForSequenceClassification), c, "electra", new ElectraModel(c))
    {
        Config = c;
        classifier = new FirstTokenClassificationHead(c.HiddenSize, NumLabels, c.InitializerRange,
            c.ClassifierDropout ?? c.HiddenDropoutProb, x => F.gelu(x));
        register_module("classifier", classifier);
    }

    /// <summary>A randomly initialised classifier with the config's labels (id2label), in training mode.</summary>
    public static ElectraForSequenceClassification Create(ElectraConfig config)
    {
        config.Validate("ELECTRA config");
        return new ElectraForSequenceClassification(config with { Architectures = [ArchitectureName] });
    }

    public ElectraConfig Config { get; }
    private protected override double InitializerRange => Config.InitializerRange;

    private protected override Tensor HeadForward(Tensor hidden, Tensor? attentionMask) => classifier.forward(hidden);
}

/// <summary>ElectraForTokenClassification: dropout (classifier_dropout, else hidden_dropout_prob) and a linear
/// classifier on every position.</summary>
public sealed class ElectraForTokenClassification : TokenClassificationModel
{
    public const string ArchitectureName = "ElectraForTokenClassification";

    readonly Linear classifier;
    readonly double dropout;

    ElectraForTokenClassification(ElectraConfig c) : base(nameof(ElectraForTokenClassification), c, "electra", new ElectraModel(c))
    {
        Config = c;
        dropout = c.ClassifierDropout ?? c.HiddenDropoutProb;
        classifier = new Linear(c.HiddenSize, NumLabels, c.InitializerRange);
        register_module("classifier", classifier);
    }

    /// <summary>A randomly initialised token classifier with the config's labels (id2label), in training mode.</summary>
    public static ElectraForTokenClassification Create(ElectraConfig config)
    {
        config.Validate("ELECTRA config");
        return new ElectraForTokenClassification(config with { Architectures = [ArchitectureName] });
    }

    public ElectraConfig Config { get; }
    private protected override double InitializerRange => Config.InitializerRange;

    private protected override Tensor HeadForward(Tensor hidden, Tensor? attentionMask) =>
        classifier.forward(F.dropout(hidden, dropout, training)).to(ScalarType.Float32); // [..., num_labels]
}
