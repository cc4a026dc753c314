using System.IO.Compression;
using System.Text;
using System.Text.Json;

namespace Unmask.Evaluation;

/// <summary>What to do with an input line that cannot be used.</summary>
public enum BadLinePolicy
{
    /// <summary>Stop with an error naming the file and line.</summary>
    Fail,

    /// <summary>Leave the line out and record it as an <see cref="InputIssue"/>.</summary>
    Skip,
}

/// <summary>A line left out of an evaluation, with where it is and why.</summary>
public sealed record InputIssue(string File, int Line, string Message)
{
    public override string ToString() => $"{File}:{Line}: {Message}";
}

/// <summary>A line's content rejected by a field reader; the message names the field.</summary>
public sealed class InputFormatException(string message) : Exception(message);

/// <summary>Line-oriented input files (plain or gzip-compressed UTF-8) read with line numbers.</summary>
public static class EvalInput
{
    /// <summary>
    /// Parses every non-blank line of a JSON Lines file with <paramref name="parse"/>. A line that is not a JSON object,
    /// or that <paramref name="parse"/> rejects with <see cref="InputFormatException"/>, stops the read or is recorded
    /// in <paramref name="issues"/>, by <paramref name="policy"/>.
    /// </summary>
    public static List<(int Line, T Value)> ReadJsonLines<T>(string path, Func<JsonElement, T> parse, BadLinePolicy policy,
        ICollection<InputIssue> issues)
    {
        var values = new List<(int, T)>();
        foreach (var (line, number) in ReadLines(path))
        {
            if (string.IsNullOrWhiteSpace(line)) continue;
            string? problem = null;
            try
            {
                using var doc = JsonDocument.Parse(line);
                if (doc.RootElement.ValueKind != JsonValueKind.Object) problem = "expected a JSON object";
                else values.Add((number, parse(doc.RootElement)));
            }
            catch (JsonException e)
            {
                problem = $"not valid JSON ({e.Message})";
            }
            catch (InputFormatException e)
            {
                problem = e.Message;
            }
            if (problem is null) continue;
            var issue = new InputIssue(path, number, problem);
            if (policy == BadLinePolicy.Fail) throw new UnmaskException(issue.ToString());
            issues.Add(issue);
        }
        return values;
    }

    /// <summary>Every line of a text file with its 1-based number; a final newline does not start another line.</summary>
    public static IEnumerable<(string Line, int Number)> ReadLines(string path)
    {
        if (!File.Exists(path)) throw new UnmaskException($"{path}: file not found");
        byte[] bytes;
        try
        {
            using var stream = File.OpenRead(path);
            using var input = path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase) ? new GZipStream(stream, CompressionMode.Decompress) : (Stream)stream;
            using var buffer = new MemoryStream();
            input.CopyTo(buffer);
            bytes = buffer.ToArray();
        }
        catch (InvalidDataException e)
        {
            throw new UnmaskException($"{path}: not a valid gzip file ({e.Message})", e);
        }
        var strict = new UTF8Encoding(false, throwOnInvalidBytes: true);
        int start = bytes.Length >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF ? 3 : 0;
        var lines = new List<(string, int)>();
        for (int number = 1; start < bytes.Length; number++)
        {
            int end = Array.IndexOf(bytes, (byte)'\n', start);
            if (end < 0) end = bytes.Length;
            try
            {
                lines.Add((strict.GetString(bytes, start, end - start).TrimEnd('\r'), number));
            }
            catch (DecoderFallbackException)
            {
                throw new UnmaskException($"{path}:{number}: not valid UTF-8");
            }
            start = end + 1;
        }
        return lines;
    }

    public static string String(JsonElement obj, string field)
    {
        if (!obj.TryGetProperty(field, out var value)) throw new InputFormatException($"missing field \"{field}\"");
        if (value.ValueKind != JsonValueKind.String) throw new InputFormatException($"field \"{field}\" must be a string");
        return value.GetString()!;
    }

    public static string? OptionalString(JsonElement obj, string field)
    {
        if (!obj.TryGetProperty(field, out var value) || value.ValueKind == JsonValueKind.Null) return null;
        if (value.ValueKind != JsonValueKind.String) throw new InputFormatException($"field \"{field}\" must be a string");
        return value.GetString()!;
    }

    public static double? OptionalNumber(JsonElement obj, string field)
    {
        if (!obj.TryGetProperty(field, out var value) || value.ValueKind == JsonValueKind.Null) return null;
        if (value.ValueKind != JsonValueKind.Number || !value.TryGetDouble(out var number) || !double.IsFinite(number))
            throw new InputFormatException($"field \"{field}\" must be a finite number");
        return number;
    }
}
