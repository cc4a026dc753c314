using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using Unmask.Checkpoints;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Unmask.Modeling;

// BERT for masked language modelling, numerically equivalent to Hugging Face's BertForMaskedLM (transformers 4.31),
// with parameter names equal to HF's state_dict keys so that HF model folders load and save without renaming.
// RoBERTa and XLM-RoBERTa are the same network configured differently (model_type "roberta" / "xlm-roberta"):
// positions offset by the padding id, an LM head that always uses exact GELU, and the roberta./lm_head. tensor names.

/// <summary>BERT hyper-parameters, spelled as in a Hugging Face config.json.</summary>
public sealed record BertConfig : IHfConfig
{
    [JsonPropertyName("vocab_size")] public required int VocabSize { get; init; }
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
    [JsonPropertyName("model_type")] public string ModelType { get; init; } = "bert";
    [JsonPropertyName("architectures")] public IReadOnlyList<string>? Architectures { get; init; } = ["BertForMaskedLM"];
    [JsonPropertyName("tie_word_embeddings")] public bool TieWordEmbeddings { get; init; } = true;
    [JsonPropertyName("torch_dtype")] public string TorchDtype { get; init; } = "float32";
    [JsonPropertyName("transformers_version")] public string TransformersVersion { get; init; } = "4.31.0";

    /// <summary>Fields this record does not model (use_cache, bos_token_id, ...), kept so that saving preserves them.</summary>
    [JsonExtensionData] public Dictionary<string, JsonElement>? ExtraFields { get; init; }

    /// <summary>RoBERTa and XLM-RoBERTa: positions start after the padding id, HF names under roberta. and lm_head.</summary>
    [JsonIgnore] public bool IsRoberta => ModelType is "roberta" or "xlm-roberta";

    /// <summary>The longest input the position embeddings can take (RoBERTa spends pad_token_id + 1 rows on its offset).</summary>
    [JsonIgnore] public int MaxSequenceLength => IsRoberta ? MaxPositionEmbeddings - PadTokenId.GetValueOrDefault() - 1 : MaxPositionEmbeddings;

    /// <summary>The HF class name: the first entry of <c>architectures</c>, else the masked-LM class of the model type.</summary>
    [JsonIgnore] public string Architecture => Architectures is [var first, ..] ? first : DefaultArchitecture(ModelType);

    internal static string DefaultArchitecture(string modelType) => modelType switch
    {
        "roberta" => "RobertaForMaskedLM",
        "xlm-roberta" => "XLMRobertaForMaskedLM",
        _ => "BertForMaskedLM",
    };

    /// <summary>Activation names accepted in <c>hidden_act</c>, as HF's ACT2FN spells them.</summary>
    public static IReadOnlyList<string> SupportedActivations { get; } = ["gelu", "gelu_new", "gelu_pytorch_tanh", "relu"];

    // Google's BERT miniatures (Turc et al. 2019): layers, hidden size, heads; intermediate is always 4 * hidden.
    static readonly Dictionary<string, (int Layers, int Hidden, int Heads)> Presets = new(StringComparer.OrdinalIgnoreCase)
    {
        ["tiny"] = (2, 128, 2),
        ["mini"] = (4, 256, 4),
        ["small"] = (4, 512, 8),
        ["medium"] = (8, 512, 8),
        ["base"] = (12, 768, 12),
    };

    public static IReadOnlyList<string> PresetNames { get; } = [.. Presets.Keys];

    static readonly JsonSerializerOptions JsonOptions = new()
    {
        RespectNullableAnnotations = true,
        AllowTrailingCommas = true,
        ReadCommentHandling = JsonCommentHandling.Skip,
    };

