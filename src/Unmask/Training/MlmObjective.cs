using Unmask.Masking;
using Unmask.Modeling;

namespace Unmask.Training;

/// <summary>BERT's masked language modelling: the configured masking strategy, cross-entropy on the selected positions.</summary>
public sealed class MlmObjective(PretrainedModel model, IMaskingStrategy masking) : IObjective
{
    public ObjectiveLoss Loss(long[] inputIds, int batchSize, int seqLength, Random rng, double progress, (int Start, int End)? rows = null)
    {
        var masked = masking.Apply(inputIds, batchSize, seqLength, rng, progress);
        if (rows is not { } r) return Mean(masked);
        var part = masked.Rows(r.Start, r.End);
        int selected = part.SelectedCount, total = masked.SelectedCount;
        if (selected > 0)
        {
            var share = Mean(part);
            return share with { Loss = share.Loss * ((double)selected / total) };
        }
        return new ObjectiveLoss(Mean(part.WithPlaceholderLabel()).Loss * 0.0, 0);
    }

    ObjectiveLoss Mean(MaskedBatch masked)
    {
        var shape = new long[] { masked.BatchSize, masked.SeqLength };
        var input = tensor(masked.InputIds, shape, device: model.Device);   // [batch, seq]
        var labels = tensor(masked.Labels, shape, device: model.Device);    // [batch, seq]
        var output = model.Forward(input, labels: labels, positions: labels.ne(-100));
        return new ObjectiveLoss(output.Loss!, masked.SelectedCount);
    }

    public IReadOnlyDictionary<string, double> ValidationMetrics(IReadOnlyList<long[]> batches, int seqLength) =>
        new Dictionary<string, double>();
}
