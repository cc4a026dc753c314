using System.Runtime.InteropServices;
using System.Text.Json;
using TorchSharp;
using Unmask.Checkpoints;
using Unmask.Modeling;
using static TorchSharp.torch;

namespace Unmask.Tests;

/// <summary>Reads the Hugging Face reference cases (cases/bert-*.json) and their model folders.</summary>
public static class BertReferenceFixtures
{
    public static readonly string[] Models = ["bert-uncased", "bert-cased"];

    static readonly Dictionary<string, JsonDocument> Documents = new();
    static readonly Dictionary<string, BertForMaskedLM> LoadedModels = new();
    static readonly object Gate = new();

    public static string ModelDir(string model) => Path.Combine(SharedFixtures.HfReference, "models", model);

    public static JsonElement Document(string model)
    {
        lock (Gate)
        {
            if (!Documents.TryGetValue(model, out var document))
            {
                var path = Path.Combine(SharedFixtures.HfReference, "cases", model + ".json");
                Assert.True(File.Exists(path), $"Reference fixture missing: {path}");
                document = JsonDocument.Parse(File.ReadAllBytes(path));
                Documents[model] = document;
            }
            return document.RootElement;
        }
    }

    public static JsonElement Case(string model, string name) =>
        Document(model).GetProperty("cases").EnumerateArray().Single(c => c.GetProperty("name").GetString() == name);

    /// <summary>(model, case name) for every case of every BERT fixture.</summary>
    public static IEnumerable<object[]> AllCases() =>
        Models.SelectMany(model => Document(model).GetProperty("cases").EnumerateArray()
            .Select(c => new object[] { model, c.GetProperty("name").GetString()! }));

    /// <summary>The fixture model in eval mode, shared by the tests; do not modify it.</summary>
    public static BertForMaskedLM Model(string model)
    {
        lock (Gate)
        {
            if (!LoadedModels.TryGetValue(model, out var loaded))
            {
                loaded = ModelFolder.LoadBert(ModelDir(model));
                LoadedModels[model] = loaded;
            }
            return loaded;
        }
    }

    public static Tensor LongMatrix(JsonElement rows)
    {
        var values = rows.EnumerateArray().Select(r => r.EnumerateArray().Select(v => v.GetInt64()).ToArray()).ToArray();
        return torch.tensor(values.SelectMany(r => r).ToArray(), [values.Length, values[0].Length]);
    }

    /// <summary>Decodes {"dtype": "float32", "shape": [...], "b64": "..."}.</summary>
    public static Tensor FloatTensor(JsonElement encoded)
    {
        Assert.Equal("float32", encoded.GetProperty("dtype").GetString());
        var shape = encoded.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()).ToArray();
        var values = MemoryMarshal.Cast<byte, float>(Convert.FromBase64String(encoded.GetProperty("b64").GetString()!)).ToArray();
        return torch.tensor(values, shape);
    }

    public static (Tensor InputIds, Tensor AttentionMask, Tensor? TokenTypeIds) Inputs(JsonElement testCase) => (
        LongMatrix(testCase.GetProperty("input_ids")),
        LongMatrix(testCase.GetProperty("attention_mask")),
        testCase.TryGetProperty("token_type_ids", out var types) ? LongMatrix(types) : null);

    public static double MaxAbsDiff(Tensor a, Tensor b)
    {
        Assert.Equal(a.shape, b.shape);
        using var scope = torch.NewDisposeScope();
        return a.numel() == 0 ? 0 : (a - b).abs().max().item<float>();
    }
}
