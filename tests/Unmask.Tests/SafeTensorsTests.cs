using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using TorchSharp;
using Unmask.Checkpoints;
using static TorchSharp.torch;

namespace Unmask.Tests;

public class SafeTensorsTests : IDisposable
{
    readonly string dir = Path.Combine(Path.GetTempPath(), "unmask-st-" + Guid.NewGuid().ToString("N"));

    public SafeTensorsTests() => Directory.CreateDirectory(dir);

    public void Dispose() => Directory.Delete(dir, recursive: true);

    [Fact]
    public void RoundTripsEveryDtypeExactly()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(1);
        var tensors = new Dictionary<string, Tensor>
        {
            ["f32"] = torch.randn(3, 5),
            ["f64"] = torch.randn(4, dtype: ScalarType.Float64),
            ["f16"] = torch.randn(2, 3).to(ScalarType.Float16),
            ["bf16"] = torch.randn(7).to(ScalarType.BFloat16),
            ["i64"] = torch.tensor(new long[] { long.MinValue, -1, 0, long.MaxValue }),
            ["i32"] = torch.tensor(new[] { int.MinValue, 5, int.MaxValue }),
            ["u8"] = torch.tensor(new byte[] { 0, 7, 255 }),
            ["bool"] = torch.tensor(new[] { true, false, true }),
            ["scalar"] = torch.tensor(3.5f),
            ["empty"] = torch.zeros(0, 4),
            ["transposed"] = torch.arange(6, dtype: ScalarType.Float32).reshape(2, 3).t(), // not contiguous
        };
        var path = Path.Combine(dir, "all.safetensors");
        SafeTensors.Save(path, tensors, new Dictionary<string, string> { ["step"] = "12" });

        var loaded = SafeTensors.Load(path); // created inside this test's dispose scope
        Assert.Equal(tensors.Keys.Order(), loaded.Keys.Order());
        foreach (var (name, expected) in tensors)
        {
            var actual = loaded[name];
            Assert.Equal(expected.dtype, actual.dtype);
            Assert.Equal(expected.shape, actual.shape);
            Assert.True(expected.contiguous().bytes.SequenceEqual(actual.bytes), $"bytes of '{name}' differ");
        }

