using System.Text.Json;
using Unmask.Checkpoints;
using Unmask.Modeling;
using Unmask.Training;

namespace Unmask.Tests;

/// <summary>
/// Pretraining from a config (`pretrain --config`) for the families beyond BERT: a new DistilBERT or ModernBERT learns, and its folder has the file
/// names, tensor names and config keys that transformers wrote for the same class (the reference fixtures).
/// </summary>
[Collection(nameof(BertProcessWideTests))]
public class PretrainFamiliesTests : IDisposable
{
    readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("unmask-families");

    public void Dispose() => _dir.Delete(recursive: true);

    static string Alice => Path.Combine(SharedFixtures.Gutenberg, "extra", "alice_in_wonderland.txt.gz");

    [Theory]
    [InlineData("distilbert", "DistilBertForMaskedLM")]
    [InlineData("modernbert", "ModernBertForMaskedLM")]
    public void ConfigOfTheFamilyTrainsAndSavesWhatTransformersLoads(string family, string architecture)
    {
        var reference = BertReferenceFixtures.ModelDir(family);
        var output = Path.Combine(_dir.FullName, family);
        var result = Pretrainer.Run(new PretrainOptions
        {
            Corpus = Alice,
            ConfigPath = Path.Combine(reference, ModelFolder.ConfigFileName),
            Output = output,
            MaxSteps = 30,
            BatchSize = 8,
            MaxSeqLength = 32,
            VocabSize = 600,
            LearningRate = 3e-3,
            Precision = Precision.Fp32,
            LoggingSteps = 1,
            SaveSteps = 0,
            ValidationSequences = 8,
        });
        Assert.Equal(30, result.Steps);

        var losses = MetricsLog.Read(Path.Combine(output, "metrics.jsonl")).Where(r => r.Split == "train").OrderBy(r => r.Step)
            .Select(r => r.Values["loss"]).ToList();
        Assert.True(losses.Count >= 3, $"{losses.Count} loss lines");
        var third = losses.Count / 3;
        Assert.True(losses.TakeLast(third).Average() < losses.Take(third).Average() - 0.2,
            $"loss did not fall: {string.Join(", ", losses.Select(l => l.ToString("F2")))}");

        // The tensors transformers' class holds, under its names, with the tied decoder left out as it leaves it out.
        var names = SafeTensors.ReadHeader(Path.Combine(output, ModelFolder.WeightsFileName)).Tensors.Select(t => t.Name).Order();
        var expected = SafeTensors.ReadHeader(Path.Combine(reference, ModelFolder.WeightsFileName)).Tensors.Select(t => t.Name).Order();
        Assert.Equal(expected, names);

        using var written = JsonDocument.Parse(File.ReadAllText(Path.Combine(output, ModelFolder.ConfigFileName)));
        using var original = JsonDocument.Parse(File.ReadAllText(Path.Combine(reference, ModelFolder.ConfigFileName)));
        var keys = written.RootElement.EnumerateObject().Select(p => p.Name).ToHashSet();
        Assert.Subset(keys, original.RootElement.EnumerateObject().Select(p => p.Name).ToHashSet());
        Assert.Equal(family, written.RootElement.GetProperty("model_type").GetString());
        Assert.Equal([architecture], written.RootElement.GetProperty("architectures").EnumerateArray().Select(e => e.GetString()));
        Assert.True(File.Exists(Path.Combine(output, "vocab.txt")));

        using var model = ModelLoader.Load(output);
        Assert.Equal(architecture, model.Architecture);
        Assert.Equal(600, model.HfConfig.VocabSize);
    }

    [Theory]
    [InlineData("distilbert")]
    [InlineData("modernbert")]
    public void MdlmTrainsEveryFamilyInBf16(string family)
    {
        var output = Path.Combine(_dir.FullName, family + "-mdlm");
        var result = Pretrainer.Run(new PretrainOptions
        {
            Corpus = Alice,
            ConfigPath = Path.Combine(BertReferenceFixtures.ModelDir(family), ModelFolder.ConfigFileName),
            Output = output,
            Objective = ObjectiveKind.Mdlm,
            MaxSteps = 4,
            BatchSize = 4,
            MaxSeqLength = 32,
            VocabSize = 600,
            Precision = Precision.Bf16,
            LoggingSteps = 1,
            SaveSteps = 0,
            ValidationSequences = 4,
        });
        Assert.Equal("bf16", result.Precision);
        var records = MetricsLog.Read(Path.Combine(output, "metrics.jsonl"));
        Assert.All(records.Where(r => r.Split == "train"), r => Assert.True(double.IsFinite(r.Values["loss"]) && r.Values["loss"] > 0));
        var elbo = records.Where(r => r.Split == "validation").MaxBy(r => r.Step)!.Values["elbo_nll"];
        Assert.True(double.IsFinite(elbo) && elbo > 0, $"elbo_nll {elbo}");
        using var model = ModelLoader.Load(output);
        Assert.Equal(family, model.HfConfig.ModelType);
    }

    [Fact]
    public void ElectraNeedsABertConfigToSizeItsDiscriminator()
    {
        var output = Path.Combine(_dir.FullName, "electra");
        var config = Path.Combine(BertReferenceFixtures.ModelDir("distilbert"), ModelFolder.ConfigFileName);
        var (code, _, stderr) = CliTests.Run("pretrain", "--corpus", Alice, "--config", config, "--objective", "electra",
            "--output", output, "--steps", "2", "--max-seq-length", "32", "--vocab-size", "600");
        Assert.Equal(1, code);
        Assert.Contains("ELECTRA pretraining sizes its discriminator from a BERT config", stderr);
        Assert.False(File.Exists(Path.Combine(output, ModelFolder.WeightsFileName)));
    }
}
