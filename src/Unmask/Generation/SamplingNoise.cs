using Unmask.Modeling;
namespace Unmask.Generation;

/// <summary>The ids drawn for a set of positions, and each one's confidence when one was asked for.</summary>
/// <param name="Scores">Higher means more confident; null when no score was asked for.</param>
sealed record Drawn(long[] Ids, double[]? Scores);

/// <summary>
/// Turns logits into token ids under the shared controls: forbidden ids removed, then temperature, top-k, top-p, and
/// the Gumbel-max trick. Everything runs in float64: Gumbel noise drawn at low precision ties and truncates the tail
/// of the noise, which skews the samples towards the argmax. Draws run on the host whatever the model's device, so a
/// seed gives the same text on every device that computes the same logits.
/// </summary>
sealed class TokenDrawer : IDisposable
{
    readonly SamplingOptions options;
    readonly Tensor forbidden; // [f] int64, every id never generated
    readonly Generator gumbel;

    public TokenDrawer(SamplingOptions options, GenerationInput input, int vocabSize, long seed)
    {
        this.options = options;
        var ids = input.ForbiddenIds.Append(input.MaskId).Append(input.PadId).Where(id => id >= 0 && id < vocabSize).Distinct().ToArray();
        if (ids.Length >= vocabSize)
            throw new UnmaskException($"every id of the {vocabSize}-token vocabulary is forbidden (mask, padding, special tokens), so nothing can be generated");
        forbidden = tensor(ids, device: ComputeDevice.Cpu);
        gumbel = new Generator((ulong)seed, device: ComputeDevice.Cpu);
    }

    /// <param name="logits">[n, vocab] at the positions to draw for.</param>
    /// <param name="score">What to rank the draws by; null: no scores. Scores come from the model's own distribution
    /// (forbidden ids removed, no temperature, top-k or top-p), so they stay defined at temperature 0.</param>
    public Drawn Draw(Tensor logits, ConfidenceScore? score)
    {
        long n = logits.shape[0], vocab = logits.shape[1];
        // Chunks bound the float64 temporaries (noise, its logs, the scores) to about 128 MiB each at any vocabulary.
        long chunk = Math.Max(1, (1L << 24) / vocab);
        var ids = new long[n];
        var scores = score is null ? null : new double[n];
        for (long start = 0; start < n; start += chunk)
        {
            using var scope = NewDisposeScope();
            long length = Math.Min(chunk, n - start);
            var allowed = logits.narrow(0, start, length).cpu().to(ScalarType.Float64).index_fill(1, forbidden, double.NegativeInfinity); // [chunk, vocab]
            var drawn = options.Temperature == 0 ? allowed.argmax(1) : Sample(allowed); // [chunk]
            drawn.cpu().data<long>().CopyTo(ids, (int)start);
            if (score is { } s) Score(allowed, drawn, s).cpu().data<double>().CopyTo(scores!, (int)start);
        }
        return new Drawn(ids, scores);
    }

    /// <param name="allowed">[n, vocab] float64 with forbidden ids at -inf.</param>
    /// <returns>[n] ids.</returns>
    Tensor Sample(Tensor allowed)
    {
        var scaled = allowed / options.Temperature; // [n, vocab]
        long vocab = scaled.shape[1];
        if (options.TopK is int k && k < vocab)
        {
            var kth = scaled.topk(k, 1).values.narrow(1, k - 1, 1); // [n, 1]
            scaled = scaled.masked_fill(scaled.lt(kth), double.NegativeInfinity);
        }
        if (options.TopP is double p && p < 1)
        {
            var (sorted, order) = scaled.sort(1, descending: true); // [n, vocab] each
            var probabilities = F.softmax(sorted, 1);
            // Mass of the strictly more likely tokens: a token goes once the ones above it already reach p, so the most
            // likely token always stays.
            var before = probabilities.cumsum(1) - probabilities;
            var dropSorted = before.ge(p);
            var drop = zeros_like(dropSorted).scatter(1, order, dropSorted); // back to vocabulary order
            scaled = scaled.masked_fill(drop, double.NegativeInfinity);
        }
        // argmax(l/T + g) with g = −log(−log u) is an exact draw from softmax(l/T); u is kept off 0 so the noise stays finite.
        var u = rand(scaled.shape, dtype: ScalarType.Float64, device: scaled.device, generator: gumbel).clamp_min(1e-300); // [n, vocab]
        var noise = u.log().neg().log().neg();
        return (scaled + noise).argmax(1);
    }

    /// <returns>[n] float64.</returns>
    static Tensor Score(Tensor allowed, Tensor ids, ConfidenceScore score)
    {
        var logProbabilities = F.log_softmax(allowed, 1); // [n, vocab]
        var probabilities = logProbabilities.exp();
        switch (score)
        {
            case ConfidenceScore.Probability:
                return probabilities.gather(1, ids.unsqueeze(1)).squeeze(1);
            case ConfidenceScore.Margin:
                // With a single allowed id the second largest is a forbidden id's 0, so the margin is that id's probability.
                var top = probabilities.topk(2, 1).values; // [n, 2]
                return top.select(1, 0) - top.select(1, 1);
            case ConfidenceScore.Entropy:
                // Σ p log p is the negative entropy; forbidden ids have p = 0 and log p = −inf, whose product is taken as 0.
                return where(probabilities.gt(0), probabilities * logProbabilities, zeros_like(probabilities)).sum(1);
            default:
                throw new ArgumentOutOfRangeException(nameof(score), score, null);
        }
    }

    public void Dispose()
    {
        forbidden.Dispose();
        gumbel.Dispose();
    }
}
