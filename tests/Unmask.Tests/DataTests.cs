using System.IO.Compression;
using System.Text;
using Unmask.Data;

namespace Unmask.Tests;

public class DataTests : IDisposable
{
    readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("unmask-data");

    public void Dispose() => _dir.Delete(recursive: true);

    string Write(string name, string content)
    {
        var path = Path.Combine(_dir.FullName, name);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        if (name.EndsWith(".gz"))
        {
            using var gz = new GZipStream(File.Create(path), CompressionLevel.Fastest);
            gz.Write(Encoding.UTF8.GetBytes(content));
        }
        else File.WriteAllText(path, content);
        return path;
    }

    [Fact]
    public void SdkDocumentationCorpusIsFoundAndRenderedAsProse()
    {
        var corpus = Corpus.Load(null);
        Assert.Equal(SdkDocsCorpus.Name, corpus.Name);
        Assert.True(corpus.Train.Count > 50_000, $"{corpus.Train.Count} training lines");
        double share = (double)corpus.Validation.Count / (corpus.Train.Count + corpus.Validation.Count);
        Assert.InRange(share, 0.005, 0.02);
        var all = corpus.Train.Concat(corpus.Validation).ToList();
        Assert.Equal(all.Count, all.Distinct(StringComparer.Ordinal).Count());
        Assert.DoesNotContain(all, l => l.Contains("cref=") || l.Contains("<see") || l.Contains("<paramref") || l.Contains("  "));
        Assert.Contains(all, l => l.StartsWith("Initializes a new instance of the String class", StringComparison.Ordinal));
        Assert.Contains(all, l => l.Contains("if the handle is not valid; otherwise, false.", StringComparison.Ordinal));
        var again = Corpus.Load(null);
        Assert.Equal(corpus.Validation, again.Validation);
    }

    [Theory]
    [InlineData("T:System.String", "String")]
    [InlineData("M:System.String.Join(System.String,System.String[])", "Join")]
    [InlineData("T:System.Collections.Generic.List`1", "List")]
    [InlineData("P:System.Array.Length", "Length")]
    public void CrefRendersAsTheShortName(string cref, string expected) => Assert.Equal(expected, SdkDocsCorpus.CrefName(cref));

    [Fact]
    public void ReadsEveryFileFormatFromAFolderInPathOrder()
    {
        Write("a.txt", "first line\n\n  second line  \n");
        Write("b/c.txt.gz", "gzipped line\n");
        Write("d.jsonl", "{\"text\": \"json line\", \"id\": 1}\n\n{\"text\": \"another\"}\n");
        Write("e.jsonl.gz", "{\"text\": \"gzipped json\"}\n");
        Write("ignored.csv", "x,y\n");
        var corpus = Corpus.Load(_dir.FullName);
        var all = corpus.Train.Concat(corpus.Validation).ToList();
        Assert.Equal(["another", "first line", "gzipped json", "gzipped line", "json line", "second line"], all.Order(StringComparer.Ordinal));
        var trainOrder = corpus.Train.ToList();
        Assert.Equal(trainOrder.OrderBy(l => Array.IndexOf(["first line", "second line", "gzipped line", "json line", "another", "gzipped json"], l)), trainOrder);
    }

    [Fact]
    public void BadInputsNameTheFileAndLine()
    {
        Assert.Contains("not found", Assert.Throws<UnmaskException>(() => Corpus.Load(Path.Combine(_dir.FullName, "missing"))).Message);
        var emptyDir = Directory.CreateDirectory(Path.Combine(_dir.FullName, "empty"));
        Assert.Contains("no corpus files", Assert.Throws<UnmaskException>(() => Corpus.Load(emptyDir.FullName)).Message);
        var blank = Write("blank.txt", "\n   \n");
        Assert.Contains("empty", Assert.Throws<UnmaskException>(() => Corpus.Load(blank)).Message);
        var latin1 = Path.Combine(_dir.FullName, "latin1.txt");
        File.WriteAllBytes(latin1, [.. Encoding.UTF8.GetBytes("fine\nalso fine\n"), 0x63, 0x61, 0x66, 0xE9, 0x0A]);
        Assert.Contains("latin1.txt:3: not valid UTF-8", Assert.Throws<UnmaskException>(() => Corpus.Load(latin1)).Message);
        var badJson = Write("bad.jsonl", "{\"text\": \"ok\"}\n{\"txt\": \"no text field\"}\n");
        Assert.Contains("bad.jsonl:2", Assert.Throws<UnmaskException>(() => Corpus.Load(badJson)).Message);
        var notJson = Write("notjson.jsonl", "{broken\n");
        Assert.Contains("notjson.jsonl:1: not valid JSON", Assert.Throws<UnmaskException>(() => Corpus.Load(notJson)).Message);
    }

    [Fact]
    public void Latin1FallbackReadsTheWholeFileAsLatin1AndLeavesUtf8FilesAlone()
    {
        var latin1 = Path.Combine(_dir.FullName, "latin1.txt");
        File.WriteAllBytes(latin1, [.. Encoding.Latin1.GetBytes("na\u00EFve first line\r\nsecond\n"), 0x63, 0x61, 0x66, 0xE9, 0x0A]);
        var utf8 = Write("utf8.txt", "d\u00E9j\u00E0 vu\n");
        var corpus = Corpus.Load(_dir.FullName, latin1Fallback: true);
        Assert.Equal(["caf\u00E9", "d\u00E9j\u00E0 vu", "na\u00EFve first line", "second"],
            corpus.Train.Concat(corpus.Validation).Order(StringComparer.Ordinal));
        Assert.Contains("latin1.txt:1: not valid UTF-8", Assert.Throws<UnmaskException>(() => Corpus.Load(latin1)).Message);
    }

