using System.Numerics;

namespace Unmask.Generation;

/// <summary>
/// Fills the masked positions of a batch of rows with a masked language model, by one of the <see cref="SamplerKind"/>
/// samplers. Every row goes through the model in one right-padded batch; each call of the model is one forward pass
/// (NFE) whatever the batch size.
/// </summary>
public static class Sampler
{
    public static GenerationResult Generate(IMaskedLmLogits model, GenerationInput input, SamplingOptions options,
        IProgress<GenerationProgress>? progress = null, CancellationToken ct = default)
    {
        Validate(input, options);
        // One seed feeds both generators: torch's for the Gumbel noise, .NET's for the ancestral coin flips.
        int seed = options.Seed ?? Random.Shared.Next();
        using var batch = new GenerationBatch(model, input, options.Trace, progress, ct);
        using var drawer = new TokenDrawer(options, input, model.VocabSize, seed);
        var rng = new Random(seed);
        switch (options.Sampler)
        {
            case SamplerKind.Ancestral: AncestralSampler.Run(batch, drawer, options, rng); break;
            case SamplerKind.Confidence: ConfidenceSampler.Run(batch, drawer, options); break;
            case SamplerKind.Dilated: DilatedSampler.Run(batch, drawer, options); break;
            case SamplerKind.MaskPredict: MaskPredictSampler.Run(batch, drawer, options); break;
            default: throw new ArgumentOutOfRangeException(nameof(options), options.Sampler, "unknown sampler");
        }
        return batch.Result();
    }

    /// <summary>Throws <see cref="UnmaskException"/> for options that cannot run on these rows.</summary>
    public static void Validate(GenerationInput input, SamplingOptions options)
    {
        if (input.Rows.Count == 0) throw new UnmaskException("there are no rows to generate");
        if (options.Steps < 1) throw new UnmaskException($"steps must be at least 1 (got {options.Steps})");
        if (!(options.Temperature >= 0) || double.IsInfinity(options.Temperature))
            throw new UnmaskException($"temperature must be 0 (argmax) or positive (got {options.Temperature})");
        if (options.TopK is int k && k < 1) throw new UnmaskException($"top-k must be at least 1 (got {k})");
        if (options.TopP is double p && !(p > 0 && p <= 1)) throw new UnmaskException($"top-p must be in (0, 1] (got {p})");
        if (options.Sampler == SamplerKind.Ancestral)
        {
            if (!(options.Epsilon > 0 && options.Epsilon < 1)) throw new UnmaskException($"epsilon must be in (0, 1) (got {options.Epsilon})");
            if (!(options.RemaskEta >= 0 && options.RemaskEta <= 1)) throw new UnmaskException($"remask eta must be in [0, 1] (got {options.RemaskEta})");
        }
        bool blocked = options.Sampler is SamplerKind.Confidence or SamplerKind.Dilated;
        if (options.Sampler == SamplerKind.Dilated)
        {
            if (options.BlockLength is not int b)
                throw new UnmaskException("the dilated sampler needs a block length (a power of two)");
            if (b >= 1 && !BitOperations.IsPow2(b))
                throw new UnmaskException($"the dilated sampler's block length must be a power of two (got {b})");
        }
        if (blocked && options.BlockLength is int length && length < 1)
            throw new UnmaskException($"block length must be at least 1 (got {length})");
        for (int r = 0; r < input.Rows.Count; r++)
        {
            int masked = input.Rows[r].Count(id => id == input.MaskId);
            if (masked == 0) throw new UnmaskException($"row {r} has no masked position to fill");
            if (blocked && options.BlockLength is int block && masked % block != 0)
                throw new UnmaskException($"row {r} has {masked} masked positions, which block length {block} does not divide");
        }
    }

    /// <summary>
    /// DUS's order for a block of <paramref name="blockLength"/> positions (a power of two), as offsets into the block.
    /// The first round takes the multiples of B/2 ({0, B/2}); round j ≥ 1 takes the odd multiples of B/2^(j+1), so each
    /// round halves the gap to the positions already committed and the last round is every odd offset: log2(B) rounds
    /// (B = 32: {0,16}, {8,24}, {4,12,20,28}, {2,6,…,30}, odd). B = 1 has the single round {0}.
    /// </summary>
    public static IReadOnlyList<int[]> DilatedPlan(int blockLength)
    {
        if (blockLength < 1 || !BitOperations.IsPow2(blockLength))
            throw new ArgumentOutOfRangeException(nameof(blockLength), blockLength, "a power of two");
        if (blockLength == 1) return [[0]];
        var plan = new List<int[]> { new[] { 0, blockLength / 2 } };
        for (int stride = blockLength / 2; stride > 1; stride /= 2)
        {
            int half = stride / 2;
            plan.Add(Enumerable.Range(0, blockLength / stride).Select(i => i * stride + half).ToArray());
        }
        return plan;
    }

    /// <summary>LLaDA's commits per step: <paramref name="count"/> spread evenly over the steps, the first
    /// count mod steps steps taking one more.</summary>
    internal static int[] Schedule(int count, int steps)
    {
        var schedule = new int[steps];
        for (int i = 0; i < steps; i++) schedule[i] = count / steps + (i < count % steps ? 1 : 0);
        return schedule;
    }
}
