using Unmask.Generation;
using Unmask.Modeling;
using static TorchSharp.torch;

namespace Unmask.Tests;

/// <summary>The samplers against stub models whose distributions are known, so schedules, commits and pass counts
/// can be checked exactly.</summary>
public class GenerationSamplerTests
{
    const int Vocab = 10;
    const long Pad = 0, Mask = 1, Special = 2;
    static readonly long[] Forbidden = [Pad, Mask, Special];

    /// <summary>Logits from a function of (row's ids, position); counts its calls and keeps each call's input.</summary>
    sealed class StubModel(Func<long[], int, float[]> logitsAt) : IMaskedLmLogits
    {
        public List<long[][]> Inputs { get; } = [];
        public int Calls => Inputs.Count;
        public int VocabSize => Vocab;
        public Device Device => ComputeDevice.Cpu;

        public Tensor Logits(Tensor inputIds, Tensor attentionMask)
        {
            int batch = (int)inputIds.shape[0], seq = (int)inputIds.shape[1];
            var flat = inputIds.data<long>().ToArray();
            var rows = Enumerable.Range(0, batch).Select(r => flat.AsSpan(r * seq, seq).ToArray()).ToArray();
            Inputs.Add(rows);
            var logits = new float[batch * seq * Vocab];
            for (int r = 0; r < batch; r++)
                for (int p = 0; p < seq; p++)
                    logitsAt(rows[r], p).CopyTo(logits, (r * seq + p) * Vocab);
            return tensor(logits, [batch, seq, Vocab]);
        }
    }

    /// <summary>Token 3's logit is score(position), every other allowed token 0, so at temperature 0 every draw is 3
    /// and its probability ranks positions by score.</summary>
    static StubModel Ranked(Func<int, float> score) => new((_, p) =>
    {
        var l = new float[Vocab];
        l[3] = score(p);
        return l;
    });

    /// <summary>Fixed, uneven distributions per position, with the forbidden ids far ahead of the rest.</summary>
    static StubModel Noisy() => new((_, p) =>
    {
        var l = new float[Vocab];
        for (int v = 0; v < Vocab; v++) l[v] = (float)Math.Sin(p * 7 + v * 3) * 2;
        foreach (var f in Forbidden) l[f] = 50;
        return l;
    });

    /// <summary>A prompt of two tokens, <paramref name="masked"/> masks, a suffix of two.</summary>
    static long[] Row(int masked) => [Special, 5, .. Enumerable.Repeat(Mask, masked), 6, Special];

    static GenerationInput Input(params long[][] rows) => new(rows, Mask, Pad, Forbidden);

    // ---------------------------------------------------------------- ancestral

    [Fact]
    public void AncestralRevealsEachMaskedPositionWithProbabilityTMinusSOverT()
    {
        const int steps = 4, masked = 16, rows = 250;
        var input = Input(Enumerable.Range(0, rows).Select(_ => Row(masked)).ToArray());
        var options = new SamplingOptions { Sampler = SamplerKind.Ancestral, Steps = steps, Trace = true };
        var revealed = new long[steps + 1];
        foreach (int seed in new[] { 1, 2 })
        {
            var result = Sampler.Generate(Noisy(), input, options with { Seed = seed });
            foreach (var row in result.Rows)
                foreach (var step in row.Steps!) revealed[step.Step] += step.Positions.Count;
        }
        double dt = (1 - options.Epsilon) / steps;
        long stillMasked = 2L * rows * masked;
        for (int i = 0; i < steps; i++)
        {
            double t = 1 - i * dt, s = t - dt, expected = (t - s) / t;
            double observed = (double)revealed[i] / stillMasked;
            double standardError = Math.Sqrt(expected * (1 - expected) / stillMasked);
            Assert.InRange(observed, expected - 4 * standardError - 1e-12, expected + 4 * standardError + 1e-12);
            stillMasked -= revealed[i];
        }
        Assert.Equal(stillMasked, revealed[steps]); // the final pass takes what is left
    }

