using TorchSharp;
using Unmask.Modeling;
using static TorchSharp.torch;
using static Unmask.Tests.BertReferenceFixtures;

namespace Unmask.Tests;

public class BertForMaskedLMTests
{
    static BertConfig SmallConfig(bool tie = true) => new()
    {
        VocabSize = 97,
        HiddenSize = 32,
        NumHiddenLayers = 2,
        NumAttentionHeads = 4,
        IntermediateSize = 48,
        MaxPositionEmbeddings = 40,
        TieWordEmbeddings = tie,
    };

    static BertForMaskedLM Seeded(BertConfig config, long seed = 7)
    {
        torch.manual_seed(seed);
        var model = BertForMaskedLM.Create(config);
        model.eval();
        return model;
    }

    /// <summary>A batch with right padding in row 1 and labels on a few real positions.</summary>
    static (Tensor Ids, Tensor Mask, Tensor Labels) Batch()
    {
        torch.manual_seed(3);
        var ids = torch.randint(1, 97, [3, 12], dtype: ScalarType.Int64);
        var mask = torch.ones([3, 12], dtype: ScalarType.Int64);
        mask[1, TensorIndex.Slice(8)] = torch.tensor(0L);
        ids[1, TensorIndex.Slice(8)] = torch.tensor(0L);
        var labels = torch.full([3, 12], -100L, dtype: ScalarType.Int64);
        foreach (var (b, t) in new[] { (0, 1), (0, 5), (1, 2), (1, 7), (2, 0), (2, 11) })
            labels[b, t] = torch.tensor((long)(b * 13 + t * 5 + 1));
        return (ids, mask, labels);
    }

    [Fact]
    public void SparsePredictionEqualsDenseLogitsAtLabelledPositions()
    {
        using var model = Seeded(SmallConfig());
        using var scope = torch.NewDisposeScope();
        var (ids, mask, labels) = Batch();
        using var dense = model.Forward(ids, mask, labels: labels);
        using var sparse = model.Forward(ids, mask, labels: labels, positions: labels.ne(-100));

        var positions = labels.reshape(-1).ne(-100).nonzero().squeeze(1);
        Assert.Equal(new long[] { 6, 97 }, sparse.Logits.shape);
        var gathered = dense.Logits.reshape(-1, 97).index_select(0, positions);
        Assert.True(MaxAbsDiff(sparse.Logits, gathered) < 1e-5);

        var targets = labels.reshape(-1).index_select(0, positions);
        var manual = -gathered.log_softmax(-1).gather(1, targets.unsqueeze(1)).mean().item<float>();
        Assert.Equal(manual, sparse.Loss!.item<float>(), 1e-5);
        Assert.Equal(manual, dense.Loss!.item<float>(), 1e-5);
    }

    [Fact]
    public void HeadPositionsAreABoolMaskShapedLikeTheInput()
    {
        using var model = Seeded(SmallConfig());
        using var scope = torch.NewDisposeScope();
        var (ids, mask, _) = Batch();
        Assert.Throws<ArgumentException>(() => model.Forward(ids, mask, positions: mask));
        Assert.Throws<ArgumentException>(() => model.Forward(ids, mask, positions: mask.eq(1)[.., 1..]));
        // Positions without labels: logits at those rows only, and no loss.
        using var output = model.Forward(ids, mask, positions: mask.eq(1));
        Assert.Null(output.Loss);
        Assert.Equal(mask.sum().item<long>(), output.Logits.shape[0]);
    }

    [Fact]
    public void InvalidInputsAreRejectedWithAMessage()
    {
        using var model = Seeded(SmallConfig());
        using var scope = torch.NewDisposeScope();
        var tooLong = torch.ones([1, 41], dtype: ScalarType.Int64);
        Assert.Contains("max_position_embeddings", Assert.Throws<ArgumentException>(() => model.Forward(tooLong)).Message);
        var outOfVocab = torch.full([1, 4], 97L, dtype: ScalarType.Int64);
        Assert.Contains("outside [0, 97)", Assert.Throws<ArgumentException>(() => model.Forward(outOfVocab)).Message);
        var ids = torch.ones([2, 4], dtype: ScalarType.Int64);
        Assert.Contains("attention_mask", Assert.Throws<ArgumentException>(() => model.Forward(ids, torch.ones([2, 5]))).Message);
    }

