namespace Unmask.Generation;

/// <summary>
/// Mask-Predict (Ghazvininejad et al. 2019): iteration 0 draws every masked position; iteration t = 1..T−1 (T = Steps)
/// re-masks the ⌊N·(T − t)/T⌋ generated positions of lowest probability and draws them again, each position keeping
/// the probability of its latest draw. The probability is the model's own (forbidden ids removed, no temperature,
/// top-k or top-p); ties go to the leftmost position. An iteration that re-masks nothing in any row makes no pass.
/// </summary>
static class MaskPredictSampler
{
    public static void Run(GenerationBatch batch, TokenDrawer drawer, SamplingOptions options)
    {
        int iterations = options.Steps;
        var probability = batch.Fill.Select(f => f.ToDictionary(p => p, _ => 0.0)).ToArray();
        for (int t = 0; t < iterations; t++)
        {
            var targets = new List<(int Row, int Position)>();
            for (int r = 0; r < batch.BatchSize; r++)
            {
                var fill = batch.Fill[r];
                if (t == 0)
                {
                    targets.AddRange(fill.Select(p => (r, p)));
                    continue;
                }
                int n = (int)((long)fill.Length * (iterations - t) / iterations);
                foreach (int p in fill.OrderBy(p => probability[r][p]).ThenBy(p => p).Take(n))
                {
                    batch.Remask(r, p);
                    targets.Add((r, p));
                }
            }
            if (targets.Count == 0) continue;

            using (var scope = NewDisposeScope())
            {
                using var logits = batch.Forward();
                var drawn = drawer.Draw(batch.At(logits, targets), ConfidenceScore.Probability);
                for (int j = 0; j < targets.Count; j++)
                {
                    batch.Commit(targets[j].Row, targets[j].Position, drawn.Ids[j]);
                    probability[targets[j].Row][targets[j].Position] = drawn.Scores![j];
                }
            }
            batch.EndStep(t);
            batch.Report();
        }
    }
}
