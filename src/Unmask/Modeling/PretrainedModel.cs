
using TorchSharp.Modules;

namespace Unmask.Modeling;

// The shape transformers gives every family: an encoder (BertModel, RobertaModel, ...) registered under the family's
// prefix, and a head composed over it (BertForMaskedLM = bert + cls). The module tree is the weight-name tree, so
// state_dict() is what config.json's class writes. Callers hold PretrainedModel and never a concrete family.

/// <summary>What a model's head predicts at each position.</summary>
public enum HeadKind
{
    /// <summary>Logits over the vocabulary: [batch, seq, vocab_size].</summary>
    MaskedLm,

    /// <summary>ELECTRA's discriminator: one logit per position that the token was replaced, [batch, seq].</summary>
    ReplacedToken,

    /// <summary>*ForSequenceClassification: one row of num_labels logits per sequence, [batch, num_labels].</summary>
    SequenceClassification,

    /// <summary>*ForTokenClassification: num_labels logits per position, [batch, seq, num_labels].</summary>
    TokenClassification,

    /// <summary>No head (BertModel, RobertaModel, ...): the logits are the last hidden state, [batch, seq, hidden].</summary>
    None,
}

/// <summary>Outputs of <see cref="PretrainedModel.Forward"/>; disposing it disposes every tensor in it.</summary>
/// <param name="Logits">[batch, seq, ...] from the head, or [n, ...] when the head ran at selected positions only.</param>
/// <param name="Loss">The head's loss over labels other than -100; null without labels.</param>
/// <param name="LastHiddenState">[batch, seq, hidden], the encoder output.</param>
/// <param name="HiddenStates">Embedding output, then each layer's output (as HF output_hidden_states), when asked for.</param>
public sealed record ModelOutput(Tensor Logits, Tensor? Loss, Tensor LastHiddenState, IReadOnlyList<Tensor>? HiddenStates) : IDisposable
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

/// <summary>What a load left as it was: parameters the source did not have (newly initialised, as transformers
/// reports them) and source tensors the model has no place for.</summary>
public sealed record LoadReport(IReadOnlyList<string> NewlyInitialised, IReadOnlyList<string> Unused);

/// <summary>A family's encoder without a head: HF's BertModel, RobertaModel, DistilBertModel, ElectraModel, ModernBertModel.</summary>
public abstract class Encoder : nn.Module, IComputeDtypeAware
{
    private protected Encoder(string name) : base(name)
    {
    }

    public ComputeDtype ComputeDtype { get; set; }

    /// <summary>The token embedding matrix, which masked-LM decoders share.</summary>
    public abstract Parameter WordEmbeddingWeight { get; }

    /// <summary>The longest input the position embeddings take (less RoBERTa's padding offset).</summary>
    public abstract int MaxSequenceLength { get; }

    /// <summary>Whether token_type_ids reach the encoder (BERT, ELECTRA); the others have no segment embeddings.</summary>
    public abstract bool UsesTokenTypeIds { get; }

    /// <param name="tokenTypeIds">[batch, seq]; null means all zeros. Ignored where the family has none.</param>
    /// <param name="hiddenStates">When given, receives the embedding output and then each layer's output.</param>
    /// <returns>[batch, seq, hidden]</returns>
    public abstract Tensor forward(Tensor inputIds, Tensor? attentionMask, Tensor? tokenTypeIds, List<Tensor>? hiddenStates);

    /// <summary>The pooled first token (BERT's pooler: dense and tanh), [batch, hidden]; null where the encoder has no pooler.</summary>
    public virtual Tensor? Pool(Tensor lastHiddenState) => null;

    internal abstract void InitialiseLocalAttention(double initializerRange, double queryKeyScale);
}

/// <summary>
/// An encoder with a head, named and computed as transformers does, so that fill-mask, logits, scoring, training and
/// saving work on any family. Parameters stay float32; use <see cref="ComputeDtype"/> for bf16 products. A model is built
/// on its device (<see cref="Checkpoints.ModelLoader"/> takes one) and never moved: <c>to(...)</c> would copy tied
/// parameters apart.
/// </summary>
public abstract class PretrainedModel : nn.Module
{
    ComputeDtype computeDtype;

    /// <summary>Registers <paramref name="encoder"/> under <paramref name="encoderPrefix"/>; the subclass then registers its head.</summary>
    private protected PretrainedModel(string name, IHfConfig config, string encoderPrefix, Encoder encoder) : base(name)
    {
        HfConfig = config;
        EncoderPrefix = encoderPrefix;
        Encoder = encoder;
        register_module(encoderPrefix, encoder);
    }

    public IHfConfig HfConfig { get; }

