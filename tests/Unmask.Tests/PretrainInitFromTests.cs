using TorchSharp;
using Unmask.Checkpoints;
using Unmask.Training;

namespace Unmask.Tests;

/// <summary>Continued pretraining of a Hugging Face folder (--init-from). Runs beside the other trainer tests, alone.</summary>
[Collection(nameof(BertProcessWideTests))]
public class PretrainInitFromTests : IDisposable
{
    readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("unmask-init-from");

    public void Dispose() => _dir.Delete(recursive: true);

    PretrainOptions Options(string initFrom) => new()
    {
        Corpus = Path.Combine(SharedFixtures.Gutenberg, "extra", "alice_in_wonderland.txt.gz"),
        Output = Path.Combine(_dir.FullName, "run"),
        InitFrom = initFrom,
        MaxSteps = 3,
        BatchSize = 2,
        MaxSeqLength = 32,
        Precision = Precision.Fp32,
        LoggingSteps = 1,
        SaveSteps = 0,
        ValidationSequences = 4,
    };

    [Fact]
    public void ContinuesTheModelWithItsOwnTokenizerAndKeepsItsLayout()
    {
        var source = BertReferenceFixtures.ModelDir("bert-uncased");
        var result = Pretrainer.Run(Options(source));
        Assert.Equal(3, result.Steps);

        var names = SafeTensors.ReadHeader(Path.Combine(result.OutputDirectory, ModelFolder.WeightsFileName)).Tensors.Select(t => t.Name);
        var sourceNames = SafeTensors.ReadHeader(Path.Combine(source, ModelFolder.WeightsFileName)).Tensors.Select(t => t.Name);
        Assert.Equal(sourceNames, names);
        Assert.Equal(File.ReadAllText(Path.Combine(source, "vocab.txt")), File.ReadAllText(Path.Combine(result.OutputDirectory, "vocab.txt")));

        // Training moved the weights away from the source: it started from them, not from a fresh model of that size.
        using var trained = ModelFolder.LoadBert(result.OutputDirectory);
        var before = HfModelReferenceTests.Shared("bert-uncased").StateDictForSave();
        var after = trained.StateDictForSave();
        using var scope = torch.NewDisposeScope();
        var embeddingChange = (after["bert.embeddings.word_embeddings.weight"] - before["bert.embeddings.word_embeddings.weight"]).abs().max().item<float>();
        Assert.InRange(embeddingChange, 1e-7f, 0.1f);
    }

    [Theory]
    [InlineData("roberta", "RobertaForMaskedLM")]
    [InlineData("distilbert", "DistilBertForMaskedLM")]
    [InlineData("modernbert", "ModernBertForMaskedLM")]
    [InlineData("electra-generator", "ElectraForMaskedLM")]
    public void ContinuesEveryFamilyWithAMaskedLmHead(string family, string architecture)
    {
        var source = BertReferenceFixtures.ModelDir(family);
        var result = Pretrainer.Run(Options(source));
        Assert.Equal(3, result.Steps);
        var names = SafeTensors.ReadHeader(Path.Combine(result.OutputDirectory, ModelFolder.WeightsFileName)).Tensors.Select(t => t.Name).Order();
        var sourceNames = SafeTensors.ReadHeader(Path.Combine(source, ModelFolder.WeightsFileName)).Tensors.Select(t => t.Name).Order();
        Assert.Equal(sourceNames, names);
        using var trained = ModelLoader.Load(result.OutputDirectory);
        Assert.Equal(architecture, trained.Architecture);
    }

    [Fact]
    public void RefusesAFolderOfAnotherKindOfModel()
    {
        var folder = Path.Combine(_dir.FullName, "gpt2");
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, ModelFolder.ConfigFileName), """{"model_type": "gpt2", "vocab_size": 10}""");
        File.Copy(Path.Combine(BertReferenceFixtures.ModelDir("bert-uncased"), "vocab.txt"), Path.Combine(folder, "vocab.txt"));
        var error = Assert.Throws<UnmaskException>(() => Pretrainer.Run(Options(folder)));
        Assert.Contains("'gpt2'", error.Message);
        Assert.False(Directory.Exists(Path.Combine(_dir.FullName, "run")));
    }
}
