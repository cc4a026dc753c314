using Unmask.Checkpoints;
using Unmask.Training;

namespace Unmask.Tests;

/// <summary>
/// A crash while a checkpoint is published (simulated by a failure before each rename or deletion in turn) leaves
/// every checkpoint folder complete or absent, and the newest complete one loads and resumes to the uninterrupted
/// run's result. Runs alone for the reason <see cref="ResumeTests"/> does.
/// </summary>
[Collection(nameof(BertProcessWideTests))]
public class CheckpointFaultTests : IDisposable
{
    readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("unmask-fault");

    public void Dispose() => _dir.Delete(recursive: true);

    sealed class InjectedFault(string move) : IOException($"injected failure before: {move}");

    /// <summary>Checkpoints at steps 2, 4 and 6 (keeping two, so one is pruned) and the final save at 8.</summary>
    PretrainOptions Options(string name, ObjectiveKind objective) =>
        ResumeTests.TinyOptions(_dir.FullName, name, objective) with { SaveSteps = 2, SaveTotalLimit = 2 };

    [Theory]
    [InlineData(ObjectiveKind.Mlm)]
    [InlineData(ObjectiveKind.Electra)]
    public void FailureAtAnyCheckpointMoveLeavesACompleteCheckpointThatResumesTheRun(ObjectiveKind objective)
    {
        var straight = Pretrainer.Run(Options($"straight-{objective}", objective));
        var moves = new List<string>();
        Pretrainer.Run(Options($"count-{objective}", objective), new PretrainHooks { BeforeCheckpointMove = moves.Add });
        // Three checkpoints, one pruned, the final checkpoint, the run folder's files and the final checkpoint's removal.
        Assert.True(moves.Count >= 10, string.Join("\n", moves));

        for (int fault = 0; fault < moves.Count; fault++)
        {
            var name = $"fault-{objective}-{fault}";
            int seen = 0;
            var failing = new PretrainHooks { BeforeCheckpointMove = move => { if (seen++ == fault) throw new InjectedFault(move); } };
            Assert.Throws<InjectedFault>(() => Pretrainer.Run(Options(name, objective), failing));

            var run = Path.Combine(_dir.FullName, name);
            AssertEveryCheckpointComplete(run, objective);
            PretrainResult resumed;
            if (Directory.GetDirectories(run, "checkpoint-*").Length == 0 && !File.Exists(Path.Combine(run, TrainerState.FileName)))
            {
                // Only a failure at the first checkpoint leaves none, so the run starts again.
                Assert.Equal(0, fault);
                Assert.Throws<UnmaskException>(() => TrainerState.FindCheckpoint(run));
                resumed = Pretrainer.Run(Options(name, objective));
            }
            else
            {
                var checkpoint = TrainerState.FindCheckpoint(run);
                Assert.False(Path.GetFileName(checkpoint).StartsWith('.'), checkpoint);
                resumed = Pretrainer.Resume(run);
            }
            Assert.Equal(8, resumed.Steps);
            ResumeTests.AssertRepeats(straight, resumed);
            AssertEveryCheckpointComplete(run, objective);
            Assert.True(File.Exists(Path.Combine(run, TrainerState.FileName)), $"failure before '{moves[fault]}': the resumed run finished");
        }
    }

    /// <summary>The run folder (while it holds trainer state) and every checkpoint-&lt;step&gt; folder load as whole checkpoints.</summary>
    static void AssertEveryCheckpointComplete(string run, ObjectiveKind objective)
    {
        var checkpoints = Directory.GetDirectories(run, "checkpoint-*").ToList();
        if (File.Exists(Path.Combine(run, TrainerState.FileName))) checkpoints.Add(run);
        foreach (var folder in checkpoints)
        {
            var state = TrainerState.Load(folder);
            Assert.Equal(state.Step.ToString(System.Globalization.CultureInfo.InvariantCulture),
                folder == run ? "8" : Path.GetFileName(folder)["checkpoint-".Length..]);
            TrainerState.LoadOptimizer(folder).Values.ToList().ForEach(t => t.Dispose());
            if (objective == ObjectiveKind.Electra)
            {
                var (generator, discriminator) = ElectraModels.Load(folder);
                generator.Dispose();
                discriminator.Dispose();
            }
            else
                using (ModelLoader.Load(folder)) { }
        }
    }
}
