using Unmask.Modeling;
using System.IO.Compression;
using System.Text;

namespace Unmask.Checkpoints;

/// <summary>
/// A state_dict saved by torch.save in the zip format (PyTorch 1.6 and later; pytorch_model.bin): &lt;name&gt;/data.pkl
/// pickles a dict of tensors whose storages live in &lt;name&gt;/data/&lt;key&gt; as raw little-endian bytes. The pickle
/// is read by <see cref="SafePickle"/> with only the globals a state_dict needs, so loading never runs code.
/// </summary>
public static class TorchZipCheckpoint
{
    static readonly Dictionary<string, ScalarType> StorageTypes = new()
    {
        ["FloatStorage"] = ScalarType.Float32,
        ["HalfStorage"] = ScalarType.Float16,
        ["BFloat16Storage"] = ScalarType.BFloat16,
        ["DoubleStorage"] = ScalarType.Float64,
        ["LongStorage"] = ScalarType.Int64,
        ["IntStorage"] = ScalarType.Int32,
        ["ShortStorage"] = ScalarType.Int16,
        ["CharStorage"] = ScalarType.Int8,
        ["ByteStorage"] = ScalarType.Byte,
        ["BoolStorage"] = ScalarType.Bool,
    };

    const string RebuildTensor = "torch._utils._rebuild_tensor_v2";
    const string RebuildParameter = "torch._utils._rebuild_parameter";
    const string RebuildParameterWithState = "torch._utils._rebuild_parameter_with_state";
    const string OrderedDict = "collections.OrderedDict";

    /// <summary>Everything a state_dict pickle may name; anything else (os.system, torch.storage._load_from_bytes, ...) is refused.</summary>
    public static IReadOnlySet<string> AllowedGlobals { get; } = new HashSet<string>(
        StorageTypes.Keys.Select(k => "torch." + k).Concat([RebuildTensor, RebuildParameter, RebuildParameterWithState, OrderedDict]),
        StringComparer.Ordinal);

    sealed record StorageRef(string Key, ScalarType Dtype, long Numel);

    sealed record TensorRef(StorageRef Storage, long Offset, long[] Size, long[] Stride);

    /// <summary>Reads every tensor of the state_dict into new CPU tensors (the caller owns them).</summary>
    public static Dictionary<string, Tensor> Load(string path)
    {
        ZipArchive zip;
        try
        {
            var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
            Span<byte> magic = stackalloc byte[4];
            if (stream.ReadAtLeast(magic, 4, throwOnEndOfStream: false) < 4 || !magic.SequenceEqual("PK\u0003\u0004"u8))
            {
                stream.Dispose();
                throw new UnmaskException($"{path}: not a zip-format PyTorch checkpoint (files written by torch.save before PyTorch 1.6 are not supported; re-save them with a newer torch or convert to safetensors).");
            }
            stream.Position = 0;
            zip = new ZipArchive(stream, ZipArchiveMode.Read);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidDataException)
        {
            throw new UnmaskException($"Cannot open PyTorch checkpoint '{path}': {ex.Message}", ex);
        }

        using (zip)
        {
            var pickleEntry = zip.Entries.FirstOrDefault(e => e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal) && e.FullName.Count(c => c == '/') == 1)
                ?? throw new UnmaskException($"{path}: no <name>/data.pkl inside; not a PyTorch checkpoint.");
            var prefix = pickleEntry.FullName[..^"data.pkl".Length];
            if (zip.GetEntry(prefix + "byteorder") is { } byteOrder && ReadText(byteOrder) != "little")
                throw new UnmaskException($"{path}: the tensors are stored big-endian, which is not supported.");

            var root = new SafePickle(ReadAll(pickleEntry, path), $"{path}:{pickleEntry.FullName}", AllowedGlobals,
                PersistentLoad, Reduce).Load();
            var storages = new Dictionary<string, Tensor>(StringComparer.Ordinal);
            var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
            try
            {
                if (root is not PickleDict dict)
                    throw new UnmaskException($"{path}: the checkpoint holds a {root?.GetType().Name ?? "None"}, not a state_dict.");
                foreach (var (key, value) in dict.Items)
                {
                    if (key is not string name) throw new UnmaskException($"{path}: a state_dict key is not a string.");
                    if (value is not TensorRef tensor) throw new UnmaskException($"{path}: entry '{name}' is not a tensor.");
                    if (!storages.TryGetValue(tensor.Storage.Key, out var storage))
                    {
                        storage = ReadStorage(zip, prefix, tensor.Storage, path);
                        storages.Add(tensor.Storage.Key, storage);
                    }
                    if (tensor.Storage.Dtype != storage.dtype)
                        throw new UnmaskException($"{path}: storage '{tensor.Storage.Key}' is used as both {storage.dtype} and {tensor.Storage.Dtype}.");
                    tensors[name] = View(storage, tensor, name, path);
                }
                return tensors;
            }
            catch
            {
                foreach (var t in tensors.Values) t.Dispose();
                throw;
            }
            finally
            {
                foreach (var s in storages.Values) s.Dispose();
            }
        }

