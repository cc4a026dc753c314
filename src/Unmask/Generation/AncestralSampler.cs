namespace Unmask.Generation;

/// <summary>
/// MDLM's ancestral sampler (Sahoo et al. 2024) on the log-linear schedule α_t = 1 − t, with its cache, and ReMDM's
/// "cap" remasking when <see cref="SamplingOptions.RemaskEta"/> is above 0.
/// </summary>
/// <remarks>
/// Times run t_i = 1 − i·(1 − ε)/Steps for i = 0..Steps−1, with s = t_i − (1 − ε)/Steps the next time (the last s is ε).
/// At each step, with σ = min(η, (1 − α_s)/α_t) (σ = η at t = 1, where α_t = 0; σ = 0 without remasking):
/// a position still masked is revealed with probability (α_s − (1 − σ)·α_t)/(1 − α_t), which is (t − s)/t at σ = 0,
/// and takes a token drawn from the model under the shared controls; a position this sampler filled earlier (never a
/// prompt token) goes back to the mask with probability σ. Both draws are made on the state at t, so a position
/// remasked at a step is not revealed at the same step. Whether to reveal does not depend on the logits, so it is
/// decided first and the model is called only for a step that reveals something after the sequence changed (MDLM's
/// ddpm_cache, which also keys its cache on the sequence alone): each pass is followed by at least one reveal.
/// After the last step, the final denoising pass (trace step Steps) fills every position still masked with a draw
/// under the same controls (the argmax at temperature 0, as MDLM does), reusing the cached logits when nothing
/// changed since they were computed.
/// </remarks>
static class AncestralSampler
{
    public static void Run(GenerationBatch batch, TokenDrawer drawer, SamplingOptions options, Random rng)
    {
        var generated = Enumerable.Range(0, batch.BatchSize).Select(_ => new SortedSet<int>()).ToArray();
        Tensor? logits = null; // [batch * seq, vocab] for the current state, null once the state changed
        try
        {
            double dt = (1 - options.Epsilon) / options.Steps;
            for (int i = 0; i <= options.Steps; i++)
            {
                var reveal = new List<(int Row, int Position)>();
                var remask = new List<(int Row, int Position)>();
                if (i == options.Steps)
                    Collect(batch, _ => true, reveal);
                else
                {
                    double t = 1 - i * dt, s = t - dt;
                    double alphaT = 1 - t, alphaS = 1 - s;
                    double sigma = options.RemaskEta == 0 ? 0 : alphaT == 0 ? options.RemaskEta : Math.Min(options.RemaskEta, (1 - alphaS) / alphaT);
                    double revealProbability = (alphaS - (1 - sigma) * alphaT) / (1 - alphaT);
                    Collect(batch, _ => rng.NextDouble() < revealProbability, reveal);
                    if (sigma > 0)
                        for (int r = 0; r < batch.BatchSize; r++)
                            foreach (int p in generated[r])
                                if (rng.NextDouble() < sigma) remask.Add((r, p));
                }
                if (reveal.Count == 0 && remask.Count == 0) continue;

                bool passed = false;
                if (reveal.Count > 0)
                {
                    if (logits is null)
                    {
                        logits = batch.Forward();
                        passed = true;
                    }
                    using var scope = NewDisposeScope();
                    var drawn = drawer.Draw(batch.At(logits, reveal), null);
                    for (int j = 0; j < reveal.Count; j++)
                    {
                        batch.Commit(reveal[j].Row, reveal[j].Position, drawn.Ids[j]);
                        generated[reveal[j].Row].Add(reveal[j].Position);
                    }
                }
                foreach (var (r, p) in remask)
                {
                    batch.Remask(r, p);
                    generated[r].Remove(p);
                }
                logits?.Dispose();
                logits = null;
                batch.EndStep(i);
                if (passed) batch.Report();
            }
        }
        finally
        {
            logits?.Dispose();
        }
    }

    static void Collect(GenerationBatch batch, Func<int, bool> take, List<(int Row, int Position)> into)
    {
        for (int r = 0; r < batch.BatchSize; r++)
            foreach (int p in batch.Fill[r])
                if (batch.IsMasked(r, p) && take(p)) into.Add((r, p));
    }
}