        var header = SafeTensors.ReadHeader(path);
        Assert.Equal("pt", header.Metadata["format"]);
        Assert.Equal("12", header.Metadata["step"]);
        Assert.Equal(tensors.Keys.Order(StringComparer.Ordinal), header.Tensors.Select(t => t.Name));
        Assert.Empty(Directory.GetFiles(dir, "*.tmp"));
    }

    [Fact]
    public void LayoutIsAlignedContiguousAndSortedByName()
    {
        using var scope = torch.NewDisposeScope();
        var path = Path.Combine(dir, "layout.safetensors");
        SafeTensors.Save(path, new Dictionary<string, Tensor> { ["b"] = torch.ones(3), ["a"] = torch.zeros(2, 2), ["B"] = torch.ones(1) });

        var bytes = File.ReadAllBytes(path);
        var headerLength = (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.Equal(0, (8 + headerLength) % 8);
        var headerText = Encoding.UTF8.GetString(bytes, 8, (int)headerLength);
        Assert.StartsWith("{\"__metadata__\":{\"format\":\"pt\"}", headerText);
        Assert.True(headerText.TrimEnd(' ').Length >= headerText.Length - 7);

        using var header = JsonDocument.Parse(headerText);
        var entries = header.RootElement.EnumerateObject().Where(p => p.Name != "__metadata__").ToList();
        Assert.Equal(new[] { "B", "a", "b" }, entries.Select(e => e.Name));
        long offset = 0;
        foreach (var entry in entries)
        {
            var offsets = entry.Value.GetProperty("data_offsets").EnumerateArray().Select(o => o.GetInt64()).ToArray();
            Assert.Equal(offset, offsets[0]);
            offset = offsets[1];
        }
        Assert.Equal(bytes.Length - 8 - headerLength, offset);
    }

    [Fact]
    public void ReadsTheHuggingFaceFixtureFile()
    {
        var path = Path.Combine(SharedFixtures.HfReference, "models", "bert-uncased", "model.safetensors");
        var expected = BertReferenceFixtures.Document("bert-uncased").GetProperty("safetensors_tensor_names")
            .EnumerateArray().Select(n => n.GetString()!).ToList();
        var tensors = SafeTensors.Load(path);
        try
        {
            Assert.Equal(expected, tensors.Keys.Order(StringComparer.Ordinal));
            Assert.Equal(new long[] { 384, 32 }, tensors["bert.embeddings.word_embeddings.weight"].shape);
            Assert.All(tensors.Values, t => Assert.Equal(ScalarType.Float32, t.dtype));
        }
        finally
        {
            foreach (var tensor in tensors.Values) tensor.Dispose();
        }
    }

    [Fact]
    public void SaveReplacesAnExistingFile()
    {
        using var scope = torch.NewDisposeScope();
        var path = Path.Combine(dir, "replace.safetensors");
        SafeTensors.Save(path, new Dictionary<string, Tensor> { ["x"] = torch.ones(100) });
        SafeTensors.Save(path, new Dictionary<string, Tensor> { ["y"] = torch.ones(2) });
        Assert.Equal(["y"], SafeTensors.ReadHeader(path).Tensors.Select(t => t.Name));
        Assert.Single(Directory.GetFiles(dir));
    }

    [Fact]
    public void MappedFileCopiesIntoDestinationsOfAnyTypeAndLayout()
    {
        using var scope = torch.NewDisposeScope();
        var path = Path.Combine(dir, "mapped.safetensors");
        var values = torch.arange(12, dtype: ScalarType.Float32).reshape(3, 4) / 3;
        SafeTensors.Save(path, new Dictionary<string, Tensor> { ["half"] = values.to(ScalarType.Float16), ["full"] = values, ["ids"] = torch.arange(3) });
        using var source = SafeTensors.Map(path);
        Assert.Equal(["full", "half", "ids"], source.Names.Order(StringComparer.Ordinal));
        Assert.Equal([3L, 4L], source.Shape("half"));
        Assert.False(source.IsFloatingPoint("ids"));

        var same = torch.zeros(3, 4);
        source.CopyTo("full", same);
        Assert.Equal(values.data<float>().ToArray(), same.data<float>().ToArray());

        var widened = torch.zeros(3, 4);
        source.CopyTo("half", widened);
        Assert.Equal(values.to(ScalarType.Float16).to(ScalarType.Float32).data<float>().ToArray(), widened.data<float>().ToArray());

        // A transposed view is not contiguous, so the bytes cannot go straight in; the values must still land right.
        var transposed = torch.zeros(4, 3).t();
        source.CopyTo("full", transposed);
        Assert.Equal(values.data<float>().ToArray(), transposed.contiguous().data<float>().ToArray());
    }

    [Fact]
    public void CorruptFilesAreReportedWithFileAndTensor()
    {
        using var scope = torch.NewDisposeScope();
        var good = Path.Combine(dir, "good.safetensors");
        SafeTensors.Save(good, new Dictionary<string, Tensor> { ["alpha"] = torch.ones(10), ["omega"] = torch.ones(10) });
        var bytes = File.ReadAllBytes(good);

        var truncated = Path.Combine(dir, "truncated.safetensors");
        File.WriteAllBytes(truncated, bytes[..^4]);
        var error = Assert.Throws<UnmaskException>(() => SafeTensors.Load(truncated));
        Assert.Contains(truncated, error.Message);
        Assert.Contains("omega", error.Message);

        var tiny = Path.Combine(dir, "tiny.safetensors");
        File.WriteAllBytes(tiny, bytes[..5]);
        Assert.Contains(tiny, Assert.Throws<UnmaskException>(() => SafeTensors.Load(tiny)).Message);

        var hugeHeader = Path.Combine(dir, "huge.safetensors");
        var copy = (byte[])bytes.Clone();
        BinaryPrimitives.WriteUInt64LittleEndian(copy, 1UL << 40);
        File.WriteAllBytes(hugeHeader, copy);
        Assert.Contains("header length", Assert.Throws<UnmaskException>(() => SafeTensors.Load(hugeHeader)).Message);

        var headerLength = (int)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        var text = Encoding.UTF8.GetString(bytes, 8, headerLength);
        foreach (var (mutated, expected) in new[]
        {
            (text.Replace("\"F32\"", "\"F8\""), "unsupported dtype 'F8'"),
            (text.Replace("[10]", "[11]"), "needs 44"),
            (text.Replace("[40,80]", "[80,120]"), "run past the end"),
            (text.Replace("\"pt\"", "12"), "metadata"),
        })
        {
            var path = Path.Combine(dir, Guid.NewGuid().ToString("N") + ".safetensors");
            var header = Encoding.UTF8.GetBytes(mutated);
            var file = new byte[8 + header.Length + bytes.Length - 8 - headerLength];
            BinaryPrimitives.WriteUInt64LittleEndian(file, (ulong)header.Length);
            header.CopyTo(file, 8);
            bytes.AsSpan(8 + headerLength).CopyTo(file.AsSpan(8 + header.Length));
            File.WriteAllBytes(path, file);
            var failure = Assert.Throws<UnmaskException>(() => SafeTensors.Load(path));
            Assert.Contains(path, failure.Message);
            Assert.Contains(expected, failure.Message);
        }

        Assert.Contains("missing.safetensors", Assert.Throws<UnmaskException>(() => SafeTensors.Load(Path.Combine(dir, "missing.safetensors"))).Message);
    }
}
