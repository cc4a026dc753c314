using System.Diagnostics;
using TorchSharp;
using Unmask.Modeling;
using static TorchSharp.torch;

namespace Unmask.Tests;

/// <summary>
/// Tests of process-wide state (working set, live tensor count, the global random generator), which other tests
/// running beside them would disturb.
/// </summary>
[CollectionDefinition(nameof(BertProcessWideTests), DisableParallelization = true)]
public sealed class BertProcessWideTestsCollection;

[Collection(nameof(BertProcessWideTests))]
public class BertProcessWideTests
{
    static BertConfig SmallConfig() => new()
    {
        VocabSize = 2000,
        HiddenSize = 32,
        NumHiddenLayers = 2,
        NumAttentionHeads = 4,
        IntermediateSize = 48,
        InitializerRange = 0.05,
        PadTokenId = 3,
    };

    static BertForMaskedLM Seeded(BertConfig config, long seed)
    {
        torch.manual_seed(seed);
        return BertForMaskedLM.Create(config);
    }

    [Fact]
    public void InitialisationFollowsHuggingFaceAndIsSeeded()
    {
        var config = SmallConfig();
        using var a = Seeded(config, seed: 11);
        using var b = Seeded(config, seed: 11);
        using var scope = torch.NewDisposeScope();
        var state = a.state_dict();
        var word = state["bert.embeddings.word_embeddings.weight"];
        Assert.Equal(0.05, word.std().item<float>(), 0.003);
        Assert.Equal(0f, word[3].abs().max().item<float>());
        Assert.Equal(0.05, state["bert.encoder.layer.0.attention.self.query.weight"].std().item<float>(), 0.005);
        Assert.Equal(0f, state["bert.encoder.layer.0.intermediate.dense.bias"].abs().max().item<float>());
        Assert.Equal(0f, state["cls.predictions.bias"].abs().max().item<float>());
        Assert.True(state["bert.encoder.layer.1.output.LayerNorm.weight"].eq(1).all().item<bool>());
        Assert.Equal(0f, state["bert.embeddings.LayerNorm.bias"].abs().max().item<float>());
        foreach (var (name, tensor) in b.state_dict())
            Assert.Equal(state[name].data<float>().ToArray(), tensor.data<float>().ToArray());
    }

    [Fact]
    public void RepeatedInferenceDoesNotGrowMemory()
    {
        torch.manual_seed(5);
        using var model = BertForMaskedLM.Create(BertConfig.Preset("tiny", 1000));
        model.eval();
        using var ids = torch.randint(0, 1000, [4, 32], dtype: ScalarType.Int64);
        using var mask = torch.ones([4, 32], dtype: ScalarType.Int64);
        using var inference = torch.inference_mode();

        void Run(int count)
        {
            for (var i = 0; i < count; i++)
            {
                using var output = model.Forward(ids, mask);
            }
        }

        // The warm-up covers JIT tiering and the allocator's first growth, which are not leaks.
        Run(300);
        GC.Collect();
        GC.WaitForPendingFinalizers();
        var liveTensors = Tensor.TotalCount;
        var before = Process.GetCurrentProcess().WorkingSet64;
        Run(1000);
        GC.Collect();
        GC.WaitForPendingFinalizers();
        var growth = Process.GetCurrentProcess().WorkingSet64 - before;
        Assert.Equal(liveTensors, Tensor.TotalCount);
        Assert.True(growth < 50L << 20, $"working set grew by {growth >> 20} MiB over 1000 forward passes");
    }
}
