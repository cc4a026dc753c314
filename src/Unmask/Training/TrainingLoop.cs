using System.Diagnostics;
using TorchSharp;
using Unmask.Data;
using Unmask.Distributed;
using Unmask.Modeling;
using Unmask.Tokenization;
using static TorchSharp.torch;

namespace Unmask.Training;

/// <summary>
/// The optimizer steps of one run, from where it starts (0 or a checkpoint) to the end of its budget or a
/// cancellation: logging, validation at each eval fraction, intermediate checkpoints, and the final save.
/// </summary>
internal sealed class TrainingLoop(PretrainOptions options, TrainingSetup setup, ITokenizer tokenizer, AdamW optimizer, Batcher batcher,
    PretrainValidation validation, MetricsLog metrics, PretrainHooks hooks, IProgress<PretrainProgress>? progress)
{
    readonly MpiWorld world = MpiWorld.Current;
    long step, tokens;
    double allreduceSeconds;
    TimeSpan previousElapsed;
    readonly Stopwatch clock = new();

    TimeSpan Elapsed() => previousElapsed + clock.Elapsed;

    public sealed record Outcome(long Steps, long Tokens, TimeSpan Elapsed, double TokensPerSecond, ValidationResult Validation,
        bool Interrupted, string? CheckpointFolder);

    /// <summary>Trains from <paramref name="start"/>; a cancelled run saves checkpoint-&lt;step&gt;, a finished one its final folder.</summary>
    public Outcome Run((long Step, long Tokens, TimeSpan Elapsed) start, CancellationToken ct)
    {
        (step, tokens, previousElapsed) = start;
        var models = setup.Models;
        var schedule = new LearningRateSchedule(options.LearningRate, options.WarmupRatio, options.Decay);
        clock.Start();
        double lastEvalMark = Math.Floor(options.Progress(step, tokens, Elapsed()) / options.EvalFraction);
        double lossWindow = 0;
        var partsWindow = new Dictionary<string, double>();
        int lossCount = 0;
        long tokensAtLoopStart = tokens;
        double startFraction = options.Progress(step, tokens, previousElapsed);
        bool interrupted = false;
        ValidationResult? lastValidation = null;

        while (true)
        {
            var (now, cancelled) = Agreed(ct);
            if (options.Progress(step, tokens, now) >= 1) break;
            if (cancelled)
            {
                interrupted = true;
                break;
            }
            double fraction = options.Progress(step, tokens, now);
            double lr = schedule.At(fraction);
            double stepLoss = 0;
            using (var scope = NewDisposeScope())
            {
                // Seeding by step makes dropout and masking a function of the step alone, so a resumed run repeats exactly.
                ComputeDevice.Seed(options.Seed * 1_000_003L + step);
                var rng = new Random(unchecked((int)(options.Seed * 2_654_435_761L + step * 40_503L)));
                var stepParts = new Dictionary<string, double>();
                for (int micro = 0; micro < options.GradientAccumulationSteps; micro++)
                {
                    // Every rank reads the whole global micro-batch and computes its own rows of it.
                    var batch = batcher.Next(ct);
                    var rows = world.Size > 1 ? world.Slice(batch.BatchSize) : ((int, int)?)null;
                    var result = setup.Objective.Loss(batch.InputIds, batch.BatchSize, batch.SeqLength, rng, fraction, rows);
                    var loss = result.Loss / options.GradientAccumulationSteps;
                    // An objective may find nothing to predict in a micro-batch; its zero loss has no graph to run back through.
                    if (loss.requires_grad) loss.backward();
                    stepLoss += loss.item<float>();
                    foreach (var (name, part) in result.Parts)
                        stepParts[name] = stepParts.GetValueOrDefault(name) + part.item<float>() / options.GradientAccumulationSteps;
                }
                if (world.Size > 1)
                {
                    // The ranks' losses are shares of the batch's, so their gradients add up to one process's.
                    var communication = world.CommunicationSeconds;
                    world.AllReduceSum([.. models.Parameters.Select(p => p.Parameter.grad).OfType<Tensor>()]);
                    var scalars = new[] { stepLoss }.Concat(stepParts.Values).ToArray();
                    world.AllReduceSum(scalars);
                    stepLoss = scalars[0];
                    int k = 1;
                    foreach (var name in stepParts.Keys.ToList()) stepParts[name] = scalars[k++];
                    allreduceSeconds += world.CommunicationSeconds - communication;
                }
                foreach (var (name, value) in stepParts) partsWindow[name] = partsWindow.GetValueOrDefault(name) + value;
                nn.utils.clip_grad_norm_(models.Parameters.Select(p => (TorchSharp.Modules.Parameter)p.Parameter), options.MaxGradNorm);
                optimizer.StepWith(lr);
                models.ZeroGrad();
            }
            step++;
            tokens += options.TokensPerStep;
            if (world.Size > 1 && step % options.DriftCheckSteps == 0) CheckDrift();
            lossWindow += stepLoss;
            lossCount++;

            var elapsed = Elapsed();
            fraction = options.Progress(step, tokens, elapsed);
            double tps = (tokens - tokensAtLoopStart) / Math.Max(clock.Elapsed.TotalSeconds, 1e-9);
            double doneThisRun = fraction - startFraction;
            TimeSpan? remaining = doneThisRun > 0 ? clock.Elapsed * ((1 - fraction) / doneThisRun) : null;
            progress?.Report(new PretrainProgress("training", step, tokens, fraction, stepLoss, tps, elapsed, remaining));

            if (step % options.LoggingSteps == 0)
            {
                var values = new Dictionary<string, double>
                {
                    ["loss"] = lossWindow / lossCount, ["learning_rate"] = lr, ["tokens_per_second"] = tps,
                    ["elapsed_seconds"] = elapsed.TotalSeconds, ["world_size"] = world.Size,
                };
                if (world.Size > 1) values["allreduce_share"] = allreduceSeconds / Math.Max(clock.Elapsed.TotalSeconds, 1e-9);
                foreach (var (name, sum) in partsWindow) values[name] = sum / lossCount;
                metrics.Write(new MetricsRecord("train", step, tokens, values));
                lossWindow = 0;
                partsWindow.Clear();
                lossCount = 0;
            }
            double mark = Math.Floor(fraction / options.EvalFraction);
            if (mark > lastEvalMark && fraction < 1)
            {
                lastEvalMark = mark;
                lastValidation = Validate();
            }
            if (world.IsRoot && options.SaveSteps > 0 && step % options.SaveSteps == 0 && fraction < 1)
            {
                CheckpointWriter.SaveCheckpoint(options.Output, models.Folders, tokenizer, State(), optimizer, hooks.BeforeCheckpointMove);
                CheckpointWriter.PruneCheckpoints(options.Output, options.SaveTotalLimit, hooks.BeforeCheckpointMove);
            }
        }

        string? checkpointFolder = null;
        if (interrupted)
        {
            if (world.IsRoot) checkpointFolder = CheckpointWriter.SaveCheckpoint(options.Output, models.Folders, tokenizer, State(), optimizer, hooks.BeforeCheckpointMove);
        }
        else
        {
            lastValidation = Validate();
            if (world.IsRoot) CheckpointWriter.SaveFinal(options.Output, models.Folders, tokenizer, State(), optimizer, hooks.BeforeCheckpointMove);
        }
        // The other ranks leave only once the final folder or checkpoint is complete.
        world.Barrier();
        lastValidation ??= Validate();
        double overallTps = (tokens - tokensAtLoopStart) / Math.Max(clock.Elapsed.TotalSeconds, 1e-9);
        return new Outcome(step, tokens, Elapsed(), overallTps, lastValidation, interrupted, checkpointFolder);
    }

    TrainerState State() => new(options, step, tokens, Elapsed(), batcher.Position);

    /// <summary>Every rank applies the same update to the same parameters, so their sums agree exactly; a rank whose
    /// sum differs has drifted (a bug or a faulty machine), and the run stops rather than average diverged models.</summary>
    void CheckDrift()
    {
        double sum;
        using (var scope = NewDisposeScope())
        using (no_grad())
            sum = setup.Models.Parameters.Sum(p => p.Parameter.to(ScalarType.Float64).sum().item<double>());
        var extremes = new[] { sum, -sum };
        world.AllReduceMax(extremes);
        if (extremes[0] != -extremes[1])
            throw new UnmaskException($"rank {world.Rank}: the ranks' parameters drifted apart at step {step} (sums from {-extremes[1]:R} to {extremes[0]:R})");
    }

    /// <summary>Rank 0 alone validates and logs it; the other ranks go on to the next step's allreduce and wait there.</summary>
    ValidationResult Validate() => world.IsRoot
        ? validation.Run(setup.Models, setup.Objective, metrics, step, tokens, progress, Elapsed())
        : new ValidationResult(double.NaN, double.NaN, double.NaN, 0);

    /// <summary>The elapsed time and whether to stop, the same on every rank: the latest clock and any rank's Ctrl+C, so
    /// time budgets and interruptions end every rank at the same step.</summary>
    (TimeSpan Elapsed, bool Cancelled) Agreed(CancellationToken ct)
    {
        if (world.Size == 1) return (Elapsed(), ct.IsCancellationRequested);
        var values = new[] { ct.IsCancellationRequested ? 1.0 : 0.0, Elapsed().TotalSeconds };
        world.AllReduceMax(values);
        return (TimeSpan.FromSeconds(values[1]), values[0] > 0);
    }
}
