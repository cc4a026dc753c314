using Unmask.Masking;
using Unmask.Modeling;

namespace Unmask.Training;

/// <summary>BERT's masked language modelling: the configured masking strategy, cross-entropy on the selected positions.</summary>
public sealed class MlmObjective(PretrainedModel model, IMaskingStrategy masking) : IObjective
{
    public ObjectiveLoss Loss(long[] inputIds, int batchSize, int seqLength, Random rng, double progress)
    {
        var masked = masking.Apply(inputIds, batchSize, seqLength, rng, progress);
        var input = tensor(masked.InputIds, new long[] { batchSize, seqLength });   // [batch, seq]
        var labels = tensor(masked.Labels, new long[] { batchSize, seqLength });    // [batch, seq]
        var output = model.Forward(input, labels: labels, positions: labels.ne(-100));
        return new ObjectiveLoss(output.Loss!, masked.SelectedCount);
    }

    public IReadOnlyDictionary<string, double> ValidationMetrics(IReadOnlyList<long[]> batches, int seqLength) =>
        new Dictionary<string, double>();
}
