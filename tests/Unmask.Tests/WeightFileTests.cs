using System.IO.Compression;
using System.Text;
using TorchSharp;
using Unmask.Checkpoints;
using static TorchSharp.torch;
using static Unmask.Tests.BertReferenceFixtures;

namespace Unmask.Tests;

/// <summary>
/// pytorch_model.bin (written by real torch 1.13: TestData/torch/make_bins.py), sharded weights, the pickle
/// allow-list, and the errors for unsupported or incomplete folders.
/// </summary>
public sealed class WeightFileTests : IDisposable
{
    static readonly string TorchData = Path.Combine(AppContext.BaseDirectory, "TestData", "torch");
    readonly string root = Path.Combine(Path.GetTempPath(), "unmask-weights-" + Guid.NewGuid().ToString("N"));

    public WeightFileTests() => Directory.CreateDirectory(root);

    public void Dispose() => Directory.Delete(root, recursive: true);

    string Folder(string name, string configFrom)
    {
        var dir = Path.Combine(root, name);
        Directory.CreateDirectory(dir);
        File.Copy(Path.Combine(ModelDir(configFrom), ModelFolder.ConfigFileName), Path.Combine(dir, ModelFolder.ConfigFileName));
        return dir;
    }

    [Fact]
    public void TorchCheckpointHonoursStridesOffsetsAndElementTypes()
    {
        var tensors = TorchZipCheckpoint.Load(Path.Combine(TorchData, "layouts.bin"));
        try
        {
            Assert.Equal(["transposed", "offset", "strided", "half", "bf16", "param", "scalar"], tensors.Keys);
            float[] Floats(string name) => tensors[name].to(ScalarType.Float32).data<float>().ToArray();

            Assert.Equal([4L, 3L], tensors["transposed"].shape);
            Assert.Equal([0f, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11], Floats("transposed"));
            Assert.Equal([3f, 4, 5, 6], Floats("offset"));
            Assert.Equal([1f, 4, 7, 10], Floats("strided"));
            Assert.Equal(ScalarType.Float16, tensors["half"].dtype);
            Assert.Equal([1.5f, -2.25f, 65504f], Floats("half"));
            Assert.Equal(ScalarType.BFloat16, tensors["bf16"].dtype);
            Assert.Equal([1f, 0.0078125f, -3.5f, 256f], Floats("bf16"));
            Assert.Equal([1f, 2, 3, 4], Floats("param"));
            Assert.Empty(tensors["scalar"].shape);
            Assert.Equal([7.25f], Floats("scalar"));
        }
        finally
        {
            foreach (var tensor in tensors.Values) tensor.Dispose();
        }
    }

    [Fact]
    public void PyTorchBinWithTiedNamesAndBuffersGivesHfLogits()
    {
        var dir = Folder("roberta-bin", "roberta");
        File.Copy(Path.Combine(TorchData, "roberta-pytorch_model.bin"), Path.Combine(dir, HfWeightFiles.PyTorchFile));
        using var model = ModelLoader.Load(dir);
        using var scope = torch.NewDisposeScope();
        using var inference = torch.inference_mode();
        var testCase = Case("roberta", "batch_left_pad");
        var (inputIds, attentionMask, _) = Inputs(testCase);
        using var output = model.Forward(inputIds, attentionMask);
        var expected = FloatTensor(testCase.GetProperty("logits")[0]);
        var open = attentionMask[0].nonzero().squeeze(1);
        Assert.True(MaxAbsDiff(output.Logits[0].index_select(0, open), expected) < 1e-4);
    }

    [Fact]
    public void ShardedFloat16PyTorchBinLoadsAsTheRoundedWeights()
    {
        var dir = Folder("bert-fp16-shards", "bert-cased");
        foreach (var file in Directory.GetFiles(TorchData, "bert-cased-fp16-*"))
            File.Copy(file, Path.Combine(dir, Path.GetFileName(file)["bert-cased-fp16-".Length..]));
        using var sharded = ModelLoader.Load(dir);

        // The same model built from the float32 safetensors rounded through float16 must agree exactly.
        var rounded = SafeTensors.Load(Path.Combine(ModelDir("bert-cased"), ModelFolder.WeightsFileName))
            .ToDictionary(p => p.Key, p => p.Value.to(ScalarType.Float16));
        using var reference = ModelLoader.Create(Path.Combine(dir, ModelFolder.ConfigFileName));
        reference.LoadHfStateDict(rounded);
        reference.eval();
        foreach (var tensor in rounded.Values) tensor.Dispose();

        using var scope = torch.NewDisposeScope();
        using var inference = torch.inference_mode();
        var (inputIds, attentionMask, tokenTypeIds) = Inputs(Case("bert-cased", "batch_pair_mask"));
        using var a = sharded.Forward(inputIds, attentionMask, tokenTypeIds);
        using var b = reference.Forward(inputIds, attentionMask, tokenTypeIds);
        Assert.Equal(b.Logits.data<float>().ToArray(), a.Logits.data<float>().ToArray());
    }

