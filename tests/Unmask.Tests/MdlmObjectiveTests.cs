using TorchSharp;
using Unmask.Checkpoints;
using Unmask.Inference;
using Unmask.Masking;
using Unmask.Training;
using static TorchSharp.torch;

namespace Unmask.Tests;

/// <summary>MDLM's pieces (times, masking, weighting, the blocked mask token), each against what the paper prescribes.</summary>
public class MdlmObjectiveTests
{
    const int Vocab = 50, MaskId = 4;

    static MaskingVocabulary Vocabulary()
    {
        var special = new bool[Vocab];
        for (int i = 0; i < 5; i++) special[i] = true;
        return new MaskingVocabulary(Vocab, MaskId, special);
    }

    [Fact]
    public void MdlmRefusesMaskingOptions()
    {
        var options = new PretrainOptions { Output = "unused", Objective = ObjectiveKind.Mdlm, Masking = new MaskingOptions(Rate: 0.3) };
        var error = Assert.Throws<UnmaskException>(options.Validate);
        Assert.Contains("--objective mdlm", error.Message);
        (options with { Masking = new MaskingOptions() }).Validate();
    }

    [Fact]
    public void AntitheticTimesPutOneTimeInEveryStratum()
    {
        var rng = new Random(7);
        const int batch = 16;
        for (int trial = 0; trial < 200; trial++)
        {
            var times = MdlmObjective.AntitheticTimes(batch, rng);
            // Undo the affine map onto [ε, 1]: the underlying draws are u + i/B mod 1, one in each [k/B, (k+1)/B).
            var strata = times.Select(t => (int)Math.Floor((t - MdlmObjective.MinTime) / (1 - MdlmObjective.MinTime) * batch)).Order().ToArray();
            Assert.Equal(Enumerable.Range(0, batch), strata);
            Assert.All(times, t => Assert.InRange(t, MdlmObjective.MinTime, 1.0));
            var sorted = times.Order().ToArray();
            for (int i = 1; i < batch; i++) Assert.Equal((1 - MdlmObjective.MinTime) / batch, sorted[i] - sorted[i - 1], 9);
        }
    }

    [Fact]
    public void EachSequenceIsMaskedAtItsOwnTime()
    {
        var vocab = Vocabulary();
        var rng = new Random(11);
        const int batch = 8, seq = 64;
        // Per time stratum: masked fraction of the non-special tokens and the mean time; 500 batches of 8 sequences.
        var masked = new double[batch];
        var time = new double[batch];
        var count = new int[batch];
        long replacedOrKept = 0;
        for (int trial = 0; trial < 500; trial++)
        {
            var ids = new long[batch * seq];
            for (int b = 0; b < batch; b++)
            {
                ids[b * seq] = 2;
                ids[b * seq + seq - 1] = 3;
                for (int t = 1; t < seq - 1; t++) ids[b * seq + t] = 5 + rng.Next(Vocab - 5);
            }
            var times = MdlmObjective.AntitheticTimes(batch, rng);
            var (m, eligible) = MdlmObjective.Corrupt(ids, batch, seq, times, vocab, rng);
            Assert.Equal(batch * (seq - 2), eligible);
            for (int b = 0; b < batch; b++)
            {
                Assert.Equal(2, m.InputIds[b * seq]);
                Assert.Equal(3, m.InputIds[b * seq + seq - 1]);
                int n = 0;
                for (int t = 0; t < seq; t++)
                {
                    int i = b * seq + t;
                    if (m.Labels[i] == MaskedBatch.Ignore) { Assert.Equal(ids[i], m.InputIds[i]); continue; }
                    n++;
                    Assert.Equal(ids[i], m.Labels[i]);
                    if (m.InputIds[i] != MaskId) replacedOrKept++;
                }
                int stratum = (int)Math.Min(batch - 1, Math.Floor(times[b] * batch));
                masked[stratum] += n / (double)(seq - 2);
                time[stratum] += times[b];
                count[stratum]++;
            }
        }
        Assert.Equal(0, replacedOrKept);
        for (int s = 0; s < batch; s++)
        {
            double rate = masked[s] / count[s], meanTime = time[s] / count[s];
            // 500 sequences of 62 tokens per stratum: the standard error of the mean rate is below 0.003.
            Assert.True(Math.Abs(rate - meanTime) < 0.01, $"stratum {s}: masked {rate:F4} vs mean t {meanTime:F4}");
        }
    }

