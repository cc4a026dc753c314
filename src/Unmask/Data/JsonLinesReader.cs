using System.IO.Compression;
using System.Text;
using System.Text.Json;

namespace Unmask.Data;

/// <summary>How the bytes of a line-oriented input file become text.</summary>
public enum LineEncoding
{
    /// <summary>UTF-8 (a byte-order mark is skipped); a line that is not valid UTF-8 stops the read.</summary>
    Utf8,

    /// <summary>
    /// UTF-8 when the whole file is, otherwise the whole file as Latin-1 (every byte a character): deciding line by
    /// line would garble the lines before the first bad byte.
    /// </summary>
    Utf8OrLatin1,
}

/// <summary>A line's content rejected by a field reader; the message names the field.</summary>
public sealed class InputFormatException(string message) : Exception(message);

/// <summary>
/// Streams line-oriented input (JSON Lines or plain text, gzip-compressed when the name ends in .gz) with 1-based
/// line numbers. Bad input is an <see cref="UnmaskException"/> reading "FILE:LINE: problem".
/// </summary>
public static class JsonLinesReader
{
    static readonly UTF8Encoding StrictUtf8 = new(false, throwOnInvalidBytes: true);

    /// <summary>
    /// Every line with its number. Lines end at '\n' only and lose a trailing '\r', so the numbers are the ones an
    /// editor shows and stay stable for keys built from them; a final newline does not start another line.
    /// </summary>
    public static IEnumerable<(int Line, string Text)> ReadLines(string path, LineEncoding encoding = LineEncoding.Utf8)
    {
        if (!File.Exists(path)) throw new UnmaskException($"{path}: file not found");
        return Lines(path, encoding == LineEncoding.Utf8OrLatin1 && !IsUtf8(path) ? Encoding.Latin1 : StrictUtf8);
    }

    /// <summary>
    /// Every non-blank line parsed as a JSON object and turned into a value by <paramref name="parse"/>, which rejects
    /// a line by throwing <see cref="InputFormatException"/>. A bad line stops the read, or, when
    /// <paramref name="skip"/> is given, is handed to it (line number, problem) and left out.
    /// </summary>
    public static IEnumerable<(int Line, T Value)> Read<T>(string path, Func<JsonElement, T> parse, Action<int, string>? skip = null,
        LineEncoding encoding = LineEncoding.Utf8)
    {
        foreach (var (line, text) in ReadLines(path, encoding))
        {
            if (string.IsNullOrWhiteSpace(text)) continue;
            var (value, problem) = Parse(text, parse);
            if (problem is null)
            {
                yield return (line, value!);
                continue;
            }
            if (skip is null) throw new UnmaskException($"{path}:{line}: {problem}");
            skip(line, problem);
        }
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

    static (T? Value, string? Problem) Parse<T>(string text, Func<JsonElement, T> parse)
    {
        try
        {
            using var doc = JsonDocument.Parse(text);
            return doc.RootElement.ValueKind == JsonValueKind.Object ? (parse(doc.RootElement), null) : (default, "expected a JSON object");
        }
        catch (JsonException e)
        {
            return (default, $"not valid JSON ({e.Message})");
        }
        catch (InputFormatException e)
        {
            return (default, e.Message);
        }
    }

    static IEnumerable<(int Line, string Text)> Lines(string path, Encoding encoding)
    {
        using var input = Open(path);
        var buffer = new byte[1 << 16];
        int end = 0;
        bool eof = false;
        while (end < 3 && !eof)
        {
            int read = Read(path, input, buffer, end);
            eof = read == 0;
            end += read;
        }
        int start = end >= 3 && buffer[0] == 0xEF && buffer[1] == 0xBB && buffer[2] == 0xBF ? 3 : 0;
        int scanned = start, number = 0;
        while (true)
        {
            int newline = Array.IndexOf(buffer, (byte)'\n', scanned, end - scanned);
            if (newline >= 0)
            {
                yield return (++number, Decode(path, number, encoding, buffer, start, newline));
                start = scanned = newline + 1;
                continue;
            }
            if (eof)
            {
                if (start < end) yield return (++number, Decode(path, number, encoding, buffer, start, end));
                yield break;
            }
            if (start > 0)
            {
                Buffer.BlockCopy(buffer, start, buffer, 0, end - start);
                end -= start;
                start = 0;
            }
            if (end == buffer.Length) Array.Resize(ref buffer, buffer.Length * 2);
            scanned = end;
            int more = Read(path, input, buffer, end);
            eof = more == 0;
            end += more;
        }
    }

    static string Decode(string path, int number, Encoding encoding, byte[] bytes, int start, int end)
    {
        try
        {
            return encoding.GetString(bytes, start, end - start).TrimEnd('\r');
        }
        catch (DecoderFallbackException e)
        {
            // The inner exception tells callers this is an encoding problem, for a hint of their own.
            throw new UnmaskException($"{path}:{number}: not valid UTF-8", e);
        }
    }

    static bool IsUtf8(string path)
    {
        using var input = Open(path);
        var decoder = StrictUtf8.GetDecoder();
        var buffer = new byte[1 << 16];
        try
        {
            int read;
            while ((read = Read(path, input, buffer, 0)) > 0) decoder.GetCharCount(buffer, 0, read, flush: false);
            decoder.GetCharCount([], 0, 0, flush: true);
            return true;
        }
        catch (DecoderFallbackException)
        {
            return false;
        }
    }

    static Stream Open(string path)
    {
        var file = File.OpenRead(path);
        return path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase) ? new GZipStream(file, CompressionMode.Decompress) : file;
    }

    static int Read(string path, Stream input, byte[] buffer, int offset)
    {
        try
        {
            return input.Read(buffer, offset, buffer.Length - offset);
        }
        catch (InvalidDataException e)
        {
            throw new UnmaskException($"{path}: not a valid gzip file ({e.Message})", e);
        }
    }
}
