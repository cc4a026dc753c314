using System.Diagnostics;
using TorchSharp;
using Unmask.Data;
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
    long step, tokens;
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

        while (options.Progress(step, tokens, Elapsed()) < 1)
        {
            if (ct.IsCancellationRequested)
            {
                interrupted = true;
                break;
            }
            double fraction = options.Progress(step, tokens, Elapsed());
            double lr = schedule.At(fraction);
            double stepLoss = 0;
            using (var scope = NewDisposeScope())
            {
                // Seeding by step makes dropout and masking a function of the step alone, so a resumed run repeats exactly.
                torch.manual_seed(options.Seed * 1_000_003L + step);
                var rng = new Random(unchecked((int)(options.Seed * 2_654_435_761L + step * 40_503L)));
                for (int micro = 0; micro < options.GradientAccumulationSteps; micro++)
                {
                    var batch = batcher.Next(ct);
                    var result = setup.Objective.Loss(batch.InputIds, batch.BatchSize, batch.SeqLength, rng, fraction);
                    var loss = result.Loss / options.GradientAccumulationSteps;
                    // An objective may find nothing to predict in a micro-batch; its zero loss has no graph to run back through.
                    if (loss.requires_grad) loss.backward();
                    stepLoss += loss.item<float>();
                    foreach (var (name, part) in result.Parts)
                        partsWindow[name] = partsWindow.GetValueOrDefault(name) + part.item<float>() / options.GradientAccumulationSteps;
                }
                nn.utils.clip_grad_norm_(models.Parameters.Select(p => (TorchSharp.Modules.Parameter)p.Parameter), options.MaxGradNorm);
                optimizer.StepWith(lr);
                models.ZeroGrad();
            }
            step++;
            tokens += options.TokensPerStep;
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
                    ["elapsed_seconds"] = elapsed.TotalSeconds,
                };
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
            if (options.SaveSteps > 0 && step % options.SaveSteps == 0 && fraction < 1)
            {
                CheckpointWriter.SaveCheckpoint(options.Output, models.Folders, tokenizer, State(), optimizer, hooks.BeforeCheckpointMove);
                CheckpointWriter.PruneCheckpoints(options.Output, options.SaveTotalLimit, hooks.BeforeCheckpointMove);
            }
        }

        string? checkpointFolder = null;
        if (interrupted)
            checkpointFolder = CheckpointWriter.SaveCheckpoint(options.Output, models.Folders, tokenizer, State(), optimizer, hooks.BeforeCheckpointMove);
        else
        {
            lastValidation = Validate();
            CheckpointWriter.SaveFinal(options.Output, models.Folders, tokenizer, State(), optimizer, hooks.BeforeCheckpointMove);
        }
        lastValidation ??= Validate();
        double overallTps = (tokens - tokensAtLoopStart) / Math.Max(clock.Elapsed.TotalSeconds, 1e-9);
        return new Outcome(step, tokens, Elapsed(), overallTps, lastValidation, interrupted, checkpointFolder);
    }

    TrainerState State() => new(options, step, tokens, Elapsed(), batcher.Position);

    ValidationResult Validate() => validation.Run(setup.Models, setup.Objective, metrics, step, tokens, progress, Elapsed());
}
