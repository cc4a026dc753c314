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

    PretrainOptions Options(string name, ObjectiveKind objective)
    {
        var config = Path.Combine(_dir.FullName, "config.json");
        File.WriteAllText(config, """
            {"vocab_size": 1000, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
             "max_position_embeddings": 64, "model_type": "bert"}
            """);
        return new PretrainOptions
        {
            Corpus = Path.Combine(SharedFixtures.Gutenberg, "extra", "alice_in_wonderland.txt.gz"),
            Output = Path.Combine(_dir.FullName, name),
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

    static double[] TrainLosses(string run) =>
        MetricsLog.Read(Path.Combine(run, "metrics.jsonl")).Where(r => r.Split == "train").OrderBy(r => r.Step).Select(r => r.Values["loss"]).ToArray();

    static IReadOnlyDictionary<string, double> FinalValidation(string run) =>
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
        var expected = TrainLosses(straight.OutputDirectory);
        var actual = TrainLosses(second.OutputDirectory);
        Assert.Equal(8, expected.Length);
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++) Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-6, $"step {i + 1}: {expected[i]} vs {actual[i]}");
        Assert.Equal(straight.Validation.Loss, second.Validation.Loss, 6);
        // The objective's own validation metrics (MDLM's ELBO, ELECTRA's replaced-token detection) repeat too.
        var finalStraight = FinalValidation(straight.OutputDirectory);
        var finalResumed = FinalValidation(second.OutputDirectory);
        Assert.Equal(finalStraight.Keys.Order(), finalResumed.Keys.Order());
        foreach (var (name, value) in finalStraight) Assert.True(Math.Abs(value - finalResumed[name]) <= 1e-6 * Math.Max(1, Math.Abs(value)), $"{name}: {value} vs {finalResumed[name]}");
        Assert.True(File.Exists(Path.Combine(second.OutputDirectory, "loss.png")));
        Assert.True(File.Exists(Path.Combine(second.OutputDirectory, model)));
    }
}
