using System.Text.Json;

namespace Unmask.Tests;

/// <summary>score, rescore and eval through the command-line entry point.</summary>
public class EvalCliTests : IDisposable
{
    readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("unmask-eval-cli");

    public void Dispose() => _dir.Delete(recursive: true);

    static string Model(string name) => Path.Combine(SharedFixtures.HfReference, "models", name);

    static List<JsonElement> Lines(string stdout) =>
        stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();

    [Fact]
    public void ScoreJsonMatchesTheReferencePll()
    {
        using var reference = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(SharedFixtures.HfReference, "pll", "bert-cased.json")));
        var sentences = reference.RootElement.GetProperty("sentences").EnumerateArray().ToList();
        var input = Path.Combine(_dir.FullName, "in.jsonl");
        File.WriteAllLines(input, sentences.Select(s => JsonSerializer.Serialize(new { text = s.GetProperty("sentence").GetString() })));
        var (code, stdout, stderr) = CliTests.Run("score", "--model", Model("bert-cased"), "--json", "--per-token", "--input", input);
        Assert.True(code == 0, stderr);
        var lines = Lines(stdout);
        Assert.Equal(sentences.Count, lines.Count);
        for (int i = 0; i < lines.Count; i++)
        {
            Assert.Equal(sentences[i].GetProperty("sentence").GetString(), lines[i].GetProperty("text").GetString());
            Assert.Equal(sentences[i].GetProperty("num_scored").GetInt32(), lines[i].GetProperty("num_scored").GetInt32());
            Assert.Equal(sentences[i].GetProperty("pll").GetDouble(), lines[i].GetProperty("pll").GetDouble(), 1e-3);
            var expected = sentences[i].GetProperty("per_token").EnumerateArray().ToList();
            var actual = lines[i].GetProperty("tokens").EnumerateArray().ToList();
            Assert.Equal(expected.Select(t => t.GetProperty("token").GetString()), actual.Select(t => t.GetProperty("token").GetString()));
            for (int k = 0; k < expected.Count; k++)
                Assert.Equal(expected[k].GetProperty("log_prob").GetSingle(), actual[k].GetProperty("log_prob").GetSingle(), 1e-4);
        }
    }

    [Theory]
    [InlineData("bert-cased")]
    [InlineData("distilbert")]
    [InlineData("modernbert")]
    public void ScoreInBf16StaysNearFp32ButIsNotFp32(string family)
    {
        // ScoreJsonMatchesTheReferencePll and the parity tests pin fp32 to transformers; bf16 is measured against it.
        using var reference = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(SharedFixtures.HfReference, "pll", "bert-cased.json")));
        var sentences = reference.RootElement.GetProperty("sentences").EnumerateArray().ToList();
        var input = Path.Combine(_dir.FullName, "in.jsonl");
        File.WriteAllLines(input, sentences.Select(s => JsonSerializer.Serialize(new { text = s.GetProperty("sentence").GetString() })));
        List<List<double>> LogProbs(string precision)
        {
            var (code, stdout, stderr) = CliTests.Run("score", "--model", Model(family), "--json", "--per-token", "--precision", precision, "--input", input);
            Assert.True(code == 0, stderr);
            return Lines(stdout).Select(l => l.GetProperty("tokens").EnumerateArray().Select(t => t.GetProperty("log_prob").GetDouble()).ToList()).ToList();
        }
        var fp32 = LogProbs("fp32");
        var bf16 = LogProbs("bf16");
        Assert.Equal(sentences.Count, bf16.Count);
        double worst = 0;
        for (int i = 0; i < bf16.Count; i++)
        {
            Assert.Equal(fp32[i].Count, bf16[i].Count);
            worst = Math.Max(worst, fp32[i].Zip(bf16[i], (e, a) => Math.Abs(e - a)).Max());
        }
        // bf16 keeps 8 bits of mantissa: log-probabilities move by hundredths, far more than fp32's 1e-6 and far less than 1.
        Assert.InRange(worst, 1e-4, 0.1);
    }

    [Fact]
    public void ScoreStopsAtAMalformedLineUnlessAskedToSkip()
    {
        var input = Path.Combine(_dir.FullName, "in.jsonl");
        File.WriteAllText(input, "{\"text\": \"the floor.\"}\n{\"text\": \n{\"txt\": \"x\"}\n{\"text\": \"mistakes are normal.\"}\n");
        var (code, stdout, stderr) = CliTests.Run("score", "--model", Model("bert-uncased"), "--json", "--input", input);
        Assert.Equal(1, code);
        Assert.Equal("", stdout);
        Assert.StartsWith($"error: {input}:2: not valid JSON (", stderr);
        Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));

        (code, stdout, stderr) = CliTests.Run("score", "--model", Model("bert-uncased"), "--json", "--skip-bad", "--input", input);
        Assert.Equal(0, code);
        Assert.Equal(["the floor.", "mistakes are normal."], Lines(stdout).Select(l => l.GetProperty("text").GetString()));
        // On a starved machine a progress line ("scoring: …") may join the warnings; only the warnings are checked.
        var warnings = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => !l.StartsWith("scoring: ")).ToArray();
        Assert.Equal(2, warnings.Length);
        Assert.StartsWith($"warning: {input}:2: not valid JSON", warnings[0]);
        Assert.Equal($"warning: {input}:3: missing field \"text\"; skipped", warnings[1]);
    }

    [Fact]
    public void ScoreReportsEmptyAndOverlongSentencesWithTheirLine()
    {
        var file = Path.Combine(_dir.FullName, "in.txt");
        File.WriteAllLines(file, ["the floor.", "", string.Join(" ", Enumerable.Repeat("the", 70))]);
        var (code, stdout, stderr) = CliTests.Run("score", "--model", Model("bert-uncased"), "--file", file);
        Assert.Equal(1, code);
        Assert.Equal("", stdout);
        Assert.Equal($"error: {file}:2: empty sentence: no token to score", stderr.Trim());

        (code, stdout, stderr) = CliTests.Run("score", "--model", Model("bert-uncased"), "--file", file, "--skip-bad", "--json");
        Assert.Equal(0, code);
        Assert.Single(Lines(stdout));
        Assert.Equal([$"warning: {file}:2: empty sentence: no token to score; skipped",
            $"warning: {file}:3: 72 tokens, longer than the model's maximum of 64 (not truncated); skipped"],
            stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public void ScoreRefusesAModelWithoutAMaskedLmHead()
    {
        var (code, stdout, stderr) = CliTests.Run("score", "--model", Model("electra-discriminator"), "the floor.");
        Assert.Equal(1, code);
        Assert.Equal("", stdout);
        Assert.Equal("error: ElectraForPreTraining has no masked-language-model head (it predicts replaced tokens), so it cannot score text", stderr.Trim());
    }

    [Fact]
    public void ScoreTableEndsWithPseudoPerplexity()
    {
        var (code, stdout, stderr) = CliTests.Run("score", "--model", Model("bert-uncased"), "--variant", "word-l2r", "the floor.", "mistakes are normal.");
        Assert.True(code == 0, stderr);
        Assert.Contains("pseudo-perplexity (per token)", stdout);
        Assert.Contains("pseudo-perplexity (per word)", stdout);
        (code, _, stderr) = CliTests.Run("score", "--model", Model("bert-uncased"), "--variant", "left-to-right", "x");
        Assert.NotEqual(0, code);
        Assert.Contains("left-to-right", stderr);
    }

    [Fact]
    public void EvalBlimpWritesItsReportAtomically()
    {
        var folder = Directory.CreateDirectory(Path.Combine(_dir.FullName, "blimp")).FullName;
        File.WriteAllLines(Path.Combine(folder, "p.jsonl"), [
            "{\"sentence_good\": \"The floor is clean.\", \"sentence_bad\": \"The floor are clean.\", \"field\": \"syntax\", \"linguistics_term\": \"agreement\", \"UID\": \"p\", \"pairID\": \"0\"}",
            "{\"sentence_good\": \"The train leaves.\", \"sentence_bad\": \"The train leave.\", \"field\": \"syntax\", \"linguistics_term\": \"agreement\", \"UID\": \"p\", \"pairID\": \"1\"}",
        ]);
        var reportDir = Directory.CreateDirectory(Path.Combine(_dir.FullName, "reports")).FullName;
        var report = Path.Combine(reportDir, "blimp.json");
        var (code, stdout, stderr) = CliTests.Run("eval", "blimp", "--model", Model("bert-uncased"), "--data", folder, "--json", "--report", report);
        Assert.True(code == 0, stderr);
        Assert.Equal([report], Directory.GetFiles(reportDir));
        using var written = JsonDocument.Parse(File.ReadAllText(report));
        var line = Assert.Single(Lines(stdout));
        Assert.Equal(2, written.RootElement.GetProperty("overall").GetProperty("pairs").GetInt32());
        Assert.Equal(written.RootElement.GetProperty("overall").GetProperty("accuracy").GetDouble(), line.GetProperty("overall").GetProperty("accuracy").GetDouble());
        Assert.Equal("p", written.RootElement.GetProperty("by_paradigm")[0].GetProperty("name").GetString());
        Assert.Equal("original", written.RootElement.GetProperty("variant").GetString());
    }

    [Fact]
    public void EvalCrowsPairsPrintsMetricAndAulPerBiasType()
    {
        var csv = Path.Combine(_dir.FullName, "cp.csv");
        File.WriteAllText(csv, ",sent_more,sent_less,stereo_antistereo,bias_type\n" +
            "0,The farmers bring bread.,The kids bring bread.,stereo,age\n1,Mistakes are normal.,Mistakes were normal.,antistereo,gender\n");
        var (code, stdout, stderr) = CliTests.Run("eval", "crows-pairs", "--model", Model("bert-uncased"), "--data", csv, "--json");
        Assert.True(code == 0, stderr);
        var result = Assert.Single(Lines(stdout));
        Assert.Equal(["age", "gender"], result.GetProperty("by_bias_type").EnumerateArray().Select(b => b.GetProperty("name").GetString()));
        Assert.Equal(2, result.GetProperty("aul_overall").GetProperty("pairs").GetInt32());
        (code, stdout, stderr) = CliTests.Run("eval", "crows-pairs", "--model", Model("bert-uncased"), "--data", csv);
        Assert.True(code == 0, stderr);
        Assert.Contains("AUL %", stdout);
    }

    [Fact]
    public void RescoreJsonGivesChoicesThenASummary()
    {
        var nbest = Path.Combine(_dir.FullName, "nbest.jsonl");
        File.WriteAllLines(nbest, [
            "{\"id\": \"u1\", \"reference\": \"the floor is clean\", \"hypotheses\": [{\"text\": \"the floor is clean\", \"score\": -2, \"system\": \"A\"}, {\"text\": \"the flour is clean\", \"score\": -1, \"system\": \"B\"}]}",
            "{\"id\": \"u2\", \"hypotheses\": []}",
        ]);
        var (code, _, stderr) = CliTests.Run("rescore", "--model", Model("bert-uncased"), "--nbest", nbest, "--json");
        Assert.Equal(1, code);
        Assert.Equal($"error: {nbest}:2: field \"hypotheses\" is empty", stderr.Trim());

        (code, var stdout, stderr) = CliTests.Run("rescore", "--model", Model("bert-uncased"), "--nbest", nbest, "--json", "--skip-bad", "--weight", "0");
        Assert.True(code == 0, stderr);
        var lines = Lines(stdout);
        Assert.Equal(2, lines.Count);
        Assert.Equal("the flour is clean", lines[0].GetProperty("text").GetString()); // weight 0: the system's own score decides
        var wer = lines[1].GetProperty("summary").GetProperty("wer");
        Assert.Equal(4, wer.GetProperty("reference_words").GetInt32());
        Assert.Equal(1, wer.GetProperty("errors_after").GetInt32());
        Assert.Equal(0, wer.GetProperty("errors_oracle").GetInt32());
    }
}
