using Unmask.Modeling;

namespace Unmask.Generation;

/// <summary>The samplers <c>unmask generate</c> offers.</summary>
public enum SamplerKind
{
    /// <summary>MDLM's ancestral sampler on the log-linear schedule, with caching (and ReMDM remasking when asked).</summary>
    Ancestral,

    /// <summary>LLaDA / MaskGIT: each step commits the highest-scoring masked positions, optionally block by block.</summary>
    Confidence,

    /// <summary>DUS: inside each block, positions committed in log2(B) rounds on the dilated plan.</summary>
    Dilated,

    /// <summary>Mask-Predict (Ghazvininejad et al. 2019): predict all, then re-mask the least confident and repeat.</summary>
    MaskPredict,
}

/// <summary>How <see cref="SamplerKind.Confidence"/> ranks masked positions.</summary>
public enum ConfidenceScore
{
    /// <summary>The probability of the sampled token.</summary>
    Probability,

    /// <summary>Top-1 minus top-2 probability.</summary>
    Margin,

    /// <summary>Negative entropy of the position's distribution.</summary>
    Entropy,
}

/// <summary>Settings shared by every sampler, and each sampler's own.</summary>
public sealed record SamplingOptions
{
    public SamplerKind Sampler { get; init; } = SamplerKind.Confidence;

    /// <summary>Time steps (ancestral), commit steps (confidence), iterations T (mask-predict). Dilated ignores it.</summary>
    public int Steps { get; init; } = 64;

    /// <summary>Semi-autoregressive blocks, left to right (confidence; required by dilated). Null: one block.</summary>
    public int? BlockLength { get; init; }

    public ConfidenceScore Score { get; init; } = ConfidenceScore.Probability;

    /// <summary>0 takes the argmax (no noise); otherwise logits are divided by it before sampling.</summary>
    public double Temperature { get; init; } = 1.0;

    public int? TopK { get; init; }

    public double? TopP { get; init; }

    /// <summary>ReMDM "cap" remasking strength for ancestral sampling; 0 turns remasking off.</summary>
    public double RemaskEta { get; init; }

    /// <summary>The ancestral time grid runs from 1 to this.</summary>
    public double Epsilon { get; init; } = 1e-3;

    /// <summary>Same seed, same output. Null draws a seed.</summary>
    public int? Seed { get; init; }

    /// <summary>Record which positions each forward pass committed to what.</summary>
    public bool Trace { get; init; }
}

/// <summary>
/// Rows to fill: token ids with the mask id at every position to generate. Rows may differ in length (they are padded
/// on the right internally). Positions not masked at the start never change.
/// </summary>
/// <param name="Rows">Token ids, special tokens included.</param>
/// <param name="MaskId">The model's mask token id.</param>
/// <param name="PadId">The padding id.</param>
/// <param name="ForbiddenIds">Ids never generated (the mask, padding and other special tokens).</param>
public sealed record GenerationInput(IReadOnlyList<long[]> Rows, long MaskId, long PadId, IReadOnlyCollection<long> ForbiddenIds);

/// <summary>One step's commits: positions and the ids written there.</summary>
/// <param name="Step">The sampler's step: the ancestral time step (Steps for the final denoising pass), the confidence
/// or dilated step counted over all blocks, the mask-predict iteration.</param>
public sealed record TraceStep(int Step, IReadOnlyList<int> Positions, IReadOnlyList<long> Ids)
{
    /// <summary>The forward pass (0-based) whose logits these ids came from; ancestral steps that reuse cached logits
    /// share it with the step that made the pass. -1 when no pass has been made yet (a remask-only step).</summary>
    public int ForwardPass { get; init; }

    /// <summary>Generated positions this step turned back into the mask (ReMDM remasking), ascending.</summary>
    public IReadOnlyList<int> Remasked { get; init; } = [];
}

/// <param name="Ids">The row with every masked position filled.</param>
/// <param name="GeneratedPositions">The positions that were masked at the start, ascending.</param>
/// <param name="Steps">Per forward pass, what it committed (when tracing).</param>
public sealed record GeneratedRow(long[] Ids, IReadOnlyList<int> GeneratedPositions, IReadOnlyList<TraceStep>? Steps);

/// <param name="ForwardPasses">Model calls made for the whole batch (NFE).</param>
public sealed record GenerationResult(IReadOnlyList<GeneratedRow> Rows, int ForwardPasses, TimeSpan Elapsed);

/// <summary>Where a generation stands: forward passes done, still-masked positions over the batch, and every row's ids
/// as they are now (the mask id where nothing is committed yet), for callers that show the generation as it happens.</summary>
public sealed record GenerationProgress(int ForwardPasses, int MaskedRemaining, IReadOnlyList<long[]> Rows);

/// <summary>What a sampler asks of a model: vocabulary logits for a batch of right-padded rows.</summary>
public interface IMaskedLmLogits
{
    int VocabSize { get; }

    /// <summary>Where the inputs of <see cref="Logits"/> must be.</summary>
    Device Device { get; }

    /// <param name="inputIds">[batch, seq] int64.</param>
    /// <param name="attentionMask">[batch, seq] int64, 1 for real tokens.</param>
    /// <returns>[batch, seq, vocab] float32.</returns>
    Tensor Logits(Tensor inputIds, Tensor attentionMask);
}

/// <summary>Any family's masked-LM head as a sampler's model, run under inference mode.</summary>
public sealed class ModelLogits : IMaskedLmLogits
{
    readonly PretrainedModel model;

    public ModelLogits(PretrainedModel model)
    {
        if (model.Head != HeadKind.MaskedLm)
            throw new UnmaskException($"{model.Architecture} has no masked-language-model head (it predicts replaced tokens), so it cannot generate text");
        this.model = model;
    }

    public int VocabSize => model.HfConfig.VocabSize;

    public Device Device => model.Device;

    public Tensor Logits(Tensor inputIds, Tensor attentionMask)
    {
        using var scope = NewDisposeScope();
        using var mode = inference_mode();
        // Not disposed here: the scope frees the hidden states, and the logits leave it without a copy.
        var output = model.Forward(inputIds, attentionMask);
        return output.Logits.MoveToOuterDisposeScope(); // [batch, seq, vocab]
    }
}
