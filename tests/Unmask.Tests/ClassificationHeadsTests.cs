using Unmask.Checkpoints;
using Unmask.Modeling;
using static TorchSharp.torch;
using static Unmask.Tests.BertReferenceFixtures;
using F = TorchSharp.torch.nn.functional;

namespace Unmask.Tests;

/// <summary>
/// *ForSequenceClassification and *ForTokenClassification for every family: the head tensors transformers names
/// (checked against transformers' modeling_bert/roberta/distilbert/electra/modernbert), each head's formula recomputed
/// here from the saved tensors and the encoder's output, save → reload with equal logits, and the losses by problem type.
/// </summary>
public sealed class ClassificationHeadsTests : IDisposable
{
    readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("unmask-classifiers");

    public void Dispose() => _dir.Delete(recursive: true);

    static readonly string[] ThreeLabels = ["negative", "neutral", "positive"];

    /// <summary>Head parameters transformers' class of each family adds over the masked-LM folder (those it reports
    /// newly initialised when loading a masked-LM checkpoint).</summary>
    public static IEnumerable<object[]> SequenceHeads() =>
    [
        ["bert-uncased", "BertForSequenceClassification", new[] { "bert.pooler.dense.bias", "bert.pooler.dense.weight", "classifier.bias", "classifier.weight" }],
        ["roberta", "RobertaForSequenceClassification", new[] { "classifier.dense.bias", "classifier.dense.weight", "classifier.out_proj.bias", "classifier.out_proj.weight" }],
        ["distilbert", "DistilBertForSequenceClassification", new[] { "classifier.bias", "classifier.weight", "pre_classifier.bias", "pre_classifier.weight" }],
        ["electra-discriminator", "ElectraForSequenceClassification", new[] { "classifier.dense.bias", "classifier.dense.weight", "classifier.out_proj.bias", "classifier.out_proj.weight" }],
        // ModernBertForMaskedLM already has head.dense and head.norm under the same names: they load.
        ["modernbert", "ModernBertForSequenceClassification", new[] { "classifier.bias", "classifier.weight" }],
    ];

    public static IEnumerable<object[]> TokenHeads() =>
    [
        ["bert-uncased", "BertForTokenClassification", new[] { "classifier.bias", "classifier.weight" }],
        ["roberta", "RobertaForTokenClassification", new[] { "classifier.bias", "classifier.weight" }],
        ["distilbert", "DistilBertForTokenClassification", new[] { "classifier.bias", "classifier.weight" }],
        ["electra-discriminator", "ElectraForTokenClassification", new[] { "classifier.bias", "classifier.weight" }],
        ["modernbert", "ModernBertForTokenClassification", new[] { "classifier.bias", "classifier.weight" }],
    ];

    static (Tensor Ids, Tensor Mask) Batch(PretrainedModel model)
    {
        var generator = new Random(11);
        var ids = new long[2 * 10];
        for (int i = 0; i < ids.Length; i++) ids[i] = 5 + generator.Next(model.HfConfig.VocabSize - 5);
        var mask = Enumerable.Range(0, ids.Length).Select(i => i < 10 || i % 10 < 7 ? 1L : 0L).ToArray(); // second row padded
        return (tensor(ids, [2, 10]), tensor(mask, [2, 10]));
    }

    static (PretrainedModel Model, LoadReport Report) LoadAs(string family, HeadKind head, Func<IHfConfig, IHfConfig>? more = null) =>
        ModelLoader.LoadWithReport(ModelDir(family), head, c =>
        {
            var labelled = c.WithLabels(head == HeadKind.TokenClassification ? ["O", "B-x", "I-x"] : ThreeLabels, null);
            return more is null ? labelled : more(labelled);
        });

    /// <summary>transformers' head formula, from the tensors by name and the encoder's last hidden state.</summary>
    static Tensor ExpectedSequenceLogits(string family, IReadOnlyDictionary<string, Tensor> w, Tensor hidden, Tensor mask, string pooling)
    {
        Tensor Lin(Tensor x, string name) => F.linear(x, w[name + ".weight"], w.TryGetValue(name + ".bias", out var b) ? b : null);
        var first = hidden.select(1, 0); // [batch, hidden]
        switch (family)
        {
            case "bert-uncased":
                return Lin(Lin(first, "bert.pooler.dense").tanh(), "classifier");
            case "roberta":
                return Lin(Lin(first, "classifier.dense").tanh(), "classifier.out_proj");
            case "electra-discriminator":
                return Lin(F.gelu(Lin(first, "classifier.dense")), "classifier.out_proj");
            case "distilbert":
                return Lin(F.relu(Lin(first, "pre_classifier")), "classifier");
            default:
                var m = mask.to(ScalarType.Float32).unsqueeze(-1); // [batch, seq, 1]
                var pooled = pooling == "mean" ? (hidden * m).sum(1) / m.sum(1) : first;
                var normed = F.layer_norm(F.gelu(Lin(pooled, "head.dense")), [pooled.shape[1]], w["head.norm.weight"], null, 1e-5);
                return Lin(normed, "classifier");
        }
    }

