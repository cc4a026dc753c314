using System.Text.Json;
using System.Text.Json.Nodes;
using TorchSharp;
using TorchSharp.Modules;
using Unmask.Checkpoints;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Unmask.Modeling;

// Pieces every model family file shares: config.json reading and writing, HF activation names, the additive
// attention mask, and the checked copy of HF-named tensors into a model.

/// <summary>Reads and writes a family's config record as Hugging Face spells config.json.</summary>
internal static class HfConfigJson
{
    static readonly JsonSerializerOptions Options = new()
    {
        RespectNullableAnnotations = true,
        AllowTrailingCommas = true,
        ReadCommentHandling = JsonCommentHandling.Skip,
    };

    public static T Load<T>(string path, string family) where T : class
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
        try
        {
            return JsonSerializer.Deserialize<T>(json, Options)
                ?? throw new UnmaskException($"{path}: the config is JSON null, expected an object.");
        }
        catch (JsonException ex)
        {
            throw new UnmaskException($"{path}: not a valid {family} config: {ex.Message}", ex);
        }
    }

    public static void Save<T>(T config, string path) => Write(JsonSerializer.SerializeToNode(config, Options)!.AsObject(), path);

    /// <summary>Writes a serialized config as transformers' save_pretrained does: keys sorted, indented.</summary>
    public static void Write(JsonObject node, string path)
    {
        // transformers writes only fields that differ from PretrainedConfig's defaults; tie_word_embeddings (true) is
        // the one such default the families' records carry.
        if (node["tie_word_embeddings"] is JsonValue tie && tie.TryGetValue<bool>(out var tied) && tied) node.Remove("tie_word_embeddings");
        var sorted = new JsonObject();
        foreach (var (key, value) in node.OrderBy(p => p.Key, StringComparer.Ordinal)) sorted[key] = value?.DeepClone();
        AtomicFile.WriteAllText(path, sorted.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
    }

    /// <summary>Throws naming the source and field when <paramref name="ok"/> is false.</summary>
    public static void Require(string source, bool ok, string field, string problem)
    {
        if (!ok) throw new UnmaskException($"{source}: field '{field}' {problem}");
    }
}

/// <summary>HF's ACT2FN names for the activations these families use.</summary>
internal static class HfActivations
{
    public static IReadOnlyList<string> Supported { get; } = ["gelu", "gelu_new", "gelu_pytorch_tanh", "relu", "silu", "swish"];

    public static Func<Tensor, Tensor> Get(string name) => name switch
    {
        "gelu" => x => F.gelu(x), // exact erf GELU, as HF's "gelu"
        "gelu_new" or "gelu_pytorch_tanh" => x => F.gelu(x, GELU.Approximate.tanh),
        "relu" => x => F.relu(x),
        "silu" or "swish" => x => F.silu(x),
        _ => throw new UnmaskException($"activation '{name}' is not supported; supported: {string.Join(", ", Supported)}."),
    };
}

internal static class AttentionMasks
{
    /// <summary>HF's extended mask: 0 where a key is visible, dtype.min on padded keys. [batch, 1, 1, seq].</summary>
    /// <param name="dtype">The attention's compute dtype: float32.min would round to -inf in bfloat16 and turn a fully
    /// padded row into NaN.</param>
    public static Tensor? Additive(Tensor? attentionMask, ScalarType dtype = ScalarType.Float32)
    {
        if (attentionMask is null) return null;
        var open = attentionMask.to(dtype).unsqueeze(1).unsqueeze(2); // [batch, 1, 1, seq]
        return (1.0 - open) * torch.finfo(dtype).min;
    }
}

/// <summary>The checked copy of HF-named tensors into a model's live parameters.</summary>
internal static class HfWeights
{
    /// <param name="architecture">Named in errors.</param>
    /// <param name="target">HF name → live parameter, tied duplicates included under every name HF gives them.</param>
    /// <param name="optional">Names that may be absent (tied duplicates HF does not write).</param>
    /// <param name="ignored">Names to skip in the source (buffers such as position_ids, pooler weights).</param>
    /// <param name="aliasOf">Tied name → primary name; the alias is not copied when the primary is present.</param>
    public static void Copy(string architecture, IReadOnlyDictionary<string, Tensor> target, IHfTensorSource source,
        IReadOnlySet<string> optional, Func<string, bool> ignored, IReadOnlyDictionary<string, string> aliasOf)
    {
        var unexpected = source.Names.Where(n => !ignored(n) && !target.ContainsKey(n)).Order(StringComparer.Ordinal).ToList();
        var missing = target.Keys.Where(n => !optional.Contains(n) && !source.Contains(n)).Order(StringComparer.Ordinal).ToList();
        if (missing.Count > 0)
            throw new UnmaskException($"Weights are missing for {missing.Count} parameter(s) of a {architecture}: {List(missing)}.");
        if (unexpected.Count > 0)
            throw new UnmaskException($"Unexpected tensor(s) for a {architecture}: {List(unexpected)}.");

        foreach (var name in source.Names)
        {
            if (ignored(name)) continue;
            var shape = source.Shape(name);
            if (!shape.SequenceEqual(target[name].shape))
                throw new UnmaskException($"Tensor '{name}' has shape [{string.Join(", ", shape)}] but the model expects [{string.Join(", ", target[name].shape)}].");
            if (!source.IsFloatingPoint(name))
                throw new UnmaskException($"Tensor '{name}' has an integer or boolean element type; a floating-point type is expected.");
        }

        using var noGrad = torch.no_grad();
        foreach (var name in source.Names)
        {
            if (ignored(name)) continue;
            if (aliasOf.TryGetValue(name, out var primary) && source.Contains(primary)) continue;
            source.CopyTo(name, target[name]);
        }
    }

