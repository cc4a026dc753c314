using TorchSharp;
using Unmask.Generation;
using Unmask.Modeling;

namespace Unmask.Tests;

/// <summary>The samplers on a real (tiny, random) masked LM through <see cref="ModelLogits"/>.</summary>
public class GenerationModelTests
{
    const long Pad = 0, Cls = 2, Sep = 3, Mask = 4;

    static ModelLogits TinyBert()
    {
        torch.manual_seed(5);
        var model = BertForMaskedLM.Create(new BertConfig
        {
            VocabSize = 60,
            HiddenSize = 32,
            NumHiddenLayers = 2,
            NumAttentionHeads = 4,
            IntermediateSize = 48,
            MaxPositionEmbeddings = 40,
        });
        model.eval();
        return new ModelLogits(model);
    }

    static GenerationInput Input(params long[][] rows) => new(rows, Mask, Pad, [Pad, 1, Cls, Sep, Mask]);

    [Fact]
    public void RightPaddingLeavesAShortRowsOutputAsItIsAlone()
    {
        var model = TinyBert();
        long[] shortRow = [Cls, 10, Mask, Mask, 11, Mask, Mask, Sep];
        long[] longRow = [Cls, 12, 13, Mask, Mask, Mask, Mask, Mask, Mask, 14, 15, 16, Sep];
        foreach (var kind in Enum.GetValues<SamplerKind>())
        {
            var options = new SamplingOptions { Sampler = kind, Steps = 4, BlockLength = 2, Temperature = 0, Seed = 1 };
            var alone = Sampler.Generate(model, Input(shortRow), options);
            var batched = Sampler.Generate(model, Input(shortRow, longRow), options);
            Assert.Equal(alone.Rows[0].Ids, batched.Rows[0].Ids);
            Assert.Equal(longRow.Length, batched.Rows[1].Ids.Length);
            Assert.All(batched.Rows.SelectMany(r => r.GeneratedPositions.Select(p => r.Ids[p])), id => Assert.InRange(id, 5L, 59L));
        }
    }
}