    [Fact]
    public void ShardedSafetensorsLoadLikeOneFile()
    {
        var dir = Folder("bert-st-shards", "bert-uncased");
        var tensors = SafeTensors.Load(Path.Combine(ModelDir("bert-uncased"), ModelFolder.WeightsFileName));
        var names = tensors.Keys.Order(StringComparer.Ordinal).ToList();
        var map = new Dictionary<string, string>();
        for (var shard = 0; shard < 2; shard++)
        {
            var file = $"model-{shard + 1:00000}-of-00002.safetensors";
            var part = names.Where((_, i) => i % 2 == shard).ToList();
            SafeTensors.Save(Path.Combine(dir, file), part.ToDictionary(n => n, n => tensors[n]));
            foreach (var n in part) map[n] = file;
        }
        var index = System.Text.Json.JsonSerializer.Serialize(new { metadata = new { total_size = 0 }, weight_map = map });
        File.WriteAllText(Path.Combine(dir, HfWeightFiles.SafeTensorsIndexFile), index);

        using var sharded = ModelLoader.Load(dir);
        using var scope = torch.NewDisposeScope();
        using var inference = torch.inference_mode();
        var (inputIds, attentionMask, tokenTypeIds) = Inputs(Case("bert-uncased", "batch_pair_mask"));
        using var a = sharded.Forward(inputIds, attentionMask, tokenTypeIds);
        using var b = HfModelReferenceTests.Shared("bert-uncased").Forward(inputIds, attentionMask, tokenTypeIds);
        Assert.Equal(b.Logits.data<float>().ToArray(), a.Logits.data<float>().ToArray());

        // A weight map entry its shard does not hold is named with the shard.
        map["bert.extra.weight"] = "model-00001-of-00002.safetensors";
        File.WriteAllText(Path.Combine(dir, HfWeightFiles.SafeTensorsIndexFile),
            System.Text.Json.JsonSerializer.Serialize(new { weight_map = map }));
        var error = Assert.Throws<UnmaskException>(() => ModelLoader.Load(dir));
        Assert.Contains("bert.extra.weight", error.Message);
        Assert.Contains(HfWeightFiles.SafeTensorsIndexFile, error.Message);
    }

    static void WritePickleCheckpoint(string path, byte[] pickle)
    {
        using var zip = ZipFile.Open(path, ZipArchiveMode.Create);
        using (var stream = zip.CreateEntry("archive/data.pkl", CompressionLevel.NoCompression).Open()) stream.Write(pickle);
        using (var stream = zip.CreateEntry("archive/version", CompressionLevel.NoCompression).Open()) stream.Write("3\n"u8);
    }

    [Theory]
    [InlineData("os", "system")]
    [InlineData("torch.storage", "_load_from_bytes")]
    [InlineData("builtins", "eval")]
    public void PickleRefusesGlobalsOutsideTheAllowListWithoutRunningThem(string module, string name)
    {
        // PROTO 2, GLOBAL module name, SHORT_BINUNICODE "touch <marker>", TUPLE1, REDUCE, STOP: what a malicious
        // checkpoint does to run a command on load.
        var marker = Path.Combine(root, "pwned");
        var argument = Encoding.UTF8.GetBytes("touch " + marker);
        var pickle = new List<byte> { 0x80, 2, (byte)'c' };
        pickle.AddRange(Encoding.ASCII.GetBytes($"{module}\n{name}\n"));
        pickle.Add(0x8c);
        pickle.Add((byte)argument.Length);
        pickle.AddRange(argument);
        pickle.AddRange([0x85, (byte)'R', (byte)'.']);
        var path = Path.Combine(root, "evil.bin");
        WritePickleCheckpoint(path, [.. pickle]);

        var error = Assert.Throws<UnmaskException>(() => TorchZipCheckpoint.Load(path));
        Assert.Contains($"'{module}.{name}'", error.Message);
        Assert.Contains("not allowed", error.Message);
        Assert.Contains(path, error.Message);
        Assert.False(File.Exists(marker));
    }

