using Unmask.Masking;

namespace Unmask.Tests;

public class RandomMaskingTests
{
    const int Vocab = 1000, Mask = 4, Cls = 2, Sep = 3, Pad = 0;

    static MaskingVocabulary Vocabulary()
    {
        var special = new bool[Vocab];
        for (int i = 0; i < 5; i++) special[i] = true;
        return new MaskingVocabulary(Vocab, Mask, special);
    }

    static long[] Sequences(int batch, int seq, Random rng)
    {
        var ids = new long[batch * seq];
        for (int b = 0; b < batch; b++)
        {
            int length = seq - rng.Next(seq / 4); // some padding at the end of each row
            for (int t = 0; t < seq; t++)
                ids[b * seq + t] = t == 0 ? Cls : t == length - 1 ? Sep : t >= length ? Pad : 5 + rng.Next(Vocab - 5);
        }
        return ids;
    }

    [Theory]
    [InlineData(0.15)]
    [InlineData(0.4)]
    public void RealisesRateAndEightyTenTenSplitOnNonSpecialTokens(double rate)
    {
        var masking = new RandomMasking(new MaskingOptions(rate), Vocabulary());
        var rng = new Random(7);
        long eligible = 0, selected = 0, masked = 0, replaced = 0, kept = 0;
        for (int round = 0; round < 40; round++)
        {
            var ids = Sequences(32, 128, rng);
            var result = masking.Apply(ids, 32, 128, rng, 0);
            for (int i = 0; i < ids.Length; i++)
            {
                bool special = ids[i] < 5;
                if (!special) eligible++;
                if (result.Labels[i] == MaskedBatch.Ignore)
                {
                    Assert.Equal(ids[i], result.InputIds[i]);
                    continue;
                }
                Assert.False(special, "a special token was selected");
                Assert.Equal(ids[i], result.Labels[i]);
                selected++;
                if (result.InputIds[i] == Mask) masked++;
                else if (result.InputIds[i] == ids[i]) kept++;
                else
                {
                    Assert.True(result.InputIds[i] >= 5, "random replacement drew a special token");
                    replaced++;
                }
            }
        }
        Assert.True(eligible > 100_000);
        Assert.InRange((double)selected / eligible, rate - 0.005, rate + 0.005);
        Assert.InRange((double)masked / selected, 0.79, 0.81);
        // A random draw equals the original one time in ~1000: it counts as kept, well inside the tolerance.
        Assert.InRange((double)replaced / selected, 0.09, 0.11);
        Assert.InRange((double)kept / selected, 0.09, 0.11);
    }

    [Fact]
    public void SameSeedSameCorruptionDifferentSeedDifferent()
    {
        var masking = new RandomMasking(new MaskingOptions(), Vocabulary());
        var ids = Sequences(8, 64, new Random(1));
        var a = masking.Apply(ids, 8, 64, new Random(5), 0);
        var b = masking.Apply(ids, 8, 64, new Random(5), 0);
        var c = masking.Apply(ids, 8, 64, new Random(6), 0);
        Assert.Equal(a.InputIds, b.InputIds);
        Assert.Equal(a.Labels, b.Labels);
        Assert.NotEqual(a.Labels, c.Labels);
    }

    [Fact]
    public void AllMaskSplitNeverKeepsOrReplaces()
    {
        var masking = new RandomMasking(new MaskingOptions(0.3, 1, 0, 0), Vocabulary());
        var ids = Sequences(16, 64, new Random(3));
        var result = masking.Apply(ids, 16, 64, new Random(4), 0);
        for (int i = 0; i < ids.Length; i++)
            if (result.Labels[i] != MaskedBatch.Ignore) Assert.Equal(Mask, result.InputIds[i]);
        Assert.True(result.SelectedCount > 0);
    }

    [Theory]
    [InlineData(0.0, 0.8, 0.1, 0.1)]
    [InlineData(0.15, 0.8, 0.1, 0.2)]
    [InlineData(0.15, -0.1, 0.6, 0.5)]
    public void RejectsInvalidOptions(double rate, double mask, double random, double keep)
    {
        var e = Assert.Throws<UnmaskException>(() => new RandomMasking(new MaskingOptions(rate, mask, random, keep), Vocabulary()));
        Assert.Contains(rate <= 0 ? "rate" : "fractions", e.Message);
    }
}
