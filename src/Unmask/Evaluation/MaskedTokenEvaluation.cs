using Unmask.Data;
using Unmask.Masking;
using static TorchSharp.torch;

namespace Unmask.Evaluation;

/// <summary>Totals over the selected positions of masked batches; the means are NaN when nothing was selected.</summary>
public sealed record MaskedTokenScore(long Sequences, long Selected, double LossSum, long Correct, long Top5Correct, long BaselineCorrect)
{
    public static readonly MaskedTokenScore Zero = new(0, 0, 0, 0, 0, 0);

    /// <summary>Mean cross-entropy (natural log) of the original tokens.</summary>
    public double Loss => Mean(LossSum);
    public double Accuracy => Mean(Correct);
    public double Top5Accuracy => Mean(Top5Correct);
    /// <summary>How often the baseline (one token predicted everywhere) is right.</summary>
    public double BaselineAccuracy => Mean(BaselineCorrect);

    double Mean(double sum) => Selected == 0 ? double.NaN : sum / Selected;

    public MaskedTokenScore Add(MaskedTokenScore other) => new(Sequences + other.Sequences, Selected + other.Selected,
        LossSum + other.LossSum, Correct + other.Correct, Top5Correct + other.Top5Correct, BaselineCorrect + other.BaselineCorrect);
}

/// <summary>
/// Masked-token evaluation shared by pretraining's validation and <c>eval mlm</c>: packed sequences masked once from a
/// fixed seed, then cross-entropy, top-1/top-5 accuracy and a one-token baseline at the selected positions.
/// </summary>
public static class MaskedTokenEvaluation
{
    /// <summary>
    /// The first <paramref name="maxSequences"/> sequences of the packers in order, <paramref name="batchSize"/> at a
    /// time, each batch masked in turn from one generator seeded with <paramref name="seed"/>: the same inputs give the
    /// same copy. Lazy, so a large corpus is never held whole.
    /// </summary>
    public static IEnumerable<(long[] Ids, MaskedBatch Masked)> MaskedCopy(IReadOnlyList<SequencePacker> packers, long maxSequences,
        int batchSize, int seqLength, IMaskingStrategy masking, int seed)
    {
        var rng = new Random(seed);
        var sequences = packers.SelectMany(p => Indices(p.Count).Select(i => (Packer: p, Index: i)));
        foreach (var chunk in sequences.Take((int)Math.Min(maxSequences, int.MaxValue)).Chunk(batchSize))
        {
            var ids = new long[chunk.Length * seqLength];
            for (int b = 0; b < chunk.Length; b++) chunk[b].Packer.CopySequence(chunk[b].Index, ids.AsSpan(b * seqLength, seqLength));
            yield return (ids, masking.Apply(ids, chunk.Length, seqLength, rng, progress: 0));
        }
    }

    static IEnumerable<long> Indices(long count)
    {
        for (long i = 0; i < count; i++) yield return i;
    }

    /// <summary>Scores every batch; the caller puts the model in eval mode.</summary>
    /// <param name="baselineId">The token the baseline predicts everywhere (null: no baseline, its count stays 0).</param>
    /// <param name="afterBatch">Called with the totals so far after each batch.</param>
    /// <param name="world">Shards the batches over this MPI world's ranks (every rank must call); null: all here.</param>
    public static MaskedTokenScore Score(IScoringModel model, IEnumerable<MaskedBatch> batches, long? baselineId = null,
        Action<MaskedTokenScore>? afterBatch = null, CancellationToken ct = default, Distributed.MpiWorld? world = null)
    {
        if (world is { Size: > 1 }) return Sharded(model, batches, baselineId, afterBatch, ct, world);
        var total = MaskedTokenScore.Zero;
        foreach (var batch in batches)
        {
            ct.ThrowIfCancellationRequested();
            total = total.Add(ScoreBatch(model, batch, baselineId));
            afterBatch?.Invoke(total);
        }
        return total;
    }

    /// <summary>Each rank scores every N-th batch; every batch's totals are then shared and added in batch order, so the
    /// sums are the single process's to the last bit.</summary>
    static MaskedTokenScore Sharded(IScoringModel model, IEnumerable<MaskedBatch> batches, long? baselineId,
        Action<MaskedTokenScore>? afterBatch, CancellationToken ct, Distributed.MpiWorld world)
    {
        var own = new List<(int Index, MaskedTokenScore Score)>();
        int count = 0;
        var running = MaskedTokenScore.Zero;
        foreach (var batch in batches)
        {
            ct.ThrowIfCancellationRequested();
            if (count++ % world.Size != world.Rank) continue;
            var score = ScoreBatch(model, batch, baselineId);
            own.Add((count - 1, score));
            running = running.Add(score);
            afterBatch?.Invoke(running);
        }
        var table = new double[count * 6];
        foreach (var (index, s) in own)
            new double[] { s.Sequences, s.Selected, s.LossSum, s.Correct, s.Top5Correct, s.BaselineCorrect }.CopyTo(table, index * 6);
        world.AllReduceSum(table);
        var total = MaskedTokenScore.Zero;
        for (int b = 0; b < count; b++)
        {
            var row = table.AsSpan(b * 6, 6);
            total = total.Add(new MaskedTokenScore((long)row[0], (long)row[1], row[2], (long)row[3], (long)row[4], (long)row[5]));
        }
        return total;
    }

    static MaskedTokenScore ScoreBatch(IScoringModel model, MaskedBatch batch, long? baselineId)
    {
        using var scope = NewDisposeScope();
        using var mode = inference_mode();
        var shape = new long[] { batch.BatchSize, batch.SeqLength };
        var labels = tensor(batch.Labels, shape, device: model.Device); // [batch, seq]
        var selected = labels.ne(MaskedBatch.Ignore); // [batch, seq]
        var targets = labels.masked_select(selected).unsqueeze(1); // [n, 1]
        long n = targets.shape[0];
        if (n == 0) return MaskedTokenScore.Zero with { Sequences = batch.BatchSize };
        var input = tensor(batch.InputIds, shape, device: model.Device); // [batch, seq]
        // bf16 logits would round the log-probabilities; the loss is summed in float64 over the whole corpus.
        var logits = model.LogitsAt(input, ones_like(input), zeros_like(input), selected).to(ScalarType.Float32); // [n, vocab]
        double lossSum = -logits.log_softmax(-1).gather(1, targets).to(ScalarType.Float64).sum().item<double>();
        long correct = logits.argmax(-1, keepdim: true).eq(targets).sum().item<long>();
        var (_, best) = logits.topk((int)Math.Min(5, logits.shape[1])); // [n, k]
        long top5 = best.eq(targets).any(1).sum().item<long>();
        long baseline = baselineId is { } id ? targets.eq(id).sum().item<long>() : 0;
        return new MaskedTokenScore(batch.BatchSize, n, lossSum, correct, top5, baseline);
    }
}
