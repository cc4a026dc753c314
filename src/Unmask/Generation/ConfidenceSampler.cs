namespace Unmask.Generation;

/// <summary>
/// LLaDA / MaskGIT: each step draws a token for every masked position of the row's current block, scores the draws
/// (<see cref="ConfidenceScore"/>) and commits the k best, k following LLaDA's even spread of the block over the steps.
/// </summary>
/// <remarks>
/// A block is <see cref="SamplingOptions.BlockLength"/> consecutive masked positions of the row (all of them when
/// null); blocks go left to right, and <see cref="SamplingOptions.Steps"/> counts steps per block, so a row of n
/// blocks takes n·Steps steps. Rows step together (global step g is step g mod Steps of block g / Steps); a step at
/// which no row commits anything (more steps than positions) makes no forward pass. Ties in score go to the
/// leftmost position.
/// </remarks>
static class ConfidenceSampler
{
    public static void Run(GenerationBatch batch, TokenDrawer drawer, SamplingOptions options)
    {
        int steps = options.Steps;
        var blockLength = batch.Fill.Select(f => options.BlockLength ?? f.Length).ToArray();
        var schedules = blockLength.Select(b => Sampler.Schedule(b, steps)).ToArray();
        int totalSteps = batch.Fill.Select((f, r) => f.Length / blockLength[r]).Max() * steps;
        for (int g = 0; g < totalSteps; g++)
        {
            int block = g / steps, local = g % steps;
            var candidates = new List<(int Row, int Position)>();
            var take = new int[batch.BatchSize];
            for (int r = 0; r < batch.BatchSize; r++)
            {
                if (block * blockLength[r] >= batch.Fill[r].Length || schedules[r][local] == 0) continue;
                take[r] = schedules[r][local];
                foreach (int p in batch.Fill[r].AsSpan(block * blockLength[r], blockLength[r]))
                    if (batch.IsMasked(r, p)) candidates.Add((r, p));
            }
            if (candidates.Count == 0) continue;

            using (var scope = NewDisposeScope())
            {
                using var logits = batch.Forward();
                var drawn = drawer.Draw(batch.At(logits, candidates), options.Score);
                var scores = drawn.Scores!;
                foreach (var row in Enumerable.Range(0, candidates.Count).GroupBy(j => candidates[j].Row))
                    foreach (int j in row.OrderByDescending(j => scores[j]).ThenBy(j => candidates[j].Position).Take(take[row.Key]))
                        batch.Commit(candidates[j].Row, candidates[j].Position, drawn.Ids[j]);
            }
            batch.EndStep(g);
            batch.Report();
        }
    }
}
