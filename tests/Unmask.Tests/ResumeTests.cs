using Unmask.Training;

namespace Unmask.Tests;

/// <summary>
/// Training 2N steps equals training N, being stopped, and resuming for N more. Dropout draws from torch's global
/// generator, which models created by tests running beside it would advance, so it runs alone.
/// </summary>
[Collection(nameof(BertProcessWideTests))]
public class ResumeTests : IDisposable
{
    readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("unmask-resume");

    public void Dispose() => _dir.Delete(recursive: true);

    PretrainOptions Options(string name, ObjectiveKind objective) => TinyOptions(_dir.FullName, name, objective);

    /// <summary>A run of 8 steps on tiny models, fast enough to repeat many times.</summary>
    internal static PretrainOptions TinyOptions(string dir, string name, ObjectiveKind objective)
    {
        var config = Path.Combine(dir, "config.json");
        File.WriteAllText(config, """
            {"vocab_size": 1000, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
             "max_position_embeddings": 64, "model_type": "bert"}
            """);
        return new PretrainOptions
        {
            Corpus = Path.Combine(SharedFixtures.Gutenberg, "extra", "alice_in_wonderland.txt.gz"),
            Output = Path.Combine(dir, name),
            ConfigPath = config,
            Objective = objective,
            MaxSteps = 8,
            BatchSize = 4,
            MaxSeqLength = 32,
            VocabSize = 600,
            Precision = Precision.Fp32,
            LoggingSteps = 1,
            SaveSteps = 0,
            EvalFraction = 0.5,
            ValidationSequences = 8,
        };
    }

    internal static double[] TrainLosses(string run) =>
        MetricsLog.Read(Path.Combine(run, "metrics.jsonl")).Where(r => r.Split == "train").OrderBy(r => r.Step).Select(r => r.Values["loss"]).ToArray();

    internal static IReadOnlyDictionary<string, double> FinalValidation(string run) =>
        MetricsLog.Read(Path.Combine(run, "metrics.jsonl")).Where(r => r.Split == "validation").MaxBy(r => r.Step)!.Values;

    [Theory]
    [InlineData(ObjectiveKind.Mlm)]
    [InlineData(ObjectiveKind.Mdlm)]
    [InlineData(ObjectiveKind.Electra)]
    public void StoppedAndResumedRunRepeatsTheUninterruptedRun(ObjectiveKind objective)
    {
        var straight = Pretrainer.Run(Options($"straight-{objective}", objective));
        Assert.Equal(8, straight.Steps);
        Assert.False(straight.Interrupted);

        using var cts = new CancellationTokenSource();
        var stopAt4 = new SyncProgress<PretrainProgress>(p => { if (p.Phase == "training" && p.Step == 4) cts.Cancel(); });
        var first = Pretrainer.Run(Options($"resumed-{objective}", objective), stopAt4, cts.Token);
        Assert.True(first.Interrupted);
        Assert.Equal(4, first.Steps);
        Assert.True(Directory.Exists(Path.Combine(first.OutputDirectory, "checkpoint-4")));
        // ELECTRA saves its two models in subfolders.
        var model = objective == ObjectiveKind.Electra ? Path.Combine(ElectraModels.DiscriminatorFolder, "model.safetensors") : "model.safetensors";
        Assert.False(File.Exists(Path.Combine(first.OutputDirectory, model)), "an interrupted run must not look finished");

        var second = Pretrainer.Resume(first.OutputDirectory);
        Assert.Equal(8, second.Steps);
        AssertRepeats(straight, second);
        Assert.True(File.Exists(Path.Combine(second.OutputDirectory, "loss.png")));
        Assert.True(File.Exists(Path.Combine(second.OutputDirectory, model)));
    }

    /// <summary>
    /// The precision auto picks is part of the run: a resumed run computes in it even where the probe now answers
    /// otherwise, and does not probe again.
    /// </summary>
    [Fact]
    public void ResumedAutoPrecisionRunKeepsThePrecisionItChose()
    {
        int fp32Probes = 0, bf16Probes = 0;
        var sayFp32 = new PretrainHooks { Bf16IsFaster = (_, _) => { fp32Probes++; return false; } };
        var sayBf16 = new PretrainHooks { Bf16IsFaster = (_, _) => { bf16Probes++; return true; } };
        var straight = Pretrainer.Run(Options("auto-straight", ObjectiveKind.Mlm) with { Precision = Precision.Auto }, sayFp32);
        Assert.Equal("fp32", straight.Precision);
        Assert.Equal(Precision.Fp32, TrainerState.Load(straight.OutputDirectory).Options.Precision);

        using var cts = new CancellationTokenSource();
        var stopAt4 = new SyncProgress<PretrainProgress>(p => { if (p.Phase == "training" && p.Step == 4) cts.Cancel(); });
        var first = Pretrainer.Run(Options("auto-resumed", ObjectiveKind.Mlm) with { Precision = Precision.Auto }, sayFp32, stopAt4, cts.Token);
        Assert.True(first.Interrupted);
        Assert.Equal(2, fp32Probes);
        Assert.Equal(Precision.Fp32, TrainerState.Load(first.CheckpointDirectory!).Options.Precision);

        var second = Pretrainer.Resume(first.OutputDirectory, sayBf16);
        Assert.Equal(0, bf16Probes);
        Assert.Equal("fp32", second.Precision);
        Assert.Equal(8, second.Steps);
        AssertRepeats(straight, second);
    }

    /// <summary>Per-step training losses and every final validation metric of <paramref name="actual"/> are those of <paramref name="expected"/>.</summary>
    internal static void AssertRepeats(PretrainResult expected, PretrainResult actual)
    {
        var expectedLosses = TrainLosses(expected.OutputDirectory);
        var actualLosses = TrainLosses(actual.OutputDirectory);
        Assert.Equal(8, expectedLosses.Length);
        Assert.Equal(expectedLosses.Length, actualLosses.Length);
        for (int i = 0; i < expectedLosses.Length; i++)
            Assert.True(Math.Abs(expectedLosses[i] - actualLosses[i]) <= 1e-6, $"step {i + 1}: {expectedLosses[i]} vs {actualLosses[i]}");
        Assert.Equal(expected.Validation.Loss, actual.Validation.Loss, 6);
        // The objective's own validation metrics (MDLM's ELBO, ELECTRA's replaced-token detection) repeat too.
        var finalExpected = FinalValidation(expected.OutputDirectory);
        var finalActual = FinalValidation(actual.OutputDirectory);
        Assert.Equal(finalExpected.Keys.Order(), finalActual.Keys.Order());
        foreach (var (name, value) in finalExpected)
            Assert.True(Math.Abs(value - finalActual[name]) <= 1e-6 * Math.Max(1, Math.Abs(value)), $"{name}: {value} vs {finalActual[name]}");
    }
}
