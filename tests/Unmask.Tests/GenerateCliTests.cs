using System.Text.Json;

namespace Unmask.Tests;

/// <summary>`unmask generate` and `unmask eval infill` through the command-line entry point, on the tiny fixture models.</summary>
public class GenerateCliTests : IDisposable
{
    readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("unmask-generate");

    public void Dispose() => _dir.Delete(recursive: true);

    static string Model(string name) => Path.Combine(SharedFixtures.HfReference, "models", name);

    static List<JsonElement> Lines(string stdout) =>
        stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();

    [Fact]
    public void JsonOutputFillsOnlyTheMasksAndASeedRepeatsIt()
    {
        string[] args = ["generate", "--model", Model("bert-uncased"), "--json", "--trace", "--sampler", "confidence", "--steps", "3",
            "--seed", "7", "--length", "2", "the [MASK] cat on the [MASK] ."];
        var (code, stdout, stderr) = CliTests.Run(args);
        Assert.True(code == 0, stderr);
        var sample = Assert.Single(Lines(stdout));
        var tokens = sample.GetProperty("tokens").EnumerateArray().Select(t => t.GetString()!).ToList();
        var generated = sample.GetProperty("generated_positions").EnumerateArray().Select(p => p.GetInt32()).ToList();
        Assert.Equal(4, generated.Count);
        // The prompt's own tokens stay; [CLS] and [SEP] close the row; the two appended positions come before [SEP].
        Assert.Equal("[CLS]", tokens[0]);
        Assert.Equal("[SEP]", tokens[^1]);
        Assert.Equal(["the", "cat", "on", "the", "."], tokens.Where((_, i) => i > 0 && i < tokens.Count - 1 && !generated.Contains(i)));
        Assert.Equal([tokens.Count - 3, tokens.Count - 2], generated.TakeLast(2));
        Assert.DoesNotContain(generated, p => tokens[p] is "[MASK]" or "[CLS]" or "[SEP]" or "[PAD]");
        // Three steps commit all four positions, each once.
        var steps = sample.GetProperty("steps").EnumerateArray().ToList();
        Assert.Equal(3, sample.GetProperty("nfe").GetInt32());
        Assert.Equal(generated.Order(), steps.SelectMany(s => s.GetProperty("positions").EnumerateArray().Select(p => p.GetInt32())).Order());

        var (again, stdoutAgain, _) = CliTests.Run(args);
        Assert.Equal(0, again);
        Assert.Equal(sample.GetProperty("ids").ToString(), Assert.Single(Lines(stdoutAgain)).GetProperty("ids").ToString());
    }

    [Fact]
    public void UnconditionalSamplesComeFromLengthAlone()
    {
        var (code, stdout, stderr) = CliTests.Run("generate", "--model", Model("bert-uncased"), "--json", "--sampler", "ancestral",
            "--steps", "20", "--length", "12", "--num-samples", "3", "--seed", "1");
        Assert.True(code == 0, stderr);
        var samples = Lines(stdout);
        Assert.Equal(3, samples.Count);
        Assert.All(samples, s => Assert.Equal(12, s.GetProperty("generated_positions").GetArrayLength()));
        Assert.All(samples, s => Assert.InRange(s.GetProperty("nfe").GetInt32(), 1, 21));
    }

    [Theory]
    [InlineData("nothing to fill", "--sampler", "confidence", "the cat sat .")]
    [InlineData("beyond the model's 64", "--length", "70", "the cat")]
    [InlineData("--steps must be a whole number of at least 1", "--steps", "0", "the [MASK] sat .")]
    [InlineData("block", "--sampler", "confidence", "--block-length", "3", "the [MASK] [MASK] sat .")]
    [InlineData("--sampler 'greedy'", "--sampler", "greedy", "the [MASK] sat .")]
    public void BadInputStopsWithAClearErrorAndPrintsNothing(string expected, params string[] rest)
    {
        var (code, stdout, stderr) = CliTests.Run(["generate", "--model", Model("bert-uncased"), "--json", .. rest]);
        Assert.Equal(1, code);
        Assert.Equal("", stdout);
        Assert.StartsWith("error: ", stderr);
        Assert.Contains(expected, stderr);
    }

    [Theory]
    [InlineData("ancestral")]
    [InlineData("mask-predict")]
    public void ADiscriminatorCannotGenerate(string sampler)
    {
        var (code, stdout, stderr) = CliTests.Run("generate", "--model", Model("electra-discriminator"), "--sampler", sampler, "the [MASK] sat .");
        Assert.Equal(1, code);
        Assert.Equal("", stdout);
        Assert.Contains("has no masked-language-model head", stderr);
    }

    [Fact]
    public void InfillReportsEverySettingOnTheSameWindows()
    {
        var corpus = Path.Combine(SharedFixtures.Gutenberg, "extra", "alice_in_wonderland.txt.gz");
        var (code, stdout, stderr) = CliTests.Run("eval", "infill", "--model", Model("bert-uncased"), "--corpus", corpus, "--json",
            "--windows", "4", "--max-seq-length", "32", "--sampler", "confidence,mask-predict", "--steps", "2,4", "--temperature", "0");
        Assert.True(code == 0, stderr);
        var result = JsonDocument.Parse(stdout).RootElement;
        Assert.Equal(4, result.GetProperty("windows").GetInt32());
        var rows = result.GetProperty("rows").EnumerateArray().ToList();
        Assert.Equal(["confidence", "confidence", "mask-predict", "mask-predict"], rows.Select(r => r.GetProperty("setting").GetProperty("sampler").GetString()));
        Assert.All(rows, r => Assert.InRange(r.GetProperty("recovery").GetDouble(), 0, 1));
        Assert.Equal([2.0, 4.0, 2.0, 4.0], rows.Select(r => r.GetProperty("forward_passes").GetDouble()));
        Assert.InRange(result.GetProperty("baseline_recovery").GetDouble(), 1e-9, 1);
        Assert.True(result.GetProperty("true_log_likelihood").GetDouble() < 0);
    }

    [Fact]
    public void UnconditionalSamplesAreMeasuredBesideRealText()
    {
        var corpus = Path.Combine(SharedFixtures.Gutenberg, "extra", "alice_in_wonderland.txt.gz");
        var (code, stdout, stderr) = CliTests.Run("eval", "samples", "--model", Model("bert-uncased"), "--judge", Model("bert-cased"),
            "--corpus", corpus, "--json", "--samples", "3", "--length", "16", "--sampler", "ancestral", "--steps", "8", "--seed", "3");
        Assert.True(code == 0, stderr);
        var result = JsonDocument.Parse(stdout).RootElement;
        Assert.Equal(3, result.GetProperty("samples").GetArrayLength());
        foreach (var set in new[] { "generated", "real" })
        {
            var stats = result.GetProperty(set);
            Assert.Equal(3, stats.GetProperty("texts").GetInt32());
            Assert.All(stats.GetProperty("distinct_n").EnumerateArray(), d => Assert.InRange(d.GetDouble(), 1e-9, 1));
            Assert.True(stats.GetProperty("unigram_entropy").GetDouble() > 0);
            Assert.True(stats.GetProperty("judge_pseudo_perplexity").GetDouble() > 1);
        }
    }
}