    [Fact]
    public void MaskTokenGetsNoProbability()
    {
        using var scope = NewDisposeScope();
        // The mask token's logit is the largest by far: an unblocked softmax would give it almost all the mass.
        var logits = tensor(new float[] { 0, 1, 2, 30, -1, 0.5f, 3, 1, 40, 0 }, [2, 5]);
        var probs = MdlmObjective.LogProbabilities(logits, maskId: 3).exp();
        Assert.Equal(0f, probs[0, 3].item<float>());
        Assert.Equal(0f, probs[1, 3].item<float>());
        var sums = probs.sum(1);
        Assert.Equal(1f, sums[0].item<float>(), 5);
        Assert.Equal(1f, sums[1].item<float>(), 5);
        // The other tokens keep their relative odds: row 0 is softmax over logits {0, 1, 2, -1}.
        double z = 1 + Math.E + Math.Exp(2) + Math.Exp(-1);
        Assert.Equal(Math.Exp(2) / z, probs[0, 2].item<float>(), 5);
    }

    [Fact]
    public void NllIsWeightedByTheElboWeight()
    {
        using var scope = NewDisposeScope();
        // Vocabulary {0, 1, 2, mask=3}. Row 0: equal logits for 0..2, target 0 → −log(1/3); masked at t = 0.25 → weight 4.
        // Row 1: logits ln 1, ln 3 for tokens 0, 1 and −∞ for 2 → p(1) = 3/4; masked at t = 0.5 → weight 2.
        var logits = tensor(new float[] { 0, 0, 0, 9, 0, (float)Math.Log(3), float.NegativeInfinity, 9 }, [2, 4]);
        var targets = tensor(new long[] { 0, 1 });
        var weights = tensor(new double[] { 1 / 0.25, 1 / 0.5 });
        double expected = 4 * Math.Log(3) + 2 * -Math.Log(0.75);
        Assert.Equal(expected, MdlmObjective.WeightedNllSum(logits, targets, weights, maskId: 3).item<double>(), 5);
    }
}

/// <summary>An MDLM run end to end. Trains, so it runs alone beside the other trainer tests.</summary>
[Collection(nameof(BertProcessWideTests))]
public class MdlmPretrainTests : IDisposable
{
    readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("unmask-mdlm");

    public void Dispose() => _dir.Delete(recursive: true);

    [Fact]
    public void ThirtyStepsLowerTheElboAndLeaveAFillMaskModel()
    {
        var config = Path.Combine(_dir.FullName, "config.json");
        File.WriteAllText(config, """
            {"vocab_size": 1000, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
             "max_position_embeddings": 64, "model_type": "bert"}
            """);
        var result = Pretrainer.Run(new PretrainOptions
        {
            Corpus = Path.Combine(SharedFixtures.Gutenberg, "extra", "alice_in_wonderland.txt.gz"),
            Output = Path.Combine(_dir.FullName, "run"),
            ConfigPath = config,
            Objective = ObjectiveKind.Mdlm,
            MaxSteps = 30,
            BatchSize = 8,
            MaxSeqLength = 32,
            VocabSize = 600,
            LearningRate = 2e-3,
            Precision = Precision.Fp32,
            LoggingSteps = 10,
            SaveSteps = 0,
            EvalFraction = 0.1,
            ValidationSequences = 16,
        });
        Assert.Equal(30, result.Steps);

        var validation = MetricsLog.Read(Path.Combine(result.OutputDirectory, "metrics.jsonl"))
            .Where(r => r.Split == "validation").OrderBy(r => r.Step).ToList();
        Assert.True(validation.Count >= 2);
        double first = validation[0].Values["elbo_nll"], last = validation[^1].Values["elbo_nll"];
        Assert.True(last < first - 0.2, $"ELBO NLL {first:F3} at step {validation[0].Step} → {last:F3} at step 30");
        Assert.Equal(Math.Exp(last), validation[^1].Values["elbo_perplexity"], 6);
        Assert.True(validation[^1].Values["loss"] < validation[0].Values["loss"]);

        using var model = MaskedLanguageModel.Load(result.OutputDirectory);
        Assert.Equal("BertForMaskedLM", model.Model.Architecture);
        var fill = model.Fill(["alice was [MASK] to the queen ."], topK: 3);
        Assert.Equal(3, fill[0].Masks[0].Candidates.Count);
    }
}
