using System.Text.Json;
using Unmask.Masking;

namespace Unmask.Tests;

/// <summary>`unmask mask` and the masking options the commands share.</summary>
public class MaskCommandTests : IDisposable
{
    readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("unmask-mask");

    public void Dispose() => _dir.Delete(recursive: true);

    static string BertUncased => Path.Combine(SharedFixtures.HfReference, "models", "bert-uncased");

    static readonly string[] Texts =
    [
        "The quick brown fox jumps over the lazy dog, and the unbelievable forest swallows it whole.",
        "Masked language models predict the hidden tokens from both sides of their context.",
    ];

    [Theory]
    [InlineData("span")]
    [InlineData("pmi")]
    [InlineData("weighted")]
    public void JsonShowsSelectedPositionsAndCorruptionOnlyThere(string name)
    {
        var (code, stdout, stderr) = CliTests.Run(["mask", "--model", BertUncased, "--masking", name, "--mask-rate", "0.4", "--seed", "3", "--json", .. Texts]);
        Assert.True(code == 0, stderr);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(Texts.Length, lines.Length);
        int selectedTotal = 0;
        for (int l = 0; l < lines.Length; l++)
        {
            var root = JsonDocument.Parse(lines[l]).RootElement;
            Assert.Equal(Texts[l], root.GetProperty("text").GetString());
            var tokens = root.GetProperty("tokens").EnumerateArray().Select(t => t.GetString()!).ToArray();
            var ids = root.GetProperty("input_ids").EnumerateArray().Select(x => x.GetInt32()).ToArray();
            var selected = root.GetProperty("selected").EnumerateArray().Select(x => x.GetInt32()).ToArray();
            var corrupted = root.GetProperty("corrupted_ids").EnumerateArray().Select(x => x.GetInt32()).ToArray();
            Assert.Equal(ids.Length, tokens.Length);
            Assert.Equal(ids.Length, corrupted.Length);
            Assert.Equal("[CLS]", tokens[0]);
            Assert.All(selected, p => Assert.InRange(p, 1, ids.Length - 2));
            Assert.Equal(selected.Distinct().Order(), selected);
            for (int i = 0; i < ids.Length; i++)
                if (!selected.Contains(i)) Assert.Equal(ids[i], corrupted[i]);
            selectedTotal += selected.Length;
        }
        Assert.True(selectedTotal > 0);
    }

    [Fact]
    public void SameSeedSameOutputAndProgressMovesTheScheduledRate()
    {
        string[] Args(string progress) => ["mask", "--model", BertUncased, "--masking", "whole-word", "--mask-rate", "0.05",
            "--rate-schedule", "linear", "--end-rate", "0.9", "--progress", progress, "--json", .. Texts];
        var first = CliTests.Run(Args("0"));
        Assert.Equal(first.Out, CliTests.Run(Args("0")).Out);
        int Selected(string stdout) => stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Sum(l => JsonDocument.Parse(l).RootElement.GetProperty("selected").GetArrayLength());
        Assert.True(Selected(CliTests.Run(Args("1")).Out) > 3 * Selected(first.Out) + 5);
    }

    [Fact]
    public void UnknownStrategyIsOneLineErrorNamingTheValidOnes()
    {
        var (code, stdout, stderr) = CliTests.Run("mask", "--model", BertUncased, "--masking", "wholeword", "some text");
        Assert.NotEqual(0, code);
        Assert.Equal("", stdout);
        var line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("error: unknown masking strategy 'wholeword'", line);
        foreach (var name in MaskingStrategies.Names) Assert.Contains(name, line);
    }

    [Fact]
    public void MaskingConfigFileIsReadAndFlagsOverrideIt()
    {
        var config = Path.Combine(_dir.FullName, "masking.json");
        File.WriteAllText(config, """{"strategy": "ngram", "rate": 0.3, "ngram": {"probabilities": [0.5, 0.5]}}""");
        var loaded = MaskingOptions.Load(config);
        Assert.Equal(("ngram", 0.3, 0.8), (loaded.Strategy, loaded.Rate, loaded.MaskFraction));
        Assert.Equal([0.5, 0.5], loaded.Ngram.Lengths);

        var (code, stdout, stderr) = CliTests.Run("mask", "--model", BertUncased, "--masking-config", config, "--mask-split", "100/0/0", "--json", Texts[0]);
        Assert.True(code == 0, stderr);
        var root = JsonDocument.Parse(stdout).RootElement;
        int maskId = Unmask.Tokenization.TokenizerLoader.Load(BertUncased).MaskId;
        Assert.True(root.GetProperty("selected").GetArrayLength() > 0);
        foreach (var p in root.GetProperty("selected").EnumerateArray()) Assert.Equal(maskId, root.GetProperty("corrupted_ids")[p.GetInt32()].GetInt32());

        File.WriteAllText(config, """{"strategy": "span", "span": {"p": 0.2, "max_len": 4}}""");
        Assert.Contains("max_len", Assert.Throws<UnmaskException>(() => MaskingOptions.Load(config)).Message);
    }

