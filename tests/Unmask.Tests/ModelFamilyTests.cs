using TorchSharp;
using Unmask.Modeling;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Unmask.Tests;

/// <summary>Behaviour of the non-BERT families that the HF reference cases do not reach: losses, fresh models.</summary>
public class ModelFamilyTests
{
    [Fact]
    public void DiscriminatorLossIsBinaryCrossEntropyOverUnpaddedLabelledPositions()
    {
        var model = HfModelReferenceTests.Shared("electra-discriminator");
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var (inputIds, attentionMask, tokenTypeIds) = BertReferenceFixtures.Inputs(BertReferenceFixtures.Case("electra-discriminator", "batch_right_pad"));
        var labels = (torch.arange(inputIds.numel()).reshape(inputIds.shape) % 2).to(ScalarType.Int64); // [batch, seq] alternating 0/1
        labels[0, 1] = torch.tensor(-100L);

        using var output = model.Forward(inputIds, attentionMask, tokenTypeIds, labels);
        var active = attentionMask.eq(1).logical_and(labels.ne(-100));
        var expected = F.binary_cross_entropy_with_logits(output.Logits.masked_select(active), labels.masked_select(active).to(ScalarType.Float32));
        Assert.Equal(expected.item<float>(), output.Loss!.item<float>(), 5);

        var sparseLabels = labels.masked_fill(attentionMask.eq(0), -100);
        using var sparse = model.Forward(inputIds, attentionMask, tokenTypeIds, sparseLabels, sparseLabels.ne(-100));
        Assert.Equal(active.sum().item<long>(), sparse.Logits.shape[0]);
        Assert.Equal(expected.item<float>(), sparse.Loss!.item<float>(), 5);
    }

    [Fact]
    public void FreshModelsFollowTheirConfigs()
    {
        torch.manual_seed(3);
        using var distil = DistilBertForMaskedLM.Create(new DistilBertConfig
        {
            VocabSize = 50, Dim = 8, NLayers = 1, NHeads = 2, HiddenDim = 16, SinusoidalPosEmbds = true, TieWordEmbeddings = false,
        });
        var state = distil.StateDictForSave();
        // Sinusoidal table: even columns sin(pos / 10000^(2i/dim)), odd columns cos of the same angle.
        var table = state["distilbert.embeddings.position_embeddings.weight"];
        Assert.Equal(MathF.Sin(3f), table[3, 0].item<float>(), 5);
        Assert.Equal(MathF.Cos(3f / 10f), table[3, 3].item<float>(), 5);
        Assert.Contains("vocab_projector.weight", state.Keys);

        using var modern = ModernBertForMaskedLM.Create(new ModernBertConfig
        {
            VocabSize = 40, HiddenSize = 16, IntermediateSize = 24, NumHiddenLayers = 4, NumAttentionHeads = 2, PadTokenId = 0,
            LocalAttention = 4, DecoderBias = false,
        });
        var names = modern.StateDictForSave().Keys.ToHashSet();
        Assert.DoesNotContain("decoder.weight", names);
        Assert.DoesNotContain("decoder.bias", names);
        Assert.DoesNotContain("model.layers.0.attn_norm.weight", names);
        Assert.Contains("model.layers.3.attn_norm.weight", names);
        Assert.DoesNotContain(names, n => n.EndsWith(".bias"));

        using var scope = torch.NewDisposeScope();
        modern.eval();
        using var output = modern.Forward(torch.randint(1, 40, [2, 12]), torch.ones(2, 12, dtype: ScalarType.Int64));
        Assert.Equal([2L, 12, 40], output.Logits.shape);
        Assert.False(output.Logits.isnan().any().item<bool>());
    }
}
