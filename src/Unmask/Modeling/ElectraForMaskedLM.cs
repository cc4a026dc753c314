using Unmask.Checkpoints;
using System.Text.Json;
using System.Text.Json.Serialization;
using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Unmask.Modeling;

// ELECTRA's generator (ElectraForMaskedLM) and discriminator (ElectraForPreTraining), numerically equivalent to
// Hugging Face's (transformers 4.31). The encoder is BERT's; the embeddings have their own width (embedding_size),
// projected to hidden_size by electra.embeddings_project when the two differ.

/// <summary>ELECTRA hyper-parameters, spelled as in a Hugging Face config.json.</summary>
public sealed record ElectraConfig : IHfConfig
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
    [JsonPropertyName("position_embedding_type")] public string PositionEmbeddingType { get; init; } = "absolute";
    [JsonPropertyName("model_type")] public string ModelType { get; init; } = "electra";
    [JsonPropertyName("architectures")] public IReadOnlyList<string>? Architectures { get; init; }
    [JsonPropertyName("tie_word_embeddings")] public bool TieWordEmbeddings { get; init; } = true;
    [JsonPropertyName("torch_dtype")] public string TorchDtype { get; init; } = "float32";
    [JsonPropertyName("transformers_version")] public string TransformersVersion { get; init; } = "4.31.0";
    [JsonExtensionData] public Dictionary<string, JsonElement>? ExtraFields { get; init; }

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

/// <summary>word + token type + position embeddings of width embedding_size, LayerNorm, dropout.</summary>
internal sealed class ElectraEmbeddings : nn.Module
{
    [ComponentName(Name = "word_embeddings")] readonly Embedding wordEmbeddings;
    [ComponentName(Name = "position_embeddings")] readonly Embedding positionEmbeddings;
    [ComponentName(Name = "token_type_embeddings")] readonly Embedding tokenTypeEmbeddings;
    [ComponentName(Name = "LayerNorm")] readonly LayerNorm layerNorm;
    readonly double dropout;

    public ElectraEmbeddings(ElectraConfig c) : base(nameof(ElectraEmbeddings))
    {
        wordEmbeddings = new Embedding(c.VocabSize, c.EmbeddingSize, c.InitializerRange, c.PadTokenId);
        positionEmbeddings = new Embedding(c.MaxPositionEmbeddings, c.EmbeddingSize, c.InitializerRange);
        tokenTypeEmbeddings = new Embedding(c.TypeVocabSize, c.EmbeddingSize, c.InitializerRange);
        layerNorm = nn.LayerNorm(c.EmbeddingSize, c.LayerNormEps);
        dropout = c.HiddenDropoutProb;
        RegisterComponents();
    }

    public Parameter WordEmbeddingWeight => wordEmbeddings.Weight;

    public Tensor forward(Tensor inputIds, Tensor tokenTypeIds)
    {
        var positions = torch.arange(inputIds.shape[1], dtype: ScalarType.Int64).unsqueeze(0); // [1, seq]
        var embeddings = wordEmbeddings.forward(inputIds) + tokenTypeEmbeddings.forward(tokenTypeIds); // [batch, seq, embedding]
        embeddings = embeddings + positionEmbeddings.forward(positions);
        return F.dropout(layerNorm.forward(embeddings), dropout, training);
    }
}

internal sealed class ElectraModel : nn.Module, IComputeDtypeAware
{
    [ComponentName(Name = "embeddings")] readonly ElectraEmbeddings embeddings;
    [ComponentName(Name = "embeddings_project")] readonly Linear? embeddingsProject;
    [ComponentName(Name = "encoder")] readonly BertEncoder encoder;

    /// <param name="sharedEmbeddings">Another model's embedding module to use instead of new ones (ELECTRA pretraining).</param>
    public ElectraModel(ElectraConfig c, ElectraEmbeddings? sharedEmbeddings = null) : base(nameof(ElectraModel))
    {
        embeddings = sharedEmbeddings ?? new ElectraEmbeddings(c);
        if (c.EmbeddingSize != c.HiddenSize) embeddingsProject = new Linear(c.EmbeddingSize, c.HiddenSize, c.InitializerRange);
        encoder = new BertEncoder(c.EncoderConfig());
        RegisterComponents();
    }