    [Fact]
    public void AncestralCallsTheModelOnlyForAStepThatRevealsAfterAChange()
    {
        // Logits depend on the input, so a stale cache would show in the output of a deterministic run.
        var model = new StubModel((row, p) =>
        {
            var l = new float[Vocab];
            l[3 + (int)(row.Count(id => id == Mask) + p) % 7] = 5;
            return l;
        });
        var input = Input(Row(8), Row(5), Row(8));
        var options = new SamplingOptions { Sampler = SamplerKind.Ancestral, Steps = 50, Temperature = 0, Seed = 3, Trace = true };
        var result = Sampler.Generate(model, input, options);

        Assert.Equal(model.Calls, result.ForwardPasses);
        var revealSteps = result.Rows.SelectMany(r => r.Steps!).GroupBy(s => s.Step).OrderBy(g => g.Key).ToList();
        // Without remasking every reveal changes the sequence, so each step that reveals needs a pass of its own and
        // no other step makes one.
        Assert.Equal(revealSteps.Count, model.Calls);
        for (int pass = 0; pass < revealSteps.Count; pass++)
            Assert.All(revealSteps[pass], s => Assert.Equal(pass, s.ForwardPass));
        for (int call = 1; call < model.Calls; call++)
            Assert.NotEqual(Flatten(model.Inputs[call - 1]), Flatten(model.Inputs[call]));
        Assert.True(model.Calls < 50, $"{model.Calls} passes for 50 steps: nothing was cached");
        AssertFilledFrom(model, input, result);
    }

    [Fact]
    public void AncestralThousandStepsOn128MaskedPositionsCostsAtMost129Passes()
    {
        var model = Noisy();
        var result = Sampler.Generate(model, Input(Row(128)), new SamplingOptions { Sampler = SamplerKind.Ancestral, Steps = 1000, Seed = 5 });
        Assert.InRange(model.Calls, 1, 129);
        Assert.Equal(model.Calls, result.ForwardPasses);
        Assert.DoesNotContain(Mask, result.Rows[0].Ids);
    }

    [Fact]
    public void AncestralRemaskingFollowsTheCapSchedule()
    {
        const int steps = 4, masked = 16, rows = 400;
        const double eta = 0.2;
        var input = Input(Enumerable.Range(0, rows).Select(_ => Row(masked)).ToArray());
        var options = new SamplingOptions { Sampler = SamplerKind.Ancestral, Steps = steps, RemaskEta = eta, Seed = 9, Trace = true };
        var result = Sampler.Generate(Noisy(), input, options);
        var revealed = new long[steps + 1];
        var remasked = new long[steps + 1];
        foreach (var row in result.Rows)
            foreach (var step in row.Steps!)
            {
                revealed[step.Step] += step.Positions.Count;
                remasked[step.Step] += step.Remasked.Count;
            }
        double dt = (1 - options.Epsilon) / steps;
        long stillMasked = (long)rows * masked, generated = 0;
        for (int i = 0; i < steps; i++)
        {
            double t = 1 - i * dt, s = t - dt, alphaT = 1 - t, alphaS = 1 - s;
            double sigma = alphaT == 0 ? eta : Math.Min(eta, (1 - alphaS) / alphaT);
            AssertBinomial(revealed[i], stillMasked, (alphaS - (1 - sigma) * alphaT) / (1 - alphaT));
            if (generated > 0) AssertBinomial(remasked[i], generated, sigma);
            stillMasked += remasked[i] - revealed[i];
            generated += revealed[i] - remasked[i];
        }
        Assert.True(remasked.Sum() > 0);
        Assert.Equal(stillMasked, revealed[steps]);
    }

    static void AssertBinomial(long successes, long trials, double p)
    {
        double observed = (double)successes / trials, standardError = Math.Sqrt(p * (1 - p) / trials);
        Assert.InRange(observed, p - 4 * standardError - 1e-12, p + 4 * standardError + 1e-12);
    }

    [Fact]
    public void AncestralRemaskingTakesBackOnlyGeneratedTokensAndStillFillsEverything()
    {
        var model = Noisy();
        var input = Input(Row(12), Row(6));
        var options = new SamplingOptions { Sampler = SamplerKind.Ancestral, Steps = 40, RemaskEta = 0.3, Seed = 8, Trace = true };
        var result = Sampler.Generate(model, input, options);
        Assert.Equal(model.Calls, result.ForwardPasses);
        foreach (var row in result.Rows)
        {
            var generated = new HashSet<int>();
            foreach (var step in row.Steps!)
            {
                foreach (int p in step.Positions) Assert.True(generated.Add(p), $"position {p} committed while not masked");
                foreach (int p in step.Remasked) Assert.True(generated.Remove(p), $"position {p} remasked but not generated");
            }
            Assert.Equal(row.GeneratedPositions.ToHashSet(), generated);
        }
        Assert.Contains(result.Rows.SelectMany(r => r.Steps!), s => s.Remasked.Count > 0);
        AssertPromptKeptAndFilled(input, result);
    }

