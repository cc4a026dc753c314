using System.Runtime.InteropServices;
using Google.Protobuf;
using Onnx;
using Unmask.Modeling;
using Unmask.Tokenization;

namespace Unmask.Checkpoints;

/// <summary>What an ONNX import wrote: the folder, the inferred config and how each tensor was named.</summary>
/// <param name="Renamed">Anonymous MatMul initializers and the transformers name each got (transposed to [out, in]).</param>
public sealed record OnnxImportResult(string OutputDir, BertConfig Config, int Tensors, IReadOnlyDictionary<string, string> Renamed);

/// <summary>
/// Turns a BERT encoder exported to ONNX (torch.onnx or optimum: inputs input_ids, attention_mask[, token_type_ids],
/// output last_hidden_state) into a Hugging Face BertModel folder. Named initializers keep transformers' names. The
/// exporter folds each Linear into a MatMul on an anonymous [in, out] initializer followed by an Add of the named
/// bias, so the MatMul's weight is the bias's Linear weight, transposed. The config comes from the tensor shapes and
/// the graph: the attention reshape gives the heads, the LayerNorm's epsilon constant layer_norm_eps, Erf the exact GELU.
/// </summary>
public static class OnnxImport
{
    const int FloatType = 1;

    public static OnnxImportResult Run(string onnxPath, string tokenizerDir, string outputDir)
    {
        var model = Parse(onnxPath);
        var graph = model.Graph ?? throw new UnmaskException($"{onnxPath}: the model has no graph.");
        var initializers = graph.Initializer.ToDictionary(t => t.Name, StringComparer.Ordinal);
        var constants = new Dictionary<string, TensorProto>(initializers, StringComparer.Ordinal);
        foreach (var node in graph.Node.Where(n => n.OpType == "Constant"))
            if (node.Attribute.FirstOrDefault(a => a.Name == "value")?.T is { } value) constants[node.Output[0]] = value;
        var consumers = graph.Node.SelectMany(n => n.Input.Select(i => (Input: i, Node: n))).ToLookup(p => p.Input, p => p.Node);

        var tensors = new Dictionary<string, TensorProto>(StringComparer.Ordinal);
        var transposed = new HashSet<string>(StringComparer.Ordinal);
        var renamed = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var t in graph.Initializer)
        {
            var name = StripPrefix(t.Name);
            if (IsHfName(name)) tensors[name] = t;
        }
        foreach (var node in graph.Node.Where(n => n.OpType == "MatMul" && n.Input.Count == 2 && initializers.ContainsKey(n.Input[1])))
        {
            var weight = initializers[node.Input[1]];
            if (IsHfName(StripPrefix(weight.Name))) continue;
            var bias = consumers[node.Output[0]].Where(c => c.OpType == "Add").SelectMany(c => c.Input)
                .Select(StripPrefix).FirstOrDefault(i => i.EndsWith(".bias", StringComparison.Ordinal) && tensors.ContainsKey(i))
                ?? throw new UnmaskException($"{onnxPath}: MatMul node '{node.Name}' multiplies by initializer '{weight.Name}', but no Add of a named bias follows it, so it cannot be given a transformers name.");
            var name = bias[..^".bias".Length] + ".weight";
            if (!renamed.TryAdd(weight.Name, name) && renamed[weight.Name] != name)
                throw new UnmaskException($"{onnxPath}: initializer '{weight.Name}' feeds both {renamed[weight.Name]} and {name}.");
            tensors[name] = weight;
            transposed.Add(name);
        }
        tensors.Remove("embeddings.position_ids");

        var config = InferConfig(onnxPath, graph, tensors, constants, consumers);
        var tokenizer = TokenizerLoader.Load(tokenizerDir);
        if (tokenizer.VocabSize != config.VocabSize)
            throw new UnmaskException($"{tokenizerDir}: the tokenizer has {tokenizer.VocabSize} tokens but the ONNX embedding matrix embeddings.word_embeddings.weight has {config.VocabSize} rows.");

