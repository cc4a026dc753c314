using Unmask.Checkpoints;
using Unmask.Modeling;
using Unmask.Tokenization;

namespace Unmask.Training;

/// <summary>
/// Writes trainer checkpoints (Hugging Face model folders, trainer state, optimizer) so that each appears complete or
/// not at all. A checkpoint-&lt;step&gt; folder is written whole under a hidden name and renamed into place. The final
/// model is published into the run folder only after its checkpoint-&lt;step&gt; is complete, and the run folder counts
/// as a checkpoint only while its trainer_state.json is there: that file leaves before any model file changes and
/// returns last. A crash at any point therefore leaves a newest complete checkpoint to resume from, and hidden
/// leftovers that the next save sweeps away.
/// </summary>
public static class CheckpointWriter
{
    public const string CheckpointPrefix = "checkpoint-";

    /// <summary>Hidden names the writer works under; never a checkpoint, and never anything but the writer's.</summary>
    const string TempPrefix = ".checkpoint-tmp-";

    /// <summary>Saves <c>checkpoint-&lt;step&gt;</c> in <paramref name="runFolder"/>, replacing one of the same step.</summary>
    /// <param name="models">Each model with its subfolder of the checkpoint (null: the checkpoint folder itself);
    /// every model folder gets the tokenizer files, the checkpoint folder the trainer state and optimizer.</param>
    /// <param name="beforeMove">Called before each rename or deletion in the run folder (a seam for fault injection).</param>
    /// <returns>The checkpoint folder.</returns>
    public static string SaveCheckpoint(string runFolder, IReadOnlyList<(string? Subfolder, PretrainedModel Model)> models, ITokenizer tokenizer,
        TrainerState state, AdamW optimizer, Action<string>? beforeMove = null)
    {
        runFolder = Path.GetFullPath(runFolder);
        Directory.CreateDirectory(runFolder);
        SweepLeftovers(runFolder);
        var checkpoint = Path.Combine(runFolder, CheckpointPrefix + state.Step);
        var temp = TempFolder(runFolder, "new");
        try
        {
            // The folder itself first: ModelFolder.Save takes the place of a folder, which must not exist yet.
            foreach (var (subfolder, model) in models.OrderBy(m => m.Subfolder is not null))
                ModelFolder.Save(subfolder is null ? temp : Path.Combine(temp, subfolder), model, tokenizer.Save);
            SafeTensors.Save(Path.Combine(temp, TrainerState.OptimizerFileName), optimizer.StateTensors());
            state.Save(temp);
        }
        catch
        {
            if (Directory.Exists(temp)) Directory.Delete(temp, recursive: true);
            throw;
        }
        var moves = new Mover(beforeMove);
        if (Directory.Exists(checkpoint)) moves.Swap(temp, checkpoint, runFolder);
        else moves.MoveDirectory(temp, checkpoint);
        return checkpoint;
    }

    /// <summary>
    /// Saves the finished run: its complete <c>checkpoint-&lt;step&gt;</c> first, then the same files in the run folder
    /// itself (trainer state last), then that checkpoint is removed, the run folder now holding the same.
    /// </summary>
    public static void SaveFinal(string runFolder, IReadOnlyList<(string? Subfolder, PretrainedModel Model)> models, ITokenizer tokenizer,
        TrainerState state, AdamW optimizer, Action<string>? beforeMove = null)
    {
        runFolder = Path.GetFullPath(runFolder);
        var checkpoint = SaveCheckpoint(runFolder, models, tokenizer, state, optimizer, beforeMove);
        var copy = TempFolder(runFolder, "final");
        CopyDirectory(checkpoint, copy);
        var moves = new Mover(beforeMove);
        var runState = Path.Combine(runFolder, TrainerState.FileName);
        if (File.Exists(runState)) moves.DeleteFile(runState);
        foreach (var file in Directory.GetFiles(copy).Where(f => Path.GetFileName(f) != TrainerState.FileName))
            moves.MoveFile(file, Path.Combine(runFolder, Path.GetFileName(file)));
        foreach (var subfolder in Directory.GetDirectories(copy))
        {
            var target = Path.Combine(runFolder, Path.GetFileName(subfolder));
            if (Directory.Exists(target)) moves.Swap(subfolder, target, runFolder);
            else moves.MoveDirectory(subfolder, target);
        }
        moves.MoveFile(Path.Combine(copy, TrainerState.FileName), runState);
        Directory.Delete(copy);
        moves.Retire(checkpoint, runFolder);
    }

    /// <summary>Deletes all but the newest <paramref name="keep"/> checkpoint-&lt;step&gt; folders (none when keep ≤ 0).</summary>
    public static void PruneCheckpoints(string runFolder, int keep, Action<string>? beforeMove = null)
    {
        if (keep <= 0) return;
        var all = TrainerState.Checkpoints(runFolder);
        var moves = new Mover(beforeMove);
        foreach (var (folder, _) in all.Take(Math.Max(0, all.Count - keep))) moves.Retire(folder, runFolder);
    }

    static string TempFolder(string runFolder, string purpose) => Path.Combine(runFolder, $"{TempPrefix}{purpose}-{Guid.NewGuid():N}");

    /// <summary>What a crash left under hidden names: unpublished copies and retired folders, none of them needed.</summary>
    static void SweepLeftovers(string runFolder)
    {
        foreach (var leftover in Directory.GetDirectories(runFolder, TempPrefix + "*")) Directory.Delete(leftover, recursive: true);
    }

    static void CopyDirectory(string source, string destination)
    {
        Directory.CreateDirectory(destination);
        foreach (var file in Directory.GetFiles(source)) File.Copy(file, Path.Combine(destination, Path.GetFileName(file)));
        foreach (var folder in Directory.GetDirectories(source)) CopyDirectory(folder, Path.Combine(destination, Path.GetFileName(folder)));
    }

    /// <summary>The renames and deletions that publish, each announced first.</summary>
    sealed class Mover(Action<string>? beforeMove)
    {
        public void MoveDirectory(string from, string to)
        {
            beforeMove?.Invoke($"move {from} -> {to}");
            Directory.Move(from, to);
        }

        public void MoveFile(string from, string to)
        {
            beforeMove?.Invoke($"move {from} -> {to}");
            File.Move(from, to, overwrite: true);
        }

        public void DeleteFile(string path)
        {
            beforeMove?.Invoke($"delete {path}");
            File.Delete(path);
        }

        /// <summary>Puts <paramref name="from"/> in the place of the existing <paramref name="to"/>.</summary>
        public void Swap(string from, string to, string runFolder)
        {
            var old = TempFolder(runFolder, "old");
            MoveDirectory(to, old);
            MoveDirectory(from, to);
            DeleteDirectory(old);
        }

        /// <summary>Deletes a folder after renaming it out of sight, so a crash part-way through leaves no half folder under its name.</summary>
        public void Retire(string folder, string runFolder)
        {
            var old = TempFolder(runFolder, "old");
            MoveDirectory(folder, old);
            DeleteDirectory(old);
        }

        void DeleteDirectory(string path)
        {
            beforeMove?.Invoke($"delete {path}");
            Directory.Delete(path, recursive: true);
        }
    }
}
