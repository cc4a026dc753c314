using Unmask.Training;
using static TorchSharp.torch;

namespace Unmask.Tests;

public class TrainingPiecesTests
{
    [Fact]
    public void ScheduleWarmsUpLinearlyThenDecays()
    {
        var linear = new LearningRateSchedule(1e-3, 0.1, DecayKind.Linear);
        Assert.Equal(0, linear.At(0), 12);
        Assert.Equal(5e-4, linear.At(0.05), 12);
        Assert.Equal(1e-3, linear.At(0.1), 12);
        Assert.Equal(5e-4, linear.At(0.55), 12);
        Assert.Equal(0, linear.At(1), 12);
        var cosine = new LearningRateSchedule(1e-3, 0.1, DecayKind.Cosine);
        Assert.Equal(5e-4, cosine.At(0.55), 12);
        Assert.True(cosine.At(0.3) > linear.At(0.3));
    }

    [Fact]
    public void AdamWMatchesTheClosedFormFirstStepAndSkipsDecayForBiases()
    {
        using var scope = NewDisposeScope();
        var w = tensor(new float[] { 1f, -2f }).requires_grad_();
        var bias = tensor(new float[] { 0.5f }).requires_grad_();
        using var optimizer = new AdamW(AdamW.DecayGroups([("layer.weight", w), ("layer.bias", bias)], weightDecay: 0.1));
        (w * tensor(new float[] { 3f, 4f })).sum().add(bias.sum() * 2).backward();
        optimizer.StepWith(0.01);
        // First Adam step moves each parameter by lr * sign(grad); decoupled decay scales the weight first.
        var expectedW = new[] { 1f * (1 - 0.001f) - 0.01f, -2f * (1 - 0.001f) - 0.01f };
        var got = w.data<float>().ToArray();
        Assert.Equal(expectedW[0], got[0], 5);
        Assert.Equal(expectedW[1], got[1], 5);
        Assert.Equal(0.5f - 0.01f, bias.data<float>()[0], 5);
        Assert.Equal(1, optimizer.Step);
        Assert.Equal(4, optimizer.StateTensors().Count);
    }

    [Fact]
    public void BudgetProgressUsesWhicheverLimitIsTightest()
    {
        var options = new PretrainOptions { Output = "x", MaxSteps = 100, MaxTokens = 1000 };
        Assert.Equal(0.5, options.Progress(50, 10, TimeSpan.Zero), 9);
        Assert.Equal(0.8, options.Progress(50, 800, TimeSpan.Zero), 9);
        Assert.Null(options.EffectiveMaxTime);
        var byDefault = new PretrainOptions { Output = "x" };
        Assert.Equal(TimeSpan.FromMinutes(10), byDefault.EffectiveMaxTime);
        Assert.Equal(0.5, byDefault.Progress(1, 1, TimeSpan.FromMinutes(5)), 9);
    }

    [Fact]
    public void MetricsLogCutsBackToTheResumedStep()
    {
        var dir = Directory.CreateTempSubdirectory("unmask-metrics");
        var path = Path.Combine(dir.FullName, "metrics.jsonl");
        using (var log = MetricsLog.Create(path))
            for (int step = 10; step <= 50; step += 10)
                log.Write(new MetricsRecord("train", step, step * 100, new Dictionary<string, double> { ["loss"] = 1.0 / step }));
        using (var resumed = MetricsLog.Open(path, keepUpToStep: 30))
            resumed.Write(new MetricsRecord("validation", 40, 4000, new Dictionary<string, double> { ["loss"] = 0.5, ["masked_accuracy"] = 0.25 }));
        var records = MetricsLog.Read(path);
        Assert.Equal(new long[] { 10, 20, 30, 40 }, records.Select(r => r.Step));
        Assert.Equal("validation", records[^1].Split);
        Assert.Equal(0.25, records[^1].Values["masked_accuracy"]);
        dir.Delete(true);
    }
}
