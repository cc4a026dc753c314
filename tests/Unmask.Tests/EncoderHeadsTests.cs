using TorchSharp;
using Unmask.Checkpoints;
using Unmask.Modeling;
using static TorchSharp.torch;
using static Unmask.Tests.BertReferenceFixtures;

namespace Unmask.Tests;

/// <summary>
/// Every family through the common model type: save → load → equal logits in fp32 and bf16, the BERT pooler kept, and
/// another head's checkpoint loaded by its encoder as transformers' from_pretrained does.
/// </summary>
public sealed class EncoderHeadsTests : IDisposable
{
    readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("unmask-heads");

    public void Dispose() => _dir.Delete(recursive: true);

    public static IEnumerable<object[]> Families() => HfModelReferenceTests.AllModels.Select(m => new object[] { m });

    static (Tensor Ids, Tensor Mask, Tensor Types) Batch(PretrainedModel model)
    {
        var generator = new Random(7);
        var ids = new long[2 * 12];
        for (int i = 0; i < ids.Length; i++) ids[i] = 5 + generator.Next(model.HfConfig.VocabSize - 5);
        var mask = Enumerable.Range(0, ids.Length).Select(i => i < 12 || i % 12 < 8 ? 1L : 0L).ToArray(); // second row padded
        var types = Enumerable.Range(0, ids.Length).Select(i => i % 12 < 6 ? 0L : 1L).ToArray();
        return (tensor(ids, [2, 12]), tensor(mask, [2, 12]), tensor(types, [2, 12]));
    }

    static float[] Logits(PretrainedModel model, ComputeDtype dtype, (Tensor Ids, Tensor Mask, Tensor Types) batch)
    {
        model.ComputeDtype = dtype;
        using var scope = NewDisposeScope();
        using var mode = inference_mode();
        // RoBERTa has a single token type.
        using var output = model.Forward(batch.Ids, batch.Mask, model.UsesTokenTypeIds && model.Architecture != "RobertaForMaskedLM" ? batch.Types : null);
        return output.Logits.data<float>().ToArray();
    }