    public static BertConfig Preset(string name, int vocabSize)
    {
        if (!Presets.TryGetValue(name, out var size))
            throw new UnmaskException($"Unknown BERT preset '{name}'; known presets: {string.Join(", ", PresetNames)}.");
        var config = new BertConfig
        {
            VocabSize = vocabSize,
            HiddenSize = size.Hidden,
            NumHiddenLayers = size.Layers,
            NumAttentionHeads = size.Heads,
            IntermediateSize = 4 * size.Hidden,
        };
        config.Validate($"preset '{name}'");
        return config;
    }

    public static BertConfig Load(string path)
    {
        string json;
        try
        {
            json = File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new UnmaskException($"Cannot read model config '{path}': {ex.Message}", ex);
        }

        BertConfig? config;
        try
        {
            config = JsonSerializer.Deserialize<BertConfig>(json, JsonOptions);
        }
        catch (JsonException ex)
        {
            throw new UnmaskException($"{path}: not a valid BERT config: {ex.Message}", ex);
        }
        if (config is null) throw new UnmaskException($"{path}: the config is JSON null, expected an object.");
        config.Validate(path);
        return config;
    }

    /// <summary>Writes config.json with keys sorted, as HF's save_pretrained does.</summary>
    public void Save(string path) => HfConfigJson.Write(JsonSerializer.SerializeToNode(this, JsonOptions)!.AsObject(), path);

    /// <summary>Rejects configurations this implementation cannot run; <paramref name="source"/> names where it came from.</summary>
    internal void Validate(string source)
    {
        void Require(bool ok, string field, string problem)
        {
            if (!ok) throw new UnmaskException($"{source}: field '{field}' {problem}");
        }

        Require(ModelType is "bert" or "roberta" or "xlm-roberta", "model_type",
            $"is '{ModelType}'; only 'bert', 'roberta' and 'xlm-roberta' are supported here.");
        Require(!IsRoberta || PadTokenId is not null, "pad_token_id", "is required by RoBERTa's position ids.");
        Require(MaxSequenceLength > 0, "max_position_embeddings",
            $"({MaxPositionEmbeddings}) leaves no position after RoBERTa's padding offset (pad_token_id {PadTokenId}).");
        Require(VocabSize > 0, "vocab_size", $"must be positive (got {VocabSize}).");
        Require(HiddenSize > 0, "hidden_size", $"must be positive (got {HiddenSize}).");
        Require(NumHiddenLayers >= 0, "num_hidden_layers", $"must not be negative (got {NumHiddenLayers}).");
        Require(NumAttentionHeads > 0, "num_attention_heads", $"must be positive (got {NumAttentionHeads}).");
        Require(HiddenSize % NumAttentionHeads == 0, "num_attention_heads",
            $"({NumAttentionHeads}) must divide hidden_size ({HiddenSize}).");
        Require(IntermediateSize > 0, "intermediate_size", $"must be positive (got {IntermediateSize}).");
        Require(MaxPositionEmbeddings > 0, "max_position_embeddings", $"must be positive (got {MaxPositionEmbeddings}).");
        Require(TypeVocabSize > 0, "type_vocab_size", $"must be positive (got {TypeVocabSize}).");
        Require(LayerNormEps > 0, "layer_norm_eps", $"must be positive (got {LayerNormEps}).");
        Require(InitializerRange >= 0, "initializer_range", $"must not be negative (got {InitializerRange}).");
        Require(HiddenDropoutProb is >= 0 and < 1, "hidden_dropout_prob", $"must be in [0, 1) (got {HiddenDropoutProb}).");
        Require(AttentionProbsDropoutProb is >= 0 and < 1, "attention_probs_dropout_prob",
            $"must be in [0, 1) (got {AttentionProbsDropoutProb}).");
        Require(PadTokenId is null || (PadTokenId >= 0 && PadTokenId < VocabSize), "pad_token_id",
            $"({PadTokenId}) must be a token id below vocab_size ({VocabSize}).");
        Require(SupportedActivations.Contains(HiddenAct), "hidden_act",
            $"'{HiddenAct}' is not supported; supported: {string.Join(", ", SupportedActivations)}.");
        Require(PositionEmbeddingType == "absolute", "position_embedding_type",
            $"'{PositionEmbeddingType}' is not supported; only 'absolute' is.");
        Require(TorchDtype is "float32" or "float16" or "bfloat16", "torch_dtype",
            $"'{TorchDtype}' is not a floating-point dtype this implementation knows.");
    }

