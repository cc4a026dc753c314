using TorchSharp;
using Unmask.Checkpoints;
using Unmask.Modeling;
using Xunit.Abstractions;
using static TorchSharp.torch;
using static Unmask.Tests.BertReferenceFixtures;

namespace Unmask.Tests;

/// <summary>Every model family against Hugging Face's outputs for the same weights and inputs (the fixture's ids).</summary>
public class HfModelReferenceTests(ITestOutputHelper output)
{
    const double Tolerance = 1e-4;

    public static readonly string[] AllModels =
        ["bert-cased", "bert-uncased", "roberta", "distilbert", "electra-generator", "electra-discriminator", "modernbert"];

    static readonly Dictionary<string, PretrainedModel> Loaded = new();
    static readonly object Gate = new();

    /// <summary>The fixture model in eval mode, shared by the tests; do not modify it.</summary>
    public static PretrainedModel Shared(string model)
    {
        lock (Gate)
        {
            if (!Loaded.TryGetValue(model, out var loaded))
            {
                loaded = ModelLoader.Load(ModelDir(model));
                Loaded[model] = loaded;
            }
            return loaded;
        }
    }

    public static IEnumerable<object[]> Cases() =>
        AllModels.SelectMany(model => Document(model).GetProperty("cases").EnumerateArray()
            .Select(c => new object[] { model, c.GetProperty("name").GetString()! }));

    [Theory]
    [MemberData(nameof(Cases))]
    public void OutputsMatchHuggingFace(string model, string caseName)
    {
        var testCase = Case(model, caseName);
        var mlm = Shared(model);
        Assert.Equal(Document(model).GetProperty("architecture").GetString(), mlm.Architecture);
        using var scope = torch.NewDisposeScope();
        using var inference = torch.inference_mode();
        var (inputIds, attentionMask, tokenTypeIds) = Inputs(testCase);
        using var result = mlm.Forward(inputIds, attentionMask, tokenTypeIds, outputHiddenStates: true);

        var expectedRows = testCase.GetProperty("logits").EnumerateArray().ToList();
        Assert.Equal(inputIds.shape[0], expectedRows.Count);
        double logitDiff = 0;
        for (var row = 0; row < expectedRows.Count; row++)
        {
            var open = attentionMask[row].nonzero().squeeze(1); // positions whose mask is 1, in order
            var actual = result.Logits[row].index_select(0, open); // [n_valid, vocab] or [n_valid]
            logitDiff = Math.Max(logitDiff, MaxAbsDiff(actual, FloatTensor(expectedRows[row])));
        }
        Assert.True(logitDiff < Tolerance, $"{model}/{caseName}: max |logit diff| {logitDiff:E2}");

        var lastDiff = MaxAbsDiff(result.LastHiddenState, FloatTensor(testCase.GetProperty("last_hidden_state")));
        Assert.True(lastDiff < Tolerance, $"{model}/{caseName}: max |last_hidden_state diff| {lastDiff:E2}");

        double hiddenDiff = 0;
        if (testCase.TryGetProperty("hidden_states", out var hiddenStates))
        {
            var actual = torch.stack(result.HiddenStates!); // [layers + 1, batch, seq, hidden]
            hiddenDiff = MaxAbsDiff(actual, FloatTensor(hiddenStates));
            Assert.True(hiddenDiff < Tolerance, $"{model}/{caseName}: max |hidden_states diff| {hiddenDiff:E2}");
        }
        output.WriteLine($"{model}/{caseName}: logits {logitDiff:E2}, last_hidden_state {lastDiff:E2}, hidden_states {hiddenDiff:E2}");

        if (mlm.Head == HeadKind.ReplacedToken)
        {
            var probabilities = FloatTensor2D(testCase.GetProperty("probabilities"));
            Assert.True(MaxAbsDiff(result.Logits.sigmoid(), probabilities) < Tolerance, $"{model}/{caseName}: probabilities");
            return;
        }
        var expectedArgmax = LongMatrix(testCase.GetProperty("argmax"));
        Assert.Equal(expectedArgmax.data<long>().ToArray(), result.Logits.argmax(-1).data<long>().ToArray());
    }

    static Tensor FloatTensor2D(System.Text.Json.JsonElement element) =>
        element.ValueKind == System.Text.Json.JsonValueKind.Object
            ? FloatTensor(element)
            : torch.tensor(element.EnumerateArray().SelectMany(r => r.EnumerateArray().Select(v => v.GetSingle())).ToArray(),
                [element.GetArrayLength(), element[0].GetArrayLength()]);

    public static IEnumerable<object[]> Models() => AllModels.Select(m => new object[] { m });