    /// <summary>What scoring reads: each real token's log-probability for a masked-LM head, ELECTRA's logits themselves.</summary>
    static float[] Scores(PretrainedModel model, float[] logits, (Tensor Ids, Tensor Mask, Tensor Types) batch)
    {
        using var scope = NewDisposeScope();
        var real = batch.Mask.reshape(-1).eq(1); // [batch * seq]
        if (model.Head != HeadKind.MaskedLm) return tensor(logits).masked_select(real).data<float>().ToArray();
        var logProbs = tensor(logits).view(-1, model.HfConfig.VocabSize).log_softmax(-1); // [batch * seq, vocab]
        return logProbs.gather(1, batch.Ids.reshape(-1, 1)).squeeze(1).masked_select(real).data<float>().ToArray();
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void SavedAndLoadedModelGivesEqualLogitsInFp32AndBf16(string family)
    {
        using var original = ModelLoader.Load(ModelDir(family));
        using var scope = NewDisposeScope();
        var batch = Batch(original);
        var folder = Path.Combine(_dir.FullName, family);
        ModelFolder.Save(folder, original);
        using var loaded = ModelLoader.Load(folder);
        Assert.Equal(original.GetType(), loaded.GetType());
        Assert.Equal(original.Architecture, loaded.Architecture);

        var fp32 = Logits(original, ComputeDtype.Float32, batch);
        Assert.Equal(fp32, Logits(loaded, ComputeDtype.Float32, batch));

        var bf16 = Logits(original, ComputeDtype.BFloat16, batch);
        Assert.Equal(bf16, Logits(loaded, ComputeDtype.BFloat16, batch));
        Assert.DoesNotContain(bf16, float.IsNaN);
        // bf16 keeps 8 bits of mantissa: log-probabilities move, within the scoring tests' bound.
        var worst = Scores(original, fp32, batch).Zip(Scores(original, bf16, batch), (a, b) => Math.Abs(a - b)).Max();
        Assert.InRange(worst, 1e-6, 0.1);
    }

    [Fact]
    public void BertPoolerWeightsAreKeptOnLoadAndSave()
    {
        var tensors = SafeTensors.Load(Path.Combine(ModelDir("bert-uncased"), ModelFolder.WeightsFileName));
        var hidden = tensors["bert.embeddings.word_embeddings.weight"].shape[1];
        manual_seed(3);
        using var poolerWeight = randn(hidden, hidden) * 0.1f;
        using var poolerBias = randn(hidden) * 0.1f;
        tensors["bert.pooler.dense.weight"] = poolerWeight;
        tensors["bert.pooler.dense.bias"] = poolerBias;
        var source = Path.Combine(_dir.FullName, "with-pooler");
        Directory.CreateDirectory(source);
        File.Copy(Path.Combine(ModelDir("bert-uncased"), ModelFolder.ConfigFileName), Path.Combine(source, ModelFolder.ConfigFileName));
        SafeTensors.Save(Path.Combine(source, ModelFolder.WeightsFileName), tensors);

        using var model = ModelLoader.Load(source);
        using var scope = NewDisposeScope();
        var batch = Batch(model);
        using var output = model.Forward(batch.Ids, batch.Mask, batch.Types);
        var pooled = model.Pool(output.LastHiddenState)!; // [batch, hidden]
        var expected = (output.LastHiddenState.select(1, 0).matmul(poolerWeight.t()) + poolerBias).tanh();
        Assert.Equal([2L, hidden], pooled.shape);
        Assert.True(MaxAbsDiff(expected, pooled) < 1e-6);

        var saved = Path.Combine(_dir.FullName, "saved");
        ModelFolder.Save(saved, model);
        var written = SafeTensors.Load(Path.Combine(saved, ModelFolder.WeightsFileName));
        Assert.Equal(poolerWeight.data<float>().ToArray(), written["bert.pooler.dense.weight"].data<float>().ToArray());
        Assert.Equal(poolerBias.data<float>().ToArray(), written["bert.pooler.dense.bias"].data<float>().ToArray());
        // A masked LM without a pooler has none to give.
        using var plain = ModelLoader.Load(ModelDir("bert-uncased"));
        Assert.Null(plain.Pool(output.LastHiddenState));
    }

    [Fact]
    public void AClassifierFolderLoadsItsEncoderUnderAMaskedLmHead()
    {
        var tensors = SafeTensors.Load(Path.Combine(ModelDir("bert-uncased"), ModelFolder.WeightsFileName));
        var hidden = tensors["bert.embeddings.word_embeddings.weight"].shape[1];
        var classifier = tensors.Where(p => p.Key.StartsWith("bert.", StringComparison.Ordinal)).ToDictionary(p => p.Key, p => p.Value);
        classifier["classifier.weight"] = zeros(3, hidden);
        classifier["classifier.bias"] = zeros(3);
        var dir = Path.Combine(_dir.FullName, "classifier");
        Directory.CreateDirectory(dir);
        var config = File.ReadAllText(Path.Combine(ModelDir("bert-uncased"), ModelFolder.ConfigFileName))
            .Replace("\"BertForMaskedLM\"", "\"BertForSequenceClassification\"");
        Assert.Contains("BertForSequenceClassification", config);
        File.WriteAllText(Path.Combine(dir, ModelFolder.ConfigFileName), config);
        SafeTensors.Save(Path.Combine(dir, ModelFolder.WeightsFileName), classifier);

        // As its own class it lacks the pooler BertForSequenceClassification needs; asked for a masked-LM head, it loads its encoder.
        Assert.Contains("bert.pooler.dense", Assert.Throws<UnmaskException>(() => ModelLoader.Load(dir)).Message);
        var (model, report) = ModelLoader.LoadWithReport(dir, HeadKind.MaskedLm);
        using var disposeModel = model;
        Assert.Equal("BertForMaskedLM", model.Architecture);
        Assert.Equal(["classifier.bias", "classifier.weight"], report.Unused);
        Assert.Contains("cls.predictions.transform.dense.weight", report.NewlyInitialised);
        Assert.Contains("cls.predictions.bias", report.NewlyInitialised);
        Assert.DoesNotContain(report.NewlyInitialised, n => n.StartsWith("bert.", StringComparison.Ordinal));
        // Newly initialised as transformers does it: N(0, initializer_range) weights, LayerNorm at one, biases at zero.
        var head = model.state_dict();
        var std = head["cls.predictions.transform.dense.weight"].std().item<float>();
        Assert.InRange(std, 0.015f, 0.025f);
        Assert.Equal(1f, head["cls.predictions.transform.LayerNorm.weight"].mean().item<float>());
        Assert.Equal(0f, head["cls.predictions.bias"].abs().max().item<float>());

        using var scope = NewDisposeScope();
        // The shared reference model is used under inference mode throughout the suite.
        using var mode = inference_mode();
        var reference = HfModelReferenceTests.Shared("bert-uncased");
        var batch = Batch(model);
        using var a = model.Forward(batch.Ids, batch.Mask, batch.Types);
        using var b = reference.Forward(batch.Ids, batch.Mask, batch.Types);
        Assert.Equal(b.LastHiddenState.data<float>().ToArray(), a.LastHiddenState.data<float>().ToArray());

        // The masked-LM folder itself, asked for the head it has, loads completely and reports nothing.
        var (same, sameReport) = ModelLoader.LoadWithReport(ModelDir("bert-uncased"), HeadKind.MaskedLm);
        using var disposeSame = same;
        Assert.Empty(sameReport.NewlyInitialised);
        Assert.Empty(sameReport.Unused);
    }

    [Fact]
    public void AnElectraDiscriminatorFolderLoadsAsAGeneratorEncoderAndBack()
    {
        var (generator, report) = ModelLoader.LoadWithReport(ModelDir("electra-discriminator"), HeadKind.MaskedLm);
        using var disposeGenerator = generator;
        Assert.Equal(ElectraForMaskedLM.ArchitectureName, generator.Architecture);
        Assert.Equal(["discriminator_predictions.dense.bias", "discriminator_predictions.dense.weight",
            "discriminator_predictions.dense_prediction.bias", "discriminator_predictions.dense_prediction.weight"], report.Unused);
        Assert.Contains("generator_predictions.dense.weight", report.NewlyInitialised);
        Assert.Equal(HeadKind.MaskedLm, generator.Head);

        var (discriminator, back) = ModelLoader.LoadWithReport(ModelDir("electra-discriminator"), HeadKind.ReplacedToken);
        using var disposeDiscriminator = discriminator;
        Assert.Empty(back.NewlyInitialised);
        Assert.Equal(ElectraForPreTraining.ArchitectureName, discriminator.Architecture);
        Assert.Throws<UnmaskException>(() => ModelLoader.LoadWithReport(ModelDir("bert-uncased"), HeadKind.ReplacedToken));
    }
}