    internal Func<Tensor, Tensor> Activation() => HiddenAct switch
    {
        "gelu" => x => F.gelu(x), // exact erf GELU, as HF's "gelu"
        "gelu_new" or "gelu_pytorch_tanh" => x => F.gelu(x, GELU.Approximate.tanh),
        "relu" => x => F.relu(x),
        _ => throw new UnmaskException($"hidden_act '{HiddenAct}' is not supported."),
    };
}

/// <summary>Element type of the matrix products. Parameters stay float32 master copies in both cases.</summary>
public enum ComputeDtype
{
    Float32,
    BFloat16,
}

internal interface IComputeDtypeAware
{
    ComputeDtype ComputeDtype { get; set; }
}

internal static class ComputeDtypes
{
    /// <summary>Sets the compute dtype of every layer under <paramref name="model"/> that has one, and returns it.</summary>
    public static ComputeDtype Apply(nn.Module model, ComputeDtype value)
    {
        foreach (var module in model.modules().OfType<IComputeDtypeAware>()) module.ComputeDtype = value;
        return value;
    }
}

/// <summary>The local attention start of <see cref="BertForMaskedLM.InitialiseLocalAttention"/>, for any BERT-style encoder.</summary>
internal static class LocalAttention
{
    /// <param name="state">The model's live parameters by HF name.</param>
    /// <param name="prefix">The encoder's name prefix (bert., roberta., electra.).</param>
    public static void Initialise(IReadOnlyDictionary<string, Tensor> state, string prefix, int layers, double initializerRange, double queryKeyScale)
    {
        using var scope = torch.NewDisposeScope();
        var positionEmbeddings = state[prefix + "embeddings.position_embeddings.weight"]; // [positions, dim]
        var (count, dim) = (positionEmbeddings.shape[0], positionEmbeddings.shape[1]);
        var positions = torch.arange(count, dtype: ScalarType.Float64).unsqueeze(1); // [positions, 1]
        var frequencies = torch.exp(torch.arange(0, dim, 2, dtype: ScalarType.Float64) * (-Math.Log(10000.0) / dim)); // [dim / 2]
        var angles = positions * frequencies; // [positions, dim / 2]
        var table = torch.stack([angles.sin(), angles.cos()], dim: 2).reshape(count, -1)[.., ..(int)dim]; // [positions, dim]
        // Each sin/cos pair has mean square 1/2, so this gives rows of root mean square initializer_range.
        table = table * (initializerRange * Math.Sqrt(2.0));
        using var noGrad = torch.no_grad();
        positionEmbeddings.copy_(table.to(ScalarType.Float32));
        for (int layer = 0; layer < layers; layer++)
            foreach (var projection in new[] { "query", "key" })
            {
                var weight = state[$"{prefix}encoder.layer.{layer}.attention.self.{projection}.weight"]; // [hidden, hidden]
                weight.copy_(torch.eye(weight.shape[0], dtype: ScalarType.Float32) * queryKeyScale);
            }
    }
}

/// <summary>Outputs of <see cref="BertForMaskedLM.Forward"/>; disposing it disposes every tensor in it.</summary>
/// <param name="Logits">[batch, seq, vocab], or [n, vocab] for sparse prediction (rows of the labelled positions).</param>
/// <param name="Loss">Mean cross-entropy over labels other than -100; null without labels.</param>
/// <param name="LastHiddenState">[batch, seq, hidden], the encoder output.</param>
/// <param name="HiddenStates">Embedding output, then each layer's output (as HF output_hidden_states), when asked for.</param>
public sealed record MaskedLmOutput(Tensor Logits, Tensor? Loss, Tensor LastHiddenState, IReadOnlyList<Tensor>? HiddenStates)
    : IDisposable
{
    public void Dispose()
    {
        Logits.Dispose();
        Loss?.Dispose();
        LastHiddenState.Dispose();
        if (HiddenStates is null) return;
        foreach (var hidden in HiddenStates) hidden.Dispose();
    }
}