    static string List(List<string> names) => string.Join(", ", names.Take(8)) + (names.Count > 8 ? ", ..." : "");

    /// <summary>Checks the inputs every family's Forward takes, as BertForMaskedLM does.</summary>
    public static void CheckInputs(Tensor inputIds, Tensor? attentionMask, Tensor? tokenTypeIds, Tensor? labels, bool sparsePrediction,
        int maxSequenceLength, int vocabSize)
    {
        if (inputIds.dim() != 2 || inputIds.dtype != ScalarType.Int64)
            throw new ArgumentException($"input_ids must be a [batch, seq] int64 tensor, got {inputIds.dtype} [{string.Join(", ", inputIds.shape)}].");
        var seq = inputIds.shape[1];
        if (seq > maxSequenceLength)
            throw new ArgumentException($"Sequence length {seq} exceeds the {maxSequenceLength} positions the model's max_position_embeddings allows.");
        foreach (var (name, tensor) in new[] { ("attention_mask", attentionMask), ("token_type_ids", tokenTypeIds), ("labels", labels) })
        {
            if (tensor is not null && !tensor.shape.SequenceEqual(inputIds.shape))
                throw new ArgumentException($"{name} has shape [{string.Join(", ", tensor.shape)}], expected [{string.Join(", ", inputIds.shape)}] like input_ids.");
        }
        if (labels is not null && labels.dtype != ScalarType.Int64)
            throw new ArgumentException($"labels must be int64, got {labels.dtype}.");
        if (sparsePrediction && labels is null)
            throw new ArgumentException("Sparse prediction needs labels: they select the positions to predict.");
        if (inputIds.numel() == 0) return;
        using var scope = torch.NewDisposeScope();
        var (min, max) = (inputIds.min().item<long>(), inputIds.max().item<long>());
        if (min < 0 || max >= vocabSize)
            throw new ArgumentException($"input_ids contain ids outside [0, {vocabSize}) (min {min}, max {max}).");
    }

    /// <summary>
    /// Runs a masked-LM head densely or at the labelled positions only, with HF's cross-entropy ignoring -100.
    /// </summary>
    /// <param name="sequence">[batch, seq, hidden] encoder output.</param>
    public static (Tensor Logits, Tensor? Loss) MaskedLmHead(Func<Tensor, Tensor> head, Tensor sequence, Tensor? labels,
        bool sparsePrediction, long vocabSize)
    {
        if (sparsePrediction)
        {
            var flatLabels = labels!.reshape(-1); // [batch * seq]
            var positions = flatLabels.ne(-100).nonzero().squeeze(1); // [n]
            var rows = sequence.reshape(-1, sequence.shape[2]).index_select(0, positions); // [n, hidden]
            var sparse = head(rows); // [n, vocab]
            return (sparse, F.cross_entropy(sparse, flatLabels.index_select(0, positions)));
        }
        var logits = head(sequence); // [batch, seq, vocab]
        return (logits, labels is null ? null : F.cross_entropy(logits.view(-1, vocabSize), labels.reshape(-1)));
    }

    /// <summary>Moves the outputs out of the forward's dispose scope, each tensor exactly once.</summary>
    public static MaskedLmOutput Output(Tensor logits, Tensor? loss, Tensor lastHidden, List<Tensor>? hiddenStates)
    {
        if (hiddenStates is null || !hiddenStates.Any(h => ReferenceEquals(h, lastHidden))) lastHidden.MoveToOuterDisposeScope();
        if (hiddenStates is not null) foreach (var hidden in hiddenStates) hidden.MoveToOuterDisposeScope();
        return new MaskedLmOutput(logits.MoveToOuterDisposeScope(), loss?.MoveToOuterDisposeScope(), lastHidden, hiddenStates);
    }
}
