using TorchSharp;
using Unmask.Modeling;
using Unmask.Training;
using static TorchSharp.torch;

namespace Unmask.Tests;

public class LocalAttentionInitTests
{
    static readonly BertConfig Config = new()
    {
        VocabSize = 97, HiddenSize = 32, NumHiddenLayers = 2, NumAttentionHeads = 4, IntermediateSize = 48,
        MaxPositionEmbeddings = 40, HiddenDropoutProb = 0, AttentionProbsDropoutProb = 0,
    };

    [Fact]
    public void PositionsBecomeScaledSinusoidsAndQueryKeyProjectionsScaledIdentities()
    {
        torch.manual_seed(5);
        using var model = BertForMaskedLM.Create(Config);
        var before = model.state_dict().ToDictionary(p => p.Key, p => p.Value.clone());
        model.InitialiseLocalAttention(queryKeyScale: 1.5);
        var after = model.state_dict();

        var positions = after["bert.embeddings.position_embeddings.weight"]; // [40, 32]
        var rms = positions.square().mean([1]).sqrt(); // [40]
        Assert.True(rms.sub(Config.InitializerRange).abs().max().item<float>() < 1e-6f, "every row has the random rows' scale");
        var scale = (float)(Config.InitializerRange * Math.Sqrt(2));
        // Row p holds sin(p·ω_k), cos(p·ω_k) pairs; row 0 is therefore 0, s, 0, s, ... and row 3's first pair uses ω_0 = 1.
        Assert.Equal(Enumerable.Range(0, 32).Select(i => i % 2 == 0 ? 0f : scale), positions[0].data<float>().ToArray());
        Assert.Equal(MathF.Sin(3) * scale, positions[3, 0].item<float>(), 6);
        Assert.Equal(MathF.Cos(3) * scale, positions[3, 1].item<float>(), 6);

        for (int layer = 0; layer < Config.NumHiddenLayers; layer++)
            foreach (var projection in new[] { "query", "key" })
                Assert.True(after[$"bert.encoder.layer.{layer}.attention.self.{projection}.weight"].eq(torch.eye(32) * 1.5).all().item<bool>());
        var untouched = before.Keys.Where(k => !k.Contains("position_embeddings") && !k.EndsWith("query.weight") && !k.EndsWith("key.weight"));
        foreach (var name in untouched) Assert.True(after[name].eq(before[name]).all().item<bool>(), name);
    }

    [Fact]
    public void NeighbouringPositionsStartCloseAndFarOnesApart()
    {
        torch.manual_seed(5);
        using var model = BertForMaskedLM.Create(Config);
        model.InitialiseLocalAttention();
        model.eval();
        // Every token the same, so only positions tell tokens apart. With HF's random positions position 11 is as far
        // from 10 as position 30 is; with sinusoids (and attention weighted by their kernel) it is much closer.
        var ids = torch.full([1, 40], 7L, dtype: ScalarType.Int64);
        using var output = model.Forward(ids, outputHiddenStates: true);
        var first = output.HiddenStates![1][0]; // [40, hidden]
        var near = (first[10] - first[11]).norm().item<float>();
        var far = (first[10] - first[30]).norm().item<float>();
        Assert.True(near < far / 2, $"near {near}, far {far}");
    }

    [Fact]
    public void PretrainingStartsLocalByDefault() =>
        Assert.Equal(AttentionInit.Local, new PretrainOptions { Output = "unused" }.AttentionInit);
}