/// <summary>Creates parameters that survive any dispose scope active while a model is being built.</summary>
internal static class Parameters
{
    [ThreadStatic] static bool skipInitialisation;

    /// <summary>
    /// Until disposed, parameters created on this thread keep torch.empty's contents. For a model whose every
    /// parameter is about to be overwritten by loaded weights: random initialisation is most of a load's time
    /// (measured: 3.6 s of 4.1 s for BERT-base).
    /// </summary>
    public static IDisposable SkipInitialisation()
    {
        var outer = skipInitialisation;
        skipInitialisation = true;
        return new Restore(() => skipInitialisation = outer);
    }

    sealed class Restore(Action restore) : IDisposable
    {
        public void Dispose() => restore();
    }

    public static Parameter Create(long[] shape, Action<Tensor> initialise)
    {
        var parameter = new Parameter(torch.empty(shape, ScalarType.Float32));
        if (!skipInitialisation)
            using (torch.no_grad()) initialise(parameter);
        return (Parameter)parameter.DetachFromDisposeScope();
    }

    public static Parameter Normal(long[] shape, double std) => Create(shape, p => nn.init.normal_(p, 0, std));

    public static Parameter Zeros(long[] shape) => Create(shape, p => nn.init.zeros_(p));
}

/// <summary>
/// y = x Wᵀ + b like nn.Linear, with an optional bfloat16 matrix product in the manner of autocast: input, weight and
/// bias are cast to bf16 (autograd flows through the casts into the float32 parameters) and the result stays bf16, so
/// that chains of products (the feed-forward block) pay no casts in between. Residual sums promote back to float32
/// before each LayerNorm.
/// </summary>
public sealed class Linear : nn.Module<Tensor, Tensor>, IComputeDtypeAware
{
    [ComponentName(Name = "weight")] readonly Parameter weight; // [out, in]
    [ComponentName(Name = "bias")] readonly Parameter? bias; // [out]

    public Linear(long inFeatures, long outFeatures, double initStd, bool hasBias = true)
        : this(Parameters.Normal([outFeatures, inFeatures], initStd), hasBias ? Parameters.Zeros([outFeatures]) : null)
    {
    }

    /// <summary>Wraps existing parameters, which is how the MLM decoder shares the word embedding matrix.</summary>
    public Linear(Parameter weight, Parameter? bias) : base(nameof(Linear))
    {
        this.weight = weight;
        this.bias = bias;
        RegisterComponents();
    }

    public Parameter Weight => weight;
    public Parameter? Bias => bias;
    public ComputeDtype ComputeDtype { get; set; }

    public override Tensor forward(Tensor input)
    {
        if (ComputeDtype == ComputeDtype.Float32) return F.linear(input, weight, bias);
        return F.linear(input.to(ScalarType.BFloat16), weight.to(ScalarType.BFloat16), bias?.to(ScalarType.BFloat16));
    }
}

/// <summary>A lookup table whose weight is an ordinary Parameter, so the MLM decoder can share it.</summary>
internal sealed class Embedding : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "weight")] readonly Parameter weight; // [count, dim]
    readonly long? paddingIdx;

    public Embedding(long count, long dim, double initStd, long? paddingIdx = null) : base(nameof(Embedding))
    {
        weight = Parameters.Create([count, dim], p =>
        {
            nn.init.normal_(p, 0, initStd);
            if (paddingIdx is not long pad) return;
            using var paddingRow = p[pad];
            paddingRow.zero_();
        });
        this.paddingIdx = paddingIdx;
        RegisterComponents();
    }

    public Parameter Weight => weight;

    public override Tensor forward(Tensor ids)
    {
        var embedded = weight.index_select(0, ids.reshape(-1)).reshape([.. ids.shape, weight.shape[1]]); // [..., dim]
        if (paddingIdx is not long pad || !training) return embedded;
        // nn.Embedding(padding_idx) sends no gradient to the padding row; the forward value is unchanged.
        return torch.where(ids.eq(pad).unsqueeze(-1), embedded.detach(), embedded);
    }
}

