using Unmask.Masking;
using Unmask.Modeling;

namespace Unmask.Training;

/// <summary>
/// Continuous-time masked diffusion (MDLM, Sahoo et al. 2024) with the log-linear schedule α_t = 1 − t: each sequence
/// draws a time t, every non-special token is masked with probability t (never replaced by a random token nor kept),
/// and the masked tokens' cross-entropy is weighted by the ELBO weight −α'_t / (1 − α_t) = 1/t. The model never
/// predicts the mask token. The trained model is a plain masked LM of its family.
/// </summary>
public sealed class MdlmObjective(PretrainedModel model, MaskingVocabulary vocab) : IObjective
{
    /// <summary>Smallest time: keeps the 1/t weight finite, as MDLM's sampling_eps does.</summary>
    public const double MinTime = 1e-3;

    const int ValidationSeed = 0xe1b0;

    public ObjectiveLoss Loss(long[] inputIds, int batchSize, int seqLength, Random rng, double progress, (int Start, int End)? rows = null)
    {
        var times = AntitheticTimes(batchSize, rng);
        var (masked, eligible) = Corrupt(inputIds, batchSize, seqLength, times, vocab, rng);
        if (rows is { } r)
        {
            // The rows' terms over the whole batch's normaliser; rows with nothing masked still run the graph, weighted 0.
            var part = masked.Rows(r.Start, r.End);
            var partTimes = times[r.Start..r.End];
            if (part.SelectedCount == 0)
                return new ObjectiveLoss((WeightedNll(part.WithPlaceholderLabel(), partTimes).Sum * 0.0).to(ScalarType.Float32), 0);
            (masked, times) = (part, partTimes);
        }
        var (sum, predicted) = WeightedNll(masked, times);
        return new ObjectiveLoss((sum / Math.Max(eligible, 1)).to(ScalarType.Float32), predicted);
    }

    /// <summary>
    /// The ELBO bound on perplexity: exp(Σ weighted masked NLL / Σ eligible tokens) with one time per sequence, the
    /// times and masks drawn from a fixed seed so successive validations are comparable.
    /// </summary>
    public IReadOnlyDictionary<string, double> ValidationMetrics(IReadOnlyList<long[]> batches, int seqLength)
    {
        var rng = new Random(ValidationSeed);
        double nll = 0;
        long tokens = 0;
        foreach (var ids in batches)
        {
            using var scope = NewDisposeScope();
            int batchSize = ids.Length / seqLength;
            var times = AntitheticTimes(batchSize, rng);
            var (masked, eligible) = Corrupt(ids, batchSize, seqLength, times, vocab, rng);
            nll += WeightedNll(masked, times).Sum.item<double>();
            tokens += eligible;
        }
        return new Dictionary<string, double>
        {
            ["elbo_nll"] = nll / Math.Max(tokens, 1),
            ["elbo_perplexity"] = Math.Exp(nll / Math.Max(tokens, 1)),
        };
    }

    /// <summary>Σ over masked positions of NLL/t (float64 scalar, in the caller's scope) and the count of masked positions.</summary>
    (Tensor Sum, long Predicted) WeightedNll(MaskedBatch masked, double[] times)
    {
        var weights = new List<double>();
        for (int i = 0; i < masked.Labels.Length; i++)
            if (masked.Labels[i] != MaskedBatch.Ignore) weights.Add(1 / times[i / masked.SeqLength]);
        // A batch with nothing masked (all times near zero) has no terms; its ELBO contribution is exactly zero.
        if (weights.Count == 0) return (tensor(0.0, device: model.Device), 0);
        var shape = new long[] { masked.BatchSize, masked.SeqLength };
        var labels = tensor(masked.Labels, shape, device: model.Device); // [batch, seq]
        var output = model.Forward(tensor(masked.InputIds, shape, device: model.Device), labels: labels, positions: labels.ne(-100)); // logits [n, vocab]
        var targets = labels.flatten().masked_select(labels.flatten().ne(MaskedBatch.Ignore)); // [n]
        var sum = WeightedNllSum(output.Logits, targets, tensor(weights.ToArray(), device: model.Device), vocab.MaskId);
        return (sum, weights.Count);
    }

    /// <summary>Σᵢ wᵢ · −log p(targetᵢ) under <see cref="LogProbabilities"/>, in float64.</summary>
    internal static Tensor WeightedNllSum(Tensor logits, Tensor targets, Tensor weights, long maskId)
    {
        var logProbs = LogProbabilities(logits, maskId).gather(1, targets.unsqueeze(1)).squeeze(1); // [n]
        return -(logProbs.to(ScalarType.Float64) * weights).sum();
    }

    /// <summary>Log-softmax with the mask token's logit at −∞: a masked token always stands for a real one (MDLM's
    /// "zero masking probabilities"), so no probability mass is wasted on it.</summary>
    internal static Tensor LogProbabilities(Tensor logits, long maskId)
    {
        var blocked = logits.index_fill(1, tensor(new[] { maskId }, device: logits.device), double.NegativeInfinity); // [n, vocab]
        return blocked.log_softmax(1);
    }

    /// <summary>
    /// Stratified times t_i = (u + i/B) mod 1 for one uniform u, mapped affinely onto [ε, 1] (MDLM's choice, which keeps
    /// the times evenly spread where clamping would pile them on ε). Low variance: every batch covers the whole range.
    /// </summary>
    internal static double[] AntitheticTimes(int batchSize, Random rng)
    {
        double u = rng.NextDouble();
        var times = new double[batchSize];
        for (int i = 0; i < batchSize; i++)
        {
            double t = (u + (double)i / batchSize) % 1;
            times[i] = MinTime + (1 - MinTime) * t;
        }
        return times;
    }

    /// <summary>Masks each non-special token of sequence b independently with probability times[b]; labels hold the
    /// originals at masked positions. Also returns the number of non-special tokens, the ELBO's normaliser.</summary>
    internal static (MaskedBatch Batch, long Eligible) Corrupt(long[] inputIds, int batchSize, int seqLength, double[] times,
        MaskingVocabulary vocab, Random rng)
    {
        var (corrupted, labels) = Corruption.Begin(inputIds, batchSize, seqLength);
        long eligible = 0;
        for (int i = 0; i < inputIds.Length; i++)
        {
            long id = inputIds[i];
            if (id < vocab.IsSpecial.Length && vocab.IsSpecial[id]) continue;
            eligible++;
            if (rng.NextDouble() < times[i / seqLength])
            {
                corrupted[i] = vocab.MaskId;
                labels[i] = id;
            }
        }
        return (new MaskedBatch(corrupted, labels, batchSize, seqLength), eligible);
    }
}
