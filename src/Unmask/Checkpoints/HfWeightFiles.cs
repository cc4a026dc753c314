using Unmask.Modeling;
using System.Text.Json;

namespace Unmask.Checkpoints;

/// <summary>
/// The weight files of a Hugging Face model folder, in transformers' order of preference: model.safetensors,
/// model.safetensors.index.json (shards), pytorch_model.bin, pytorch_model.bin.index.json.
/// </summary>
public static class HfWeightFiles
{
    public const string SafeTensorsFile = "model.safetensors";
    public const string SafeTensorsIndexFile = "model.safetensors.index.json";
    public const string PyTorchFile = "pytorch_model.bin";
    public const string PyTorchIndexFile = "pytorch_model.bin.index.json";

    /// <summary>Reads every tensor of the folder's weights (the caller owns them); Path is the file to name in errors.</summary>
    public static (string Path, Dictionary<string, Tensor> Tensors) Load(string dir)
    {
        foreach (var (file, load) in new (string, Func<string, Dictionary<string, Tensor>>)[]
                 {
                     (SafeTensorsFile, SafeTensors.Load),
                     (SafeTensorsIndexFile, index => LoadSharded(index, SafeTensors.Load)),
                     (PyTorchFile, TorchZipCheckpoint.Load),
                     (PyTorchIndexFile, index => LoadSharded(index, TorchZipCheckpoint.Load)),
                 })
        {
            var path = Path.Combine(dir, file);
            if (File.Exists(path)) return (path, load(path));
        }
        throw new UnmaskException(
            $"Model folder '{dir}' has no weights: looked for {SafeTensorsFile}, {SafeTensorsIndexFile}, {PyTorchFile} and {PyTorchIndexFile}.");
    }

    /// <summary>
    /// The folder's weights as a source to copy from (the caller disposes it): model.safetensors memory-mapped, the
    /// other forms read into memory. Path is the file to name in errors.
    /// </summary>
    public static (string Path, IHfTensorSource Source) Open(string dir)
    {
        var single = Path.Combine(dir, SafeTensorsFile);
        if (File.Exists(single)) return (single, SafeTensors.Map(single));
        var (path, tensors) = Load(dir);
        return (path, new TensorDictionarySource(tensors, owned: true));
    }

    /// <summary>Reads the shards an index.json's weight_map names; every tensor must be in the shard the map says.</summary>
    public static Dictionary<string, Tensor> LoadSharded(string indexPath, Func<string, Dictionary<string, Tensor>> loadShard)
    {
        var weightMap = ReadWeightMap(indexPath);
        var folder = Path.GetDirectoryName(Path.GetFullPath(indexPath))!;
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        try
        {
            foreach (var shard in weightMap.Values.Distinct().Order(StringComparer.Ordinal))
            {
                var shardPath = Path.Combine(folder, shard);
                if (Path.GetDirectoryName(Path.GetFullPath(shardPath)) != folder)
                    throw new UnmaskException($"{indexPath}: shard '{shard}' is not a file beside the index.");
                if (!File.Exists(shardPath)) throw new UnmaskException($"{indexPath}: shard '{shard}' does not exist.");
                foreach (var (name, tensor) in loadShard(shardPath))
                {
                    if (!tensors.TryAdd(name, tensor))
                    {
                        tensor.Dispose();
                        throw new UnmaskException($"{shardPath}: tensor '{name}' is also in another shard.");
                    }
                }
            }
            var absent = weightMap.Where(p => !tensors.ContainsKey(p.Key)).Select(p => $"'{p.Key}' ({p.Value})").ToList();
            if (absent.Count > 0)
                throw new UnmaskException($"{indexPath}: the weight map lists tensors its shards do not hold: {string.Join(", ", absent.Take(8))}.");
            return tensors;
        }
        catch
        {
            foreach (var tensor in tensors.Values) tensor.Dispose();
            throw;
        }
    }

    static Dictionary<string, string> ReadWeightMap(string indexPath)
    {
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllBytes(indexPath));
            if (document.RootElement.ValueKind != JsonValueKind.Object
                || !document.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
                throw new UnmaskException($"{indexPath}: expected an object with a 'weight_map' object.");
            var weightMap = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var entry in map.EnumerateObject())
            {
                if (entry.Value.ValueKind != JsonValueKind.String)
                    throw new UnmaskException($"{indexPath}: weight_map entry '{entry.Name}' must name a shard file.");
                weightMap[entry.Name] = entry.Value.GetString()!;
            }
            return weightMap;
        }
        catch (JsonException ex)
        {
            throw new UnmaskException($"{indexPath}: not valid JSON: {ex.Message}", ex);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new UnmaskException($"Cannot read '{indexPath}': {ex.Message}", ex);
        }
    }
}