/// <summary>word + token type + absolute position embeddings, then LayerNorm and dropout.</summary>
internal sealed class BertEmbeddings : nn.Module
{
    [ComponentName(Name = "word_embeddings")] readonly Embedding wordEmbeddings;
    [ComponentName(Name = "position_embeddings")] readonly Embedding positionEmbeddings;
    [ComponentName(Name = "token_type_embeddings")] readonly Embedding tokenTypeEmbeddings;
    [ComponentName(Name = "LayerNorm")] readonly LayerNorm layerNorm;
    readonly double dropout;
    readonly long? positionPaddingIdx;

    public BertEmbeddings(BertConfig c) : base(nameof(BertEmbeddings))
    {
        wordEmbeddings = new Embedding(c.VocabSize, c.HiddenSize, c.InitializerRange, c.PadTokenId);
        positionPaddingIdx = c.IsRoberta ? c.PadTokenId : null;
        positionEmbeddings = new Embedding(c.MaxPositionEmbeddings, c.HiddenSize, c.InitializerRange, positionPaddingIdx);
        tokenTypeEmbeddings = new Embedding(c.TypeVocabSize, c.HiddenSize, c.InitializerRange);
        layerNorm = nn.LayerNorm(c.HiddenSize, c.LayerNormEps);
        dropout = c.HiddenDropoutProb;
        RegisterComponents();
    }

    public Parameter WordEmbeddingWeight => wordEmbeddings.Weight;

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
        else positions = torch.arange(inputIds.shape[1], dtype: ScalarType.Int64).unsqueeze(0); // [1, seq]
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

/// <summary>Projection of the attention result, dropout, residual connection and post-LayerNorm.</summary>
internal sealed class BertSelfOutput : nn.Module
{
    [ComponentName(Name = "dense")] readonly Linear dense;
    [ComponentName(Name = "LayerNorm")] readonly LayerNorm layerNorm;
    readonly double dropout;

    public BertSelfOutput(BertConfig c) : base(nameof(BertSelfOutput))
    {
        dense = new Linear(c.HiddenSize, c.HiddenSize, c.InitializerRange);
        layerNorm = nn.LayerNorm(c.HiddenSize, c.LayerNormEps);
        dropout = c.HiddenDropoutProb;
        RegisterComponents();
    }

    public Tensor forward(Tensor hidden, Tensor residual) =>
        layerNorm.forward(F.dropout(dense.forward(hidden), dropout, training) + residual);
}

internal sealed class BertAttention : nn.Module
{
    [ComponentName(Name = "self")] readonly BertSelfAttention self;
    [ComponentName(Name = "output")] readonly BertSelfOutput output;

    public BertAttention(BertConfig c) : base(nameof(BertAttention))
    {
        self = new BertSelfAttention(c);
        output = new BertSelfOutput(c);
        RegisterComponents();
    }

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
        activation = c.Activation();
        RegisterComponents();
    }

    public Tensor forward(Tensor hidden) => activation(dense.forward(hidden));
}

/// <summary>The feed-forward contraction back to hidden_size, dropout, residual and post-LayerNorm.</summary>
internal sealed class BertOutput : nn.Module
{
    [ComponentName(Name = "dense")] readonly Linear dense;
    [ComponentName(Name = "LayerNorm")] readonly LayerNorm layerNorm;
    readonly double dropout;