    /// <summary>The HF class name, e.g. RobertaForMaskedLM: the first entry of the config's <c>architectures</c>.</summary>
    public string Architecture => HfConfig.Architectures![0];

    public abstract HeadKind Head { get; }

    /// <summary>The encoder's name in state_dict(): bert, roberta, distilbert, electra, model.</summary>
    public string EncoderPrefix { get; }

    public Encoder Encoder { get; }

    public int MaxSequenceLength => Encoder.MaxSequenceLength;

    /// <summary>Where the parameters are, and where inputs must be.</summary>
    public Device Device => Encoder.WordEmbeddingWeight.device;

    public bool UsesTokenTypeIds => Encoder.UsesTokenTypeIds;

    /// <summary>Number of distinct parameter values (tied matrices counted once).</summary>
    public long ParameterCount => parameters().Sum(p => p.numel());

    public ComputeDtype ComputeDtype
    {
        get => computeDtype;
        set => computeDtype = ComputeDtypes.Apply(this, value);
    }

    /// <summary>Every parameter once under its HF name (a tied one under the name HF saves it by).</summary>
    public IReadOnlyList<(string Name, Parameter Parameter)> NamedParametersOnce()
    {
        var seen = new HashSet<Parameter>(ReferenceEqualityComparer.Instance);
        return named_parameters().Where(p => !TiedNames.Contains(p.name) && seen.Add(p.parameter)).Select(p => (p.name, p.parameter)).ToList();
    }

    /// <summary>See <see cref="LocalAttention"/>; for a new model about to be pretrained.</summary>
    public void InitialiseLocalAttention(double queryKeyScale = 1.1) => Encoder.InitialiseLocalAttention(InitializerRange, queryKeyScale);

    private protected abstract double InitializerRange { get; }

    /// <summary>Names in state_dict() that alias another parameter (a decoder tied to the embeddings): HF does not
    /// write them and does not need them on load.</summary>
    private protected abstract IReadOnlySet<string> TiedNames { get; }

    /// <summary>Source tensors a load skips: buffers HF saves (position ids) and heads this class does not have.</summary>
    private protected virtual bool IgnoredOnLoad(string name) =>
        name.StartsWith(EncoderPrefix + ".embeddings.", StringComparison.Ordinal)
        && (name.EndsWith(".position_ids", StringComparison.Ordinal) || name.EndsWith(".token_type_ids", StringComparison.Ordinal));

    /// <summary>The head over encoder outputs: [..., hidden] → [..., vocab] (masked LM), [...] (replaced token),
    /// [..., num_labels] (tokens), or [batch, seq, hidden] → [batch, num_labels] (sequences). Its result is float32
    /// whatever the compute dtype: softmax and the losses need its range.</summary>
    /// <param name="attentionMask">[batch, seq] for dense hidden states (a pooling head reads it); null at selected positions.</param>
    private protected abstract Tensor HeadForward(Tensor hidden, Tensor? attentionMask);

    /// <summary>Checks <c>labels</c> against input_ids: by default one int64 target per position.</summary>
    private protected virtual void CheckLabels(Tensor labels, Tensor inputIds)
    {
        if (!labels.shape.SequenceEqual(inputIds.shape))
            throw new ArgumentException($"labels has shape [{string.Join(", ", labels.shape)}], expected [{string.Join(", ", inputIds.shape)}] like input_ids.");
        if (labels.dtype != ScalarType.Int64)
            throw new ArgumentException($"labels must be int64, got {labels.dtype}.");
    }

    /// <summary>The head's loss; <paramref name="attentionMask"/> is given only for dense logits.</summary>
    private protected abstract Tensor HeadLoss(Tensor logits, Tensor labels, Tensor? attentionMask);