    // ---------------------------------------------------------------- confidence

    [Fact]
    public void ConfidenceCommitsTheKMostConfidentPositionsPerStep()
    {
        // Ranks of the 10 masked positions (positions 2..11 of the row); 4 steps of 10 commit 3, 3, 2, 2.
        int[] score = [5, 2, 9, 0, 3, 8, 1, 4, 7, 6];
        var model = Ranked(p => p is >= 2 and < 12 ? score[p - 2] : 0);
        var options = new SamplingOptions { Steps = 4, Temperature = 0, Trace = true };
        var result = Sampler.Generate(model, Input(Row(10)), options);

        var byRank = Enumerable.Range(0, 10).OrderByDescending(i => score[i]).Select(i => i + 2).ToArray();
        int[][] expected = [byRank[..3], byRank[3..6], byRank[6..8], byRank[8..]];
        var steps = result.Rows[0].Steps!;
        Assert.Equal(4, steps.Count);
        for (int i = 0; i < 4; i++)
        {
            Assert.Equal(i, steps[i].Step);
            Assert.Equal(expected[i].Order(), steps[i].Positions.Order());
            Assert.All(steps[i].Ids, id => Assert.Equal(3L, id));
        }
        Assert.Equal(4, model.Calls);
    }

    [Fact]
    public void ConfidenceFinishesEachBlockBeforeTheNext()
    {
        // Later positions are more confident, so only the blocks keep the order left to right.
        var model = Ranked(p => p);
        var options = new SamplingOptions { Steps = 2, BlockLength = 4, Temperature = 0, Trace = true };
        var result = Sampler.Generate(model, Input(Row(12), Row(8)), options);

        Assert.Equal(6, model.Calls);
        for (int r = 0; r < 2; r++)
        {
            var fill = result.Rows[r].GeneratedPositions;
            var steps = result.Rows[r].Steps!;
            Assert.Equal(fill.Count / 2, steps.Count);
            for (int g = 0; g < steps.Count; g++)
            {
                int block = g / 2;
                Assert.Equal(g, steps[g].Step);
                // Step 0 of a block takes its two rightmost positions, step 1 the two left.
                int[] offsets = g % 2 == 0 ? [2, 3] : [0, 1];
                Assert.Equal(offsets.Select(o => fill[block * 4 + o]), steps[g].Positions.Order());
            }
        }
    }

    [Fact]
    public void ConfidenceScoresRankByTheirOwnMeasure()
    {
        // Position 2: two tokens at 0.5 each (the highest probability, margin 0); position 3: one token at 0.36 and
        // six at 0.11 (lower probability, margin 0.25); position 1: flat over the seven allowed ids.
        var model = new StubModel((_, p) =>
        {
            var l = new float[Vocab];
            if (p == 2) { l[3] = 10; l[4] = 10; }
            if (p == 3) { l[5] = 1.2f; }
            return l;
        });
        var input = Input([Special, Mask, Mask, Mask, Special]);
        SamplingOptions Options(ConfidenceScore score) => new() { Steps = 3, Temperature = 0, Score = score, Trace = true };
        Assert.Equal(2, Sampler.Generate(model, input, Options(ConfidenceScore.Probability)).Rows[0].Steps![0].Positions.Single());
        Assert.Equal(3, Sampler.Generate(model, input, Options(ConfidenceScore.Margin)).Rows[0].Steps![0].Positions.Single());
        // The flat distribution at position 1 has the largest entropy, so it goes last under the entropy score.
        Assert.Equal(1, Sampler.Generate(model, input, Options(ConfidenceScore.Entropy)).Rows[0].Steps![2].Positions.Single());
    }

    [Fact]
    public void ConfidenceAtTemperatureZeroIsDeterministicWithoutASeed()
    {
        var input = Input(Row(9), Row(4));
        var options = new SamplingOptions { Steps = 3, Temperature = 0 };
        var first = Sampler.Generate(Noisy(), input, options);
        var second = Sampler.Generate(Noisy(), input, options);
        for (int r = 0; r < 2; r++) Assert.Equal(first.Rows[r].Ids, second.Rows[r].Ids);
    }