    public Parameter WordEmbeddingWeight => embeddings.WordEmbeddingWeight;
    public ElectraEmbeddings Embeddings => embeddings;
    public ComputeDtype ComputeDtype { get; set; }

    /// <param name="hiddenStates">Receives the encoder's input (after the projection, as HF reports it), then each layer's output.</param>
    public Tensor forward(Tensor inputIds, Tensor? attentionMask, Tensor tokenTypeIds, List<Tensor>? hiddenStates)
    {
        var hidden = embeddings.forward(inputIds, tokenTypeIds); // [batch, seq, embedding]
        // The residual stream stays float32 whatever the compute dtype, as BERT's embeddings leave it.
        if (embeddingsProject is not null) hidden = embeddingsProject.forward(hidden).to(ScalarType.Float32); // [batch, seq, hidden]
        hiddenStates?.Add(hidden);
        var dtype = ComputeDtype == ComputeDtype.BFloat16 ? ScalarType.BFloat16 : ScalarType.Float32;
        return encoder.forward(hidden, AttentionMasks.Additive(attentionMask, dtype), hiddenStates);
    }
}

/// <summary>The generator's head before the vocabulary: dense (hidden → embedding), exact GELU, LayerNorm.</summary>
internal sealed class ElectraGeneratorPredictions : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "dense")] readonly Linear dense;
    [ComponentName(Name = "LayerNorm")] readonly LayerNorm layerNorm;

    public ElectraGeneratorPredictions(ElectraConfig c) : base(nameof(ElectraGeneratorPredictions))
    {
        dense = new Linear(c.HiddenSize, c.EmbeddingSize, c.InitializerRange);
        layerNorm = nn.LayerNorm(c.EmbeddingSize, c.LayerNormEps);
        RegisterComponents();
    }

    // HF hard-codes "gelu" here, whatever hidden_act says. LayerNorm runs in float32 under a bf16 compute dtype.
    public override Tensor forward(Tensor hidden) => layerNorm.forward(F.gelu(dense.forward(hidden)).to(ScalarType.Float32));
}

/// <summary>
/// ELECTRA's generator: a small masked LM whose output projection (<c>generator_lm_head</c>) shares the word embedding
/// matrix unless <c>tie_word_embeddings</c> is false.
/// </summary>
public sealed class ElectraForMaskedLM : nn.Module, IMaskedLmModel
{
    static ElectraForMaskedLM() => NativeAllocator.Configure();

    public const string ArchitectureName = "ElectraForMaskedLM";
    const string LmHeadWeight = "generator_lm_head.weight";

    [ComponentName(Name = "electra")] readonly ElectraModel electra;
    [ComponentName(Name = "generator_predictions")] readonly ElectraGeneratorPredictions generatorPredictions;
    [ComponentName(Name = "generator_lm_head")] readonly Linear generatorLmHead;
    ComputeDtype computeDtype;

    ElectraForMaskedLM(ElectraConfig c, ElectraEmbeddings? sharedEmbeddings = null) : base(nameof(ElectraForMaskedLM))
    {
        Config = c;
        electra = new ElectraModel(c, sharedEmbeddings);
        generatorPredictions = new ElectraGeneratorPredictions(c);
        var weight = c.TieWordEmbeddings ? electra.WordEmbeddingWeight : Parameters.Normal([c.VocabSize, c.EmbeddingSize], c.InitializerRange);
        generatorLmHead = new Linear(weight, Parameters.Zeros([c.VocabSize]));
        RegisterComponents();
    }

    /// <summary>A randomly initialised model (HF's _init_weights), in training mode.</summary>
    public static ElectraForMaskedLM Create(ElectraConfig config)
    {
        config.Validate("ELECTRA config");
        return new ElectraForMaskedLM(config with { Architectures = config.Architectures ?? [ArchitectureName] });
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
        return new ElectraForMaskedLM(config with { Architectures = config.Architectures ?? [ArchitectureName] }, discriminator.Embeddings)
        {
            ComputeDtype = discriminator.ComputeDtype,
        };
    }

