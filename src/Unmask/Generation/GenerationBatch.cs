using System.Diagnostics;

namespace Unmask.Generation;

/// <summary>
/// The rows being generated, right-padded into one batch, with what every sampler shares: the forward pass (counted,
/// cancellable, reported), commits into the to-fill positions only, and the trace.
/// </summary>
sealed class GenerationBatch : IDisposable
{
    readonly IMaskedLmLogits model;
    readonly IProgress<GenerationProgress>? progress;
    readonly CancellationToken ct;
    readonly Tensor attention; // [batch, seq] int64
    readonly long[] ids; // [batch * seq], the current state
    readonly bool[] fillable; // [batch * seq], masked at the start
    readonly int[] lengths;
    readonly List<TraceStep>[]? trace;
    readonly List<(int Position, long Id)>[] pendingCommits;
    readonly List<int>[] pendingRemasks;
    readonly Stopwatch clock = Stopwatch.StartNew();

    public GenerationBatch(IMaskedLmLogits model, GenerationInput input, bool traced, IProgress<GenerationProgress>? progress, CancellationToken ct)
    {
        this.model = model;
        this.progress = progress;
        this.ct = ct;
        MaskId = input.MaskId;
        BatchSize = input.Rows.Count;
        SeqLength = input.Rows.Max(r => r.Length);
        ids = new long[BatchSize * SeqLength];
        Array.Fill(ids, input.PadId);
        fillable = new bool[ids.Length];
        lengths = input.Rows.Select(r => r.Length).ToArray();
        var mask = new long[ids.Length];
        Fill = new int[BatchSize][];
        for (int r = 0; r < BatchSize; r++)
        {
            var row = input.Rows[r];
            row.CopyTo(ids, r * SeqLength);
            Array.Fill(mask, 1L, r * SeqLength, row.Length);
            Fill[r] = Enumerable.Range(0, row.Length).Where(p => row[p] == MaskId).ToArray();
            foreach (int p in Fill[r]) fillable[r * SeqLength + p] = true;
            MaskedRemaining += Fill[r].Length;
        }
        attention = tensor(mask, [BatchSize, SeqLength], device: model.Device);
        trace = traced ? Enumerable.Range(0, BatchSize).Select(_ => new List<TraceStep>()).ToArray() : null;
        pendingCommits = Enumerable.Range(0, BatchSize).Select(_ => new List<(int, long)>()).ToArray();
        pendingRemasks = Enumerable.Range(0, BatchSize).Select(_ => new List<int>()).ToArray();
    }

    public long MaskId { get; }
    public int BatchSize { get; }
    public int SeqLength { get; }

    /// <summary>Per row, the positions masked at the start, ascending: the only ones a sampler writes.</summary>
    public int[][] Fill { get; }

    public int ForwardPasses { get; private set; }
    public int MaskedRemaining { get; private set; }

    public bool IsMasked(int row, int position) => ids[row * SeqLength + position] == MaskId;

    public long this[int row, int position] => ids[row * SeqLength + position];

    /// <summary>One forward pass over the whole batch, in the current state.</summary>
    /// <returns>[batch * seq, vocab], owned by the caller.</returns>
    public Tensor Forward()
    {
        ct.ThrowIfCancellationRequested();
        using var scope = NewDisposeScope();
        var logits = model.Logits(tensor(ids, [BatchSize, SeqLength], device: model.Device), attention); // [batch, seq, vocab]
        ForwardPasses++;
        if (logits.dim() != 3 || logits.shape[0] != BatchSize || logits.shape[1] != SeqLength || logits.shape[2] != model.VocabSize)
            throw new InvalidOperationException($"the model returned logits of shape [{string.Join(", ", logits.shape)}] for a [{BatchSize}, {SeqLength}] batch and a {model.VocabSize}-token vocabulary");
        return logits.reshape(-1, logits.shape[2]).MoveToOuterDisposeScope();
    }

    /// <summary>Rows of <paramref name="logits"/> at the given (row, position) pairs.</summary>
    /// <param name="logits">[batch * seq, vocab] from <see cref="Forward"/>.</param>
    /// <returns>[n, vocab]</returns>
    public Tensor At(Tensor logits, IReadOnlyList<(int Row, int Position)> at) =>
        logits.index_select(0, tensor(at.Select(a => (long)(a.Row * SeqLength + a.Position)).ToArray(), device: logits.device));

    public void Commit(int row, int position, long id)
    {
        int i = row * SeqLength + position;
        if (!fillable[i]) throw new InvalidOperationException($"row {row}, position {position} was not masked at the start");
        if (ids[i] == MaskId) MaskedRemaining--;
        ids[i] = id;
        pendingCommits[row].Add((position, id));
    }

    public void Remask(int row, int position)
    {
        int i = row * SeqLength + position;
        if (!fillable[i]) throw new InvalidOperationException($"row {row}, position {position} was not masked at the start");
        if (ids[i] != MaskId) MaskedRemaining++;
        ids[i] = MaskId;
        pendingRemasks[row].Add(position);
    }

    /// <summary>Closes a step: its commits go into the trace under <paramref name="step"/>, attributed to the latest pass.</summary>
    public void EndStep(int step)
    {
        for (int r = 0; r < BatchSize; r++)
        {
            var commits = pendingCommits[r];
            var remasks = pendingRemasks[r];
            if (trace is not null && (commits.Count > 0 || remasks.Count > 0))
                trace[r].Add(new TraceStep(step, commits.Select(c => c.Position).ToArray(), commits.Select(c => c.Id).ToArray())
                {
                    ForwardPass = ForwardPasses - 1,
                    Remasked = remasks.Order().ToArray(),
                });
            commits.Clear();
            remasks.Clear();
        }
    }

    /// <summary>Reported after the step that made a forward pass, so the count of masked positions includes its commits.</summary>
    public void Report() => progress?.Report(new GenerationProgress(ForwardPasses, MaskedRemaining,
        [.. Enumerable.Range(0, BatchSize).Select(r => ids.AsSpan(r * SeqLength, lengths[r]).ToArray())]));

    public GenerationResult Result()
    {
        var rows = new GeneratedRow[BatchSize];
        for (int r = 0; r < BatchSize; r++)
        {
            var row = ids.AsSpan(r * SeqLength, lengths[r]).ToArray();
            rows[r] = new GeneratedRow(row, Fill[r], trace?[r]);
        }
        return new GenerationResult(rows, ForwardPasses, clock.Elapsed);
    }

    public void Dispose() => attention.Dispose();
}
