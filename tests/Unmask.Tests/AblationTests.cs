using System.Text.Json;
using Unmask.Training;

namespace Unmask.Tests;

/// <summary>`unmask ablate` end to end on a tiny model, and its budget plan. Trains, so it runs alone beside the other trainer tests.</summary>
[Collection(nameof(BertProcessWideTests))]
public class AblationTests : IDisposable
{
    readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("unmask-ablate");

    public void Dispose() => _dir.Delete(recursive: true);

    string Config()
    {
        var path = Path.Combine(_dir.FullName, "config.json");
        File.WriteAllText(path, """
            {"vocab_size": 1000, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
             "max_position_embeddings": 64, "model_type": "bert"}
            """);
        return path;
    }

    string Blimp()
    {
        var folder = Directory.CreateDirectory(Path.Combine(_dir.FullName, "blimp")).FullName;
        File.WriteAllLines(Path.Combine(folder, "p.jsonl"), [
            "{\"sentence_good\": \"Alice was very tired.\", \"sentence_bad\": \"Alice were very tired.\", \"field\": \"syntax\", \"linguistics_term\": \"agreement\", \"UID\": \"p\", \"pairID\": \"0\"}",
            "{\"sentence_good\": \"The rabbit is late.\", \"sentence_bad\": \"The rabbit are late.\", \"field\": \"syntax\", \"linguistics_term\": \"agreement\", \"UID\": \"p\", \"pairID\": \"1\"}",
            "{\"sentence_good\": \"The queen was angry.\", \"sentence_bad\": \"Queen the was angry.\", \"field\": \"syntax\", \"linguistics_term\": \"order\", \"UID\": \"q\", \"pairID\": \"0\"}",
        ]);
        return folder;
    }

    string[] Args(string output, params string[] extra) =>
    [
        "ablate", "--corpus", Path.Combine(SharedFixtures.Gutenberg, "extra", "alice_in_wonderland.txt.gz"), "--config", Config(),
        "--vocab-size", "600", "--batch-size", "4", "--max-seq-length", "32", "--precision", "fp32", "--output", output, .. extra,
    ];