    public BertOutput(BertConfig c) : base(nameof(BertOutput))
    {
        dense = new Linear(c.IntermediateSize, c.HiddenSize, c.InitializerRange);
        layerNorm = nn.LayerNorm(c.HiddenSize, c.LayerNormEps);
        dropout = c.HiddenDropoutProb;
        RegisterComponents();
    }

    public Tensor forward(Tensor intermediate, Tensor residual) =>
        layerNorm.forward(F.dropout(dense.forward(intermediate), dropout, training) + residual);
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
        output = new BertOutput(c);
        RegisterComponents();
    }

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

/// <summary>The encoder without a pooler, as BertForMaskedLM builds it (add_pooling_layer=False).</summary>
internal sealed class BertModel : nn.Module, IComputeDtypeAware
{
    [ComponentName(Name = "embeddings")] readonly BertEmbeddings embeddings;
    [ComponentName(Name = "encoder")] readonly BertEncoder encoder;

    public BertModel(BertConfig c) : base(nameof(BertModel))
    {
        embeddings = new BertEmbeddings(c);
        encoder = new BertEncoder(c);
        RegisterComponents();
    }

    public ComputeDtype ComputeDtype { get; set; }
    public Parameter WordEmbeddingWeight => embeddings.WordEmbeddingWeight;

    public Tensor forward(Tensor inputIds, Tensor? attentionMask, Tensor tokenTypeIds, List<Tensor>? hiddenStates)
    {
        var hidden = embeddings.forward(inputIds, tokenTypeIds); // [batch, seq, hidden]
        hiddenStates?.Add(hidden);
        return encoder.forward(hidden, AdditiveMask(attentionMask), hiddenStates);
    }

    // HF adds (1 - mask) * finfo(dtype).min to the scores of padded keys. The mask is built in the compute dtype
    // because float32.min rounds to -inf in bfloat16, which would turn a fully padded row into NaN.
    Tensor? AdditiveMask(Tensor? attentionMask)
    {
        if (attentionMask is null) return null;
        var dtype = ComputeDtype == ComputeDtype.BFloat16 ? ScalarType.BFloat16 : ScalarType.Float32;
        var open = attentionMask.to(dtype).unsqueeze(1).unsqueeze(2); // [batch, 1, 1, seq]
        return (1.0 - open) * torch.finfo(dtype).min;
    }
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
        layerNorm = nn.LayerNorm(c.HiddenSize, c.LayerNormEps);
        // RobertaLMHead calls gelu directly, whatever hidden_act says.
        activation = c.IsRoberta ? x => F.gelu(x) : c.Activation();
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

    // Logits leave in float32 whatever the compute dtype: softmax and cross-entropy need its range and precision.
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

/// <summary>
/// BERT with its masked-language-model head. <c>state_dict()</c> uses HF's names; with tied embeddings
/// <c>cls.predictions.decoder.weight</c> is the same Parameter as <c>bert.embeddings.word_embeddings.weight</c> and
/// <c>cls.predictions.decoder.bias</c> the same as <c>cls.predictions.bias</c> (parameters() lists each once).
/// Keep the model on the CPU in float32: <c>to(...)</c> would copy the tied parameters apart.
/// For RoBERTa the module names stay BERT's; <see cref="StateDictForSave"/> and <see cref="LoadHfStateDict"/> speak
/// RoBERTa's (roberta.*, lm_head.dense/layer_norm/bias/decoder).
/// </summary>
public sealed class BertForMaskedLM : nn.Module, IMaskedLmModel
{
    string DecoderWeight => HfName("cls.predictions.decoder.weight");
    string DecoderBias => HfName("cls.predictions.decoder.bias");
    string PredictionBias => HfName("cls.predictions.bias");

    [ComponentName(Name = "bert")] readonly BertModel bert;
    [ComponentName(Name = "cls")] readonly BertOnlyMLMHead cls;
    ComputeDtype computeDtype;

