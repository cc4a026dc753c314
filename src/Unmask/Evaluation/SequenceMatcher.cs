namespace Unmask.Evaluation;

/// <summary>
/// The matching blocks of Python's <c>difflib.SequenceMatcher(None, a, b)</c> (autojunk on, no junk function), which
/// CrowS-Pairs uses to find the tokens two sentences share. Ties between equally long matches resolve the way difflib's
/// do (earliest in a, then earliest in b), so the shared positions are the same as the official script's.
/// </summary>
internal static class SequenceMatcher
{
    public readonly record struct Block(int A, int B, int Size);

    /// <summary>Non-adjacent matching blocks in increasing order, without difflib's final zero-size sentinel.</summary>
    public static IReadOnlyList<Block> MatchingBlocks<T>(IReadOnlyList<T> a, IReadOnlyList<T> b) where T : notnull
    {
        var b2j = new Dictionary<T, List<int>>();
        for (int j = 0; j < b.Count; j++)
        {
            if (!b2j.TryGetValue(b[j], out var list)) b2j[b[j]] = list = [];
            list.Add(j);
        }
        // difflib's "popular element" heuristic: in a long b, elements more frequent than 1% are left out of the index.
        if (b.Count >= 200)
        {
            int limit = b.Count / 100 + 1;
            foreach (var key in b2j.Where(p => p.Value.Count > limit).Select(p => p.Key).ToList()) b2j.Remove(key);
        }

        var blocks = new List<Block>();
        var queue = new Stack<(int ALo, int AHi, int BLo, int BHi)>();
        queue.Push((0, a.Count, 0, b.Count));
        while (queue.Count > 0)
        {
            var (alo, ahi, blo, bhi) = queue.Pop();
            var (i, j, k) = LongestMatch(a, b, b2j, alo, ahi, blo, bhi);
            if (k == 0) continue;
            blocks.Add(new Block(i, j, k));
            if (alo < i && blo < j) queue.Push((alo, i, blo, j));
            if (i + k < ahi && j + k < bhi) queue.Push((i + k, ahi, j + k, bhi));
        }
        blocks.Sort((x, y) => x.A != y.A ? x.A.CompareTo(y.A) : x.B != y.B ? x.B.CompareTo(y.B) : x.Size.CompareTo(y.Size));

        var merged = new List<Block>();
        foreach (var block in blocks)
        {
            if (merged.Count > 0 && merged[^1].A + merged[^1].Size == block.A && merged[^1].B + merged[^1].Size == block.B)
                merged[^1] = merged[^1] with { Size = merged[^1].Size + block.Size };
            else merged.Add(block);
        }
        return merged;
    }

    static (int I, int J, int K) LongestMatch<T>(IReadOnlyList<T> a, IReadOnlyList<T> b, Dictionary<T, List<int>> b2j,
        int alo, int ahi, int blo, int bhi) where T : notnull
    {
        var comparer = EqualityComparer<T>.Default;
        int besti = alo, bestj = blo, bestsize = 0;
        var j2len = new Dictionary<int, int>();
        for (int i = alo; i < ahi; i++)
        {
            var next = new Dictionary<int, int>();
            if (b2j.TryGetValue(a[i], out var js))
                foreach (var j in js)
                {
                    if (j < blo) continue;
                    if (j >= bhi) break;
                    int k = next[j] = j2len.GetValueOrDefault(j - 1) + 1;
                    if (k > bestsize) (besti, bestj, bestsize) = (i - k + 1, j - k + 1, k);
                }
            j2len = next;
        }
        // Popular elements are not in the index but still extend a match, as in difflib (there is no junk here).
        while (besti > alo && bestj > blo && comparer.Equals(a[besti - 1], b[bestj - 1])) (besti, bestj, bestsize) = (besti - 1, bestj - 1, bestsize + 1);
        while (besti + bestsize < ahi && bestj + bestsize < bhi && comparer.Equals(a[besti + bestsize], b[bestj + bestsize])) bestsize++;
        return (besti, bestj, bestsize);
    }
}