        bool hasPooler = tensors.ContainsKey("pooler.dense.weight") && tensors.ContainsKey("pooler.dense.bias");
        using var encoder = EncoderModel.Create(config, addPoolingLayer: hasPooler);
        using (var scope = torch.NewDisposeScope())
        {
            var state = new Dictionary<string, Tensor>(StringComparer.Ordinal);
            foreach (var (name, proto) in tensors)
            {
                var value = ToTensor(onnxPath, proto); // [in, out] for a MatMul weight
                state[encoder.EncoderPrefix + "." + name] = transposed.Contains(name) ? value.t().contiguous() : value;
            }
            try
            {
                encoder.LoadHfStateDict(state);
            }
            catch (UnmaskException e)
            {
                throw new UnmaskException($"{onnxPath}: the graph's tensors do not make a BertModel: {e.Message}", e);
            }
        }
        encoder.eval();
        ModelFolder.Save(outputDir, encoder, tokenizer.Save);
        return new OnnxImportResult(outputDir, config, tensors.Count, renamed);
    }

    static ModelProto Parse(string path)
    {
        if (!File.Exists(path)) throw new UnmaskException($"{path}: file not found");
        try
        {
            using var stream = File.OpenRead(path);
            return ModelProto.Parser.ParseFrom(stream);
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new UnmaskException($"{path}: not an ONNX model ({e.Message})", e);
        }
    }

    // optimum exports of BertModel carry no prefix; exports of a wrapper (a sentence-transformers module) may.
    static string StripPrefix(string name)
    {
        foreach (var prefix in new[] { "bert.", "0.auto_model.", "auto_model." })
            if (name.StartsWith(prefix, StringComparison.Ordinal)) return name[prefix.Length..];
        return name;
    }

    static bool IsHfName(string name) => name.StartsWith("embeddings.", StringComparison.Ordinal)
        || name.StartsWith("encoder.layer.", StringComparison.Ordinal) || name.StartsWith("pooler.", StringComparison.Ordinal);

    static BertConfig InferConfig(string path, GraphProto graph, Dictionary<string, TensorProto> tensors, Dictionary<string, TensorProto> constants,
        ILookup<string, NodeProto> consumers)
    {
        var unknown = graph.Initializer.Select(t => t.Name).Where(n => n.Contains('.') && !IsHfName(StripPrefix(n))).ToList();
        if (!tensors.TryGetValue("embeddings.word_embeddings.weight", out var words) || unknown.Count > 0)
            throw new UnmaskException($"{path}: not a BERT encoder export: " + (unknown.Count > 0
                ? $"initializer '{unknown[0]}' has no place in a BertModel"
                : "no initializer embeddings.word_embeddings.weight"));
        var inputs = graph.Input.Select(i => i.Name).ToHashSet();
        if (!inputs.Contains("input_ids")) throw new UnmaskException($"{path}: the graph has no input_ids input.");

        long Dim(string name, int axis) => tensors.TryGetValue(name, out var t) && t.Dims.Count > axis ? t.Dims[axis]
            : throw new UnmaskException($"{path}: initializer {name} is missing.");
        int hidden = (int)Dim("embeddings.word_embeddings.weight", 1);
        int layers = tensors.Keys.Where(n => n.StartsWith("encoder.layer.", StringComparison.Ordinal))
            .Select(n => int.Parse(n.Split('.')[2], System.Globalization.CultureInfo.InvariantCulture)).DefaultIfEmpty(-1).Max() + 1;
        if (layers == 0) throw new UnmaskException($"{path}: no encoder.layer.* initializers.");

        int heads = InferHeads(path, graph, tensors, constants, consumers, hidden);
        var act = graph.Node.Any(n => n.OpType == "Erf") ? "gelu"
            : graph.Node.Any(n => n.OpType == "Relu") ? "relu"
            : throw new UnmaskException($"{path}: the feed-forward activation is neither exact GELU (Erf) nor ReLU; tanh-approximated GELU exports are not read.");
        var config = new BertConfig
        {
            ModelType = "bert",
            Architectures = ["BertModel"],
            VocabSize = (int)words.Dims[0],
            HiddenSize = hidden,
            NumHiddenLayers = layers,
            NumAttentionHeads = heads,
            IntermediateSize = (int)Dim("encoder.layer.0.intermediate.dense.bias", 0),
            MaxPositionEmbeddings = (int)Dim("embeddings.position_embeddings.weight", 0),
            TypeVocabSize = tensors.ContainsKey("embeddings.token_type_embeddings.weight") ? (int)Dim("embeddings.token_type_embeddings.weight", 0) : 2,
            HiddenAct = act,
            LayerNormEps = InferLayerNormEps(path, graph, constants),
        };
        config.Validate(path);
        return config;
    }

    /// <summary>The attention reshape after the query projection: [batch, seq, heads, head_dim], whose last two
    /// entries are constants in the export.</summary>
    static int InferHeads(string path, GraphProto graph, Dictionary<string, TensorProto> tensors, Dictionary<string, TensorProto> constants,
        ILookup<string, NodeProto> consumers, int hidden)
    {
        var queryBias = graph.Initializer.Select(t => t.Name).FirstOrDefault(n => StripPrefix(n) == "encoder.layer.0.attention.self.query.bias");
        var add = queryBias is null ? null : consumers[queryBias].FirstOrDefault(n => n.OpType == "Add");
        var reshape = add is null ? null : consumers[add.Output[0]].FirstOrDefault(n => n.OpType == "Reshape");
        if (reshape is not null)
        {
            var shape = reshape.Input[1];
            var values = constants.TryGetValue(shape, out var direct) ? Ints(direct)
                : graph.Node.FirstOrDefault(n => n.Output.Contains(shape) && n.OpType == "Concat") is { } concat
                    ? concat.Input.Select(i => constants.TryGetValue(i, out var c) ? Ints(c) : [0]).SelectMany(v => v).ToArray()
                    : [];
            if (values.Length == 4 && values[2] > 0 && values[2] * values[3] == hidden) return (int)values[2];
        }
        throw new UnmaskException($"{path}: cannot find the number of attention heads (no [batch, seq, heads, head_dim] Reshape after encoder.layer.0.attention.self.query).");
    }

    /// <summary>LayerNormalization's epsilon attribute (opset 17), or the constant added to the variance in the
    /// decomposed form (ReduceMean → Add ε → Sqrt).</summary>
    static double InferLayerNormEps(string path, GraphProto graph, Dictionary<string, TensorProto> constants)
    {
        if (graph.Node.FirstOrDefault(n => n.OpType == "LayerNormalization") is { } norm)
            return norm.Attribute.FirstOrDefault(a => a.Name == "epsilon") is { } epsilon
                ? double.Parse(epsilon.F.ToString(System.Globalization.CultureInfo.InvariantCulture), System.Globalization.CultureInfo.InvariantCulture)
                : 1e-5;
        var producers = graph.Node.SelectMany(n => n.Output.Select(o => (o, n))).ToDictionary(p => p.o, p => p.n);
        foreach (var sqrt in graph.Node.Where(n => n.OpType == "Sqrt"))
        {
            if (!producers.TryGetValue(sqrt.Input[0], out var add) || add.OpType != "Add") continue;
            var eps = add.Input.FirstOrDefault(constants.ContainsKey);
            // The export stores ε as float32; its shortest decimal form (1e-12, not 9.99999996e-13) is what config.json held.
            if (eps is not null && Floats(constants[eps]) is [var value])
                return double.Parse(value.ToString(System.Globalization.CultureInfo.InvariantCulture), System.Globalization.CultureInfo.InvariantCulture);
        }
        throw new UnmaskException($"{path}: cannot find the LayerNorm epsilon (no LayerNormalization node and no Add of a constant before a Sqrt).");
    }

    static long[] Ints(TensorProto t) => t.Int64Data.Count > 0 ? [.. t.Int64Data]
        : t.DataType == 7 ? MemoryMarshal.Cast<byte, long>(t.RawData.Span).ToArray()
        : t.Int32Data.Count > 0 ? [.. t.Int32Data.Select(v => (long)v)]
        : [];

    static float[] Floats(TensorProto t) => t.FloatData.Count > 0 ? [.. t.FloatData]
        : t.DataType == FloatType ? MemoryMarshal.Cast<byte, float>(t.RawData.Span).ToArray()
        : t.DataType == 11 ? [.. MemoryMarshal.Cast<byte, double>(t.RawData.Span).ToArray().Select(d => (float)d)]
        : [];

    static Tensor ToTensor(string path, TensorProto t)
    {
        if (t.DataLocation == TensorProto.Types.DataLocation.External)
            throw new UnmaskException($"{path}: initializer '{t.Name}' lies in an external data file; export with the weights inside the .onnx file.");
        if (t.DataType != FloatType)
            throw new UnmaskException($"{path}: initializer '{t.Name}' has ONNX data type {t.DataType}; only float32 (1) weights are read.");
        var values = Floats(t);
        long expected = t.Dims.Aggregate(1L, (a, d) => a * d);
        if (values.Length != expected)
            throw new UnmaskException($"{path}: initializer '{t.Name}' holds {values.Length} values for shape [{string.Join(", ", t.Dims)}].");
        return torch.tensor(values, [.. t.Dims], device: ComputeDevice.Cpu);
    }
}