    [Fact]
    public void Bfloat16ComputeStaysCloseToFloat32AndTrainsFloat32Weights()
    {
        using var model = ModelFolderCopy("bert-cased");
        using var scope = torch.NewDisposeScope();
        var (ids, mask, types) = Inputs(Case("bert-cased", "batch_pair_mask"));
        Tensor fp32, bf16;
        using (torch.inference_mode())
        {
            fp32 = model.Forward(ids, mask, types).Logits;
            model.ComputeDtype = ComputeDtype.BFloat16;
            bf16 = model.Forward(ids, mask, types).Logits;
        }
        Assert.Equal(ScalarType.Float32, bf16.dtype);
        var linears = model.modules().OfType<Linear>().ToList();
        Assert.Equal(2 * 6 + 2, linears.Count); // q, k, v, attention output, intermediate, output per layer; transform; decoder
        Assert.All(linears, linear => Assert.Equal(ComputeDtype.BFloat16, linear.ComputeDtype));
        // bf16 keeps 8 significant bits: through two layers of this fixture's large random weights the logits move
        // by about 1% of their range (about 0.1 at most), far less than the gaps that decide predictions.
        var diff = MaxAbsDiff(fp32, bf16);
        var range = fp32.abs().max().item<float>();
        var meanDiff = (fp32 - bf16).abs().mean().item<float>();
        Assert.True(diff > 0 && diff < 0.04 * range, $"max |fp32 - bf16 logit| = {diff}, max |logit| = {range}");
        Assert.True(meanDiff < 0.005 * range, $"mean |fp32 - bf16 logit| = {meanDiff}, max |logit| = {range}");

        model.train();
        var labels = torch.where(mask.eq(1), ids, torch.tensor(-100L));
        using var output = model.Forward(ids, mask, types, labels, labels.ne(-100));
        output.Loss!.backward();
        foreach (var (name, p) in model.named_parameters())
        {
            Assert.Equal(ScalarType.Float32, p.dtype);
            Assert.True(p.grad is not null && p.grad.dtype == ScalarType.Float32, $"no float32 gradient for {name}");
        }
    }

    static BertForMaskedLM ModelFolderCopy(string model) => Checkpoints.ModelFolder.LoadBert(ModelDir(model));

    [Fact]
    public void DecoderSharesTheWordEmbeddingsAndTheBias()
    {
        using var model = Seeded(SmallConfig());
        var state = model.state_dict();
        Assert.Same(state["bert.embeddings.word_embeddings.weight"], state["cls.predictions.decoder.weight"]);
        Assert.Same(state["cls.predictions.bias"], state["cls.predictions.decoder.bias"]);
        Assert.Equal(state.Count - 2, model.parameters().Count());
        var names = model.named_parameters().Select(p => p.name).ToList();
        Assert.Contains("bert.embeddings.word_embeddings.weight", names);
        Assert.Contains("cls.predictions.bias", names);

        var saved = model.StateDictForSave();
        Assert.DoesNotContain("cls.predictions.decoder.weight", saved.Keys);
        Assert.DoesNotContain("cls.predictions.decoder.bias", saved.Keys);
        Assert.Equal(state.Count - 2, saved.Count);
    }

    [Fact]
    public void UntiedDecoderIsItsOwnParameterAndIsRequiredOnLoad()
    {
        using var model = Seeded(SmallConfig(tie: false));
        var state = model.state_dict();
        Assert.NotSame(state["bert.embeddings.word_embeddings.weight"], state["cls.predictions.decoder.weight"]);
        var saved = model.StateDictForSave();
        Assert.Contains("cls.predictions.decoder.weight", saved.Keys);

        using var other = Seeded(SmallConfig(tie: false), seed: 8);
        other.LoadHfStateDict(saved);
        Assert.Equal(saved["cls.predictions.decoder.weight"].data<float>().ToArray(),
            other.state_dict()["cls.predictions.decoder.weight"].data<float>().ToArray());

        var withoutDecoder = saved.Where(p => p.Key != "cls.predictions.decoder.weight").ToDictionary();
        var error = Assert.Throws<UnmaskException>(() => other.LoadHfStateDict(withoutDecoder));
        Assert.Contains("cls.predictions.decoder.weight", error.Message);
    }

    [Fact]
    public void LoadAcceptsTiedNamesAndIgnoresPositionIdsAndPooler()
    {
        using var source = Seeded(SmallConfig(), seed: 1);
        using var target = Seeded(SmallConfig(), seed: 2);
        using var scope = torch.NewDisposeScope();
        var file = source.state_dict(); // includes the tied decoder names, as older checkpoints do
        file["bert.embeddings.position_ids"] = torch.arange(40, dtype: ScalarType.Int64).unsqueeze(0);
        file["bert.pooler.dense.weight"] = torch.zeros(32, 32);
        file["bert.pooler.dense.bias"] = torch.zeros(32);
        target.LoadHfStateDict(file);

        var (ids, mask, _) = Batch();
        using (torch.inference_mode())
        {
            using var a = source.Forward(ids, mask);
            using var b = target.Forward(ids, mask);
            Assert.Equal(a.Logits.data<float>().ToArray(), b.Logits.data<float>().ToArray());
        }
    }