    [Theory]
    [MemberData(nameof(Models))]
    public void SavingReproducesHfNamesAndBytesAndReloadsWithIdenticalLogits(string model)
    {
        var source = Shared(model);
        var dir = Path.Combine(Path.GetTempPath(), "unmask-hf-" + Guid.NewGuid().ToString("N"));
        try
        {
            ModelFolder.Save(dir, source);
            var weights = Path.Combine(dir, ModelFolder.WeightsFileName);
            var names = SafeTensors.ReadHeader(weights).Tensors.Select(t => t.Name).ToList();
            var expectedNames = Document(model).GetProperty("safetensors_tensor_names").EnumerateArray().Select(n => n.GetString()!).ToList();
            Assert.Equal(expectedNames, names);
            Assert.Equal(File.ReadAllBytes(Path.Combine(ModelDir(model), ModelFolder.WeightsFileName)), File.ReadAllBytes(weights));
            AssertSameConfig(Path.Combine(ModelDir(model), ModelFolder.ConfigFileName), Path.Combine(dir, ModelFolder.ConfigFileName));

            using var reloaded = ModelLoader.Load(dir);
            using var scope = torch.NewDisposeScope();
            using var inference = torch.inference_mode();
            var (inputIds, attentionMask, tokenTypeIds) = Inputs(Case(model, "batch_right_pad"));
            using var before = source.Forward(inputIds, attentionMask, tokenTypeIds);
            using var after = reloaded.Forward(inputIds, attentionMask, tokenTypeIds);
            Assert.Equal(before.Logits.data<float>().ToArray(), after.Logits.data<float>().ToArray());
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }

    // Every field HF wrote comes back with the same value (numbers compared by value: 1e-05 may print as 1E-05).
    static void AssertSameConfig(string expectedPath, string actualPath)
    {
        using var expected = System.Text.Json.JsonDocument.Parse(File.ReadAllText(expectedPath));
        using var actual = System.Text.Json.JsonDocument.Parse(File.ReadAllText(actualPath));
        var actualFields = actual.RootElement.EnumerateObject().ToDictionary(p => p.Name, p => p.Value);
        foreach (var field in expected.RootElement.EnumerateObject())
        {
            Assert.True(actualFields.TryGetValue(field.Name, out var value), $"config field '{field.Name}' was not saved");
            if (field.Value.ValueKind == System.Text.Json.JsonValueKind.Number)
                Assert.Equal(field.Value.GetDouble(), value.GetDouble());
            else
                Assert.Equal(field.Value.GetRawText(), value.GetRawText());
        }
    }

    [Theory]
    [InlineData("roberta")]
    [InlineData("distilbert")]
    [InlineData("electra-generator")]
    [InlineData("modernbert")]
    public void SparsePredictionLossIsTheDenseLossAtTheLabelledPositions(string model)
    {
        var mlm = Shared(model);
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var (inputIds, attentionMask, tokenTypeIds) = Inputs(Case(model, "two_masks"));
        var labels = torch.full_like(inputIds, -100L);
        labels[0, 1] = inputIds[0, 2];
        labels[0, 3] = inputIds[0, 1];
        using var dense = mlm.Forward(inputIds, attentionMask, tokenTypeIds, labels);
        using var sparse = mlm.Forward(inputIds, attentionMask, tokenTypeIds, labels, labels.ne(-100));
        Assert.Equal([2L, dense.Logits.shape[2]], sparse.Logits.shape);
        Assert.Equal(dense.Loss!.item<float>(), sparse.Loss!.item<float>(), 5);
        Assert.True(dense.Loss!.item<float>() > 0);
    }

    [Fact]
    public void XlmRobertaIsRobertaUnderItsOwnNames()
    {
        var dir = Path.Combine(Path.GetTempPath(), "unmask-xlmr-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            var config = File.ReadAllText(Path.Combine(ModelDir("roberta"), ModelFolder.ConfigFileName))
                .Replace("\"RobertaForMaskedLM\"", "\"XLMRobertaForMaskedLM\"").Replace("\"roberta\"", "\"xlm-roberta\"");
            File.WriteAllText(Path.Combine(dir, ModelFolder.ConfigFileName), config);
            File.Copy(Path.Combine(ModelDir("roberta"), ModelFolder.WeightsFileName), Path.Combine(dir, ModelFolder.WeightsFileName));
            using var xlmr = ModelLoader.Load(dir);
            Assert.Equal("XLMRobertaForMaskedLM", xlmr.Architecture);
            Assert.Equal(64, xlmr.MaxSequenceLength);

            using var scope = torch.NewDisposeScope();
            using var inference = torch.inference_mode();
            var (inputIds, attentionMask, _) = Inputs(Case("roberta", "batch_left_pad"));
            using var expected = Shared("roberta").Forward(inputIds, attentionMask);
            using var actual = xlmr.Forward(inputIds, attentionMask);
            Assert.Equal(expected.Logits.data<float>().ToArray(), actual.Logits.data<float>().ToArray());
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
