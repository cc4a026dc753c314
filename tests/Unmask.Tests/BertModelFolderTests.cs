using TorchSharp;
using Unmask.Checkpoints;
using Unmask.Modeling;

namespace Unmask.Tests;

public class BertModelFolderTests : IDisposable
{
    readonly string root = Path.Combine(Path.GetTempPath(), "unmask-folder-" + Guid.NewGuid().ToString("N"));

    public BertModelFolderTests() => Directory.CreateDirectory(root);

    public void Dispose() => Directory.Delete(root, recursive: true);

    static BertForMaskedLM TinyModel(long seed)
    {
        torch.manual_seed(seed);
        return BertForMaskedLM.Create(new BertConfig
        {
            VocabSize = 50, HiddenSize = 16, NumHiddenLayers = 1, NumAttentionHeads = 2, IntermediateSize = 24, MaxPositionEmbeddings = 16,
        });
    }

    [Fact]
    public void SaveWritesConfigWeightsAndExtraFilesThenReplacesAnOlderModel()
    {
        var dir = Path.Combine(root, "model");
        using (var first = TinyModel(1)) ModelFolder.Save(dir, first, tmp => File.WriteAllText(Path.Combine(tmp, "vocab.txt"), "first"));
        Assert.True(File.Exists(Path.Combine(dir, "config.json")));
        Assert.True(File.Exists(Path.Combine(dir, "model.safetensors")));
        Assert.Equal("first", File.ReadAllText(Path.Combine(dir, "vocab.txt")));

        using var second = TinyModel(2);
        ModelFolder.Save(dir, second);
        Assert.False(File.Exists(Path.Combine(dir, "vocab.txt"))); // the folder was replaced as a whole
        using var loaded = ModelFolder.LoadBert(dir);
        Assert.False(loaded.training);
        var expected = second.state_dict()["bert.encoder.layer.0.output.dense.weight"].data<float>().ToArray();
        Assert.Equal(expected, loaded.state_dict()["bert.encoder.layer.0.output.dense.weight"].data<float>().ToArray());
        Assert.Equal(["model"], Directory.GetFileSystemEntries(root).Select(Path.GetFileName));
    }

    [Fact]
    public void FailureWhileWritingLeavesTheOldFolderIntact()
    {
        var dir = Path.Combine(root, "model");
        using var model = TinyModel(1);
        ModelFolder.Save(dir, model);
        var before = File.ReadAllBytes(Path.Combine(dir, "model.safetensors"));
        Assert.Throws<InvalidOperationException>(() => ModelFolder.Save(dir, model, _ => throw new InvalidOperationException("tokenizer failed")));
        Assert.Equal(before, File.ReadAllBytes(Path.Combine(dir, "model.safetensors")));
        Assert.Equal(["model"], Directory.GetFileSystemEntries(root).Select(Path.GetFileName));
    }

    [Fact]
    public void SaveRefusesToReplaceAFolderThatIsNotAModel()
    {
        var dir = Path.Combine(root, "documents");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "notes.txt"), "keep me");
        using var model = TinyModel(1);
        var error = Assert.Throws<UnmaskException>(() => ModelFolder.Save(dir, model));
        Assert.Contains(dir, error.Message);
        Assert.Equal("keep me", File.ReadAllText(Path.Combine(dir, "notes.txt")));
    }

    [Fact]
    public void LoadReportsTheFolderAndTheProblem()
    {
        var absent = Path.Combine(root, "absent");
        Assert.Contains("does not exist", Assert.Throws<UnmaskException>(() => ModelFolder.LoadBert(absent)).Message);

        var empty = Path.Combine(root, "empty");
        Directory.CreateDirectory(empty);
        var noConfig = Assert.Throws<UnmaskException>(() => ModelFolder.LoadBert(empty));
        Assert.Contains(empty, noConfig.Message);
        Assert.Contains("config.json", noConfig.Message);

        var distilbert = Path.Combine(SharedFixtures.HfReference, "models", "distilbert");
        var otherFamily = Assert.Throws<UnmaskException>(() => ModelFolder.LoadBert(distilbert));
        Assert.Contains(distilbert, otherFamily.Message);
        Assert.Contains("DistilBertForMaskedLM", otherFamily.Message);

        var noWeights = Path.Combine(root, "no-weights");
        Directory.CreateDirectory(noWeights);
        File.Copy(Path.Combine(SharedFixtures.HfReference, "models", "bert-cased", "config.json"), Path.Combine(noWeights, "config.json"));
        Assert.Contains("model.safetensors", Assert.Throws<UnmaskException>(() => ModelFolder.LoadBert(noWeights)).Message);

        // Weights of another model under a matching config: the shape error names the file and the tensor.
        var mismatch = Path.Combine(root, "mismatch");
        Directory.CreateDirectory(mismatch);
        File.Copy(Path.Combine(SharedFixtures.HfReference, "models", "bert-cased", "config.json"), Path.Combine(mismatch, "config.json"));
        File.Copy(Path.Combine(SharedFixtures.HfReference, "models", "bert-uncased", "model.safetensors"), Path.Combine(mismatch, "model.safetensors"));
        var shapes = Assert.Throws<UnmaskException>(() => ModelFolder.LoadBert(mismatch));
        Assert.Contains(Path.Combine(mismatch, "model.safetensors"), shapes.Message);
        Assert.Contains("bert.embeddings", shapes.Message);

        // A file cut short: the header promises data the file does not hold; the error names the file and a tensor.
        var truncated = Path.Combine(root, "truncated");
        Directory.CreateDirectory(truncated);
        File.Copy(Path.Combine(SharedFixtures.HfReference, "models", "bert-cased", "config.json"), Path.Combine(truncated, "config.json"));
        var weights = File.ReadAllBytes(Path.Combine(SharedFixtures.HfReference, "models", "bert-cased", "model.safetensors"));
        File.WriteAllBytes(Path.Combine(truncated, "model.safetensors"), weights[..^100]);
        var cut = Assert.Throws<UnmaskException>(() => ModelFolder.LoadBert(truncated));
        Assert.Contains(Path.Combine(truncated, "model.safetensors"), cut.Message);
        Assert.Contains("truncated file", cut.Message);
        Assert.Matches("tensor '[a-z._A-Z0-9]+'", cut.Message);
    }
}