        object? PersistentLoad(object? pid)
        {
            // ('storage', storage type, key, location, numel), as torch.save writes it.
            if (pid is not object?[] { Length: 5 } t || t[0] is not "storage" || t[1] is not PickleGlobal type
                || t[2] is not string key || t[4] is not long numel || numel < 0)
                throw new UnmaskException($"{path}: unexpected persistent id in the pickle; not a state_dict of tensors.");
            if (type.Module != "torch" || !StorageTypes.TryGetValue(type.Name, out var dtype))
                throw new UnmaskException($"{path}: storage type '{type}' is not supported.");
            return new StorageRef(key, dtype, numel);
        }

        object? Reduce(PickleCall call)
        {
            var args = call.Arguments;
            switch (call.Callable.ToString())
            {
                case OrderedDict when args.Length == 0:
                    return new PickleDict();
                case RebuildTensor when args.Length is 6 or 7 && args[0] is StorageRef storage && args[1] is long offset:
                    return new TensorRef(storage, offset, Longs(args[2], "size"), Longs(args[3], "stride"));
                case RebuildParameter or RebuildParameterWithState when args.Length >= 1 && args[0] is TensorRef data:
                    return data;
                default:
                    throw new UnmaskException($"{path}: unexpected call of {call.Callable} with {args.Length} argument(s) in the pickle.");
            }
        }

        long[] Longs(object? value, string what) =>
            value is object?[] items && items.All(i => i is long)
                ? items.Select(i => (long)i!).ToArray()
                : throw new UnmaskException($"{path}: a tensor's {what} is not a tuple of integers.");
    }

    static Tensor ReadStorage(ZipArchive zip, string prefix, StorageRef storage, string path)
    {
        var entry = zip.GetEntry(prefix + "data/" + storage.Key)
            ?? throw new UnmaskException($"{path}: storage '{storage.Key}' is missing (no {prefix}data/{storage.Key}).");
        var tensor = torch.empty(storage.Numel, storage.Dtype, device: ComputeDevice.Cpu);
        var expected = storage.Numel * tensor.ElementSize;
        if (entry.Length != expected)
        {
            tensor.Dispose();
            throw new UnmaskException($"{path}: storage '{storage.Key}' holds {entry.Length} bytes, but {storage.Numel} elements of {storage.Dtype} need {expected}.");
        }
        try
        {
            using var stream = entry.Open();
            tensor.ReadBytesFromStream(stream, 1 << 20);
            return tensor;
        }
        catch (Exception ex) when (ex is IOException or InvalidDataException)
        {
            tensor.Dispose();
            throw new UnmaskException($"{path}: cannot read storage '{storage.Key}': {ex.Message}", ex);
        }
    }

    // The storage's elements viewed with the tensor's size, stride and offset, then copied out so that the result is
    // contiguous and independent of the storage.
    static Tensor View(Tensor storage, TensorRef tensor, string name, string path)
    {
        if (tensor.Size.Length != tensor.Stride.Length || tensor.Size.Any(s => s < 0) || tensor.Stride.Any(s => s < 0) || tensor.Offset < 0)
            throw new UnmaskException($"{path}: tensor '{name}' has an invalid size/stride/offset.");
        var last = tensor.Size.Any(s => s == 0) ? -1 : tensor.Offset + tensor.Size.Zip(tensor.Stride, (s, st) => (s - 1) * st).Sum();
        if (last >= tensor.Storage.Numel)
            throw new UnmaskException($"{path}: tensor '{name}' reaches element {last} of storage '{tensor.Storage.Key}', which has {tensor.Storage.Numel}.");
        using var scope = torch.NewDisposeScope();
        return storage.as_strided(tensor.Size, tensor.Stride, tensor.Offset).contiguous().clone().MoveToOuterDisposeScope();
    }

    static byte[] ReadAll(ZipArchiveEntry entry, string path)
    {
        try
        {
            using var stream = entry.Open();
            using var buffer = new MemoryStream();
            stream.CopyTo(buffer);
            return buffer.ToArray();
        }
        catch (Exception ex) when (ex is IOException or InvalidDataException)
        {
            throw new UnmaskException($"{path}: cannot read {entry.FullName}: {ex.Message}", ex);
        }
    }

    static string ReadText(ZipArchiveEntry entry)
    {
        using var reader = new StreamReader(entry.Open(), Encoding.ASCII);
        return reader.ReadToEnd().Trim();
    }
}
