using Unmask.Modeling;

namespace Unmask.Tests;

public class BertConfigTests : IDisposable
{
    readonly string dir = Path.Combine(Path.GetTempPath(), "unmask-config-" + Guid.NewGuid().ToString("N"));

    public BertConfigTests() => Directory.CreateDirectory(dir);

    public void Dispose() => Directory.Delete(dir, recursive: true);

    string Write(string json)
    {
        var path = Path.Combine(dir, Guid.NewGuid().ToString("N") + ".json");
        File.WriteAllText(path, json);
        return path;
    }

    [Fact]
    public void LoadsHuggingFaceConfigAndToleratesUnknownFields()
    {
        // The fixture config also carries classifier_dropout (null) and use_cache, which BertConfig does not model.
        var config = BertConfig.Load(Path.Combine(SharedFixtures.HfReference, "models", "bert-cased", "config.json"));
        Assert.Equal(464, config.VocabSize);
        Assert.Equal(48, config.HiddenSize);
        Assert.Equal(2, config.NumHiddenLayers);
        Assert.Equal(4, config.NumAttentionHeads);
        Assert.Equal(64, config.IntermediateSize);
        Assert.Equal(64, config.MaxPositionEmbeddings);
        Assert.Equal(1e-12, config.LayerNormEps);
        Assert.Equal("gelu", config.HiddenAct);
        Assert.Equal(0, config.PadTokenId);
        Assert.True(config.TieWordEmbeddings);
        Assert.Equal(["BertForMaskedLM"], config.Architectures!);
    }

    [Fact]
    public void SaveThenLoadRoundTripsWithSortedKeys()
    {
        var config = BertConfig.Preset("mini", 30522) with { TieWordEmbeddings = false, HiddenAct = "gelu_new", PadTokenId = 7 };
        var path = Path.Combine(dir, "config.json");
        config.Save(path);
        var loaded = BertConfig.Load(path);
        Assert.Equal(config.Architectures!, loaded.Architectures!);
        Assert.Equal(config, loaded with { Architectures = config.Architectures });

        var keys = System.Text.Json.JsonDocument.Parse(File.ReadAllText(path)).RootElement.EnumerateObject().Select(p => p.Name).ToList();
        Assert.Equal(keys.Order(StringComparer.Ordinal), keys);
        Assert.Contains("layer_norm_eps", keys);
        Assert.Empty(Directory.GetFiles(dir, "*.tmp"));
    }

    [Fact]
    public void MissingRequiredFieldIsNamedWithTheFile()
    {
        var path = Write("""{"vocab_size": 10, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 8, "model_type": "bert"}""");
        var error = Assert.Throws<UnmaskException>(() => BertConfig.Load(path));
        Assert.Contains(path, error.Message);
        Assert.Contains("hidden_size", error.Message);
    }

    [Fact]
    public void BadJsonAndBadValuesAreReportedWithFileAndField()
    {
        var broken = Write("""{"vocab_size": 10,""");
        Assert.Contains(broken, Assert.Throws<UnmaskException>(() => BertConfig.Load(broken)).Message);

        var wrongType = Write("""{"vocab_size": "ten", "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 8}""");
        Assert.Contains("vocab_size", Assert.Throws<UnmaskException>(() => BertConfig.Load(wrongType)).Message);

        foreach (var (json, field) in new[]
        {
            ("""{"vocab_size": 10, "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 8, "position_embedding_type": "relative_key"}""", "position_embedding_type"),
            ("""{"vocab_size": 10, "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 8, "hidden_act": "swish"}""", "hidden_act"),
            ("""{"vocab_size": 10, "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 8, "model_type": "gpt2"}""", "model_type"),
            ("""{"vocab_size": 10, "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 3, "intermediate_size": 8}""", "num_attention_heads"),
        })
        {
            var path = Write(json);
            var error = Assert.Throws<UnmaskException>(() => BertConfig.Load(path));
            Assert.Contains(field, error.Message);
            Assert.Contains(path, error.Message);
        }

        var missingFile = Path.Combine(dir, "absent.json");
        Assert.Contains(missingFile, Assert.Throws<UnmaskException>(() => BertConfig.Load(missingFile)).Message);
    }

    [Theory]
    [InlineData("tiny", 2, 128, 2)]
    [InlineData("mini", 4, 256, 4)]
    [InlineData("small", 4, 512, 8)]
    [InlineData("medium", 8, 512, 8)]
    [InlineData("base", 12, 768, 12)]
    public void PresetsAreGoogleMiniatures(string name, int layers, int hidden, int heads)
    {
        var config = BertConfig.Preset(name, 1234);
        Assert.Equal((1234, layers, hidden, heads, 4 * hidden), (config.VocabSize, config.NumHiddenLayers, config.HiddenSize, config.NumAttentionHeads, config.IntermediateSize));
        Assert.Equal((512, 2, 1e-12, 0.1, 0.1), (config.MaxPositionEmbeddings, config.TypeVocabSize, config.LayerNormEps, config.HiddenDropoutProb, config.AttentionProbsDropoutProb));
    }

    [Fact]
    public void UnknownPresetListsTheKnownOnes()
    {
        var error = Assert.Throws<UnmaskException>(() => BertConfig.Preset("huge", 100));
        Assert.Contains("huge", error.Message);
        foreach (var name in new[] { "tiny", "mini", "small", "medium", "base" }) Assert.Contains(name, error.Message);
    }
}
