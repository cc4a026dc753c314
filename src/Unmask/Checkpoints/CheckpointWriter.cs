using Unmask.Modeling;
using Unmask.Tokenization;
using Unmask.Training;

namespace Unmask.Checkpoints;

/// <summary>
/// Writes a Hugging Face model folder plus trainer state. Everything is first written to a hidden temp folder
/// beside the target; a new target is then one directory rename, an existing run folder gets each finished file
/// renamed in, so no reader ever sees a half-written file.
/// </summary>
public static class CheckpointWriter
{
    public static void Save(string folder, BertForMaskedLM model, ITokenizer tokenizer, TrainerState state, AdamW optimizer)
    {
        folder = Path.GetFullPath(folder);
        var parent = Path.GetDirectoryName(folder)!;
        Directory.CreateDirectory(parent);
        var temp = Path.Combine(parent, $".{Path.GetFileName(folder)}.complete-{Guid.NewGuid():N}");
        try
        {
            ModelFolder.Save(temp, model, files =>
            {
                tokenizer.Save(files);
                SafeTensors.Save(Path.Combine(files, TrainerState.OptimizerFileName), optimizer.StateTensors());
                state.Save(files);
            });
            if (!Directory.Exists(folder))
            {
                Directory.Move(temp, folder);
                return;
            }
            foreach (var file in Directory.GetFiles(temp))
                File.Move(file, Path.Combine(folder, Path.GetFileName(file)), overwrite: true);
            Directory.Delete(temp);
        }
        catch
        {
            if (Directory.Exists(temp)) Directory.Delete(temp, recursive: true);
            throw;
        }
    }
}
