using System.Text;

namespace Unmask.Data;

/// <summary>
/// Text for pretraining, one paragraph per line, already split into training and validation lines. The split is a
/// stable hash of where a line comes from (a documented member, or a file and line number), so it never changes
/// between runs or machines.
/// </summary>
public sealed record Corpus(string Name, IReadOnlyList<string> Train, IReadOnlyList<string> Validation)
{
    /// <summary>One line in a hundred goes to validation.</summary>
    const ulong ValidationModulus = 100;

    /// <summary>Loads <paramref name="path"/> (a file or folder), or the .NET SDK's API documentation when null.</summary>
    /// <param name="latin1Fallback">Read a file that is not valid UTF-8 as ISO-8859-1 (every byte a character)
    /// instead of rejecting it; old Project Gutenberg texts are often Latin-1.</param>
    public static Corpus Load(string? path, CancellationToken ct = default, bool latin1Fallback = false)
    {
        var corpus = path is null ? SdkDocsCorpus.Load(ct) : LoadFiles(path, latin1Fallback, ct);
        if (corpus.Train.Count == 0)
            throw new UnmaskException($"{path ?? corpus.Name}: the corpus is empty (no non-blank line)");
        return corpus;
    }

    /// <summary>A hash of every line and its side of the split: token stores cached for one corpus never serve another.</summary>
    public string ContentHash => _contentHash ??= ComputeContentHash();
    string? _contentHash;

    string ComputeContentHash()
    {
        using var hash = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        foreach (var (lines, tag) in new[] { (Train, "T"), (Validation, "V") })
            foreach (var line in lines) hash.AppendData(Encoding.UTF8.GetBytes(tag + line + "\n"));
        return Convert.ToHexString(hash.GetHashAndReset())[..16].ToLowerInvariant();
    }

    public static bool IsValidationKey(string key) => Fnv1a(Encoding.UTF8.GetBytes(key)) % ValidationModulus == 0;

    static ulong Fnv1a(ReadOnlySpan<byte> bytes)
    {
        ulong hash = 14695981039346656037;
        foreach (var b in bytes) hash = (hash ^ b) * 1099511628211;
        return hash;
    }

    static readonly string[] Extensions = [".txt", ".txt.gz", ".jsonl", ".jsonl.gz"];

    static bool IsSupported(string file) => Extensions.Any(e => file.EndsWith(e, StringComparison.OrdinalIgnoreCase));

    static Corpus LoadFiles(string path, bool latin1Fallback, CancellationToken ct)
    {
        string root;
        List<string> files;
        if (File.Exists(path))
        {
            if (!IsSupported(path)) throw new UnmaskException($"{path}: unsupported corpus file (expected {string.Join(", ", Extensions)})");
            root = Path.GetDirectoryName(Path.GetFullPath(path))!;
            files = [Path.GetFullPath(path)];
        }
        else if (Directory.Exists(path))
        {
            root = Path.GetFullPath(path);
            files = Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories).Where(IsSupported).Order(StringComparer.Ordinal).ToList();
            if (files.Count == 0) throw new UnmaskException($"{path}: no corpus files in folder (expected {string.Join(", ", Extensions)})");
        }
        else throw new UnmaskException($"{path}: corpus not found");

        var train = new List<string>();
        var validation = new List<string>();
        var encoding = latin1Fallback ? LineEncoding.Utf8OrLatin1 : LineEncoding.Utf8;
        foreach (var file in files)
        {
            ct.ThrowIfCancellationRequested();
            var relative = Path.GetRelativePath(root, file);
            bool json = file.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase) || file.EndsWith(".jsonl.gz", StringComparison.OrdinalIgnoreCase);
            try
            {
                var lines = json ? JsonLinesReader.Read(file, o => JsonLinesReader.String(o, "text"), encoding: encoding) : JsonLinesReader.ReadLines(file, encoding);
                foreach (var (number, line) in lines)
                {
                    var text = line.Trim();
                    if (text.Length == 0) continue;
                    (IsValidationKey($"{relative}:{number}") ? validation : train).Add(text);
                }
            }
            catch (UnmaskException e) when (e.InnerException is DecoderFallbackException)
            {
                throw new UnmaskException($"{e.Message} (--encoding auto reads such files as Latin-1)", e);
            }
        }
        return new Corpus(Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(path))), train, validation);
    }
}