    [Fact]
    public void LoadErrorsNameTheOffendingTensor()
    {
        using var model = Seeded(SmallConfig());
        using var scope = torch.NewDisposeScope();
        var good = model.StateDictForSave();

        var missing = good.Where(p => p.Key != "bert.encoder.layer.1.output.dense.bias").ToDictionary();
        Assert.Contains("bert.encoder.layer.1.output.dense.bias", Assert.Throws<UnmaskException>(() => model.LoadHfStateDict(missing)).Message);

        var unexpected = new Dictionary<string, Tensor>(good) { ["bert.encoder.layer.2.output.dense.bias"] = torch.zeros(32) };
        Assert.Contains("bert.encoder.layer.2.output.dense.bias", Assert.Throws<UnmaskException>(() => model.LoadHfStateDict(unexpected)).Message);

        var wrongShape = new Dictionary<string, Tensor>(good) { ["cls.predictions.bias"] = torch.zeros(98) };
        var error = Assert.Throws<UnmaskException>(() => model.LoadHfStateDict(wrongShape));
        Assert.Contains("cls.predictions.bias", error.Message);
        Assert.Contains("[98]", error.Message);
    }

    [Fact]
    public void TrainingStepsLowerTheLoss()
    {
        using var model = Seeded(SmallConfig() with { HiddenDropoutProb = 0, AttentionProbsDropoutProb = 0 });
        model.train();
        using var scope = torch.NewDisposeScope();
        var (ids, mask, labels) = Batch();
        using var optimizer = torch.optim.AdamW(model.parameters(), lr: 1e-2);
        var losses = new List<float>();
        for (var step = 0; step < 5; step++)
        {
            optimizer.zero_grad();
            using var output = model.Forward(ids, mask, labels: labels, positions: labels.ne(-100));
            output.Loss!.backward();
            optimizer.step();
            losses.Add(output.Loss.item<float>());
        }
        Assert.True(losses[^1] < losses[0] - 0.5, $"losses: {string.Join(", ", losses)}");
    }

    [Fact]
    public void DropoutActsOnlyInTrainingMode()
    {
        using var model = Seeded(SmallConfig() with { HiddenDropoutProb = 0.3, AttentionProbsDropoutProb = 0.3 });
        using var scope = torch.NewDisposeScope();
        var (ids, mask, _) = Batch();
        using var noGrad = torch.no_grad();
        var eval1 = model.Forward(ids, mask).Logits;
        var eval2 = model.Forward(ids, mask).Logits;
        Assert.Equal(eval1.data<float>().ToArray(), eval2.data<float>().ToArray());
        model.train();
        var train1 = model.Forward(ids, mask).Logits;
        var train2 = model.Forward(ids, mask).Logits;
        Assert.True(MaxAbsDiff(train1, train2) > 1e-3);
        Assert.True(MaxAbsDiff(train1, eval1) > 1e-3);
    }

    [Fact]
    public void ActivationFollowsHiddenAct()
    {
        using var scope = torch.NewDisposeScope();
        var (ids, mask, _) = Batch();
        var logits = new[] { "gelu", "gelu_new", "gelu_pytorch_tanh", "relu" }.Select(act =>
        {
            using var model = Seeded(SmallConfig() with { HiddenAct = act });
            using var noGrad = torch.no_grad();
            return model.Forward(ids, mask).Logits;
        }).ToArray();
        Assert.True(MaxAbsDiff(logits[0], logits[1]) > 1e-6); // erf vs tanh approximation
        Assert.True(MaxAbsDiff(logits[1], logits[2]) == 0); // two names for the same tanh approximation
        Assert.True(MaxAbsDiff(logits[0], logits[3]) > 1e-3);
    }

    [Fact]
    public void HiddenStatesAreEmbeddingsThenEveryLayer()
    {
        using var model = Seeded(SmallConfig());
        using var scope = torch.NewDisposeScope();
        var (ids, mask, _) = Batch();
        using var noGrad = torch.no_grad();
        using var output = model.Forward(ids, mask, outputHiddenStates: true);
        Assert.Equal(3, output.HiddenStates!.Count);
        Assert.Same(output.HiddenStates[^1], output.LastHiddenState);
        using var plain = model.Forward(ids, mask);
        Assert.Null(plain.HiddenStates);
        Assert.Equal(plain.LastHiddenState.data<float>().ToArray(), output.LastHiddenState.data<float>().ToArray());
    }
}