    static int[] FakeEncode(string line) => line.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(w => 5 + (w.Length * 7 + w[0]) % 90).ToArray();

    [Fact]
    public void TokenStoreRoundTripsAndIsReusedOnlyWhenItMatches()
    {
        var lines = Enumerable.Range(0, 5000).Select(i => $"line {i} has {i % 13} words here").ToList();
        var info = new TokenStoreInfo("fp-1", "test", 100);
        var dir = Path.Combine(_dir.FullName, "store");
        using (var store = TokenStore.OpenOrBuild(dir, lines, FakeEncode, info))
        {
            Assert.Equal(5000, store.Documents);
            Assert.Equal(lines.Sum(l => FakeEncode(l).Length), store.Tokens);
            Assert.Equal(FakeEncode(lines[1234]), store.Document(1234).ToArray());
        }
        Assert.DoesNotContain(Directory.GetFiles(dir), f => f.EndsWith(".tmp"));
        var stamp = File.GetLastWriteTimeUtc(Path.Combine(dir, "tokens.bin"));
        int calls = 0;
        using (TokenStore.OpenOrBuild(dir, lines, l => { Interlocked.Increment(ref calls); return FakeEncode(l); }, info)) { }
        Assert.Equal(0, calls);
        Assert.Equal(stamp, File.GetLastWriteTimeUtc(Path.Combine(dir, "tokens.bin")));
        using (var rebuilt = TokenStore.OpenOrBuild(dir, lines, l => { Interlocked.Increment(ref calls); return [7]; }, info with { TokenizerFingerprint = "fp-2" }))
            Assert.Equal(5000, rebuilt.Tokens);
        Assert.Equal(5000, calls);
    }

    [Fact]
    public async Task ConcurrentRunsOnOneCorpusBuildItsTokenStoreOnce()
    {
        var lines = Enumerable.Range(0, 20000).Select(i => $"line {i} has {i % 13} words here").ToList();
        var info = new TokenStoreInfo("fp-1", "test", 100);
        var dir = Path.Combine(_dir.FullName, "shared-store");
        int calls = 0;
        int[] Encode(string l)
        {
            Interlocked.Increment(ref calls);
            return FakeEncode(l);
        }
        // Two pretraining runs started together used to collide on the store's temporary files.
        var stores = await Task.WhenAll(Enumerable.Range(0, 2).Select(_ => Task.Run(() => TokenStore.OpenOrBuild(dir, lines, Encode, info))));
        try
        {
            Assert.Equal(lines.Count, calls);
            Assert.All(stores, s => Assert.Equal(lines.Sum(l => FakeEncode(l).Length), s.Tokens));
        }
        finally
        {
            foreach (var store in stores) store.Dispose();
        }
    }

    [Fact]
    public void PackerWrapsTheDocumentStreamInClsAndSep()
    {
        const int cls = 2, sep = 3;
        var lines = Enumerable.Range(0, 300).Select(i => string.Join(' ', Enumerable.Repeat("w" + i, 1 + i % 17))).ToList();
        using var store = TokenStore.OpenOrBuild(Path.Combine(_dir.FullName, "pack"), lines, FakeEncode, new TokenStoreInfo("f", "p", 100));
        var packer = new SequencePacker(store, 16, cls, sep);
        var stream = lines.SelectMany(l => FakeEncode(l).Append(sep)).Select(i => (long)i).ToList();
        Assert.Equal(stream.Count / 14, packer.Count);
        var inner = new List<long>();
        var buffer = new long[16];
        for (long i = 0; i < packer.Count; i++)
        {
            packer.CopySequence(i, buffer);
            Assert.Equal(cls, buffer[0]);
            Assert.Equal(sep, buffer[^1]);
            inner.AddRange(buffer[1..^1]);
        }
        Assert.Equal(stream.Take(inner.Count), inner);
    }

    [Fact]
    public void BatcherIsDeterministicPermutesEachEpochAndResumesExactly()
    {
        var lines = Enumerable.Range(0, 400).Select(i => $"doc {i} " + string.Join(' ', Enumerable.Repeat("x", i % 9))).ToList();
        using var store = TokenStore.OpenOrBuild(Path.Combine(_dir.FullName, "batch"), lines, l => [.. l.Split(' ').Select((w, j) => 5 + (j + l.Length) % 90)], new TokenStoreInfo("f", "b", 100));
        var packer = new SequencePacker(store, 8, 2, 3);
        List<long[]> Take(Batcher b, int n) => Enumerable.Range(0, n).Select(_ => b.Next().InputIds).ToList();

        using var a = new Batcher(packer, 4, seed: 1);
        using var same = new Batcher(packer, 4, seed: 1);
        using var other = new Batcher(packer, 4, seed: 2);
        var first = Take(a, 10);
        Assert.Equal(first, Take(same, 10));
        Assert.NotEqual(first, Take(other, 10));

        var position = a.Position;
        var continued = Take(a, 20);
        using var resumed = new Batcher(packer, 4, seed: 1, position);
        Assert.Equal(continued, Take(resumed, 20));

        var order = Batcher.Shuffle(packer.Count, 1, 0);
        Assert.Equal(Enumerable.Range(0, (int)packer.Count).Select(i => (long)i), order.Order());
        Assert.NotEqual(order, Batcher.Shuffle(packer.Count, 1, 1));
    }
}