    // ---------------------------------------------------------------- dilated

    [Theory]
    [InlineData(8, 3)]
    [InlineData(16, 4)]
    [InlineData(32, 5)]
    [InlineData(64, 6)]
    public void DilatedPlanTakesLog2BRoundsCoveringEveryPositionOnce(int blockLength, int rounds)
    {
        var plan = Sampler.DilatedPlan(blockLength);
        Assert.Equal(rounds, plan.Count);
        Assert.Equal(Enumerable.Range(0, blockLength), plan.SelectMany(r => r).Order());
        Assert.Equal(new[] { 0, blockLength / 2 }, plan[0]);
        // Round j ≥ 1: the odd multiples of B / 2^(j+1).
        for (int j = 1; j < rounds; j++)
        {
            int stride = blockLength >> (j + 1);
            Assert.Equal(Enumerable.Range(0, 1 << j).Select(i => (2 * i + 1) * stride), plan[j]);
        }
    }

    [Fact]
    public void DilatedPlanForThirtyTwoIsThePapersExample()
    {
        var plan = Sampler.DilatedPlan(32);
        Assert.Equal(new[] { 0, 16 }, plan[0]);
        Assert.Equal(new[] { 8, 24 }, plan[1]);
        Assert.Equal(new[] { 4, 12, 20, 28 }, plan[2]);
        Assert.Equal(Enumerable.Range(0, 8).Select(i => 2 + 4 * i), plan[3]);
        Assert.Equal(Enumerable.Range(0, 16).Select(i => 2 * i + 1), plan[4]);
        Assert.Equal(new[] { 0 }, Sampler.DilatedPlan(1).Single());
        Assert.Equal(new[] { 0, 1 }, Sampler.DilatedPlan(2).Single());
    }

    [Fact]
    public void DilatedCommitsEachRoundInOnePass()
    {
        var model = Noisy();
        var input = Input(Row(16), Row(8));
        var result = Sampler.Generate(model, input, new SamplingOptions { Sampler = SamplerKind.Dilated, BlockLength = 8, Seed = 2, Trace = true });
        var plan = Sampler.DilatedPlan(8);
        Assert.Equal(2 * plan.Count, model.Calls);
        Assert.Equal(model.Calls, result.ForwardPasses);
        for (int r = 0; r < 2; r++)
        {
            var fill = result.Rows[r].GeneratedPositions;
            var steps = result.Rows[r].Steps!;
            Assert.Equal(fill.Count / 8 * plan.Count, steps.Count);
            for (int g = 0; g < steps.Count; g++)
            {
                Assert.Equal(g, steps[g].Step);
                Assert.Equal(g, steps[g].ForwardPass);
                Assert.Equal(plan[g % plan.Count].Select(o => fill[g / plan.Count * 8 + o]), steps[g].Positions);
            }
        }
        AssertPromptKeptAndFilled(input, result);
    }

    // ---------------------------------------------------------------- mask-predict

    [Theory]
    [InlineData(10, 4, new[] { 10, 7, 5, 2 })]
    [InlineData(3, 5, new[] { 3, 2, 1, 1 })]
    [InlineData(6, 1, new[] { 6 })]
    public void MaskPredictRemasksNTimesTMinusTOverTLeastProbable(int masked, int iterations, int[] counts)
    {
        // Fixed per-position confidence: the same positions stay the least probable.
        var model = Ranked(p => (p * 5 % 11) / 3f);
        var result = Sampler.Generate(model, Input(Row(masked)), new SamplingOptions { Sampler = SamplerKind.MaskPredict, Steps = iterations, Temperature = 0, Trace = true });
        var steps = result.Rows[0].Steps!;
        Assert.Equal(counts, steps.Select(s => s.Positions.Count));
        Assert.Equal(counts.Length, model.Calls);
        var byConfidence = result.Rows[0].GeneratedPositions.OrderBy(p => p * 5 % 11).ThenBy(p => p).ToArray();
        for (int i = 1; i < steps.Count; i++)
        {
            Assert.Equal(byConfidence[..counts[i]].Order(), steps[i].Positions.Order());
            Assert.Equal(steps[i].Positions.Order(), steps[i].Remasked);
        }
    }

    // ---------------------------------------------------------------- every sampler