    /// <param name="inputIds">[batch, seq] int64 token ids.</param>
    /// <param name="attentionMask">[batch, seq], 1 for real tokens and 0 for padding; null means all ones.</param>
    /// <param name="tokenTypeIds">[batch, seq] segment ids; null means all zeros; ignored where the family has none.</param>
    /// <param name="labels">[batch, seq] targets, -100 where no loss is wanted (token ids; for
    /// <see cref="HeadKind.ReplacedToken"/> 1 = replaced, 0 = original).</param>
    /// <param name="positions">[batch, seq] bool: run the head only there; logits are then [n, ...] in row-major order
    /// of those positions, and the loss covers them. Null runs the head everywhere.</param>
    /// <param name="outputHiddenStates">Also return the embedding output and every layer's output.</param>
    public ModelOutput Forward(Tensor inputIds, Tensor? attentionMask = null, Tensor? tokenTypeIds = null,
        Tensor? labels = null, Tensor? positions = null, bool outputHiddenStates = false)
    {
        CheckInputs(inputIds, attentionMask, tokenTypeIds, labels, positions);
        using var scope = torch.NewDisposeScope();
        var hiddenStates = outputHiddenStates ? new List<Tensor>() : null;
        var sequence = Encoder.forward(inputIds, attentionMask, UsesTokenTypeIds ? tokenTypeIds : null, hiddenStates); // [batch, seq, hidden]

        Tensor logits;
        Tensor? loss = null;
        if (positions is not null)
        {
            var selected = positions.reshape(-1).nonzero().squeeze(1); // [n]
            logits = HeadForward(sequence.reshape(-1, sequence.shape[2]).index_select(0, selected), null); // [n, ...]
            if (labels is not null) loss = HeadLoss(logits, labels.reshape(-1).index_select(0, selected), null);
        }
        else
        {
            logits = HeadForward(sequence, attentionMask); // [batch, seq, ...] or [batch, num_labels]
            if (labels is not null) loss = HeadLoss(logits, labels, attentionMask);
        }

        // The last hidden state may also be an entry of hiddenStates; each tensor must leave the scope exactly once.
        if (hiddenStates is null || !hiddenStates.Any(h => ReferenceEquals(h, sequence))) sequence.MoveToOuterDisposeScope();
        if (hiddenStates is not null) foreach (var hidden in hiddenStates) hidden.MoveToOuterDisposeScope();
        return new ModelOutput(logits.MoveToOuterDisposeScope(), loss?.MoveToOuterDisposeScope(), sequence, hiddenStates);
    }

    /// <summary>The pooled output of a last hidden state where the encoder has a pooler (BERT's), else null.</summary>
    public Tensor? Pool(Tensor lastHiddenState)
    {
        using var scope = torch.NewDisposeScope();
        return Encoder.Pool(lastHiddenState)?.MoveToOuterDisposeScope(); // [batch, hidden]
    }

    /// <summary>Cross-entropy over the vocabulary, ignoring -100, as HF's masked-LM heads compute it.</summary>
    private protected static Tensor MaskedLmLoss(Tensor logits, Tensor labels) =>
        F.cross_entropy(logits.view(-1, logits.shape[^1]), labels.reshape(-1));

    /// <summary>
    /// The tensors to write to model.safetensors under HF's names, tied aliases left out as HF does. The values are
    /// the live parameters: do not dispose or modify them.
    /// </summary>
    public Dictionary<string, Tensor> StateDictForSave()
    {
        var state = state_dict();
        foreach (var name in TiedNames) state.Remove(name);
        if (!SavesWithoutEncoderPrefix) return state;
        var prefix = EncoderPrefix + ".";
        return state.ToDictionary(p => p.Key.StartsWith(prefix, StringComparison.Ordinal) ? p.Key[prefix.Length..] : p.Key, p => p.Value);
    }

    /// <summary>transformers' bare encoder classes save their tensors without the encoder prefix.</summary>
    private protected virtual bool SavesWithoutEncoderPrefix => false;

    /// <summary>Copies HF-named tensors into the parameters; a missing, unexpected or misshapen tensor is an
    /// <see cref="UnmaskException"/> naming it. Float16/bfloat16 tensors are widened to float32.</summary>
    public void LoadHfStateDict(IReadOnlyDictionary<string, Tensor> source) => LoadHfWeights(new TensorDictionarySource(source));

    /// <summary>As <see cref="LoadHfStateDict"/>, copying each tensor from the source straight into its parameter.</summary>
    /// <param name="encoderOnly">The source is another head's checkpoint of this family (transformers'
    /// from_pretrained across classes): the encoder must load completely, the head keeps its initial values and is
    /// reported newly initialised, and the source's other tensors are reported unused.</param>
    public LoadReport LoadHfWeights(IHfTensorSource source, bool encoderOnly = false)
    {
        var prefix = EncoderPrefix + ".";
        // BERT's pooler belongs to BertModel, yet masked-LM checkpoints lack it and classifiers start it afresh, as in HF.
        bool OutsideEncoder(string name) => encoderOnly
            && (!name.StartsWith(prefix, StringComparison.Ordinal) || name.StartsWith(prefix + "pooler.", StringComparison.Ordinal));
        return HfWeights.Copy(Architecture, state_dict(), source, TiedNames, IgnoredOnLoad, OutsideEncoder);
    }

