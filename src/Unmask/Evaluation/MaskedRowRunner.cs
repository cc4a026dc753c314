using Unmask.Tokenization;

namespace Unmask.Evaluation;

/// <summary>
/// One model input row: a copy of sequence <see cref="Sequence"/> with positions [MaskStart, MaskEnd) replaced by the
/// mask token, scored at positions [SelectStart, SelectEnd) (log-probability of the original token there).
/// </summary>
internal readonly record struct ScoringRow(int Sequence, int MaskStart, int MaskEnd, int SelectStart, int SelectEnd)
{
    public static ScoringRow MaskOne(int sequence, int position, int maskEnd) => new(sequence, position, maskEnd, position, position + 1);

    public int SelectedCount => SelectEnd - SelectStart;
}

/// <summary>
/// Runs many rows through the model in batches bounded by a token budget. Rows are sorted by length (longest first)
/// so a batch holds rows of nearly equal length and little padding, and the output head runs only at the selected
/// positions.
/// </summary>
internal static class MaskedRowRunner
{
    public static float[][] Run(ScoringContext context, IReadOnlyList<int[]> sequences, IReadOnlyList<int[]> tokenTypes,
        IReadOnlyList<ScoringRow> rows, int tokenBudget, Action<int>? rowsDone, CancellationToken ct)
    {
        if (tokenBudget < 1) throw new UnmaskException($"token budget must be positive, got {tokenBudget}");
        var results = new float[rows.Count][];
        var order = Enumerable.Range(0, rows.Count).OrderByDescending(r => sequences[rows[r].Sequence].Length).ToArray();
        // Under mpiexec each rank runs every world.Size-th batch of the same plan, so each row meets the same batch
        // (same rows, same padding) as in one process and its floats are the same; the results are then summed.
        var world = Distributed.MpiWorld.Current;
        int start = 0, batchIndex = 0;
        while (start < order.Length)
        {
            ct.ThrowIfCancellationRequested();
            int length = sequences[rows[order[start]].Sequence].Length;
            int count = Math.Clamp(tokenBudget / Math.Max(length, 1), 1, order.Length - start);
            if (batchIndex++ % world.Size == world.Rank) RunBatch(context, sequences, tokenTypes, rows, order.AsSpan(start, count), length, results);
            start += count;
            rowsDone?.Invoke(count);
        }
        if (world.Size > 1) Gather(rows, results, world);
        return results;
    }

    /// <summary>Every rank ends with every row's results: each row was run by one rank, the others add zeros.</summary>
    static void Gather(IReadOnlyList<ScoringRow> rows, float[][] results, Distributed.MpiWorld world)
    {
        var flat = new float[rows.Sum(r => r.SelectedCount)];
        int offset = 0;
        for (int r = 0; r < rows.Count; r++)
        {
            results[r]?.CopyTo(flat, offset);
            offset += rows[r].SelectedCount;
        }
        world.AllReduceSum(flat);
        offset = 0;
        for (int r = 0; r < rows.Count; r++)
        {
            results[r] = flat[offset..(offset + rows[r].SelectedCount)];
            offset += rows[r].SelectedCount;
        }
    }

    static void RunBatch(ScoringContext context, IReadOnlyList<int[]> sequences, IReadOnlyList<int[]> tokenTypes,
        IReadOnlyList<ScoringRow> rows, ReadOnlySpan<int> batch, int length, float[][] results)
    {
        int n = batch.Length;
        var ids = new long[n * length];
        var mask = new long[n * length];
        var types = new long[n * length];
        var selected = new long[n * length];
        var targets = new List<long>();
        Array.Fill(ids, context.Tokenizer.PadId);
        for (int b = 0; b < n; b++)
        {
            var row = rows[batch[b]];
            var sequence = sequences[row.Sequence];
            var segment = tokenTypes[row.Sequence];
            int offset = b * length;
            for (int t = 0; t < sequence.Length; t++)
            {
                ids[offset + t] = t >= row.MaskStart && t < row.MaskEnd ? context.Tokenizer.MaskId : sequence[t];
                mask[offset + t] = 1;
                types[offset + t] = segment[t];
            }
            for (int t = row.SelectStart; t < row.SelectEnd; t++)
            {
                selected[offset + t] = 1;
                targets.Add(sequence[t]);
            }
        }

        float[] logProbs;
        using (var scope = NewDisposeScope())
        using (inference_mode())
        {
            var shape = new long[] { n, length };
            var device = context.Model.Device;
            var logits = context.Model.LogitsAt(tensor(ids, shape, device: device), tensor(mask, shape, device: device),
                tensor(types, shape, device: device), tensor(selected, shape, device: device).ne(0)); // [selected, vocab]
            var target = tensor(targets.ToArray(), device: device).unsqueeze(1); // [selected, 1]
            logProbs = logits.log_softmax(-1).gather(1, target).squeeze(1).cpu().data<float>().ToArray(); // [selected]
        }

        int k = 0;
        for (int b = 0; b < n; b++)
        {
            var row = rows[batch[b]];
            results[batch[b]] = logProbs.AsSpan(k, row.SelectedCount).ToArray();
            k += row.SelectedCount;
        }
    }

    /// <summary>Why an encoded text cannot be scored: nothing to score, or longer than the model takes (never truncated).</summary>
    public static string? Check(ScoringContext context, TokenizedText encoding)
    {
        if (encoding.SpecialTokensMask.All(s => s)) return "empty sentence: no token to score";
        int max = context.Model.MaxSequenceLength;
        if (encoding.InputIds.Length > max)
            return $"{encoding.InputIds.Length} tokens, longer than the model's maximum of {max} (not truncated)";
        foreach (var id in encoding.InputIds)
            if (id < 0 || id >= context.Model.VocabSize)
                return $"token id {id} is outside the model's vocabulary of {context.Model.VocabSize}";
        return null;
    }
}
