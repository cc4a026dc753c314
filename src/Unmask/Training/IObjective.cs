
namespace Unmask.Training;

/// <summary>The pretraining objectives <c>unmask pretrain --objective</c> offers.</summary>
public enum ObjectiveKind { Mlm, Mdlm, Electra }

/// <summary>One micro-batch's loss (a scalar in the caller's dispose scope) and how many positions it predicted.</summary>
public sealed record ObjectiveLoss(Tensor Loss, long PredictedTokens)
{
    /// <summary>Named terms of a loss that sums several (scalars in the caller's scope), logged beside it.</summary>
    public IReadOnlyDictionary<string, Tensor> Parts { get; init; } = new Dictionary<string, Tensor>();
}

/// <summary>
/// Turns packed token ids into model inputs and a loss. The trainer hands it batches and back-propagates what it
/// returns; how positions are chosen, corrupted and weighted stays here.
/// </summary>
public interface IObjective
{
    /// <param name="inputIds">[batchSize × seqLength] packed ids, row-major, special tokens included.</param>
    /// <param name="progress">Training progress in [0, 1], for schedules.</param>
    /// <param name="rows">The rows this process computes (data parallelism). The whole batch is still corrupted, with
    /// the same draws as in one process; the loss returned is the rows' share of the whole batch's loss (their terms
    /// over the whole batch's normaliser), so the ranks' losses, and their gradients, add up to one process's.</param>
    ObjectiveLoss Loss(long[] inputIds, int batchSize, int seqLength, Random rng, double progress, (int Start, int End)? rows = null);

    /// <summary>Metrics beyond the shared masked-LM validation, on the uncorrupted validation batches (ids as in
    /// <see cref="Loss"/>); the model is in eval mode and gradients are off.</summary>
    IReadOnlyDictionary<string, double> ValidationMetrics(IReadOnlyList<long[]> batches, int seqLength);
}
