using System.Text.Json;
using System.Text.Json.Nodes;
using Unmask.Checkpoints;
using Unmask.Modeling;
using Unmask.Evaluation;
using Unmask.Inference;
using static TorchSharp.torch;

namespace Unmask.Tests;

/// <summary>
/// Sentence vectors against pooling worked by hand over the hidden states transformers itself produced (the reference
/// fixtures' padded batch), SPLADE weights against the fixtures' logits, the sentence-transformers folder files,
/// and STS scoring.
/// </summary>
public sealed class EmbeddingTests : IDisposable
{
    public static readonly TheoryData<string> Families = new() { "bert-uncased", "roberta", "distilbert", "modernbert" };

    readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("unmask-embed");

    public void Dispose() => _dir.Delete(recursive: true);

    static string ModelDir(string name) => Path.Combine(SharedFixtures.HfReference, "models", name);

    static JsonElement Case(string model, string name) =>
        JsonDocument.Parse(File.ReadAllBytes(Path.Combine(SharedFixtures.HfReference, "cases", model + ".json"))).RootElement
            .GetProperty("cases").EnumerateArray().Single(c => c.GetProperty("name").GetString() == name);

    /// <summary>The fixture's hidden state [batch, seq, hidden] as nested arrays, with its attention mask.</summary>
    static (float[][][] Hidden, long[][] Mask, string[] Texts) Reference(string model, string caseName, int? layer = null)
    {
        var testCase = Case(model, caseName);
        var mask = testCase.GetProperty("attention_mask").EnumerateArray().Select(r => r.EnumerateArray().Select(v => v.GetInt64()).ToArray()).ToArray();
        using var all = layer is int l
            ? BertReferenceFixtures.FloatTensor(testCase.GetProperty("hidden_states"))[l]
            : BertReferenceFixtures.FloatTensor(testCase.GetProperty("last_hidden_state"));
        int batch = (int)all.shape[0], seq = (int)all.shape[1], width = (int)all.shape[2];
        var data = all.contiguous().data<float>().ToArray();
        var hidden = Enumerable.Range(0, batch).Select(b => Enumerable.Range(0, seq)
            .Select(t => data[((b * seq + t) * width)..((b * seq + t + 1) * width)]).ToArray()).ToArray();
        var text = testCase.GetProperty("text");
        var texts = text.ValueKind == JsonValueKind.Array ? text.EnumerateArray().Select(t => t.GetString()!).ToArray() : [text.GetString()!];
        return (hidden, mask, texts);
    }

    static float[] HandPool(float[][] rows, long[] mask, Pooling pooling)
    {
        var real = rows.Where((_, t) => mask[t] == 1).ToArray();
        return pooling switch
        {
            Pooling.Cls => real[0],
            Pooling.Mean => Enumerable.Range(0, real[0].Length).Select(d => (float)real.Average(r => (double)r[d])).ToArray(),
            Pooling.Max => Enumerable.Range(0, real[0].Length).Select(d => real.Max(r => r[d])).ToArray(),
            _ => throw new ArgumentOutOfRangeException(nameof(pooling)),
        };
    }

