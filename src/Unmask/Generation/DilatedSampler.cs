namespace Unmask.Generation;

/// <summary>
/// DUS ("Plan for Speed: Dilated Scheduling for Masked Diffusion Language Models"): each block of B consecutive masked
/// positions is committed in the rounds of <see cref="Sampler.DilatedPlan"/>, one forward pass per round, every
/// position of a round taking its drawn token. Blocks go left to right; rows step together, global step b·R + j being
/// round j of block b (R rounds per block).
/// </summary>
static class DilatedSampler
{
    public static void Run(GenerationBatch batch, TokenDrawer drawer, SamplingOptions options)
    {
        int blockLength = options.BlockLength!.Value;
        var plan = Sampler.DilatedPlan(blockLength);
        int totalSteps = batch.Fill.Max(f => f.Length) / blockLength * plan.Count;
        for (int g = 0; g < totalSteps; g++)
        {
            int block = g / plan.Count;
            var round = plan[g % plan.Count];
            var targets = new List<(int Row, int Position)>();
            for (int r = 0; r < batch.BatchSize; r++)
                if (block * blockLength < batch.Fill[r].Length)
                    foreach (int offset in round) targets.Add((r, batch.Fill[r][block * blockLength + offset]));

            using (var scope = NewDisposeScope())
            {
                using var logits = batch.Forward();
                var drawn = drawer.Draw(batch.At(logits, targets), null);
                for (int j = 0; j < targets.Count; j++) batch.Commit(targets[j].Row, targets[j].Position, drawn.Ids[j]);
            }
            batch.EndStep(g);
            batch.Report();
        }
    }
}