    static Tensor ExpectedTokenLogits(string family, IReadOnlyDictionary<string, Tensor> w, Tensor hidden)
    {
        if (family != "modernbert") return F.linear(hidden, w["classifier.weight"], w["classifier.bias"]);
        var dense = F.linear(hidden, w["head.dense.weight"]);
        var normed = F.layer_norm(F.gelu(dense), [hidden.shape[2]], w["head.norm.weight"], null, 1e-5);
        return F.linear(normed, w["classifier.weight"], w["classifier.bias"]);
    }

    static float MaxAbs(Tensor a, Tensor b) => (a - b).abs().max().item<float>();

    [Theory]
    [MemberData(nameof(SequenceHeads))]
    public void ASequenceClassifierComputesTransformersHeadAndReloadsWithEqualLogits(string family, string architecture, string[] fresh)
    {
        var (model, report) = LoadAs(family, HeadKind.SequenceClassification);
        using var disposeModel = model;
        Assert.Equal(architecture, model.Architecture);
        Assert.Equal(fresh, report.NewlyInitialised.Order(StringComparer.Ordinal));
        Assert.Equal(3, ((SequenceClassificationModel)model).NumLabels);

        using var scope = NewDisposeScope();
        using var mode = inference_mode();
        var (ids, mask) = Batch(model);
        using var output = model.Forward(ids, mask);
        Assert.Equal([2L, 3L], output.Logits.shape);
        var expected = ExpectedSequenceLogits(family, model.StateDictForSave(), output.LastHiddenState, mask, "cls");
        Assert.True(MaxAbs(expected, output.Logits) < 1e-5, $"head differs by {MaxAbs(expected, output.Logits)}");

        var folder = Path.Combine(_dir.FullName, family);
        ModelFolder.Save(folder, model);
        var written = SafeTensors.Load(Path.Combine(folder, ModelFolder.WeightsFileName));
        Assert.All(fresh, name => Assert.Contains(name, written.Keys));
        Assert.DoesNotContain(written.Keys, n => n.StartsWith("cls.", StringComparison.Ordinal) || n.StartsWith("lm_head.", StringComparison.Ordinal)
            || n.StartsWith("vocab_", StringComparison.Ordinal) || n.StartsWith("generator_", StringComparison.Ordinal)
            || n.StartsWith("discriminator_", StringComparison.Ordinal) || n.StartsWith("decoder.", StringComparison.Ordinal));
        var config = File.ReadAllText(Path.Combine(folder, ModelFolder.ConfigFileName));
        Assert.Contains($"\"{architecture}\"", config);
        Assert.Contains("\"id2label\"", config);
        Assert.Contains("\"2\": \"positive\"", config);
        Assert.Contains("\"positive\": 2", config);

        using var reloaded = ModelLoader.Load(folder);
        Assert.Equal(architecture, reloaded.Architecture);
        Assert.Equal(ThreeLabels, ((SequenceClassificationModel)reloaded).Labels);
        using var again = reloaded.Forward(ids, mask);
        Assert.Equal(output.Logits.data<float>().ToArray(), again.Logits.data<float>().ToArray());
    }

    [Theory]
    [MemberData(nameof(TokenHeads))]
    public void ATokenClassifierComputesTransformersHeadAndReloadsWithEqualLogits(string family, string architecture, string[] fresh)
    {
        var (model, report) = LoadAs(family, HeadKind.TokenClassification);
        using var disposeModel = model;
        Assert.Equal(architecture, model.Architecture);
        Assert.Equal(fresh, report.NewlyInitialised.Order(StringComparer.Ordinal));

        using var scope = NewDisposeScope();
        using var mode = inference_mode();
        var (ids, mask) = Batch(model);
        using var output = model.Forward(ids, mask);
        Assert.Equal([2L, 10L, 3L], output.Logits.shape);
        var expected = ExpectedTokenLogits(family, model.StateDictForSave(), output.LastHiddenState);
        Assert.True(MaxAbs(expected, output.Logits) < 1e-5, $"head differs by {MaxAbs(expected, output.Logits)}");

        var folder = Path.Combine(_dir.FullName, family + "-tokens");
        ModelFolder.Save(folder, model);
        Assert.DoesNotContain(SafeTensors.Load(Path.Combine(folder, ModelFolder.WeightsFileName)).Keys, n => n.Contains("pooler", StringComparison.Ordinal));
        using var reloaded = ModelLoader.Load(folder);
        Assert.Equal(["O", "B-x", "I-x"], ((TokenClassificationModel)reloaded).Labels);
        using var again = reloaded.Forward(ids, mask);
        Assert.Equal(output.Logits.data<float>().ToArray(), again.Logits.data<float>().ToArray());
    }