    static void Close(float[] expected, float[] actual, double tolerance = 1e-4)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tolerance, $"dimension {i}: expected {expected[i]}, got {actual[i]}");
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void PooledVectorsEqualPoolingOfTransformersHiddenStates(string family)
    {
        using var embedder = SentenceEmbedder.Load(ModelDir(family));
        var (hidden, mask, texts) = Reference(family, "batch_right_pad");
        foreach (var pooling in new[] { Pooling.Cls, Pooling.Mean, Pooling.Max })
        {
            // Batched by length here (each text alone in its batch within the budget, or padded less): the vectors must not care.
            var vectors = embedder.Embed(texts, new EmbeddingOptions(pooling));
            for (int b = 0; b < texts.Length; b++) Close(HandPool(hidden[b], mask[b], pooling), vectors[b]);
        }
        var normalised = embedder.Embed(texts, new EmbeddingOptions(Pooling.Mean, Normalize: true));
        for (int b = 0; b < texts.Length; b++)
        {
            var mean = HandPool(hidden[b], mask[b], Pooling.Mean);
            double norm = Math.Sqrt(mean.Sum(v => (double)v * v));
            Close([.. mean.Select(v => (float)(v / norm))], normalised[b], 1e-5);
        }
    }

    [Fact]
    public void LayerPicksAHiddenStateCountedFromTheEmbeddings()
    {
        using var embedder = SentenceEmbedder.Load(ModelDir("bert-uncased"));
        var (embeddings, mask, texts) = Reference("bert-uncased", "mixed_case_punct", layer: 0);
        var (first, _, _) = Reference("bert-uncased", "mixed_case_punct", layer: 1);
        var atZero = embedder.Embed(texts, new EmbeddingOptions(Pooling.Mean, Layer: 0));
        var atOne = embedder.Embed(texts, new EmbeddingOptions(Pooling.Mean, Layer: 1));
        var last = embedder.Embed(texts, new EmbeddingOptions(Pooling.Mean));
        var minusOne = embedder.Embed(texts, new EmbeddingOptions(Pooling.Mean, Layer: -1));
        for (int b = 0; b < texts.Length; b++)
        {
            Close(HandPool(embeddings[b], mask[b], Pooling.Mean), atZero[b]);
            Close(HandPool(first[b], mask[b], Pooling.Mean), atOne[b]);
            Close(last[b], minusOne[b], 1e-6);
        }
        var error = Assert.Throws<UnmaskException>(() => embedder.Embed(texts, new EmbeddingOptions(Pooling.Mean, Layer: 7)));
        Assert.Contains("layer 7", error.Message);
        Assert.Contains("no pooler", Assert.Throws<UnmaskException>(() => embedder.Embed(texts, new EmbeddingOptions(Pooling.Pooler))).Message);
        Assert.Contains("text 2 is empty", Assert.Throws<UnmaskException>(() => embedder.Embed(["fine", " "])).Message);
    }

    [Fact]
    public void PoolIgnoresPaddingAsSentenceTransformersDoes()
    {
        using var scope = NewDisposeScope();
        // Two rows of three positions, hidden size 2; the second row's last position is padding with a huge value.
        var hidden = tensor(new float[] { 1, 2, 3, 4, 5, 6, -1, -2, -3, -4, 100, 100 }, [2, 3, 2]);
        var mask = tensor(new long[] { 1, 1, 1, 1, 1, 0 }, [2, 3]);
        Assert.Equal(new float[] { 3, 4, -2, -3 }, SentenceEmbedder.Pool(hidden, mask, Pooling.Mean).data<float>().ToArray());
        Assert.Equal(new float[] { 5, 6, -1, -2 }, SentenceEmbedder.Pool(hidden, mask, Pooling.Max).data<float>().ToArray());
        Assert.Equal(new float[] { 1, 2, -1, -2 }, SentenceEmbedder.Pool(hidden, mask, Pooling.Cls).data<float>().ToArray());

        var logits = tensor(new float[] { 1, -2, 0.5f, 3, -1, 0, 9, 9 }, [1, 4, 2]); // the last position is padding
        var weights = SentenceEmbedder.SpladeWeights(logits, tensor(new long[] { 1, 1, 1, 0 }, [1, 4])).data<float>().ToArray();
        Assert.Equal(Math.Log(1 + 1.0), weights[0], 6);
        Assert.Equal(Math.Log(1 + 3.0), weights[1], 6);
    }

    [Fact]
    public void SparseTermsAreTheSpladeWeightsOfTransformersLogits()
    {
        using var embedder = SentenceEmbedder.Load(ModelDir("bert-uncased"));
        var testCase = Case("bert-uncased", "simple");
        using var logits = BertReferenceFixtures.FloatTensor(testCase.GetProperty("logits")[0]); // [seq, vocab]
        var rows = logits.contiguous().data<float>().ToArray();
        int vocab = (int)logits.shape[1], seq = (int)logits.shape[0];
        var expected = Enumerable.Range(0, vocab)
            .Select(v => (Id: v, Weight: Enumerable.Range(0, seq).Max(t => Math.Log(1 + Math.Max(0, rows[t * vocab + v])))))
            .Where(p => p.Weight > 0).OrderByDescending(p => p.Weight).Take(10).ToList();
        var terms = embedder.Sparse([testCase.GetProperty("text").GetString()!], topTerms: 10)[0];
        Assert.Equal(expected.Select(e => e.Id), terms.Select(t => t.Id));
        Assert.All(expected.Zip(terms), p => Assert.Equal(p.First.Weight, p.Second.Weight, 4));
        Assert.All(terms, t => Assert.Equal(embedder.Tokenizer.IdToToken(t.Id), t.Token));
    }

    string CopyModel(string family, string name)
    {
        var target = Path.Combine(_dir.FullName, name);
        Directory.CreateDirectory(target);
        foreach (var file in Directory.GetFiles(ModelDir(family))) File.Copy(file, Path.Combine(target, Path.GetFileName(file)));
        return target;
    }

    [Fact]
    public void ASentenceTransformersFolderRoundTripsAndSetsThePooling()
    {
        var folder = CopyModel("bert-uncased", "st");
        SentenceTransformersFolder.Write(folder, new SentenceTransformersConfig(Pooling.Max, Normalize: true, MaxSeqLength: 8, WordEmbeddingDimension: null), hiddenSize: 32);

        var modules = JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "modules.json")))!.AsArray();
        Assert.Equal(["sentence_transformers.models.Transformer", "sentence_transformers.models.Pooling", "sentence_transformers.models.Normalize"],
            modules.Select(m => (string)m!["type"]!));
        Assert.Equal(["", "1_Pooling", "2_Normalize"], modules.Select(m => (string)m!["path"]!));
        var pooling = JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "1_Pooling", "config.json")))!.AsObject();
        Assert.Equal(32, (int)pooling["word_embedding_dimension"]!);
        Assert.True((bool)pooling["pooling_mode_max_tokens"]!);
        Assert.False((bool)pooling["pooling_mode_mean_tokens"]!);
        Assert.Equal(8, (int)JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "sentence_bert_config.json")))!["max_seq_length"]!);
        Assert.Equal("cosine", (string)JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "config_sentence_transformers.json")))!["similarity_fn_name"]!);
        Assert.True(Directory.Exists(Path.Combine(folder, "2_Normalize")));

        Assert.Equal(new SentenceTransformersConfig(Pooling.Max, true, 8, 32), SentenceTransformersFolder.Read(folder));
        string[] texts = ["the train leaves early and the students read short stories every day", "birds were singing"];
        using var st = SentenceEmbedder.Load(folder);
        using var plain = SentenceEmbedder.Load(ModelDir("bert-uncased"));
        var fromFolder = st.Embed(texts);
        var explicitly = plain.Embed(texts, new EmbeddingOptions(Pooling.Max, Normalize: true, MaxLength: 8));
        for (int i = 0; i < texts.Length; i++) Close(explicitly[i], fromFolder[i], 1e-6);

        Assert.Contains("pools with max, not mean", Assert.Throws<UnmaskException>(() => st.Embed(texts, new EmbeddingOptions(Pooling.Mean))).Message);
        Assert.Contains("Normalize", Assert.Throws<UnmaskException>(() => st.Embed(texts, new EmbeddingOptions(Normalize: false))).Message);
    }

    [Fact]
    public void AFolderWhosePoolingConfigDisagreesIsRefused()
    {
        var folder = CopyModel("bert-uncased", "bad");
        SentenceTransformersFolder.Write(folder, new SentenceTransformersConfig(Pooling.Mean, false, null, null), hiddenSize: 48);
        var error = Assert.Throws<UnmaskException>(() => SentenceEmbedder.Load(folder));
        Assert.Contains("word_embedding_dimension is 48", error.Message);

        var poolingPath = Path.Combine(folder, "1_Pooling", "config.json");
        File.WriteAllText(poolingPath, """{"word_embedding_dimension": 32, "pooling_mode_cls_token": true, "pooling_mode_mean_tokens": true}""");
        Assert.Contains("2 pooling modes are on", Assert.Throws<UnmaskException>(() => SentenceTransformersFolder.Read(folder)).Message);
        File.WriteAllText(poolingPath, """{"word_embedding_dimension": 32, "pooling_mode_weightedmean_tokens": true}""");
        Assert.Contains("pooling_mode_weightedmean_tokens is not supported", Assert.Throws<UnmaskException>(() => SentenceTransformersFolder.Read(folder)).Message);
    }

    [Fact]
    public void StsCorrelatesCosinesWithGoldScores()
    {
        using var embedder = SentenceEmbedder.Load(ModelDir("bert-uncased"));
        (string, string)[] pairs =
        [
            ("a man is playing a guitar.", "a man plays the guitar."),
            ("a woman is slicing an onion.", "the stock market fell today."),
            ("two dogs run in the snow.", "dogs are running through snow."),
            ("a child rides a horse.", "someone is cooking rice, slowly."),
            ("the cat sleeps on the sofa.", "a cat is asleep on a couch."),
        ];
        var options = new EmbeddingOptions(Pooling.Mean);
        var cosines = pairs.Select(p => embedder.Embed([p.Item1, p.Item2], options) is var v ? StsEvaluator.Cosine(v[0], v[1]) : 0).ToArray();

        string Csv(Func<double, double> gold, bool header) =>
            (header ? "sentence1,sentence2,score\n" : "")
            + string.Concat(pairs.Select((p, i) => $"\"{p.Item1}\",\"{p.Item2}\",{gold(cosines[i]).ToString("R", System.Globalization.CultureInfo.InvariantCulture)}\n"));
        var agreeing = Path.Combine(_dir.FullName, "agree.csv");
        File.WriteAllText(agreeing, Csv(c => 5 * c, header: false));
        var result = StsEvaluator.Run(embedder, "m", agreeing, options);
        Assert.Equal(100, result.Spearman, 6);
        Assert.Equal(100, result.Pearson, 6);
        Assert.Equal(5, result.Pairs);

        var opposed = Path.Combine(_dir.FullName, "oppose.csv");
        File.WriteAllText(opposed, Csv(c => -c * c * c, header: true));
        var reversed = StsEvaluator.Run(embedder, "m", opposed, options);
        Assert.Equal(-100, reversed.Spearman, 6);
        Assert.True(reversed.Pearson < -90, $"pearson {reversed.Pearson}");

        var bad = Path.Combine(_dir.FullName, "bad.csv");
        File.WriteAllText(bad, "a dog,a cat,3.5\na bird,a fish,high\n");
        Assert.Equal($"{bad}:2: score 'high' is not a number.", Assert.Throws<UnmaskException>(() => StsEvaluator.Run(embedder, "m", bad, options)).Message);
        File.WriteAllText(bad, "a dog,a cat,3.5\n,a fish,1\n");
        Assert.Equal($"{bad}:2: an empty sentence.", Assert.Throws<UnmaskException>(() => StsEvaluator.ReadPairs(bad, true)).Message);
        File.WriteAllText(bad, "sentence1,text,score\na,b,1\n");
        Assert.Contains("no 'sentence2' column", Assert.Throws<UnmaskException>(() => StsEvaluator.ReadPairs(bad, true)).Message);
    }
}

