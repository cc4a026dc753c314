using System.IO.Compression;
using System.Text;
using Unmask.Data;

namespace Unmask.Tests;

public class JsonLinesReaderTests : IDisposable
{
    readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("unmask-jsonl");

    public void Dispose() => _dir.Delete(recursive: true);

    string Write(string name, byte[] content)
    {
        var path = Path.Combine(_dir.FullName, name);
        if (name.EndsWith(".gz"))
        {
            using var gz = new GZipStream(File.Create(path), CompressionLevel.Fastest);
            gz.Write(content);
        }
        else File.WriteAllBytes(path, content);
        return path;
    }

    static List<(int Line, string Text)> Texts(string path, Action<int, string>? skip = null) =>
        JsonLinesReader.Read(path, o => JsonLinesReader.String(o, "text"), skip).ToList();

    [Fact]
    public void BadLinesStopTheReadNamingFileAndLine()
    {
        var path = Write("in.jsonl", Encoding.UTF8.GetBytes("{\"text\": \"a\"}\n\n{\"text\": \n[1]\n{\"txt\": \"b\"}\n{\"text\": 3}\n"));
        Assert.StartsWith($"{path}:3: not valid JSON (", Assert.Throws<UnmaskException>(() => Texts(path)).Message);

        var skipped = new List<string>();
        Assert.Equal([(1, "a")], Texts(path, (line, problem) => skipped.Add($"{line}: {problem}")));
        Assert.Equal(4, skipped.Count);
        Assert.StartsWith("3: not valid JSON (", skipped[0]);
        Assert.Equal(["4: expected a JSON object", "5: missing field \"text\"", "6: field \"text\" must be a string"], skipped[1..]);

        var notUtf8 = Write("latin1.jsonl", [.. Encoding.UTF8.GetBytes("{\"text\": \"ok\"}\r\n"), 0x63, 0xE9, 0x0A]);
        var e = Assert.Throws<UnmaskException>(() => Texts(notUtf8, (_, _) => { }));
        Assert.Equal($"{notUtf8}:2: not valid UTF-8", e.Message);
        Assert.IsType<DecoderFallbackException>(e.InnerException);

        var missing = Path.Combine(_dir.FullName, "missing.jsonl");
        Assert.Equal($"{missing}: file not found", Assert.Throws<UnmaskException>(() => Texts(missing)).Message);
        var notGzip = Path.Combine(_dir.FullName, "plain.jsonl.gz");
        File.WriteAllText(notGzip, "{\"text\": \"a\"}\n");
        Assert.StartsWith($"{notGzip}: not a valid gzip file", Assert.Throws<UnmaskException>(() => Texts(notGzip)).Message);
    }

    [Fact]
    public void LinesEndAtNewlinesOnlyAcrossBufferBoundaries()
    {
        var longLine = new string('x', 200_000);
        var content = $"\uFEFFfirst\r\nwith\rcarriage return\n\n{longLine}\nlast without newline";
        foreach (var name in new[] { "t.txt", "t.txt.gz" })
        {
            var path = Write(name, Encoding.UTF8.GetBytes(content));
            Assert.Equal([(1, "first"), (2, "with\rcarriage return"), (3, ""), (4, longLine), (5, "last without newline")],
                JsonLinesReader.ReadLines(path).ToList());
        }
        Assert.Empty(JsonLinesReader.ReadLines(Write("bom.txt", [0xEF, 0xBB, 0xBF])));
        Assert.Equal([(1, "")], JsonLinesReader.ReadLines(Write("newline.txt", [0x0A])).ToList());
    }

    [Fact]
    public void Latin1FallbackDecidesForTheWholeFile()
    {
        var path = Write("mixed.txt.gz", [.. Encoding.Latin1.GetBytes("na\u00EFve\n"), 0x63, 0xE9, 0x0A]);
        Assert.Equal([(1, "na\u00EFve"), (2, "c\u00E9")], JsonLinesReader.ReadLines(path, LineEncoding.Utf8OrLatin1).ToList());
        var utf8 = Write("utf8.txt", Encoding.UTF8.GetBytes("d\u00E9j\u00E0\n"));
        Assert.Equal([(1, "d\u00E9j\u00E0")], JsonLinesReader.ReadLines(utf8, LineEncoding.Utf8OrLatin1).ToList());
    }
}