    void CheckInputs(Tensor inputIds, Tensor? attentionMask, Tensor? tokenTypeIds, Tensor? labels, Tensor? positions)
    {
        if (inputIds.dim() != 2 || inputIds.dtype != ScalarType.Int64)
            throw new ArgumentException($"input_ids must be a [batch, seq] int64 tensor, got {inputIds.dtype} [{string.Join(", ", inputIds.shape)}].");
        if (!ComputeDevice.Same(inputIds.device, Device))
            throw new ArgumentException($"input_ids is on {inputIds.device} but the model is on {Device}.");
        var seq = inputIds.shape[1];
        if (seq > MaxSequenceLength)
            throw new ArgumentException($"Sequence length {seq} exceeds the {MaxSequenceLength} positions the model's max_position_embeddings allows.");
        foreach (var (name, tensor) in new[] { ("attention_mask", attentionMask), ("token_type_ids", tokenTypeIds), ("positions", positions) })
        {
            if (tensor is not null && !tensor.shape.SequenceEqual(inputIds.shape))
                throw new ArgumentException($"{name} has shape [{string.Join(", ", tensor.shape)}], expected [{string.Join(", ", inputIds.shape)}] like input_ids.");
        }
        if (labels is not null) CheckLabels(labels, inputIds);
        if (positions is not null && Head == HeadKind.SequenceClassification)
            throw new ArgumentException("positions select tokens; a sequence classifier has one output per sequence.");
        if (positions is not null && positions.dtype != ScalarType.Bool)
            throw new ArgumentException($"positions must be a bool tensor, got {positions.dtype}.");
        if (inputIds.numel() == 0) return;
        using var scope = torch.NewDisposeScope();
        var (min, max) = (inputIds.min().item<long>(), inputIds.max().item<long>());
        if (min < 0 || max >= HfConfig.VocabSize)
            throw new ArgumentException($"input_ids contain ids outside [0, {HfConfig.VocabSize}) (min {min}, max {max}).");
    }
}

/// <summary>The checked copy of HF-named tensors into a model's live parameters.</summary>
internal static class HfWeights
{
    /// <param name="architecture">Named in errors.</param>
    /// <param name="target">HF name → live parameter, tied aliases included.</param>
    /// <param name="tied">Names that alias another target name's tensor.</param>
    /// <param name="ignored">Source names to skip (buffers such as position_ids, heads the class lacks).</param>
    /// <param name="outsideLoad">Target names the source may lack (reported newly initialised) and source names
    /// that may go unused (reported).</param>
    public static LoadReport Copy(string architecture, IReadOnlyDictionary<string, Tensor> target, IHfTensorSource source,
        IReadOnlySet<string> tied, Func<string, bool> ignored, Func<string, bool> outsideLoad)
    {
        // Names sharing one tensor form a group that any of its names fills, the saved (untied) name first.
        var groups = target.GroupBy(p => p.Value, p => p.Key, ReferenceEqualityComparer.Instance)
            .Select(g => g.OrderBy(tied.Contains).ToList()).ToList();
        var copies = new List<(string Name, Tensor Destination)>();
        var missing = new List<string>();
        var fresh = new List<string>();
        foreach (var group in groups)
        {
            if (group.FirstOrDefault(source.Contains) is { } present) copies.Add((present, target[present]));
            else if (outsideLoad(group[0])) fresh.Add(group[0]);
            else missing.Add(group[0]);
        }
        var extra = source.Names.Where(n => !ignored(n) && !target.ContainsKey(n)).Order(StringComparer.Ordinal).ToList();
        var unexpected = extra.Where(n => !outsideLoad(n)).ToList();
        missing.Sort(StringComparer.Ordinal);
        if (missing.Count > 0)
            throw new UnmaskException($"Weights are missing for {missing.Count} parameter(s) of a {architecture}: {List(missing)}.");
        if (unexpected.Count > 0)
            throw new UnmaskException($"Unexpected tensor(s) for a {architecture}: {List(unexpected)}.");

        foreach (var name in source.Names.Where(target.ContainsKey))
        {
            var shape = source.Shape(name);
            if (!shape.SequenceEqual(target[name].shape))
                throw new UnmaskException($"Tensor '{name}' has shape [{string.Join(", ", shape)}] but the model expects [{string.Join(", ", target[name].shape)}].");
            if (!source.IsFloatingPoint(name))
                throw new UnmaskException($"Tensor '{name}' has an integer or boolean element type; a floating-point type is expected.");
        }

        using var noGrad = torch.no_grad();
        foreach (var (name, destination) in copies) source.CopyTo(name, destination);
        return new LoadReport(fresh, extra.Where(outsideLoad).ToList());
    }

    static string List(List<string> names) => string.Join(", ", names.Take(8)) + (names.Count > 8 ? ", ..." : "");
}
