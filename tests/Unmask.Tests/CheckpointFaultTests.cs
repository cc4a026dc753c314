using TorchSharp;
using Unmask.Checkpoints;
using Unmask.Data;
using Unmask.Modeling;
using Unmask.Tokenization;
using Unmask.Training;
using static TorchSharp.torch;

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

    const string WordEmbeddings = "electra.embeddings.word_embeddings.weight";

    /// <summary>
    /// Publishing over a finished run swaps its files and model subfolders, points a fresh run never reaches: a failure
    /// at each leaves the old final model (step 4) or the new checkpoint (step 8) whole, and the next save completes the swap.
    /// </summary>
    [Fact]
    public void FailureWhileReplacingAFinishedRunsModelsLeavesTheOldOrTheNewWhole()
    {
        torch.manual_seed(7);
        var (generator, discriminator) = ElectraModels.Create(ElectraModels.DiscriminatorConfig(new BertConfig
        {
            VocabSize = 120, HiddenSize = 32, NumHiddenLayers = 2, NumAttentionHeads = 4, IntermediateSize = 64,
            MaxPositionEmbeddings = 24, HiddenDropoutProb = 0, AttentionProbsDropoutProb = 0,
        }), 0.25);
        using var trained = ElectraModels.AsTrained(generator, discriminator);
        var tokenizer = WordPieceTrainer.Train(["the cat sat on the mat", "a dog ran"], new WordPieceTrainerOptions(VocabSize: 60, MinFrequency: 1));
        using var optimizer = new AdamW(AdamW.DecayGroups(trained.Parameters, 0.01));
        // The two models share their embeddings, so one element marks which save both folders come from.
        void SaveFinal(string run, long step, Action<string>? beforeMove = null)
        {
            using (no_grad()) discriminator.StateDictForSave()[WordEmbeddings][0, 0] = torch.tensor((float)step);
            var state = new TrainerState(new PretrainOptions { Output = run, Objective = ObjectiveKind.Electra }, step, step * 100,
                TimeSpan.FromSeconds(step), new BatcherPosition(0, step));
            CheckpointWriter.SaveFinal(run, trained.Folders, tokenizer, state, optimizer, beforeMove);
        }

        var moves = new List<string>();
        var counted = Path.Combine(_dir.FullName, "count");
        SaveFinal(counted, 4);
        SaveFinal(counted, 8, moves.Add);
        Assert.Equal(2, moves.Count(m => m.Contains(Path.Combine(counted, ElectraModels.DiscriminatorFolder), StringComparison.Ordinal)));

        for (int fault = 0; fault < moves.Count; fault++)
        {
            var run = Path.Combine(_dir.FullName, $"swap-{fault}");
            SaveFinal(run, 4);
            int seen = 0;
            Assert.Throws<InjectedFault>(() => SaveFinal(run, 8, move => { if (seen++ == fault) throw new InjectedFault(move); }));

            AssertEveryCheckpointComplete(run, ObjectiveKind.Electra, finalStep: null);
            var newest = TrainerState.FindCheckpoint(run);
            long step = TrainerState.Load(newest).Step;
            Assert.Equal(fault == 0 ? 4 : 8, step);
            foreach (var folder in Directory.GetDirectories(run, "checkpoint-*").Append(newest))
            {
                long expected = TrainerState.Load(folder).Step;
                foreach (var model in new[] { ElectraModels.DiscriminatorFolder, ElectraModels.GeneratorFolder })
                    using (var loaded = ModelLoader.Load(Path.Combine(folder, model)))
                        Assert.Equal(expected, loaded.StateDictForSave()[WordEmbeddings][0, 0].item<float>());
            }

            SaveFinal(run, 8);
            Assert.Equal(run, TrainerState.FindCheckpoint(run));
            Assert.Empty(Directory.GetDirectories(run, "checkpoint-*"));
            Assert.Empty(Directory.GetDirectories(run, ".*"));
            Assert.Equal(8, TrainerState.Load(run).Step);
        }
    }

    /// <summary>The run folder (while it holds trainer state) and every checkpoint-&lt;step&gt; folder load as whole checkpoints.</summary>
    static void AssertEveryCheckpointComplete(string run, ObjectiveKind objective, long? finalStep = 8)
    {
        var checkpoints = Directory.GetDirectories(run, "checkpoint-*").ToList();
        if (File.Exists(Path.Combine(run, TrainerState.FileName))) checkpoints.Add(run);
        foreach (var folder in checkpoints)
        {
            var state = TrainerState.Load(folder);
            if (folder != run) Assert.Equal(Path.GetFileName(folder), $"checkpoint-{state.Step}");
            else if (finalStep is { } last) Assert.Equal(last, state.Step);
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