    public ElectraConfig Config { get; }
    public string Architecture => ArchitectureName;
    IHfConfig IMaskedLmModel.HfConfig => Config;
    public HeadKind Head => HeadKind.MaskedLm;
    public int MaxSequenceLength => Config.MaxPositionEmbeddings;
    public bool UsesTokenTypeIds => true;
    nn.Module IMaskedLmModel.Module => this;

    /// <summary>Element type of the matrix products, as <see cref="BertForMaskedLM.ComputeDtype"/>; parameters stay float32.</summary>
    public ComputeDtype ComputeDtype
    {
        get => computeDtype;
        set => computeDtype = ComputeDtypes.Apply(this, value);
    }

    /// <inheritdoc cref="BertForMaskedLM.InitialiseLocalAttention"/>
    /// <remarks>The sinusoids are embedding_size wide; a generator projecting them to a narrower hidden size sees them
    /// through that random projection, so its start is less sharply local than the discriminator's.</remarks>
    public void InitialiseLocalAttention(double queryKeyScale = 1.1) => LocalAttention.Initialise(state_dict(), "electra.", Config.NumHiddenLayers,
        Config.InitializerRange, queryKeyScale);

    public MaskedLmOutput Forward(Tensor inputIds, Tensor? attentionMask = null, Tensor? tokenTypeIds = null,
        Tensor? labels = null, bool outputHiddenStates = false, bool sparsePrediction = false)
    {
        HfWeights.CheckInputs(inputIds, attentionMask, tokenTypeIds, labels, sparsePrediction, MaxSequenceLength, Config.VocabSize);
        using var scope = torch.NewDisposeScope();
        var hiddenStates = outputHiddenStates ? new List<Tensor>() : null;
        var sequence = electra.forward(inputIds, attentionMask, tokenTypeIds ?? torch.zeros_like(inputIds), hiddenStates); // [batch, seq, hidden]
        // Logits leave in float32 whatever the compute dtype: softmax and cross-entropy need its range and precision.
        var (logits, loss) = HfWeights.MaskedLmHead(h => generatorLmHead.forward(generatorPredictions.forward(h)).to(ScalarType.Float32), sequence,
            labels, sparsePrediction, Config.VocabSize);
        return HfWeights.Output(logits, loss, sequence, hiddenStates);
    }

    public Dictionary<string, Tensor> StateDictForSave()
    {
        var state = state_dict();
        if (Config.TieWordEmbeddings) state.Remove(LmHeadWeight);
        return state;
    }

    public void LoadHfStateDict(IReadOnlyDictionary<string, Tensor> source) => LoadHfWeights(new TensorDictionarySource(source));

    public void LoadHfWeights(IHfTensorSource source)
    {
        var tied = Config.TieWordEmbeddings;
        HfWeights.Copy(Architecture, state_dict(), source,
            optional: tied ? new HashSet<string> { LmHeadWeight } : new HashSet<string>(),
            ignored: name => name == "electra.embeddings.position_ids",
            aliasOf: tied ? new Dictionary<string, string> { [LmHeadWeight] = "electra.embeddings.word_embeddings.weight" } : new Dictionary<string, string>());
    }
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

    // The logit leaves in float32 whatever the compute dtype, for the binary cross-entropy.
    public override Tensor forward(Tensor hidden) =>
        densePrediction.forward(activation(dense.forward(hidden))).squeeze(-1).to(ScalarType.Float32);
}

/// <summary>
/// ELECTRA's discriminator: for every position, the logit that the token was replaced. Labels are 1 (replaced) or
/// 0 (original), -100 to leave a position out; the loss is binary cross-entropy over the unpadded labelled positions.
/// </summary>
public sealed class ElectraForPreTraining : nn.Module, IMaskedLmModel
{
    static ElectraForPreTraining() => NativeAllocator.Configure();

    public const string ArchitectureName = "ElectraForPreTraining";

    [ComponentName(Name = "electra")] readonly ElectraModel electra;
    [ComponentName(Name = "discriminator_predictions")] readonly ElectraDiscriminatorPredictions discriminatorPredictions;
    ComputeDtype computeDtype;

