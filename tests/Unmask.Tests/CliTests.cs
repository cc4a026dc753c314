using System.Text;
using System.Text.Json;
using Unmask.Cli;

namespace Unmask.Tests;

/// <summary>The `unmask` commands run through the same entry point as the executable.</summary>
public class CliTests : IDisposable
{
    readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("unmask-cli");

    public void Dispose() => _dir.Delete(recursive: true);

    static string BertUncased => Path.Combine(SharedFixtures.HfReference, "models", "bert-uncased");

    public static (int Code, string Out, string Err) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = Cli.Cli.Run(args, output, error);
        return (code, output.ToString(), error.ToString());
    }

    [Fact]
    public void ForwardJsonGivesTransformersLogitsForEveryNonPaddingPosition()
    {
        using var cases = JsonDocument.Parse(File.ReadAllText(Path.Combine(SharedFixtures.HfReference, "cases", "bert-uncased.json")));
        var batch = cases.RootElement.GetProperty("cases").EnumerateArray()
            .First(c => c.GetProperty("text").ValueKind == JsonValueKind.Array && !c.TryGetProperty("text_pair", out _) &&
                        c.GetProperty("tokenizer_call").GetProperty("padding_side").GetString() == "right");
        var texts = batch.GetProperty("text").EnumerateArray().Select(t => t.GetString()!).ToArray();
        var (code, stdout, stderr) = Run(["forward", "--model", BertUncased, "--json", .. texts]);
        Assert.True(code == 0, stderr);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(texts.Length, lines.Length);
        var expectedLogits = batch.GetProperty("logits").EnumerateArray().ToList();
        var expectedIds = batch.GetProperty("input_ids").EnumerateArray().ToList();
        for (int i = 0; i < texts.Length; i++)
        {
            using var line = JsonDocument.Parse(lines[i]);
            Assert.Equal(texts[i], line.RootElement.GetProperty("text").GetString());
            var ids = line.RootElement.GetProperty("input_ids").EnumerateArray().Select(x => x.GetInt32()).ToArray();
            Assert.Equal(expectedIds[i].EnumerateArray().Select(x => x.GetInt32()).Take(ids.Length), ids);
            var rows = line.RootElement.GetProperty("logits").EnumerateArray().Select(r => r.EnumerateArray().Select(v => v.GetSingle()).ToArray()).ToArray();
            using var expected = BertReferenceFixtures.FloatTensor(expectedLogits[i]);
            var expectedValues = expected.data<float>().ToArray();
            Assert.Equal(expected.shape[0], rows.Length);
            var flat = rows.SelectMany(r => r).ToArray();
            Assert.Equal(expectedValues.Length, flat.Length);
            for (int k = 0; k < flat.Length; k++) Assert.True(Math.Abs(flat[k] - expectedValues[k]) <= 1e-4, $"text {i} value {k}");
        }
    }

    [Fact]
    public void TokenizeJsonReadsInputFileInOrder()
    {
        var input = Path.Combine(_dir.FullName, "in.jsonl");
        File.WriteAllText(input, "{\"text\": \"Hello, World!\"}\n{\"text\": \"the cat\"}\n");
        var (code, stdout, stderr) = Run("tokenize", "--model", BertUncased, "--json", "--input", input);
        Assert.True(code == 0, stderr);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(["Hello, World!", "the cat"], lines.Select(l => l.GetProperty("text").GetString()));
        Assert.Equal([4, 56, 114, 121, 121, 124, 18, 71, 124, 127, 121, 113, 7, 5], lines[0].GetProperty("input_ids").EnumerateArray().Select(x => x.GetInt32()));
        Assert.Equal("[CLS] hello, world! [SEP]", lines[0].GetProperty("decoded").GetString());
        Assert.Equal("[CLS]", lines[0].GetProperty("tokens")[0].GetString());
    }

    [Theory]
    [InlineData("roberta")]
    [InlineData("roberta-add-prefix-space")]
    [InlineData("modernbert-bpe")]
    public void TokenizeByteLevelBpeFoldersGivesTransformersIds(string variant)
    {
        using var fixture = JsonDocument.Parse(File.ReadAllText(Path.Combine(SharedFixtures.HfReference, "tokenizer-cases", variant + ".json")));
        var folder = Path.Combine(SharedFixtures.HfReference, fixture.RootElement.GetProperty("tokenizer_dir").GetString()!);
        var cases = fixture.RootElement.GetProperty("cases").EnumerateArray().Where(c => c.GetProperty("text").GetString()!.Length > 0).Take(12).ToList();
        var (code, stdout, stderr) = Run(["tokenize", "--model", folder, "--json", .. cases.Select(c => c.GetProperty("text").GetString()!)]);
        Assert.True(code == 0, stderr);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(cases.Count, lines.Count);
        for (int i = 0; i < cases.Count; i++)
        {
            Assert.Equal(cases[i].GetProperty("text").GetString(), lines[i].GetProperty("text").GetString());
            Assert.Equal(cases[i].GetProperty("input_ids").EnumerateArray().Select(x => x.GetInt32()),
                lines[i].GetProperty("input_ids").EnumerateArray().Select(x => x.GetInt32()));
            Assert.Equal(cases[i].GetProperty("decoded").GetString(), lines[i].GetProperty("decoded").GetString());
            var tokens = lines[i].GetProperty("tokens").EnumerateArray().Select(x => x.GetString()).ToArray();
            Assert.Equal(cases[i].GetProperty("tokens").EnumerateArray().Select(x => x.GetString()), tokens[1..^1]);
        }
        var (tableCode, table, tableErr) = Run("tokenize", "--model", folder, "Hello, World!");
        Assert.True(tableCode == 0, tableErr);
        Assert.Contains("Hello", table);
    }

    [Fact]
    public void FillRanksMaskCandidatesLikeTheReference()
    {
        using var cases = JsonDocument.Parse(File.ReadAllText(Path.Combine(SharedFixtures.HfReference, "cases", "bert-uncased.json")));
        var withMask = cases.RootElement.GetProperty("cases").EnumerateArray()
            .First(c => c.GetProperty("text").ValueKind == JsonValueKind.String && !c.TryGetProperty("text_pair", out _) &&
                        c.GetProperty("mask_predictions").GetArrayLength() > 0);
        var text = withMask.GetProperty("text").GetString()!;
        var reference = withMask.GetProperty("mask_predictions")[0];
        var (code, stdout, stderr) = Run("fill", "--model", BertUncased, "--json", "--top-k", "5", text);
        Assert.True(code == 0, stderr);
        using var line = JsonDocument.Parse(stdout.Split('\n')[0]);
        var mask = line.RootElement.GetProperty("masks")[0];
        Assert.Equal(reference.GetProperty("position").GetInt32(), mask.GetProperty("position").GetInt32());
        var ids = mask.GetProperty("candidates").EnumerateArray().Select(c => c.GetProperty("id").GetInt32()).ToArray();
        Assert.Equal(reference.GetProperty("top_ids").EnumerateArray().Select(x => x.GetInt32()), ids);
        var probabilities = mask.GetProperty("candidates").EnumerateArray().Select(c => c.GetProperty("probability").GetDouble()).ToArray();
        var logProbs = reference.GetProperty("top_log_probs").EnumerateArray().Select(x => x.GetDouble()).ToArray();
        for (int k = 0; k < 5; k++) Assert.Equal(Math.Exp(logProbs[k]), probabilities[k], 4);

        var (targetCode, targetOut, _) = Run("fill", "--model", BertUncased, "--json", "--targets", "the,cat", text);
        Assert.Equal(0, targetCode);
        using var targeted = JsonDocument.Parse(targetOut.Split('\n')[0]);
        var tokens = targeted.RootElement.GetProperty("masks")[0].GetProperty("candidates").EnumerateArray().Select(c => c.GetProperty("token").GetString()).ToHashSet();
        Assert.True(tokens.SetEquals(["the", "cat"]) || tokens.IsSubsetOf(["the", "cat", "c"]), string.Join(",", tokens));
    }

    [Fact]
    public void BadInputsGiveOneLineErrorsAndWriteNothing()
    {
        var output = Path.Combine(_dir.FullName, "run");
        var empty = Path.Combine(_dir.FullName, "empty.txt");
        File.WriteAllText(empty, "\n\n");
        var latin1 = Path.Combine(_dir.FullName, "latin1.txt");
        File.WriteAllBytes(latin1, [0x63, 0x61, 0x66, 0xE9, 0x0A]);
        string[][] cases =
        [
            ["pretrain", "--corpus", empty, "--output", output, "--steps", "1"],
            ["pretrain", "--corpus", Path.Combine(_dir.FullName, "no-such-folder"), "--output", output, "--steps", "1"],
            ["pretrain", "--corpus", latin1, "--output", output, "--steps", "1"],
            ["fill", "--model", BertUncased, "a text without any mask"],
            ["fill", "--model", Path.Combine(_dir.FullName, "no-model"), "a [MASK] here"],
            ["tokenize", "--model", _dir.FullName, "hello"],
        ];
        string[] expected = ["empty", "not found", "latin1.txt:1: not valid UTF-8", "no mask token", "not found", "No supported tokenizer"];
        for (int i = 0; i < cases.Length; i++)
        {
            var (code, stdout, stderr) = Run(cases[i]);
            Assert.NotEqual(0, code);
            Assert.Equal("", stdout);
            // Progress lines may precede it; the error itself is one line, and the last.
            var errors = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => l.StartsWith("error: ")).ToList();
            Assert.Single(errors);
            Assert.Contains(expected[i], errors[0]);
            Assert.EndsWith(errors[0], stderr.TrimEnd());
        }
        Assert.False(Directory.Exists(output), "a failed run left an output folder");
    }
}