/// <summary>`embed`, `similarity` and `eval sts` through the command line.</summary>
public sealed class EmbeddingCliTests : IDisposable
{
    readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("unmask-embed-cli");

    public void Dispose() => _dir.Delete(recursive: true);

    static readonly string Model = Path.Combine(SharedFixtures.HfReference, "models", "bert-uncased");

    static List<JsonElement> Lines(string stdout) =>
        [.. stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement)];

    [Fact]
    public void EmbedSimilarityAndStsAgreeWithTheLibrary()
    {
        string[] texts = ["a man plays the guitar.", "a man is playing a guitar.", "the market fell."];
        var (code, stdout, stderr) = CliTests.Run(["embed", "--model", Model, "--pooling", "max", "--normalize", "--json", .. texts]);
        Assert.True(code == 0, stderr);
        var lines = Lines(stdout);
        using var embedder = SentenceEmbedder.Load(Model);
        var expected = embedder.Embed(texts, new EmbeddingOptions(Pooling.Max, Normalize: true));
        Assert.Equal(texts, lines.Select(l => l.GetProperty("text").GetString()));
        for (int i = 0; i < texts.Length; i++)
            Assert.Equal(expected[i], lines[i].GetProperty("embedding").EnumerateArray().Select(v => v.GetSingle()));

        var pairs = Path.Combine(_dir.FullName, "pairs.csv");
        File.WriteAllText(pairs, $"{texts[0]},{texts[1]},4.8\n{texts[0]},{texts[2]},0.2\n{texts[1]},{texts[2]},0.4\n");
        (code, stdout, stderr) = CliTests.Run("similarity", "--model", Model, "--pairs", pairs, "--json");
        Assert.True(code == 0, stderr);
        var cosines = Lines(stdout).Select(l => l.GetProperty("cosine").GetDouble()).ToList();
        var vectors = embedder.Embed(texts, new EmbeddingOptions(Pooling.Mean));
        Assert.Equal(StsEvaluator.Cosine(vectors[0], vectors[1]), cosines[0], 6);
        Assert.Equal(StsEvaluator.Cosine(vectors[1], vectors[2]), cosines[2], 6);

        var report = Path.Combine(_dir.FullName, "sts.json");
        (code, stdout, stderr) = CliTests.Run("eval", "sts", "--model", Model, "--data", pairs, "--json", "--report", report);
        Assert.True(code == 0, stderr);
        var result = JsonDocument.Parse(stdout).RootElement;
        var gold = new[] { 4.8, 0.2, 0.4 };
        Assert.Equal(100 * ClassificationMetrics.Pearson(ClassificationMetrics.Ranks(gold), ClassificationMetrics.Ranks(cosines)), result.GetProperty("spearman").GetDouble(), 6);
        Assert.Equal(3, result.GetProperty("pairs").GetInt32());
        Assert.Equal(result.GetProperty("pearson").GetDouble(), JsonDocument.Parse(File.ReadAllText(report)).RootElement.GetProperty("pearson").GetDouble());
    }

    [Fact]
    public void SparseAndBadInputFromTheCommandLine()
    {
        var (code, stdout, stderr) = CliTests.Run("embed", "--model", Model, "--sparse", "--top-terms", "5", "--json", "hello world");
        Assert.True(code == 0, stderr);
        var terms = Lines(stdout)[0].GetProperty("sparse").EnumerateArray().ToList();
        Assert.Equal(5, terms.Count);
        var weights = terms.Select(t => t.GetProperty("weight").GetDouble()).ToList();
        Assert.Equal(weights.OrderByDescending(w => w), weights);

        (code, _, stderr) = CliTests.Run("embed", "--model", Model, "--pooling", "pooler", "hello");
        Assert.NotEqual(0, code);
        Assert.Contains("no pooler", stderr);
        var bad = Path.Combine(_dir.FullName, "bad.csv");
        File.WriteAllText(bad, "a,b,1\nc,d\n");
        (code, stdout, stderr) = CliTests.Run("eval", "sts", "--model", Model, "--data", bad, "--json");
        Assert.NotEqual(0, code);
        Assert.Contains($"{bad}:2:", stderr);
        Assert.Equal("", stdout);
    }
}