    static BertForMaskedLM() => NativeAllocator.Configure();

    BertForMaskedLM(BertConfig config) : base(nameof(BertForMaskedLM))
    {
        Config = config;
        bert = new BertModel(config);
        cls = new BertOnlyMLMHead(config, bert.WordEmbeddingWeight);
        RegisterComponents();
    }

    /// <summary>
    /// Builds a randomly initialised model like HF's _init_weights: N(0, initializer_range) for matrices and embeddings,
    /// zero biases and padding row, LayerNorm 1/0. Seed with torch.manual_seed first for reproducible weights.
    /// The model starts in training mode, as in HF; call eval() for inference.
    /// </summary>
    public static BertForMaskedLM Create(BertConfig config, ComputeDtype computeDtype = ComputeDtype.Float32)
    {
        config.Validate("BERT config");
        return new BertForMaskedLM(config) { ComputeDtype = computeDtype };
    }

    public BertConfig Config { get; }

    public string Architecture => Config.Architecture;
    IHfConfig IMaskedLmModel.HfConfig => Config;
    HeadKind IMaskedLmModel.Head => HeadKind.MaskedLm;
    public int MaxSequenceLength => Config.MaxSequenceLength;
    bool IMaskedLmModel.UsesTokenTypeIds => true;
    nn.Module IMaskedLmModel.Module => this;

    /// <summary>
    /// Starts attention local instead of uniform: position embeddings become sinusoids (scaled to a random row's
    /// size, initializer_range) and every query and key projection a scaled identity, so a head's scores are the
    /// sinusoid kernel of its slice of dimensions: sharp around the query's own position for the high-frequency
    /// heads, broad for the others. From random weights a BERT first spends thousands of steps predicting words
    /// from anywhere in the sequence; this start hands it neighbours from step one. Everything stays trainable
    /// and the architecture is unchanged.
    /// </summary>
    public void InitialiseLocalAttention(double queryKeyScale = 1.1) =>
        LocalAttention.Initialise(HfStateDict(), Config.IsRoberta ? "roberta." : "bert.", Config.NumHiddenLayers, Config.InitializerRange, queryKeyScale);

    /// <summary>Number of distinct parameter values (tied matrices counted once).</summary>
    public long ParameterCount => parameters().Sum(p => p.numel());

    public ComputeDtype ComputeDtype
    {
        get => computeDtype;
        set => computeDtype = ComputeDtypes.Apply(this, value);
    }

    /// <param name="inputIds">[batch, seq] int64 token ids.</param>
    /// <param name="attentionMask">[batch, seq], 1 for real tokens and 0 for padding; null means all ones.</param>
    /// <param name="tokenTypeIds">[batch, seq] segment ids; null means all zeros.</param>
    /// <param name="labels">[batch, seq] int64 target ids, -100 where no loss is wanted.</param>
    /// <param name="outputHiddenStates">Also return the embedding output and every layer's output.</param>
    /// <param name="sparsePrediction">Run the prediction head only where labels are not -100; logits are then
    /// [n, vocab] in row-major order of those positions. Requires labels.</param>
    public MaskedLmOutput Forward(Tensor inputIds, Tensor? attentionMask = null, Tensor? tokenTypeIds = null,
        Tensor? labels = null, bool outputHiddenStates = false, bool sparsePrediction = false)
    {
        HfWeights.CheckInputs(inputIds, attentionMask, tokenTypeIds, labels, sparsePrediction, MaxSequenceLength, Config.VocabSize);
        using var scope = torch.NewDisposeScope();

        tokenTypeIds ??= torch.zeros_like(inputIds);
        var hiddenStates = outputHiddenStates ? new List<Tensor>() : null;
        var sequence = bert.forward(inputIds, attentionMask, tokenTypeIds, hiddenStates); // [batch, seq, hidden]

        Tensor logits;
        Tensor? loss = null;
        if (sparsePrediction)
        {
            var flatLabels = labels!.reshape(-1); // [batch * seq]
            var positions = flatLabels.ne(-100).nonzero().squeeze(1); // [n]
            var rows = sequence.reshape(-1, Config.HiddenSize).index_select(0, positions); // [n, hidden]
            logits = cls.forward(rows); // [n, vocab]
            loss = F.cross_entropy(logits, flatLabels.index_select(0, positions));
        }
        else
        {
            logits = cls.forward(sequence); // [batch, seq, vocab]
            if (labels is not null) loss = F.cross_entropy(logits.view(-1, Config.VocabSize), labels.reshape(-1));
        }

        // The last hidden state is also the last entry of hiddenStates; each tensor must leave the scope exactly once.
        if (hiddenStates is null) sequence.MoveToOuterDisposeScope();
        else foreach (var hidden in hiddenStates) hidden.MoveToOuterDisposeScope();
        return new MaskedLmOutput(logits.MoveToOuterDisposeScope(), loss?.MoveToOuterDisposeScope(), sequence, hiddenStates);
    }