    [Fact]
    public void ModernBertMeanPoolingAveragesOnlyUnpaddedPositions()
    {
        var (model, _) = LoadAs("modernbert", HeadKind.SequenceClassification, c => ((ModernBertConfig)c) with { ClassifierPooling = "mean" });
        using var disposeModel = model;
        using var scope = NewDisposeScope();
        using var mode = inference_mode();
        var (ids, mask) = Batch(model);
        using var output = model.Forward(ids, mask);
        var mean = ExpectedSequenceLogits("modernbert", model.StateDictForSave(), output.LastHiddenState, mask, "mean");
        var cls = ExpectedSequenceLogits("modernbert", model.StateDictForSave(), output.LastHiddenState, mask, "cls");
        Assert.True(MaxAbs(mean, output.Logits) < 1e-5);
        Assert.True(MaxAbs(cls, output.Logits) > 1e-3, "mean pooling should differ from the first token's");
    }

    [Fact]
    public void SequenceLossFollowsTransformersProblemTypes()
    {
        var (model, _) = LoadAs("bert-uncased", HeadKind.SequenceClassification);
        using var disposeModel = model;
        using var scope = NewDisposeScope();
        using var mode = inference_mode();
        var (ids, mask) = Batch(model);

        using var single = model.Forward(ids, mask, labels: tensor(new long[] { 2, 0 }));
        var ce = F.cross_entropy(single.Logits, tensor(new long[] { 2, 0 }));
        Assert.Equal(ce.item<float>(), single.Loss!.item<float>(), 5);

        var multiLabels = tensor(new float[] { 1, 0, 1, 0, 1, 0 }, [2, 3]);
        using var multi = model.Forward(ids, mask, labels: multiLabels);
        Assert.Equal(F.binary_cross_entropy_with_logits(multi.Logits, multiLabels).item<float>(), multi.Loss!.item<float>(), 5);

        // problem_type regression overrides the dtype rule: mean squared error over every output.
        var (regressor, _) = LoadAs("bert-uncased", HeadKind.SequenceClassification, c => c.WithLabels(ThreeLabels, "regression"));
        using var disposeRegressor = regressor;
        using var regression = regressor.Forward(ids, mask, labels: multiLabels);
        Assert.Equal(F.mse_loss(regression.Logits, multiLabels).item<float>(), regression.Loss!.item<float>(), 5);

        // One label: regression on [batch] targets.
        var (scalar, _) = LoadAs("bert-uncased", HeadKind.SequenceClassification, c => c.WithLabels(["LABEL_0"], null));
        using var disposeScalar = scalar;
        var targets = tensor(new float[] { 0.5f, 4.0f });
        using var mse = scalar.Forward(ids, mask, labels: targets);
        Assert.Equal([2L, 1L], mse.Logits.shape);
        Assert.Equal(F.mse_loss(mse.Logits.squeeze(), targets).item<float>(), mse.Loss!.item<float>(), 5);

        Assert.Throws<ArgumentException>(() => model.Forward(ids, mask, labels: tensor(new long[] { 1, 0, 2 })));
        Assert.Throws<ArgumentException>(() => model.Forward(ids, mask, positions: mask.eq(1)));
    }

    [Fact]
    public void TokenLossIgnoresPositionsLabelledMinus100()
    {
        var (model, _) = LoadAs("roberta", HeadKind.TokenClassification);
        using var disposeModel = model;
        using var scope = NewDisposeScope();
        using var mode = inference_mode();
        var (ids, mask) = Batch(model);
        var labels = mask.mul(2).sub(1).clamp_min(0).to(ScalarType.Int64); // 1 on real tokens, 0 on padding
        labels = labels.masked_fill(mask.eq(0), -100);
        labels[0, 0] = tensor(-100L);
        using var output = model.Forward(ids, mask, labels: labels);
        var flat = labels.reshape(-1);
        var kept = flat.ne(-100);
        var expected = F.cross_entropy(output.Logits.reshape(-1, 3)[kept], flat[kept]);
        Assert.Equal(expected.item<float>(), output.Loss!.item<float>(), 5);
    }

    [Fact]
    public void LabelFieldsOfConfigJsonAreCheckedByName()
    {
        var source = Path.Combine(ModelDir("bert-uncased"), ModelFolder.ConfigFileName);
        var json = File.ReadAllText(source);
        string Write(string name, string extra)
        {
            var path = Path.Combine(_dir.FullName, name + ".json");
            File.WriteAllText(path, json.Replace("\"vocab_size\"", extra + ", \"vocab_size\""));
            return path;
        }

        var gap = Assert.Throws<UnmaskException>(() => BertConfig.Load(Write("gap", "\"id2label\": {\"0\": \"a\", \"2\": \"b\"}")));
        Assert.Contains("id2label", gap.Message);
        var type = Assert.Throws<UnmaskException>(() => BertConfig.Load(Write("type", "\"problem_type\": \"ranking\"")));
        Assert.Contains("problem_type", type.Message);
        Assert.Equal(["LABEL_0", "LABEL_1", "LABEL_2", "LABEL_3"], BertConfig.Load(Write("count", "\"num_labels\": 4")).Labels);
        Assert.Equal(["LABEL_0", "LABEL_1"], BertConfig.Load(source).Labels);
    }
}