    [Theory]
    [InlineData("span.p", "--span-p", "0")]
    [InlineData("span.max_length", "--span-max", "0")]
    [InlineData("ngram.probabilities", "--ngram-probs", "0.5,0.2")]
    [InlineData("weighted.temperature", "--weighted-temperature", "-1")]
    [InlineData("pmi.max_words", "--pmi-max-words", "9")]
    [InlineData("schedule.end_rate", "--rate-schedule", "cosine")]
    public void InvalidStrategyOptionNamesTheField(string field, string flag, string value)
    {
        var (code, _, stderr) = CliTests.Run("mask", "--model", BertUncased, "--masking", "span", flag, value, "text");
        Assert.Equal(1, code);
        Assert.StartsWith("error: ", stderr);
        Assert.Contains(field, stderr);
    }
}

/// <summary>What `pretrain` keeps of the masking options: the trainer state a resumed run reads, and the statistics cache.</summary>
public class MaskingPersistenceTests : IDisposable
{
    readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("unmask-masking");

    public void Dispose() => _dir.Delete(recursive: true);

    [Fact]
    public void TrainerStateKeepsTheMaskingStrategyForResume()
    {
        var masking = new MaskingOptions(0.2, 1, 0, 0)
        {
            Strategy = "ngram",
            Schedule = new RateSchedule(RateScheduleKind.Cosine, 0.4),
            Ngram = new NgramOptions([0.7, 0.3]),
            Pmi = new PmiOptions(MaxWords: 2),
        };
        var state = new Unmask.Training.TrainerState(new Unmask.Training.PretrainOptions { Output = _dir.FullName, Masking = masking },
            10, 1000, TimeSpan.FromSeconds(3), new Unmask.Data.BatcherPosition(0, 5));
        state.Save(_dir.FullName);
        var loaded = Unmask.Training.TrainerState.Load(_dir.FullName).Options.Masking;
        Assert.Equal(("ngram", 0.2, 1.0, RateScheduleKind.Cosine, 0.4, 2), (loaded.Strategy, loaded.Rate, loaded.MaskFraction, loaded.Schedule.Kind, loaded.Schedule.EndRate, loaded.Pmi.MaxWords));
        Assert.Equal([0.7, 0.3], loaded.Ngram.Lengths);
        Assert.Equal(0.4, loaded.RateAt(1), 9);
    }

    [Fact]
    public void PretrainRejectsAnUnknownStrategyBeforeReadingAnything()
    {
        var (code, stdout, stderr) = CliTests.Run("pretrain", "--masking", "spans", "--output", Path.Combine(_dir.FullName, "run"));
        Assert.Equal(1, code);
        Assert.Equal("", stdout);
        Assert.StartsWith("error: unknown masking strategy 'spans' (valid: random, whole-word, span, ngram, pmi, weighted)", stderr);
        Assert.False(Directory.Exists(Path.Combine(_dir.FullName, "run")));
    }

    [Fact]
    public void StatisticsAreComputedOnceAndReadBackFromTheCache()
    {
        string[] tokens = ["[PAD]", "[MASK]", "new", "york", "city", "the", "a", "##s"];
        var boundaries = WordBoundaries.FromTokens(tokens, tokens.Select(t => t.StartsWith('[')).ToArray());
        var rng = new Random(1);
        var documents = Enumerable.Range(0, 200).Select(_ => rng.Next(3) == 0 ? new[] { 5, 2, 3, 4, 6, 7 } : new[] { 6, 5, 5, 6, 2, 6, 3 }).ToList();
        var path = Path.Combine(_dir.FullName, "stats.json");
        int computed = 0;
        CorpusStatistics Compute()
        {
            computed++;
            return CorpusStatistics.Compute(documents, boundaries, new PmiOptions());
        }
        var first = CorpusStatistics.LoadOrCompute(path, Compute);
        var second = CorpusStatistics.LoadOrCompute(path, Compute);
        Assert.Equal(1, computed);
        Assert.Equal(first.TokenCounts, second.TokenCounts);
        Assert.Equal(first.TotalTokens, second.TotalTokens);
        string Show(Collocation c) => string.Join(" ", c.Words.Select(w => string.Join("+", w)));
        // "city as" (a word of two pieces) and "new york city" occur only together.
        Assert.Contains("4 6+7", first.Collocations.Select(Show));
        Assert.Contains("2 3 4", first.Collocations.Select(Show));
        Assert.Equal(first.Collocations.Select(Show), second.Collocations.Select(Show));
        Assert.Equal(first.Collocations.Select(c => c.Pmi), second.Collocations.Select(c => c.Pmi));
    }
}
