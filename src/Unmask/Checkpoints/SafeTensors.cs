using Unmask.Modeling;
using System.Buffers.Binary;
using System.IO.MemoryMappedFiles;
using System.Text;
using System.Text.Json;

namespace Unmask.Checkpoints;

/// <summary>One tensor's entry in a safetensors header; offsets are relative to the start of the data section.</summary>
public sealed record SafeTensorEntry(string Name, string Dtype, long[] Shape, long Begin, long End);

/// <summary>The JSON header of a safetensors file: tensors in file order, and the free-form string metadata.</summary>
public sealed record SafeTensorsHeader(IReadOnlyList<SafeTensorEntry> Tensors, IReadOnlyDictionary<string, string> Metadata);

/// <summary>
/// The safetensors format (https://github.com/huggingface/safetensors): an 8-byte little-endian header length, a JSON
/// header mapping names to dtype/shape/data_offsets, then the raw little-endian tensor bytes.
/// </summary>
public static class SafeTensors
{
    const int CopyBufferSize = 1 << 20;
    // The reference implementation refuses larger headers; a bigger value means a corrupt or foreign file.
    const long MaxHeaderLength = 100_000_000;

    static readonly Dictionary<string, (ScalarType Type, int Size)> DtypeByName = new()
    {
        ["F64"] = (ScalarType.Float64, 8),
        ["F32"] = (ScalarType.Float32, 4),
        ["F16"] = (ScalarType.Float16, 2),
        ["BF16"] = (ScalarType.BFloat16, 2),
        ["I64"] = (ScalarType.Int64, 8),
        ["I32"] = (ScalarType.Int32, 4),
        ["I16"] = (ScalarType.Int16, 2),
        ["I8"] = (ScalarType.Int8, 1),
        ["U8"] = (ScalarType.Byte, 1),
        ["BOOL"] = (ScalarType.Bool, 1),
    };

    public static SafeTensorsHeader ReadHeader(string path)
    {
        using var stream = OpenRead(path);
        return ReadHeader(stream, path).Header;
    }

