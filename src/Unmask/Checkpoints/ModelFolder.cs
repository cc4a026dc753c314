using Unmask.Modeling;

namespace Unmask.Checkpoints;

/// <summary>A Hugging Face model folder: config.json, model.safetensors, and the tokenizer files beside them.</summary>
public static class ModelFolder
{
    public const string ConfigFileName = "config.json";
    public const string WeightsFileName = "model.safetensors";

    /// <summary>
    /// Writes config.json and model.safetensors, plus whatever <paramref name="writeExtraFiles"/> writes into the
    /// folder it is given (tokenizer files), into a temporary sibling folder that then takes the place of
    /// <paramref name="dir"/>. An existing model folder (or empty folder) there is replaced; any other folder is left alone.
    /// </summary>
    public static void Save(string dir, PretrainedModel model, Action<string>? writeExtraFiles = null)
    {
        var target = Path.GetFullPath(dir).TrimEnd(Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar);
        var name = Path.GetFileName(target);
        var parent = Path.GetDirectoryName(target) ?? throw new UnmaskException($"Cannot save a model as the root folder '{target}'.");
        if (File.Exists(target)) throw new UnmaskException($"Cannot save the model to '{target}': a file of that name exists.");
        if (Directory.Exists(target) && !IsReplaceable(target))
            throw new UnmaskException($"Refusing to replace '{target}': it is not a model folder (no {ConfigFileName}) and not empty.");

        Directory.CreateDirectory(parent);
        var temp = Path.Combine(parent, $".{name}.{Guid.NewGuid():N}.tmp");
        Directory.CreateDirectory(temp);
        try
        {
            model.HfConfig.Save(Path.Combine(temp, ConfigFileName));
            SafeTensors.Save(Path.Combine(temp, WeightsFileName), model.StateDictForSave());
            writeExtraFiles?.Invoke(temp);
            Replace(target, temp);
        }
        catch
        {
            if (Directory.Exists(temp)) Directory.Delete(temp, recursive: true);
            throw;
        }
    }

    /// <summary>Reads a model of any supported family (see <see cref="ModelLoader"/>), in eval mode.</summary>
    public static PretrainedModel Load(string dir) => ModelLoader.Load(dir);

    /// <summary>Reads a BERT-family masked-LM model (BERT, RoBERTa, XLM-RoBERTa), in eval mode.</summary>
    public static BertForMaskedLM LoadBert(string dir)
    {
        var model = ModelLoader.Load(dir);
        if (model is BertForMaskedLM bert) return bert;
        var architecture = model.Architecture;
        model.Dispose();
        throw new UnmaskException($"Model folder '{dir}' holds a {architecture}; a BERT-family masked LM (model_type 'bert', 'roberta' or 'xlm-roberta') is needed here.");
    }

    static bool IsReplaceable(string folder) =>
        File.Exists(Path.Combine(folder, ConfigFileName)) || !Directory.EnumerateFileSystemEntries(folder).Any();

    // Directory renames within one parent are atomic; the old folder is moved aside first and restored if the
    // new one cannot take its place, so a failure never leaves the target missing.
    static void Replace(string target, string temp)
    {
        if (!Directory.Exists(target))
        {
            Directory.Move(temp, target);
            return;
        }
        var backup = Path.Combine(Path.GetDirectoryName(target)!, $".{Path.GetFileName(target)}.{Guid.NewGuid():N}.old");
        Directory.Move(target, backup);
        try
        {
            Directory.Move(temp, target);
        }
        catch
        {
            Directory.Move(backup, target);
            throw;
        }
        Directory.Delete(backup, recursive: true);
    }
}