    public static TheoryData<SamplingOptions> EverySampler() =>
    [
        new SamplingOptions { Sampler = SamplerKind.Ancestral, Steps = 20 },
        new SamplingOptions { Sampler = SamplerKind.Ancestral, Steps = 20, RemaskEta = 0.2, TopK = 3 },
        new SamplingOptions { Sampler = SamplerKind.Confidence, Steps = 4, TopP = 0.8 },
        new SamplingOptions { Sampler = SamplerKind.Confidence, Steps = 3, BlockLength = 4, Score = ConfidenceScore.Margin, Temperature = 0.7 },
        new SamplingOptions { Sampler = SamplerKind.Dilated, BlockLength = 4 },
        new SamplingOptions { Sampler = SamplerKind.MaskPredict, Steps = 4, Temperature = 1.5 },
    ];

    [Theory]
    [MemberData(nameof(EverySampler))]
    public void EverySamplerKeepsThePromptAvoidsForbiddenIdsCountsPassesAndRepeatsUnderASeed(SamplingOptions options)
    {
        // Rows of different lengths share one padded batch.
        var input = Input(Row(8), [Special, 7, 8, Mask, Mask, Mask, Mask, Special], Row(12));
        var reports = new List<GenerationProgress>();
        var model = Noisy();
        var result = Sampler.Generate(model, input, options with { Seed = 11 }, new SyncReports(reports));

        AssertPromptKeptAndFilled(input, result);
        Assert.Equal(model.Calls, result.ForwardPasses);
        Assert.Equal(model.Calls, reports.Count);
        Assert.Equal(Enumerable.Range(1, model.Calls), reports.Select(r => r.ForwardPasses));
        Assert.Equal(0, reports[^1].MaskedRemaining);
        Assert.All(model.Inputs, call => Assert.Equal(3, call.Length));

        var again = Sampler.Generate(Noisy(), input, options with { Seed = 11 });
        for (int r = 0; r < input.Rows.Count; r++) Assert.Equal(result.Rows[r].Ids, again.Rows[r].Ids);
        var other = Sampler.Generate(Noisy(), input, options with { Seed = 12 });
        Assert.Contains(Enumerable.Range(0, input.Rows.Count), r => !result.Rows[r].Ids.SequenceEqual(other.Rows[r].Ids));
    }

    [Fact]
    public void SamplingAtTemperatureOneFollowsTheModelsDistribution()
    {
        // One masked position per row, filled by mask-predict's single pass: the ids are independent draws.
        float[] logits = [0, 0, 0, 1.0f, 0.5f, 0f, -0.5f, -1f, 2f, 0.2f];
        var model = new StubModel((_, _) => logits);
        const int rows = 4000;
        var input = Input(Enumerable.Range(0, rows).Select(_ => new long[] { Special, Mask }).ToArray());
        var result = Sampler.Generate(model, input, new SamplingOptions { Sampler = SamplerKind.MaskPredict, Steps = 1, Seed = 4 });
        var allowed = Enumerable.Range(3, 7).ToArray();
        double z = allowed.Sum(v => Math.Exp(logits[v]));
        foreach (int v in allowed)
        {
            double expected = Math.Exp(logits[v]) / z;
            double observed = result.Rows.Count(r => r.Ids[1] == v) / (double)rows;
            Assert.InRange(observed, expected - 4 * Math.Sqrt(expected * (1 - expected) / rows), expected + 4 * Math.Sqrt(expected * (1 - expected) / rows));
        }

        // Top-k 2 keeps ids 8 and 3; top-p 0.5 keeps the smallest head reaching half the mass: 8 (0.49) and 3 (0.18).
        foreach (var options in new[] { new SamplingOptions { TopK = 2 }, new SamplingOptions { TopP = 0.5 } })
        {
            var limited = Sampler.Generate(model, input, options with { Sampler = SamplerKind.MaskPredict, Steps = 1, Seed = 4 });
            Assert.Equal(new[] { 3L, 8L }, limited.Rows.Select(r => r.Ids[1]).Distinct().Order());
        }
    }

    [Fact]
    public void CancellationStopsBetweenPasses()
    {
        using var source = new CancellationTokenSource();
        var model = new StubModel((_, _) =>
        {
            source.Cancel();
            return new float[Vocab];
        });
        Assert.Throws<OperationCanceledException>(() =>
            Sampler.Generate(model, Input(Row(8)), new SamplingOptions { Steps = 8 }, ct: source.Token));
        Assert.Equal(1, model.Calls);
    }