    /// <summary>
    /// Reads every tensor into new CPU tensors (the caller owns them). The file is read once, front to back, straight
    /// into the tensors' memory.
    /// </summary>
    public static Dictionary<string, Tensor> Load(string path)
    {
        using var stream = OpenRead(path);
        var (header, dataStart) = ReadHeader(stream, path);
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        try
        {
            foreach (var entry in header.Tensors.OrderBy(e => e.Begin))
            {
                var tensor = torch.empty(entry.Shape, DtypeByName[entry.Dtype].Type, device: ComputeDevice.Cpu);
                tensors.Add(entry.Name, tensor);
                stream.Position = dataStart + entry.Begin;
                try
                {
                    tensor.ReadBytesFromStream(stream, CopyBufferSize);
                }
                catch (EndOfStreamException ex)
                {
                    throw new UnmaskException($"{path}: the file ends inside the data of tensor '{entry.Name}' (truncated file).", ex);
                }
            }
            return tensors;
        }
        catch
        {
            foreach (var tensor in tensors.Values) tensor.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Maps the file into memory and checks its header; each tensor's bytes are then copied from the mapping straight
    /// into the tensor that receives them, so loading holds no second copy of the weights beyond the page cache.
    /// </summary>
    public static IHfTensorSource Map(string path)
    {
        // The header is checked against the length of the same open file that is then mapped.
        var stream = OpenRead(path);
        try
        {
            var (header, dataStart) = ReadHeader(stream, path);
            return new MappedFile(path, stream, header, dataStart);
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    sealed unsafe class MappedFile : IHfTensorSource
    {
        readonly string path;
        readonly Dictionary<string, SafeTensorEntry> entries;
        readonly MemoryMappedFile file;
        readonly MemoryMappedViewAccessor view;
        readonly byte* data;

        public MappedFile(string path, FileStream stream, SafeTensorsHeader header, long dataStart)
        {
            this.path = path;
            entries = header.Tensors.ToDictionary(e => e.Name, StringComparer.Ordinal);
            Names = header.Tensors.Select(e => e.Name).ToList();
            try
            {
                file = MemoryMappedFile.CreateFromFile(stream, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false);
                view = file.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                file?.Dispose();
                throw new UnmaskException($"Cannot map safetensors file '{path}': {ex.Message}", ex);
            }
            byte* start = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref start);
            data = start + view.PointerOffset + dataStart;
        }

        public IReadOnlyCollection<string> Names { get; }

        public bool Contains(string name) => entries.ContainsKey(name);

        public long[] Shape(string name) => entries[name].Shape;

        public bool IsFloatingPoint(string name) => entries[name].Dtype is "F64" or "F32" or "F16" or "BF16";

        public void CopyTo(string name, Tensor destination)
        {
            var entry = entries[name];
            var length = entry.End - entry.Begin;
            if (length > int.MaxValue) throw new UnmaskException($"{path}: tensor '{name}' is larger than 2 GiB, which this reader cannot copy.");
            var bytes = new ReadOnlySpan<byte>(data + entry.Begin, (int)length);
            var type = DtypeByName[entry.Dtype].Type;
            if (destination.dtype == type && destination.device_type == DeviceType.CPU && destination.is_contiguous())
            {
                var target = destination.bytes;
                fixed (byte* start = target) Advise(start, target.Length, HugePage, MadvHugePage);
                bytes.CopyTo(target);
            }
            else
            {
                // Another element type, layout or device: one tensor at a time goes through a host temporary that libtorch converts.
                using var temporary = torch.empty(entry.Shape, type, device: ComputeDevice.Cpu);
                bytes.CopyTo(temporary.bytes);
                destination.copy_(temporary);
            }
            // The copied pages leave this process's resident set (they stay in the page cache), so the load's peak is
            // the parameters plus about one tensor rather than the parameters plus the whole file.
            Advise(data + entry.Begin, length, Environment.SystemPageSize, MadvDontNeed);
        }

        const long HugePage = 2 << 20;
        const int MadvDontNeed = 4;
        const int MadvHugePage = 14;

        // MADV_HUGEPAGE: a freshly allocated parameter is touched first by the copy, with 4 KiB pages one page fault
        // per 4 KiB; transparent huge pages make it one per 2 MiB. Measured on a BERT-base load (bench mode=load, THP
        // in madvise mode): the process's minor faults 144k -> 79k, the load 2.3 s -> 1.3-1.9 s. Advice applies to
        // the whole units inside the range; where the kernel refuses it (THP off, not Linux, not glibc) nothing changes.
        static void Advise(byte* start, long length, long unit, int advice)
        {
            if (!OperatingSystem.IsLinux()) return;
            var first = ((nint)start + (nint)(unit - 1)) & ~(nint)(unit - 1);
            var last = ((nint)start + (nint)length) & ~(nint)(unit - 1);
            if (last <= first) return;
            try
            {
                madvise((byte*)first, (nuint)(last - first), advice);
            }
            catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
            {
                // Another C library: the advice is only an optimisation.
            }
        }

        [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "madvise")]
        static extern int madvise(byte* address, nuint length, int advice);

        public void Dispose()
        {
            view.SafeMemoryMappedViewHandle.ReleasePointer();
            view.Dispose();
            file.Dispose();
        }
    }

    /// <summary>
    /// Writes the tensors in ordinal name order with metadata {"format": "pt"} (plus <paramref name="metadata"/>),
    /// through a temporary file so that an existing file is replaced only by a complete one.
    /// </summary>
    public static void Save(string path, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("safetensors data is little-endian.");
        var names = tensors.Keys.Order(StringComparer.Ordinal).ToList();
        var dtypeNames = DtypeByName.ToDictionary(p => p.Value.Type, p => p.Key);

        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteStartObject("__metadata__");
            json.WriteString("format", "pt");
            foreach (var (key, value) in metadata ?? new Dictionary<string, string>())
                if (key != "format") json.WriteString(key, value);
            json.WriteEndObject();

            long offset = 0;
            foreach (var name in names)
            {
                var tensor = tensors[name];
                if (!dtypeNames.TryGetValue(tensor.dtype, out var dtype))
                    throw new UnmaskException($"{path}: tensor '{name}' has element type {tensor.dtype}, which safetensors cannot store.");
                var size = tensor.numel() * tensor.ElementSize;
                json.WriteStartObject(name);
                json.WriteString("dtype", dtype);
                json.WriteStartArray("shape");
                foreach (var dim in tensor.shape) json.WriteNumberValue(dim);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + size);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += size;
            }
            json.WriteEndObject();
        }
        // Padding with spaces keeps the data section 8-byte aligned, which the format recommends for zero-copy readers.
        while (buffer.Length % 8 != 0) buffer.WriteByte((byte)' ');
        var header = buffer.ToArray();

        AtomicFile.Write(path, stream =>
        {
            Span<byte> length = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)header.Length);
            stream.Write(length);
            stream.Write(header);
            foreach (var name in names)
            {
                using var scope = torch.NewDisposeScope();
                tensors[name].detach().cpu().contiguous().WriteBytesToStream(stream, CopyBufferSize);
            }
        });
    }

    static FileStream OpenRead(string path)
    {
        try
        {
            return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new UnmaskException($"Cannot open safetensors file '{path}': {ex.Message}", ex);
        }
    }

    static (SafeTensorsHeader Header, long DataStart) ReadHeader(FileStream stream, string path)
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("safetensors data is little-endian.");
        var fileLength = stream.Length;
        Span<byte> lengthBytes = stackalloc byte[8];
        if (fileLength < 8 || stream.ReadAtLeast(lengthBytes, 8, throwOnEndOfStream: false) < 8)
            throw new UnmaskException($"{path}: too short for a safetensors file ({fileLength} bytes).");
        var headerLength = BinaryPrimitives.ReadUInt64LittleEndian(lengthBytes);
        if (headerLength > MaxHeaderLength || (long)headerLength > fileLength - 8)
            throw new UnmaskException($"{path}: header length {headerLength} does not fit in the file ({fileLength} bytes); not a safetensors file?");

        var headerBytes = new byte[headerLength];
        stream.ReadExactly(headerBytes);
        var dataStart = 8 + (long)headerLength;
        var dataLength = fileLength - dataStart;

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(headerBytes);
        }
        catch (JsonException ex)
        {
            throw new UnmaskException($"{path}: the safetensors header is not valid JSON: {ex.Message}", ex);
        }

        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object)
                throw new UnmaskException($"{path}: the safetensors header must be a JSON object.");
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var entries = new List<SafeTensorEntry>();
            foreach (var property in document.RootElement.EnumerateObject())
            {
                if (property.Name == "__metadata__")
                {
                    if (property.Value.ValueKind != JsonValueKind.Object)
                        throw new UnmaskException($"{path}: '__metadata__' must be an object of strings.");
                    foreach (var item in property.Value.EnumerateObject())
                    {
                        if (item.Value.ValueKind != JsonValueKind.String)
                            throw new UnmaskException($"{path}: metadata value '{item.Name}' must be a string.");
                        metadata[item.Name] = item.Value.GetString()!;
                    }
                    continue;
                }
                entries.Add(ParseEntry(property, path, dataLength));
            }
            return (new SafeTensorsHeader(entries, metadata), dataStart);
        }
    }

    static SafeTensorEntry ParseEntry(JsonProperty property, string path, long dataLength)
    {
        var name = property.Name;
        UnmaskException Bad(string problem) => new($"{path}: tensor '{name}': {problem}");

        var value = property.Value;
        if (value.ValueKind != JsonValueKind.Object) throw Bad("the header entry must be an object.");
        if (!value.TryGetProperty("dtype", out var dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String)
            throw Bad("missing string field 'dtype'.");
        var dtype = dtypeElement.GetString()!;
        if (!DtypeByName.TryGetValue(dtype, out var element))
            throw Bad($"unsupported dtype '{dtype}' (supported: {string.Join(", ", DtypeByName.Keys)}).");

        long[] ReadLongs(string field)
        {
            if (!value.TryGetProperty(field, out var array) || array.ValueKind != JsonValueKind.Array)
                throw Bad($"missing array field '{field}'.");
            return array.EnumerateArray().Select(e =>
                e.ValueKind == JsonValueKind.Number && e.TryGetInt64(out var n) && n >= 0
                    ? n
                    : throw Bad($"'{field}' must hold non-negative integers.")).ToArray();
        }

        var shape = ReadLongs("shape");
        var offsets = ReadLongs("data_offsets");
        if (offsets.Length != 2 || offsets[0] > offsets[1])
            throw Bad("'data_offsets' must be [begin, end] with begin <= end.");
        if (offsets[1] > dataLength)
            throw Bad($"data_offsets [{offsets[0]}, {offsets[1]}] run past the end of the data ({dataLength} bytes; truncated file?).");
        var expected = shape.Aggregate(1L, (a, b) => a * b) * element.Size;
        if (offsets[1] - offsets[0] != expected)
            throw Bad($"{offsets[1] - offsets[0]} bytes of data, but shape [{string.Join(", ", shape)}] of {dtype} needs {expected}.");
        return new SafeTensorEntry(name, dtype, shape, offsets[0], offsets[1]);
    }
}
