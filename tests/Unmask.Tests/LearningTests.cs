using TorchSharp;
using Unmask.Masking;
using Unmask.Modeling;
using Unmask.Training;
using static TorchSharp.torch;

namespace Unmask.Tests;

/// <summary>
/// The model, masking and optimizer together learn a task that needs position-aware attention: the label of every
/// masked position is the token at position 1. Without positions and attention the model cannot beat chance (~1/35).
/// </summary>
[Collection(nameof(BertProcessWideTests))]
public class LearningTests
{
    [Theory]
    [InlineData(ComputeDtype.Float32)]
    [InlineData(ComputeDtype.BFloat16)]
    public void LearnsToRetrieveTheFirstTokenThroughAttention(ComputeDtype dtype)
    {
        const int vocab = 40, seq = 32, batch = 32;
        torch.manual_seed(1);
        var config = new BertConfig
        {
            VocabSize = vocab, HiddenSize = 64, NumHiddenLayers = 2, NumAttentionHeads = 2, IntermediateSize = 128,
            MaxPositionEmbeddings = seq, HiddenDropoutProb = 0, AttentionProbsDropoutProb = 0,
        };
        using var model = BertForMaskedLM.Create(config, dtype);
        model.train();
        using var optimizer = new AdamW(AdamW.DecayGroups(model.named_parameters().Select(p => (p.name, (Tensor)p.parameter)), 0.01), 0.9, 0.98, 1e-6);
        var special = new bool[vocab];
        for (int i = 0; i < 5; i++) special[i] = true;
        var masking = new RandomMasking(new MaskingOptions(0.15, 1, 0, 0), new MaskingVocabulary(vocab, 4, special));
        var rng = new Random(2);
        long[] Batch()
        {
            var ids = new long[batch * seq];
            for (int b = 0; b < batch; b++)
            {
                ids[b * seq] = 2;
                ids[b * seq + seq - 1] = 3;
                for (int t = 1; t < seq - 1; t++) ids[b * seq + t] = 5 + rng.Next(vocab - 5);
            }
            return ids;
        }
        MaskedBatch Corrupt(long[] ids)
        {
            var m = masking.Apply(ids, batch, seq, rng, 0);
            for (int b = 0; b < batch; b++)
                for (int t = 2; t < seq; t++)
                    if (m.Labels[b * seq + t] != MaskedBatch.Ignore) m.Labels[b * seq + t] = ids[b * seq + 1];
            return m;
        }
        var schedule = new LearningRateSchedule(1e-3, 0.1, DecayKind.Linear);
        const int steps = 500;
        for (int step = 0; step < steps; step++)
        {
            using var scope = NewDisposeScope();
            var m = Corrupt(Batch());
            using var output = model.Forward(tensor(m.InputIds, [batch, seq]), labels: tensor(m.Labels, [batch, seq]), positions: tensor(m.Labels, [batch, seq]).ne(-100));
            output.Loss!.backward();
            nn.utils.clip_grad_norm_(model.parameters(), 1.0);
            optimizer.StepWith(schedule.At((double)step / steps));
            model.zero_grad();
        }
        model.eval();
        var test = Corrupt(Batch());
        var labels = tensor(test.Labels, [batch, seq]);
        using var noGrad = inference_mode();
        using var eval = model.Forward(tensor(test.InputIds, [batch, seq]), labels: labels, positions: labels.ne(-100));
        var targets = labels.flatten().masked_select(labels.flatten().ne(-100));
        double accuracy = eval.Logits.argmax(-1).eq(targets).to(ScalarType.Float32).mean().item<float>();
        // Rows whose position 1 is itself masked are unsolvable, so the ceiling is below 1; chance is ~0.03.
        Assert.True(accuracy > 0.5, $"first-token retrieval accuracy {accuracy:F3} after {steps} steps ({dtype})");
    }
}
