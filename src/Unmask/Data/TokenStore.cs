using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Unmask.Data;

/// <summary>What a token store was built from; a store is reused only when all of it matches.</summary>
public sealed record TokenStoreInfo(string TokenizerFingerprint, string CorpusName, int VocabSize);

/// <summary>
/// A corpus tokenized once: <c>tokens.bin</c> (int32 ids, little-endian, documents back to back),
/// <c>offsets.bin</c> (int64 start of each document, plus the end) and <c>manifest.json</c>, memory-mapped for reading.
/// </summary>
public sealed unsafe class TokenStore : IDisposable
{
    const int FormatVersion = 1;
    const string TokensFile = "tokens.bin", OffsetsFile = "offsets.bin", ManifestFile = "manifest.json";

    sealed record Manifest(
        [property: JsonPropertyName("format_version")] int FormatVersion,
        [property: JsonPropertyName("tokenizer_fingerprint")] string TokenizerFingerprint,
        [property: JsonPropertyName("corpus")] string Corpus,
        [property: JsonPropertyName("vocab_size")] int VocabSize,
        [property: JsonPropertyName("documents")] long Documents,
        [property: JsonPropertyName("tokens")] long Tokens,
        [property: JsonPropertyName("dtype")] string Dtype);

    readonly MemoryMappedFile? _tokensFile;
    readonly MemoryMappedViewAccessor? _tokensView;
    readonly byte* _tokens;
    readonly long[] _offsets;

    public long Documents => _offsets.Length - 1;
    public long Tokens => _offsets[^1];
    public string Directory { get; }

    TokenStore(string directory, long[] offsets)
    {
        Directory = directory;
        _offsets = offsets;
        if (Tokens == 0) return;
        _tokensFile = MemoryMappedFile.CreateFromFile(Path.Combine(directory, TokensFile), FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        _tokensView = _tokensFile.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
        byte* pointer = null;
        _tokensView.SafeMemoryMappedViewHandle.AcquirePointer(ref pointer);
        _tokens = pointer + _tokensView.PointerOffset;
    }

    public ReadOnlySpan<int> Document(long index) => Range(_offsets[index], _offsets[index + 1] - _offsets[index]);

    public long DocumentStart(long index) => _offsets[index];

    public ReadOnlySpan<int> Range(long start, long length)
    {
        if (start < 0 || length < 0 || start + length > Tokens) throw new ArgumentOutOfRangeException(nameof(start));
        return length == 0 ? ReadOnlySpan<int>.Empty : new ReadOnlySpan<int>(_tokens + start * sizeof(int), checked((int)length));
    }

    /// <summary>Opens the store in <paramref name="directory"/> if its manifest matches; otherwise tokenizes and writes it.</summary>
    public static TokenStore OpenOrBuild(string directory, IReadOnlyList<string> lines, Func<string, int[]> encode, TokenStoreInfo info,
        IProgress<double>? progress = null, CancellationToken ct = default)
    {
        bool Current()
        {
            var manifest = ReadManifest(directory);
            return manifest is not null && manifest.FormatVersion == FormatVersion && manifest.TokenizerFingerprint == info.TokenizerFingerprint &&
                manifest.Corpus == info.CorpusName && manifest.VocabSize == info.VocabSize && manifest.Documents == lines.Count;
        }

        if (!Current())
        {
            // Two runs on one corpus share the cache: the second waits for the first's store instead of writing over it.
            using var gate = BuildLock(directory, ct);
            if (!Current()) Build(directory, lines, encode, info, progress, ct);
        }
        return Open(directory);
    }

    /// <summary>An exclusive lock on the store's folder (a locked file, released by the OS if the process dies).</summary>
    static FileStream BuildLock(string directory, CancellationToken ct)
    {
        System.IO.Directory.CreateDirectory(directory);
        var path = Path.Combine(directory, ".build.lock");
        while (true)
        {
            try
            {
                return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (!ct.IsCancellationRequested)
            {
                Thread.Sleep(200);
            }
        }
    }

    public static TokenStore Open(string directory)
    {
        var manifest = ReadManifest(directory) ?? throw new UnmaskException($"{directory}: not a token store (no valid {ManifestFile})");
        var offsetsPath = Path.Combine(directory, OffsetsFile);
        var bytes = File.ReadAllBytes(offsetsPath);
        var offsets = MemoryMarshal.Cast<byte, long>(bytes).ToArray();
        if (offsets.Length != manifest.Documents + 1 || offsets[^1] != manifest.Tokens ||
            new FileInfo(Path.Combine(directory, TokensFile)).Length != manifest.Tokens * sizeof(int))
            throw new UnmaskException($"{directory}: token store files do not match its manifest");
        return new TokenStore(directory, offsets);
    }

    /// <summary>Tokenizes in parallel, keeping line order; files go to temp names first and the manifest is renamed in last.</summary>
    public static void Build(string directory, IReadOnlyList<string> lines, Func<string, int[]> encode, TokenStoreInfo info,
        IProgress<double>? progress = null, CancellationToken ct = default)
    {
        System.IO.Directory.CreateDirectory(directory);
        File.Delete(Path.Combine(directory, ManifestFile));
        var tokensTemp = Path.Combine(directory, TokensFile + ".tmp");
        var offsetsTemp = Path.Combine(directory, OffsetsFile + ".tmp");
        var offsets = new long[lines.Count + 1];
        const int chunk = 4096;
        using (var tokens = new FileStream(tokensTemp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
        {
            for (int start = 0; start < lines.Count; start += chunk * 8)
            {
                ct.ThrowIfCancellationRequested();
                int count = Math.Min(chunk * 8, lines.Count - start);
                var encoded = new int[count][];
                Parallel.For(0, count, new ParallelOptions { CancellationToken = ct }, i => encoded[i] = encode(lines[start + i]));
                for (int i = 0; i < count; i++)
                {
                    foreach (var id in encoded[i])
                        if (id < 0 || id >= info.VocabSize) throw new InvalidOperationException($"token id {id} outside the vocabulary of {info.VocabSize}");
                    tokens.Write(MemoryMarshal.AsBytes(encoded[i].AsSpan()));
                    offsets[start + i + 1] = offsets[start + i] + encoded[i].Length;
                }
                progress?.Report((double)(start + count) / lines.Count);
            }
        }
        File.WriteAllBytes(offsetsTemp, MemoryMarshal.AsBytes(offsets.AsSpan()).ToArray());
        File.Move(tokensTemp, Path.Combine(directory, TokensFile), overwrite: true);
        File.Move(offsetsTemp, Path.Combine(directory, OffsetsFile), overwrite: true);
        var manifest = new Manifest(FormatVersion, info.TokenizerFingerprint, info.CorpusName, info.VocabSize, lines.Count, offsets[^1], "int32");
        var manifestTemp = Path.Combine(directory, ManifestFile + ".tmp");
        File.WriteAllText(manifestTemp, JsonSerializer.Serialize(manifest, new JsonSerializerOptions { WriteIndented = true }));
        File.Move(manifestTemp, Path.Combine(directory, ManifestFile), overwrite: true);
    }

    static Manifest? ReadManifest(string directory)
    {
        var path = Path.Combine(directory, ManifestFile);
        if (!File.Exists(path)) return null;
        try
        {
            return JsonSerializer.Deserialize<Manifest>(File.ReadAllText(path));
        }
        catch (JsonException)
        {
            return null;
        }
    }

    public void Dispose()
    {
        if (_tokensView is not null)
        {
            _tokensView.SafeMemoryMappedViewHandle.ReleasePointer();
            _tokensView.Dispose();
        }
        _tokensFile?.Dispose();
    }
}
