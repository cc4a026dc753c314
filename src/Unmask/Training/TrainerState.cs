using System.Text.Json;
using System.Text.Json.Serialization;
using Unmask.Checkpoints;
using Unmask.Data;

namespace Unmask.Training;

/// <summary>
/// What a checkpoint needs beyond the model to continue a run exactly: the options, counters, elapsed time and
/// the data position. Dropout and masking are seeded by step, so no RNG state needs saving.
/// </summary>
public sealed record TrainerState(PretrainOptions Options, long Step, long Tokens, TimeSpan Elapsed, BatcherPosition Position)
{
    public const string FileName = "trainer_state.json";
    public const string OptimizerFileName = "optimizer.safetensors";

    static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
    };

    public void Save(string folder)
    {
        var path = Path.Combine(folder, FileName);
        File.WriteAllText(path + ".tmp", JsonSerializer.Serialize(this, Json));
        File.Move(path + ".tmp", path, overwrite: true);
    }

    public static TrainerState Load(string folder)
    {
        var path = Path.Combine(folder, FileName);
        if (!File.Exists(path)) throw new UnmaskException($"{folder}: not a training checkpoint (no {FileName})");
        try
        {
            return JsonSerializer.Deserialize<TrainerState>(File.ReadAllText(path), Json)
                ?? throw new UnmaskException($"{path}: empty trainer state");
        }
        catch (JsonException e)
        {
            throw new UnmaskException($"{path}: invalid trainer state ({e.Message})", e);
        }
    }

    public static IReadOnlyDictionary<string, Tensor> LoadOptimizer(string folder)
    {
        var path = Path.Combine(folder, OptimizerFileName);
        if (!File.Exists(path)) throw new UnmaskException($"{folder}: checkpoint has no {OptimizerFileName}");
        return SafeTensors.Load(path);
    }

    /// <summary>
    /// A checkpoint folder itself, or in a run folder the newest complete checkpoint: the run folder counts only while
    /// its trainer_state.json is there (see <see cref="CheckpointWriter"/>), a checkpoint-&lt;step&gt; folder only with
    /// its own, and hidden folders never.
    /// </summary>
    public static string FindCheckpoint(string path)
    {
        if (!Directory.Exists(path)) throw new UnmaskException($"{path}: checkpoint folder not found");
        var latest = Checkpoints(path).LastOrDefault();
        if (latest.Folder is not null && (!File.Exists(Path.Combine(path, FileName)) || latest.Step > Load(path).Step))
            return latest.Folder;
        if (File.Exists(Path.Combine(path, FileName))) return path;
        throw new UnmaskException($"{path}: no {FileName} and no checkpoint-<step> folder to resume from");
    }

    /// <summary>The complete checkpoint-&lt;step&gt; folders of a run folder, oldest first.</summary>
    internal static List<(string Folder, long Step)> Checkpoints(string runFolder) =>
        Directory.GetDirectories(runFolder, CheckpointWriter.CheckpointPrefix + "*")
            .Select(d => (Folder: d, Ok: long.TryParse(Path.GetFileName(d)[CheckpointWriter.CheckpointPrefix.Length..], out var s), Step: s))
            .Where(c => c.Ok && File.Exists(Path.Combine(c.Folder, FileName)))
            .OrderBy(c => c.Step)
            .Select(c => (c.Folder, c.Step))
            .ToList();
}
