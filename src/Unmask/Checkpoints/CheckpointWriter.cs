using Unmask.Modeling;
using Unmask.Tokenization;
using Unmask.Training;

namespace Unmask.Checkpoints;

/// <summary>
/// Writes Hugging Face model folders plus trainer state. Everything is first written to a hidden temp folder
/// beside the target; a new target is then one directory rename, an existing run folder gets each finished file
/// renamed in (and each model subfolder swapped in), so no reader ever sees a half-written file.
/// </summary>
public static class CheckpointWriter
{
    /// <param name="models">Each model with its subfolder of <paramref name="folder"/> (null: the folder itself);
    /// every model folder gets the tokenizer files, the folder itself the trainer state and optimizer.</param>
    public static void Save(string folder, IReadOnlyList<(string? Subfolder, PretrainedModel Model)> models, ITokenizer tokenizer,
        TrainerState state, AdamW optimizer)
    {
        folder = Path.GetFullPath(folder);
        var parent = Path.GetDirectoryName(folder)!;
        Directory.CreateDirectory(parent);
        var temp = Path.Combine(parent, $".{Path.GetFileName(folder)}.complete-{Guid.NewGuid():N}");
        try
        {
            // The folder itself first: ModelFolder.Save takes the place of a folder, which must not exist yet.
            foreach (var (subfolder, model) in models.OrderBy(m => m.Subfolder is not null))
                ModelFolder.Save(subfolder is null ? temp : Path.Combine(temp, subfolder), model, tokenizer.Save);
            SafeTensors.Save(Path.Combine(temp, TrainerState.OptimizerFileName), optimizer.StateTensors());
            state.Save(temp);
            if (!Directory.Exists(folder))
            {
                Directory.Move(temp, folder);
                return;
            }
            foreach (var file in Directory.GetFiles(temp))
                File.Move(file, Path.Combine(folder, Path.GetFileName(file)), overwrite: true);
            foreach (var subfolder in Directory.GetDirectories(temp))
            {
                var target = Path.Combine(folder, Path.GetFileName(subfolder));
                if (Directory.Exists(target)) Directory.Delete(target, recursive: true);
                Directory.Move(subfolder, target);
            }
            Directory.Delete(temp);
        }
        catch
        {
            if (Directory.Exists(temp)) Directory.Delete(temp, recursive: true);
            throw;
        }
    }
}
