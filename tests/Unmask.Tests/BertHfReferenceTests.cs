using TorchSharp;
using Unmask.Checkpoints;
using static TorchSharp.torch;
using static Unmask.Tests.BertReferenceFixtures;

namespace Unmask.Tests;

/// <summary>The model against outputs of Hugging Face's BertForMaskedLM on the same weights and inputs.</summary>
public class BertHfReferenceTests
{
    const double Tolerance = 1e-4;

    public static IEnumerable<object[]> Cases() => AllCases();

    [Theory]
    [MemberData(nameof(Cases))]
    public void OutputsMatchHuggingFace(string model, string caseName)
    {
        var testCase = Case(model, caseName);
        var bert = Model(model);
        using var scope = torch.NewDisposeScope();
        using var inference = torch.inference_mode();
        var (inputIds, attentionMask, tokenTypeIds) = Inputs(testCase);
        using var output = bert.Forward(inputIds, attentionMask, tokenTypeIds, outputHiddenStates: true);

        var expectedRows = testCase.GetProperty("logits").EnumerateArray().ToList();
        Assert.Equal(inputIds.shape[0], expectedRows.Count);
        for (var row = 0; row < expectedRows.Count; row++)
        {
            var open = attentionMask[row].nonzero().squeeze(1); // positions whose mask is 1, in order
            var actual = output.Logits[row].index_select(0, open); // [n_valid, vocab]
            var diff = MaxAbsDiff(actual, FloatTensor(expectedRows[row]));
            Assert.True(diff < Tolerance, $"{model}/{caseName} row {row}: max |logit diff| {diff:E2}");
        }

        var lastDiff = MaxAbsDiff(output.LastHiddenState, FloatTensor(testCase.GetProperty("last_hidden_state")));
        Assert.True(lastDiff < Tolerance, $"{model}/{caseName}: max |last_hidden_state diff| {lastDiff:E2}");

        if (testCase.TryGetProperty("hidden_states", out var hiddenStates))
        {
            var actual = torch.stack(output.HiddenStates!); // [layers + 1, batch, seq, hidden]
            var diff = MaxAbsDiff(actual, FloatTensor(hiddenStates));
            Assert.True(diff < Tolerance, $"{model}/{caseName}: max |hidden_states diff| {diff:E2}");
        }

        var expectedArgmax = LongMatrix(testCase.GetProperty("argmax"));
        Assert.Equal(expectedArgmax.data<long>().ToArray(), output.Logits.argmax(-1).data<long>().ToArray());

        var logProbs = output.Logits.log_softmax(-1); // [batch, seq, vocab]
        foreach (var prediction in testCase.GetProperty("mask_predictions").EnumerateArray())
        {
            var at = logProbs[prediction.GetProperty("batch").GetInt64(), prediction.GetProperty("position").GetInt64()];
            var ids = prediction.GetProperty("top_ids").EnumerateArray().Select(i => i.GetInt64()).ToArray();
            var expected = prediction.GetProperty("top_log_probs").EnumerateArray().Select(p => p.GetSingle()).ToArray();
            for (var k = 0; k < ids.Length; k++)
                Assert.True(Math.Abs(at[ids[k]].item<float>() - expected[k]) < Tolerance, $"{model}/{caseName}: log-prob of id {ids[k]}");
        }
    }

    [Theory]
    [InlineData("bert-uncased")]
    [InlineData("bert-cased")]
    public void SavedFolderReloadsWithIdenticalLogitsAndHfTensorNames(string model)
    {
        var bert = Model(model);
        var dir = Path.Combine(Path.GetTempPath(), "unmask-bert-" + Guid.NewGuid().ToString("N"));
        try
        {
            ModelFolder.Save(dir, bert);
            var names = SafeTensors.ReadHeader(Path.Combine(dir, ModelFolder.WeightsFileName)).Tensors.Select(t => t.Name).ToList();
            var expectedNames = Document(model).GetProperty("safetensors_tensor_names").EnumerateArray().Select(n => n.GetString()!).ToList();
            Assert.Equal(expectedNames, names);

            using var reloaded = ModelFolder.LoadBert(dir);
            using var scope = torch.NewDisposeScope();
            using var inference = torch.inference_mode();
            var (inputIds, attentionMask, tokenTypeIds) = Inputs(Case(model, "batch_pair_mask"));
            using var before = bert.Forward(inputIds, attentionMask, tokenTypeIds);
            using var after = reloaded.Forward(inputIds, attentionMask, tokenTypeIds);
            Assert.Equal(before.Logits.data<float>().ToArray(), after.Logits.data<float>().ToArray());
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }

    [Theory]
    [InlineData("bert-uncased")]
    [InlineData("bert-cased")]
    public void SavingTheFixtureModelReproducesHfSafetensorsBytes(string model)
    {
        var path = Path.Combine(Path.GetTempPath(), "unmask-st-" + Guid.NewGuid().ToString("N") + ".safetensors");
        try
        {
            SafeTensors.Save(path, Model(model).StateDictForSave());
            Assert.Equal(File.ReadAllBytes(Path.Combine(ModelDir(model), ModelFolder.WeightsFileName)), File.ReadAllBytes(path));
        }
        finally
        {
            File.Delete(path);
        }
    }
}
