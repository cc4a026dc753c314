using System.Text.Json;
using static Unmask.Tests.CliTests;

namespace Unmask.Tests;

/// <summary>forward/tokenize/fill on the other model families, text pairs and padding sides, against the HF cases.</summary>
public class CliInteropTests : IDisposable
{
    readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("unmask-cli-interop");

    public void Dispose() => _dir.Delete(recursive: true);

    static string ModelDir(string model) => Path.Combine(SharedFixtures.HfReference, "models", model);

    static string[] Strings(JsonElement element) =>
        element.ValueKind == JsonValueKind.Array ? element.EnumerateArray().Select(t => t.GetString()!).ToArray() : [element.GetString()!];

    /// <summary>Runs forward on a fixture case's texts and compares every row with HF's logits.</summary>
    static void AssertForwardMatches(string model, string caseName, params string[] extra)
    {
        var testCase = BertReferenceFixtures.Case(model, caseName);
        var texts = Strings(testCase.GetProperty("text"));
        var pairs = testCase.TryGetProperty("text_pair", out var p) ? Strings(p) : null;
        string[] args = ["forward", "--model", ModelDir(model), "--json", .. extra, .. texts, .. (pairs ?? []).SelectMany(x => new[] { "--pair", x })];
        var (code, stdout, stderr) = Run(args);
        Assert.True(code == 0, stderr);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(texts.Length, lines.Length);
        var expectedLogits = testCase.GetProperty("logits").EnumerateArray().ToList();
        for (int i = 0; i < texts.Length; i++)
        {
            using var line = JsonDocument.Parse(lines[i]);
            var expectedIds = testCase.GetProperty("input_ids")[i].EnumerateArray().Select(x => x.GetInt32())
                .Where((_, k) => testCase.GetProperty("attention_mask")[i][k].GetInt32() == 1);
            Assert.Equal(expectedIds, line.RootElement.GetProperty("input_ids").EnumerateArray().Select(x => x.GetInt32()));
            var logits = line.RootElement.GetProperty("logits").EnumerateArray()
                .SelectMany(r => r.ValueKind == JsonValueKind.Array ? r.EnumerateArray().Select(v => v.GetSingle()) : [r.GetSingle()]).ToArray();
            using var expected = BertReferenceFixtures.FloatTensor(expectedLogits[i]);
            var values = expected.data<float>().ToArray();
            Assert.Equal(values.Length, logits.Length);
            for (int k = 0; k < values.Length; k++) Assert.True(Math.Abs(values[k] - logits[k]) <= 1e-4, $"{model}/{caseName} text {i} value {k}");
        }
    }

    /// <summary>Every case of every fixture model folder: single texts, pairs, right- and left-padded batches.</summary>
    public static IEnumerable<object[]> AllCases() => HfModelReferenceTests.Cases();

    // The padding side is passed explicitly only where the case differs from the tokenizer's own, so the default is
    // exercised by the right-padded cases and the flag by the left-padded ones.
    [Theory]
    [MemberData(nameof(AllCases))]
    public void ForwardMatchesHfForEveryFamilyAndCase(string model, string caseName)
    {
        var side = BertReferenceFixtures.Case(model, caseName).GetProperty("tokenizer_call").GetProperty("padding_side").GetString()!;
        AssertForwardMatches(model, caseName, side == "right" ? [] : ["--padding-side", side]);
    }

    [Fact]
    public void DiscriminatorForwardPrintsOneLogitPerPosition()
    {
        AssertForwardMatches("electra-discriminator", "batch_pair_mask");
        var (code, stdout, _) = Run("forward", "--model", ModelDir("electra-discriminator"), "--json", "hello world");
        Assert.Equal(0, code);
        using var line = JsonDocument.Parse(stdout);
        var logits = line.RootElement.GetProperty("logits");
        Assert.Equal(line.RootElement.GetProperty("tokens").GetArrayLength(), logits.GetArrayLength());
        Assert.All(logits.EnumerateArray(), v => Assert.Equal(JsonValueKind.Number, v.ValueKind));
    }

    [Fact]
    public void FillWorksOnGeneratorsAndRefusesTheDiscriminator()
    {
        var testCase = BertReferenceFixtures.Case("electra-generator", "mask_middle");
        var reference = testCase.GetProperty("mask_predictions")[0];
        var (code, stdout, stderr) = Run("fill", "--model", ModelDir("electra-generator"), "--json", testCase.GetProperty("text").GetString()!);
        Assert.True(code == 0, stderr);
        using var line = JsonDocument.Parse(stdout);
        var ids = line.RootElement.GetProperty("masks")[0].GetProperty("candidates").EnumerateArray().Select(c => c.GetProperty("id").GetInt32());
        Assert.Equal(reference.GetProperty("top_ids").EnumerateArray().Select(x => x.GetInt32()), ids);

        var (refusedCode, refusedOut, refusedErr) = Run("fill", "--model", ModelDir("electra-discriminator"), "a [MASK] here");
        Assert.NotEqual(0, refusedCode);
        Assert.Equal("", refusedOut);
        Assert.StartsWith("error: ", refusedErr);
        Assert.Contains("ElectraForPreTraining", refusedErr);
    }

    [Fact]
    public void TokenizeShowsPairsTokenTypesAndPadding()
    {
        var testCase = BertReferenceFixtures.Case("bert-uncased", "batch_pair_mask");
        var input = Path.Combine(_dir.FullName, "pairs.jsonl");
        var texts = Strings(testCase.GetProperty("text"));
        var pairs = Strings(testCase.GetProperty("text_pair"));
        File.WriteAllLines(input, texts.Select((t, i) => JsonSerializer.Serialize(new { text = t, text_pair = pairs[i] })));
        var (code, stdout, stderr) = Run("tokenize", "--model", ModelDir("bert-uncased"), "--json", "--padding-side", "right", "--input", input);
        Assert.True(code == 0, stderr);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        for (int i = 0; i < texts.Length; i++)
        {
            using var line = JsonDocument.Parse(lines[i]);
            foreach (var field in new[] { "input_ids", "token_type_ids", "attention_mask" })
                Assert.Equal(testCase.GetProperty(field)[i].EnumerateArray().Select(x => x.GetInt32()),
                    line.RootElement.GetProperty(field).EnumerateArray().Select(x => x.GetInt32()));
        }

        var (mismatch, mismatchOut, mismatchErr) = Run("tokenize", "--model", ModelDir("bert-uncased"), "one", "two", "--pair", "only one");
        Assert.NotEqual(0, mismatch);
        Assert.Equal("", mismatchOut);
        Assert.Contains("--pair", mismatchErr);
    }
}