    [Fact]
    public void EveryVariantTrainsOnTheSameTokensAndIsValidatedOnTheSameCopy()
    {
        var output = Path.Combine(_dir.FullName, "strategies");
        // 1000 tokens round up to whole steps of 4 × 32 tokens: 8 steps, 1024 tokens.
        var (code, stdout, stderr) = CliTests.Run(Args(output, "--strategies", "random,whole-word,span", "--tokens", "1000", "--blimp", Blimp(), "--json"));
        Assert.True(code == 0, stderr);
        Assert.DoesNotContain("warning", stderr);
        using var printed = JsonDocument.Parse(stdout.Trim());
        var runs = printed.RootElement.GetProperty("runs").EnumerateArray().ToList();
        Assert.Equal(["random", "whole-word", "span"], runs.Select(r => r.GetProperty("name").GetString()));
        Assert.All(runs, r => Assert.Equal(1024, r.GetProperty("tokens").GetInt64()));
        Assert.All(runs, r => Assert.Equal(8, r.GetProperty("steps").GetInt64()));
        Assert.Equal(1024, printed.RootElement.GetProperty("tokens_per_variant").GetInt64());

        // The same tokenizer (trained deterministically) and the same validation copy for every variant.
        var masked = runs.Select(r => r.GetProperty("masked_tokens").GetInt64()).Distinct().ToList();
        Assert.True(masked is [> 0], $"masked tokens per variant: {string.Join(", ", masked)}");
        Assert.Single(runs.Select(r => r.GetProperty("tokenizer_fingerprint").GetString()).Distinct());
        var vocab = File.ReadAllText(Path.Combine(output, "random", "vocab.txt"));
        foreach (var name in new[] { "whole-word", "span" }) Assert.Equal(vocab, File.ReadAllText(Path.Combine(output, name, "vocab.txt")));

        foreach (var run in runs)
        {
            var name = run.GetProperty("name").GetString()!;
            var folder = Path.Combine(output, name);
            Assert.Equal(folder, run.GetProperty("output").GetString());
            foreach (var file in new[] { "model.safetensors", "config.json", "metrics.jsonl", "loss.png" }) Assert.True(File.Exists(Path.Combine(folder, file)), $"{name}/{file}");
            // Each run trained with its own strategy, recorded where a resume would read it.
            using var state = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "trainer_state.json")));
            Assert.Equal(name, state.RootElement.GetProperty("options").GetProperty("masking").GetProperty("strategy").GetString());
            var blimp = run.GetProperty("blimp_accuracy").GetDouble();
            Assert.InRange(blimp, 0, 1);
            var final = MetricsLog.Read(Path.Combine(folder, "metrics.jsonl")).Last(r => r.Split == "validation");
            Assert.Equal(1024, final.Tokens);
            Assert.Equal(run.GetProperty("validation_loss").GetDouble(), final.Values["loss"], 12);
        }
        Assert.False(Directory.Exists(Path.Combine(output, ".calibration")));

        using var report = JsonDocument.Parse(File.ReadAllText(Path.Combine(output, AblationResult.ReportFileName)));
        Assert.Equal(3, report.RootElement.GetProperty("runs").GetArrayLength());
        Assert.Equal(JsonValueKind.Null, report.RootElement.GetProperty("calibration").ValueKind);
        var png = File.ReadAllBytes(Path.Combine(output, AblationResult.PlotFileName));
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, png[..4]);
        Assert.Empty(Directory.GetFiles(output, "*.tmp", SearchOption.AllDirectories));
    }

    [Fact]
    public void TableHasOneRowPerObjectiveAndStrategyWithABlimpColumn()
    {
        var output = Path.Combine(_dir.FullName, "objectives");
        var (code, stdout, stderr) = CliTests.Run(Args(output, "--objectives", "mlm,mdlm,electra", "--strategies", "random,whole-word", "--tokens", "512", "--blimp", Blimp()));
        Assert.True(code == 0, stderr);
        var lines = stdout.Split('\n');
        Assert.Single(lines, l => l.Contains("BLiMP %") && l.Contains("val loss") && l.Contains("masked acc %"));
        var rows = lines.Select(l => l.Split('│', StringSplitOptions.TrimEntries)).Where(c => c.Length > 2).Select(c => c[1]).ToList();
        Assert.Equal(["variant", "mlm-random", "mlm-whole-word", "mdlm", "electra-random", "electra-whole-word"], rows);

        // MDLM and ELECTRA corrupt their own way in training but are validated on the masked copy the MLM runs see.
        using var report = JsonDocument.Parse(File.ReadAllText(Path.Combine(output, AblationResult.ReportFileName)));
        var runs = report.RootElement.GetProperty("runs").EnumerateArray().ToList();
        Assert.Single(runs.Select(r => r.GetProperty("masked_tokens").GetInt64()).Distinct());
        Assert.All(runs, r => Assert.Equal(512, r.GetProperty("tokens").GetInt64()));
        Assert.True(runs[2].GetProperty("final_validation").TryGetProperty("elbo_nll", out _), "MDLM's own validation metrics are kept");
        Assert.Equal(JsonValueKind.Null, runs[2].GetProperty("strategy").ValueKind);
        // ELECTRA's product, the discriminator, cannot score sentences: no BLiMP figure, and a warning says why.
        Assert.True(runs[3].GetProperty("final_validation").TryGetProperty("rtd_accuracy", out _), "ELECTRA's own validation metrics are kept");
        Assert.Equal(JsonValueKind.Null, runs[3].GetProperty("blimp_accuracy").ValueKind);
        Assert.Contains("electra-random: no BLiMP accuracy", stderr + stdout);
    }

    [Fact]
    public void ATimeBudgetIsCalibratedIntoEqualWholeStepsPerVariant()
    {
        var output = Path.Combine(_dir.FullName, "budget");
        var (code, stdout, stderr) = CliTests.Run(Args(output, "--strategies", "random,whole-word", "--budget", "20s", "--json"));
        Assert.True(code == 0, stderr);
        Assert.Contains("calibrating", stderr);
        using var printed = JsonDocument.Parse(stdout.Trim());
        var root = printed.RootElement;
        var calibration = root.GetProperty("calibration");
        Assert.Equal("random", calibration.GetProperty("variant").GetString());
        Assert.True(calibration.GetProperty("step_seconds").GetDouble() > 0);
        Assert.Equal(20, root.GetProperty("budget_seconds").GetDouble());
        long steps = root.GetProperty("steps_per_variant").GetInt64();
        Assert.True(steps >= 1);
        var runs = root.GetProperty("runs").EnumerateArray().ToList();
        Assert.Equal(2, runs.Count);
        Assert.All(runs, r => Assert.Equal(steps * 4 * 32, r.GetProperty("tokens").GetInt64()));
        Assert.All(runs, r => Assert.Equal(steps, r.GetProperty("steps").GetInt64()));
        Assert.Equal(["random", "whole-word"], Directory.GetDirectories(output).Select(Path.GetFileName).Order());
    }

    [Fact]
    public void CalibrationTimesTheVariantWithTheCostliestSetup()
    {
        AblationVariant Calibrated(params string[] strategies) =>
            Ablation.CalibrationVariant(new AblationOptions { Base = new PretrainOptions { Output = "x" }, Strategies = strategies, Objectives = [ObjectiveKind.Mdlm, ObjectiveKind.Mlm] }.Variants());
        // Collocations cost more than token counts, which cost more than nothing.
        Assert.Equal("mlm-pmi", Calibrated("random", "weighted", "pmi").Name);
        Assert.Equal("mlm-weighted", Calibrated("random", "weighted", "span").Name);
        Assert.Equal("mdlm", Calibrated("random", "span").Name);
    }

    [Theory]
    [InlineData("unknown masking strategy 'bogus'", "--strategies", "random,bogus", "--tokens", "512")]
    [InlineData("unknown objective 'bert'", "--objectives", "mlm,bert", "--tokens", "512")]
    [InlineData("a strategy is named twice", "--strategies", "span,span", "--tokens", "512")]
    [InlineData("not both", "--budget", "1m", "--tokens", "512")]
    [InlineData("--budget: cannot read 'soon'", "--budget", "soon")]
    [InlineData("leave both at their defaults", "--objectives", "mlm,mdlm", "--mask-rate", "0.3", "--tokens", "512")]
    [InlineData("takes no masking strategy", "--objectives", "mdlm", "--strategies", "span", "--tokens", "512")]
    public void BadArgumentsFailBeforeAnyTraining(string message, params string[] extra)
    {
        var output = Path.Combine(_dir.FullName, "bad");
        var (code, _, stderr) = CliTests.Run(Args(output, extra));
        Assert.Equal(1, code);
        Assert.Contains(message, stderr);
        Assert.StartsWith("error: ", stderr);
        Assert.False(Directory.Exists(output));
    }

    [Fact]
    public void AnOccupiedOutputFolderIsRefused()
    {
        var output = Directory.CreateDirectory(Path.Combine(_dir.FullName, "occupied")).FullName;
        File.WriteAllText(Path.Combine(output, "keep.txt"), "mine");
        var (code, _, stderr) = CliTests.Run(Args(output, "--tokens", "512"));
        Assert.Equal(1, code);
        Assert.Contains("not empty", stderr);
        Assert.Equal(["keep.txt"], Directory.GetFileSystemEntries(output).Select(Path.GetFileName));
    }

    [Fact]
    public void BudgetPlanGivesEachVariantItsShareOfWhatCalibrationLeft()
    {
        var c = new AblationCalibration("random", 8, SetupSeconds: 10, StepSeconds: 0.5, ValidationSeconds: 2, FinishSeconds: 3, BlimpSeconds: 5, SpentSeconds: 30);
        // (600 s × 0.75 − 30 s) / 5 = 84 s a variant; 10 + 9 × 2 + 3 + 5 = 36 s of it is not training; 48 s / 0.5 s = 96 steps.
        Assert.Equal(96, Ablation.PlanSteps(TimeSpan.FromMinutes(10), c, variants: 5, inLoopValidations: 9));
        Assert.Equal(9, Ablation.InLoopValidations(0.1));
        Assert.Equal(1, Ablation.InLoopValidations(0.5));
        Assert.Equal(3, Ablation.InLoopValidations(0.3));
        var error = Assert.Throws<UnmaskException>(() => Ablation.PlanSteps(TimeSpan.FromMinutes(3), c, variants: 5, inLoopValidations: 9));
        Assert.Contains("does not fit 5 runs", error.Message);
    }
}
