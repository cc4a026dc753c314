using System.Text.Json;
using System.Text.Json.Nodes;

namespace Unmask.Training;

/// <summary>One metrics line: the split ("train" or "validation"), where training stood, and the measured values.</summary>
public sealed record MetricsRecord(string Split, long Step, long Tokens, IReadOnlyDictionary<string, double> Values);

/// <summary>
/// Appends metrics as JSON Lines, flushing each line so a crash loses at most the line being written. On resume
/// the file is cut back (atomically) to the checkpoint's step so the log reads as one uninterrupted run.
/// </summary>
public sealed class MetricsLog : IDisposable
{
    readonly StreamWriter _writer;
    readonly List<MetricsRecord> _records = new();

    public IReadOnlyList<MetricsRecord> Records => _records;
    public string Path { get; }

    MetricsLog(string path, IEnumerable<MetricsRecord> kept, StreamWriter? writer = null)
    {
        Path = path;
        _records.AddRange(kept);
        _writer = writer ?? new StreamWriter(new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read));
    }

    /// <summary>Keeps records in memory and writes no file: the log of a rank other than 0.</summary>
    public static MetricsLog InMemory() => new("", [], StreamWriter.Null);

    public static MetricsLog Create(string path) => Open(path, keepUpToStep: -1);

    /// <summary>Keeps the lines with step ≤ <paramref name="keepUpToStep"/> (none when negative) and appends after them.</summary>
    public static MetricsLog Open(string path, long keepUpToStep)
    {
        var kept = keepUpToStep < 0 || !File.Exists(path)
            ? new List<MetricsRecord>()
            : Read(path).Where(r => r.Step <= keepUpToStep).ToList();
        var temp = path + ".tmp";
        File.WriteAllLines(temp, kept.Select(Serialize));
        File.Move(temp, path, overwrite: true);
        return new MetricsLog(path, kept);
    }

    public void Write(MetricsRecord record)
    {
        _records.Add(record);
        _writer.WriteLine(Serialize(record));
        _writer.Flush();
    }

    public static IReadOnlyList<MetricsRecord> Read(string path)
    {
        var records = new List<MetricsRecord>();
        int lineNumber = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            try
            {
                var obj = JsonNode.Parse(line)!.AsObject();
                var values = new Dictionary<string, double>();
                foreach (var (key, value) in obj)
                    if (key is not ("split" or "step" or "tokens") && value is JsonValue v && v.TryGetValue<double>(out var d))
                        values[key] = d;
                records.Add(new MetricsRecord((string)obj["split"]!, (long)obj["step"]!, (long)obj["tokens"]!, values));
            }
            catch (Exception e) when (e is JsonException or InvalidOperationException or NullReferenceException or FormatException)
            {
                throw new UnmaskException($"{path}:{lineNumber}: not a metrics record ({e.Message})", e);
            }
        }
        return records;
    }

    static string Serialize(MetricsRecord r)
    {
        var obj = new JsonObject { ["split"] = r.Split, ["step"] = r.Step, ["tokens"] = r.Tokens };
        foreach (var (key, value) in r.Values) obj[key] = double.IsFinite(value) ? value : null;
        return obj.ToJsonString();
    }

    public void Dispose() => _writer.Dispose();
}