    /// <summary>
    /// The tensors to write to model.safetensors under HF's names, without the tied decoder weight and bias (as HF
    /// writes them). The values are the live parameters: do not dispose or modify them.
    /// </summary>
    public Dictionary<string, Tensor> StateDictForSave()
    {
        var state = HfStateDict();
        state.Remove(DecoderBias);
        if (Config.TieWordEmbeddings) state.Remove(DecoderWeight);
        return state;
    }

    /// <summary>
    /// Copies HF-named tensors into the parameters. Tied names may be present or absent; position_ids buffers and
    /// pooler weights (not part of a masked-LM model) are ignored. Float16/bfloat16 tensors are widened to float32.
    /// </summary>
    public void LoadHfStateDict(IReadOnlyDictionary<string, Tensor> source) => LoadHfWeights(new TensorDictionarySource(source));

    public void LoadHfWeights(IHfTensorSource source)
    {
        var optional = new HashSet<string> { DecoderBias };
        if (Config.TieWordEmbeddings) optional.Add(DecoderWeight);
        // Old checkpoints may carry only the decoder's name for the shared bias.
        if (!source.Contains(PredictionBias) && source.Contains(DecoderBias)) optional.Add(PredictionBias);

        var prefix = Config.IsRoberta ? "roberta." : "bert.";
        // BertForPreTraining checkpoints (bert-base-uncased among them) also carry the next-sentence head, unused here.
        bool Ignored(string name) => name == prefix + "embeddings.position_ids" || name.StartsWith(prefix + "pooler.", StringComparison.Ordinal)
            || name.StartsWith("cls.seq_relationship.", StringComparison.Ordinal);
        // The shared tensor is taken from its primary name; the alias would only copy the same values again.
        var aliasOf = new Dictionary<string, string> { [DecoderBias] = PredictionBias };
        if (Config.TieWordEmbeddings) aliasOf[DecoderWeight] = prefix + "embeddings.word_embeddings.weight";
        HfWeights.Copy(Architecture, HfStateDict(), source, optional, Ignored, aliasOf);
    }

    Dictionary<string, Tensor> HfStateDict() => state_dict().ToDictionary(p => HfName(p.Key), p => p.Value);

    string HfName(string name)
    {
        if (!Config.IsRoberta) return name;
        foreach (var (bert, roberta) in RobertaNames)
            if (name.StartsWith(bert, StringComparison.Ordinal)) return roberta + name[bert.Length..];
        return name;
    }

    static readonly (string Bert, string Roberta)[] RobertaNames =
    [
        ("bert.", "roberta."),
        ("cls.predictions.transform.dense.", "lm_head.dense."),
        ("cls.predictions.transform.LayerNorm.", "lm_head.layer_norm."),
        ("cls.predictions.decoder.", "lm_head.decoder."),
        ("cls.predictions.bias", "lm_head.bias"),
    ];
}
