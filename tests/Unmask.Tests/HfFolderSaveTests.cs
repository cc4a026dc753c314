using System.Text.Json;
using Unmask.Checkpoints;
using Unmask.Inference;
using static Unmask.Tests.BertReferenceFixtures;

namespace Unmask.Tests;

/// <summary>A fixture folder loaded and saved by the library has the files, keys and tensor names transformers wrote.</summary>
public sealed class HfFolderSaveTests : IDisposable
{
    // transformers writes generation_config.json beside BERT because BertForMaskedLM can generate; a masked LM never
    // reads it, so the library does not write it.
    static readonly string[] NotWritten = ["generation_config.json"];

    readonly string temp = Directory.CreateTempSubdirectory("unmask-hf-save-").FullName;

    public void Dispose() => Directory.Delete(temp, recursive: true);

    public static IEnumerable<object[]> Models() => HfModelReferenceTests.Models();

    [Theory]
    [MemberData(nameof(Models))]
    public void SavedFolderMatchesTransformersFilesAndReloadsWithIdenticalLogits(string model)
    {
        var source = ModelDir(model);
        var dir = Path.Combine(temp, model);
        using var original = MaskedLanguageModel.Load(source);
        original.Save(dir);

        Assert.Equal(FileNames(source).Except(NotWritten), FileNames(dir));
        Assert.Equal(Keys(Path.Combine(source, ModelFolder.ConfigFileName)), Keys(Path.Combine(dir, ModelFolder.ConfigFileName)));
        Assert.Equal(TensorNames(Path.Combine(source, ModelFolder.WeightsFileName)), TensorNames(Path.Combine(dir, ModelFolder.WeightsFileName)));
        foreach (var name in FileNames(source).Where(n => n.EndsWith(".json", StringComparison.Ordinal) && n != ModelFolder.ConfigFileName).Except(NotWritten))
            Assert.True(Keys(Path.Combine(source, name)).SequenceEqual(Keys(Path.Combine(dir, name))), $"{model}/{name}: keys differ");
        foreach (var name in new[] { "vocab.txt", "vocab.json", "merges.txt" }.Where(n => File.Exists(Path.Combine(source, n))))
            Assert.True(SameContent(Path.Combine(source, name), Path.Combine(dir, name)), $"{model}/{name}: content differs");

        var testCase = Case(model, "batch_left_pad");
        var texts = testCase.GetProperty("text").EnumerateArray().Select(t => t.GetString()!).ToArray();
        using var reloaded = MaskedLanguageModel.Load(dir);
        var before = original.Forward(texts, paddingSide: Tokenization.PaddingSide.Left);
        var after = reloaded.Forward(texts, paddingSide: Tokenization.PaddingSide.Left);
        for (int i = 0; i < texts.Length; i++)
        {
            Assert.Equal(before[i].InputIds, after[i].InputIds);
            Assert.Equal(before[i].Logits.SelectMany(r => r), after[i].Logits.SelectMany(r => r));
        }
    }

    static IEnumerable<string> FileNames(string dir) =>
        Directory.EnumerateFiles(dir).Select(f => Path.GetFileName(f)!).Order(StringComparer.Ordinal).ToList();

    static List<string> Keys(string path)
    {
        using var document = JsonDocument.Parse(File.ReadAllText(path));
        return document.RootElement.EnumerateObject().Select(p => p.Name).Order(StringComparer.Ordinal).ToList();
    }

    static List<string> TensorNames(string path) =>
        SafeTensors.ReadHeader(path).Tensors.Select(t => t.Name).Order(StringComparer.Ordinal).ToList();

    // vocab.json is compared as a map (transformers writes it sorted by id, indented); the text files byte for byte.
    static bool SameContent(string expected, string actual)
    {
        if (!expected.EndsWith(".json", StringComparison.Ordinal)) return File.ReadAllBytes(expected).SequenceEqual(File.ReadAllBytes(actual));
        using var a = JsonDocument.Parse(File.ReadAllText(expected));
        using var b = JsonDocument.Parse(File.ReadAllText(actual));
        return a.RootElement.EnumerateObject().Select(p => (p.Name, p.Value.GetInt32()))
            .SequenceEqual(b.RootElement.EnumerateObject().Select(p => (p.Name, p.Value.GetInt32())));
    }
}