    // ---------------------------------------------------------------- validation

    public static TheoryData<SamplingOptions, long[], string> Invalid() => new()
    {
        { new SamplingOptions { Steps = 0 }, Row(4), "steps must be at least 1" },
        { new SamplingOptions(), [Special, 5, Special], "row 0 has no masked position" },
        { new SamplingOptions { BlockLength = 0 }, Row(4), "block length must be at least 1" },
        { new SamplingOptions { BlockLength = 3 }, Row(4), "block length 3 does not divide" },
        { new SamplingOptions { Sampler = SamplerKind.Dilated }, Row(4), "needs a block length" },
        { new SamplingOptions { Sampler = SamplerKind.Dilated, BlockLength = 6 }, Row(12), "must be a power of two" },
        { new SamplingOptions { Sampler = SamplerKind.Dilated, BlockLength = 8 }, Row(12), "block length 8 does not divide" },
        { new SamplingOptions { Temperature = -0.5 }, Row(4), "temperature must be 0" },
        { new SamplingOptions { TopP = 0 }, Row(4), "top-p must be in (0, 1]" },
        { new SamplingOptions { TopP = 1.2 }, Row(4), "top-p must be in (0, 1]" },
        { new SamplingOptions { TopK = 0 }, Row(4), "top-k must be at least 1" },
    };

    [Theory]
    [MemberData(nameof(Invalid))]
    public void ValidateRejects(SamplingOptions options, long[] row, string message)
    {
        var error = Assert.Throws<UnmaskException>(() => Sampler.Validate(Input(row), options));
        Assert.Contains(message, error.Message);
        Assert.Throws<UnmaskException>(() => Sampler.Generate(Noisy(), Input(row), options));
    }

    [Fact]
    public void ValidateChecksEveryRowAndIgnoresBlocksWhereUnused()
    {
        Assert.Contains("row 1", Assert.Throws<UnmaskException>(() => Sampler.Validate(Input(Row(4), Row(6)), new SamplingOptions { BlockLength = 4 })).Message);
        Sampler.Validate(Input(Row(4), Row(6)), new SamplingOptions { Sampler = SamplerKind.MaskPredict, BlockLength = 4 });
        Sampler.Validate(Input(Row(8)), new SamplingOptions { Sampler = SamplerKind.Dilated, BlockLength = 8, TopP = 1, TopK = 1, Temperature = 0 });
    }

    // ---------------------------------------------------------------- helpers

    /// <summary>Reports as they come, on the caller's thread (Progress&lt;T&gt; would post them later).</summary>
    sealed class SyncReports(List<GenerationProgress> into) : IProgress<GenerationProgress>
    {
        public void Report(GenerationProgress value) => into.Add(value);
    }

    static long[] Flatten(long[][] rows) => rows.SelectMany(r => r).ToArray();

    static void AssertPromptKeptAndFilled(GenerationInput input, GenerationResult result)
    {
        for (int r = 0; r < input.Rows.Count; r++)
        {
            var before = input.Rows[r];
            var after = result.Rows[r].Ids;
            Assert.Equal(before.Length, after.Length);
            Assert.Equal(Enumerable.Range(0, before.Length).Where(p => before[p] == Mask), result.Rows[r].GeneratedPositions);
            for (int p = 0; p < before.Length; p++)
                if (before[p] == Mask) Assert.DoesNotContain(after[p], Forbidden);
                else Assert.Equal(before[p], after[p]);
        }
    }

    /// <summary>At temperature 0 each committed id is the argmax of the logits the stub gave for the input of the
    /// trace step's forward pass: the cached logits really were the current ones.</summary>
    static void AssertFilledFrom(StubModel model, GenerationInput input, GenerationResult result)
    {
        AssertPromptKeptAndFilled(input, result);
        for (int r = 0; r < input.Rows.Count; r++)
            foreach (var step in result.Rows[r].Steps!)
                for (int i = 0; i < step.Positions.Count; i++)
                {
                    var row = model.Inputs[step.ForwardPass][r];
                    int expected = 3 + (int)(row.Count(id => id == Mask) + step.Positions[i]) % 7;
                    Assert.Equal(expected, step.Ids[i]);
                }
    }
}