    [Fact]
    public void LegacyAndTruncatedCheckpointsAreReportedWithTheFile()
    {
        var legacy = Path.Combine(root, "legacy.bin");
        File.WriteAllBytes(legacy, [0x80, 2, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19]);
        var error = Assert.Throws<UnmaskException>(() => TorchZipCheckpoint.Load(legacy));
        Assert.Contains(legacy, error.Message);
        Assert.Contains("1.6", error.Message);

        var truncated = Path.Combine(root, "truncated.bin");
        WritePickleCheckpoint(truncated, [0x80, 2, (byte)'}', (byte)'q']);
        Assert.Contains("truncated", Assert.Throws<UnmaskException>(() => TorchZipCheckpoint.Load(truncated)).Message);
    }

    [Fact]
    public void MissingAndUnexpectedTensorsAreNamed()
    {
        var tensors = SafeTensors.Load(Path.Combine(ModelDir("roberta"), ModelFolder.WeightsFileName));
        var missingDir = Folder("missing", "roberta");
        SafeTensors.Save(Path.Combine(missingDir, ModelFolder.WeightsFileName),
            tensors.Where(p => p.Key != "lm_head.dense.weight").ToDictionary(p => p.Key, p => p.Value));
        var missing = Assert.Throws<UnmaskException>(() => ModelLoader.Load(missingDir));
        Assert.Contains("lm_head.dense.weight", missing.Message);
        Assert.Contains(Path.Combine(missingDir, ModelFolder.WeightsFileName), missing.Message);

        var extraDir = Folder("unexpected", "roberta");
        SafeTensors.Save(Path.Combine(extraDir, ModelFolder.WeightsFileName),
            new Dictionary<string, Tensor>(tensors) { ["roberta.encoder.layer.2.output.dense.weight"] = tensors["lm_head.dense.weight"] });
        Assert.Contains("roberta.encoder.layer.2.output.dense.weight",
            Assert.Throws<UnmaskException>(() => ModelLoader.Load(extraDir)).Message);
    }

    [Fact]
    public void UnsupportedArchitecturesListTheSupportedOnes()
    {
        var dir = Path.Combine(root, "classifier");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, ModelFolder.ConfigFileName),
            """{"architectures": ["BertForQuestionAnswering"], "model_type": "bert", "vocab_size": 10}""");
        var error = Assert.Throws<UnmaskException>(() => ModelLoader.Load(dir));
        Assert.Contains("BertForQuestionAnswering", error.Message);
        foreach (var supported in ModelLoader.SupportedArchitectures.Keys) Assert.Contains(supported, error.Message);

        File.WriteAllText(Path.Combine(dir, ModelFolder.ConfigFileName), """{"model_type": "gpt2", "vocab_size": 10}""");
        Assert.Contains("'gpt2'", Assert.Throws<UnmaskException>(() => ModelLoader.Load(dir)).Message);
    }

    [Fact]
    public void AFolderWithoutWeightsNamesTheFilesLookedFor()
    {
        var dir = Folder("no-weights", "modernbert");
        var error = Assert.Throws<UnmaskException>(() => ModelLoader.Load(dir));
        Assert.Contains(HfWeightFiles.PyTorchFile, error.Message);
        Assert.Contains(HfWeightFiles.SafeTensorsIndexFile, error.Message);
    }

    [Fact]
    public void OldHubLayoutsLoad()
    {
        // TensorFlow-era names (LayerNorm gamma/beta) and BertForPreTraining's extra heads, as in bert-base-uncased's .bin.
        var tensors = SafeTensors.Load(Path.Combine(ModelDir("bert-uncased"), ModelFolder.WeightsFileName));
        var old = tensors.ToDictionary(
            p => p.Key.Replace("LayerNorm.weight", "LayerNorm.gamma").Replace("LayerNorm.bias", "LayerNorm.beta"), p => p.Value);
        Assert.Contains("bert.embeddings.LayerNorm.gamma", old.Keys);
        using var nsp = torch.zeros(2, 32);
        using var pooler = torch.zeros(32, 32);
        old["cls.seq_relationship.weight"] = nsp;
        old["bert.pooler.dense.weight"] = pooler;
        var dir = Folder("old-layout", "bert-uncased");
        SafeTensors.Save(Path.Combine(dir, ModelFolder.WeightsFileName), old);

        using var model = ModelLoader.Load(dir);
        using var scope = torch.NewDisposeScope();
        using var inference = torch.inference_mode();
        var (inputIds, attentionMask, tokenTypeIds) = Inputs(Case("bert-uncased", "pair"));
        using var a = model.Forward(inputIds, attentionMask, tokenTypeIds);
        using var b = HfModelReferenceTests.Shared("bert-uncased").Forward(inputIds, attentionMask, tokenTypeIds);
        Assert.Equal(b.Logits.data<float>().ToArray(), a.Logits.data<float>().ToArray());
    }
}