    ElectraForPreTraining(ElectraConfig c) : base(nameof(ElectraForPreTraining))
    {
        Config = c;
        electra = new ElectraModel(c);
        discriminatorPredictions = new ElectraDiscriminatorPredictions(c);
        RegisterComponents();
    }

    /// <summary>A randomly initialised model (HF's _init_weights), in training mode.</summary>
    public static ElectraForPreTraining Create(ElectraConfig config)
    {
        config.Validate("ELECTRA config");
        return new ElectraForPreTraining(config with { Architectures = config.Architectures ?? [ArchitectureName] });
    }

    public ElectraConfig Config { get; }
    public string Architecture => ArchitectureName;
    IHfConfig IMaskedLmModel.HfConfig => Config;
    public HeadKind Head => HeadKind.ReplacedToken;
    public int MaxSequenceLength => Config.MaxPositionEmbeddings;
    public bool UsesTokenTypeIds => true;
    nn.Module IMaskedLmModel.Module => this;

    internal ElectraEmbeddings Embeddings => electra.Embeddings;

    /// <summary>Element type of the matrix products, as <see cref="BertForMaskedLM.ComputeDtype"/>; parameters stay float32.</summary>
    public ComputeDtype ComputeDtype
    {
        get => computeDtype;
        set => computeDtype = ComputeDtypes.Apply(this, value);
    }

    /// <inheritdoc cref="BertForMaskedLM.InitialiseLocalAttention"/>
    public void InitialiseLocalAttention(double queryKeyScale = 1.1) => LocalAttention.Initialise(state_dict(), "electra.", Config.NumHiddenLayers,
        Config.InitializerRange, queryKeyScale);

    /// <returns>Logits [batch, seq] (sparse: [n]).</returns>
    public MaskedLmOutput Forward(Tensor inputIds, Tensor? attentionMask = null, Tensor? tokenTypeIds = null,
        Tensor? labels = null, bool outputHiddenStates = false, bool sparsePrediction = false)
    {
        HfWeights.CheckInputs(inputIds, attentionMask, tokenTypeIds, labels, sparsePrediction, MaxSequenceLength, Config.VocabSize);
        using var scope = torch.NewDisposeScope();
        var hiddenStates = outputHiddenStates ? new List<Tensor>() : null;
        var sequence = electra.forward(inputIds, attentionMask, tokenTypeIds ?? torch.zeros_like(inputIds), hiddenStates); // [batch, seq, hidden]

        Tensor logits;
        Tensor? loss = null;
        if (sparsePrediction)
        {
            var positions = labels!.reshape(-1).ne(-100).nonzero().squeeze(1); // [n]
            logits = discriminatorPredictions.forward(sequence.reshape(-1, Config.HiddenSize).index_select(0, positions)); // [n]
            loss = F.binary_cross_entropy_with_logits(logits, labels.reshape(-1).index_select(0, positions).to(ScalarType.Float32));
        }
        else
        {
            logits = discriminatorPredictions.forward(sequence); // [batch, seq]
            if (labels is not null)
            {
                // HF counts only positions whose attention mask is 1; -100 leaves a position out as everywhere else.
                var active = labels.ne(-100);
                if (attentionMask is not null) active = active.logical_and(attentionMask.eq(1));
                var positions = active.reshape(-1).nonzero().squeeze(1); // [n]
                loss = F.binary_cross_entropy_with_logits(logits.reshape(-1).index_select(0, positions),
                    labels.reshape(-1).index_select(0, positions).to(ScalarType.Float32));
            }
        }
        return HfWeights.Output(logits, loss, sequence, hiddenStates);
    }

    public Dictionary<string, Tensor> StateDictForSave() => state_dict();

    public void LoadHfStateDict(IReadOnlyDictionary<string, Tensor> source) => LoadHfWeights(new TensorDictionarySource(source));

    public void LoadHfWeights(IHfTensorSource source) =>
        HfWeights.Copy(Architecture, state_dict(), source, new HashSet<string>(),
            name => name == "electra.embeddings.position_ids", new Dictionary<string, string>());
}