/// <summary>transformers' bare encoder classes (BertModel, ...), as sentence-transformers folders hold them.</summary>
public sealed class EncoderModelTests : IDisposable
{
    readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("unmask-bare");

    public void Dispose() => _dir.Delete(recursive: true);

    [Theory]
    [InlineData("bert-uncased", "BertModel", "embeddings.word_embeddings.weight")]
    [InlineData("roberta", "RobertaModel", "embeddings.word_embeddings.weight")]
    [InlineData("distilbert", "DistilBertModel", "embeddings.word_embeddings.weight")]
    [InlineData("electra-discriminator", "ElectraModel", "embeddings.word_embeddings.weight")]
    [InlineData("modernbert", "ModernBertModel", "embeddings.tok_embeddings.weight")]
    public void ABareEncoderSavesWithoutThePrefixAndReloadsToTheSameHiddenStates(string family, string className, string embeddingName)
    {
        var source = Path.Combine(SharedFixtures.HfReference, "models", family);
        var (bare, report) = ModelLoader.LoadWithReport(source, HeadKind.None);
        using var disposeBare = bare;
        Assert.Empty(report.NewlyInitialised);
        Assert.NotEmpty(report.Unused); // the masked-LM head

        var folder = Path.Combine(_dir.FullName, family);
        ModelFolder.Save(folder, bare, Tokenization.TokenizerLoader.Load(source).Save);
        var names = SafeTensors.Load(Path.Combine(folder, ModelFolder.WeightsFileName)).Keys.ToList();
        Assert.Contains(embeddingName, names);
        Assert.DoesNotContain(names, n => n.StartsWith(bare.EncoderPrefix + ".", StringComparison.Ordinal));
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "config.json")))!;
        Assert.Equal(className, (string)config["architectures"]![0]!);

        using var reloaded = ModelLoader.Load(folder);
        Assert.Equal(HeadKind.None, reloaded.Head);
        using var full = ModelLoader.Load(source);
        using var scope = NewDisposeScope();
        using var mode = inference_mode();
        var ids = tensor(new long[] { 2, 10, 11, 12, 3, 2, 13, 14, 3, 0 }, [2, 5]);
        var mask = tensor(new long[] { 1, 1, 1, 1, 1, 1, 1, 1, 1, 0 }, [2, 5]);
        using var expected = full.Forward(ids, mask);
        using var actual = reloaded.Forward(ids, mask);
        Assert.Equal(expected.LastHiddenState.data<float>().ToArray(), actual.Logits.data<float>().ToArray());

        // A bare folder also starts a masked LM (the head newly initialised), as from_pretrained across classes does.
        var (mlm, mlmReport) = ModelLoader.LoadWithReport(folder, HeadKind.MaskedLm);
        using var disposeMlm = mlm;
        Assert.NotEmpty(mlmReport.NewlyInitialised);
        Assert.DoesNotContain(mlmReport.NewlyInitialised, n => n.StartsWith(mlm.EncoderPrefix + ".embeddings", StringComparison.Ordinal));

        using var embedder = SentenceEmbedder.Load(folder);
        using var original = SentenceEmbedder.Load(source);
        Assert.Equal(original.Embed(["a short text here"])[0], embedder.Embed(["a short text here"])[0]);
        Assert.Contains("no masked-LM head", Assert.Throws<UnmaskException>(() => embedder.Sparse(["a text"])).Message);
    }
}
