namespace Unmask.Tokenization;

/// <summary>
/// The last steps of encoding, shared by all tokenizers: truncation to a maximum length, the special tokens of the
/// post-processor around the sequences, and the packing into a <see cref="TokenizedText"/>.
/// </summary>
internal static class EncodingAssembly
{
    /// <summary>
    /// Truncates <paramref name="a"/> and <paramref name="b"/> to fit <paramref name="maxLength"/> with the special
    /// tokens, the way transformers' slow tokenizers do (<paramref name="slowTruncation"/>) or tokenizers does, then
    /// lays them out with <paramref name="post"/>.
    /// </summary>
    public static TokenizedText Assemble(List<EncodedToken> a, List<EncodedToken>? b, PostProcessor post, bool addSpecialTokens,
        int? maxLength, bool slowTruncation, bool templateTypes, bool returnsTokenTypeIds)
    {
        if (maxLength is int max)
        {
            int target = max - (addSpecialTokens ? post.AddedTokens(b != null) : 0);
            int least = b == null ? 1 : 0;
            if (target < least)
                throw new ArgumentOutOfRangeException(nameof(maxLength), max,
                    $"maxLength must be at least {max - target + least} to leave room for the special tokens.");
            if (slowTruncation) TruncateOneAtATime(a, b, a.Count + (b?.Count ?? 0) - target);
            else TruncateBalanced(a, b, target);
        }
        var tokens = post.Apply(a, b, addSpecialTokens, templateTypes);
        return new TokenizedText(
            tokens.Select(t => t.Id).ToArray(),
            tokens.Select(t => t.Token).ToArray(),
            tokens.Select(t => returnsTokenTypeIds ? t.TypeId : 0).ToArray(),
            tokens.Select(t => t.AddedBySpecial).ToArray())
        {
            WordIds = tokens.Select(t => t.WordId).ToArray(),
            SequenceIds = tokens.Select(t => t.AddedBySpecial ? null : t.SequenceId).ToArray(),
            Offsets = tokens.Select(t => new TokenOffset(t.Start, t.End)).ToArray(),
        };
    }

    // transformers' "longest_first": a single text loses its tail; of a pair, the longer part loses one token at a
    // time (the pair on ties).
    static void TruncateOneAtATime(List<EncodedToken> a, List<EncodedToken>? b, int remove)
    {
        if (remove <= 0) return;
        if (b == null)
        {
            a.RemoveRange(a.Count - remove, remove);
            return;
        }
        for (int i = 0; i < remove; i++)
        {
            if (a.Count > b.Count) a.RemoveAt(a.Count - 1);
            else if (b.Count > 0) b.RemoveAt(b.Count - 1);
        }
    }

    // tokenizers' "longest_first": the shorter sequence is kept whole when it fits in half, else both get half.
    static void TruncateBalanced(List<EncodedToken> a, List<EncodedToken>? b, int target)
    {
        if (b == null)
        {
            if (a.Count > target) a.RemoveRange(target, a.Count - target);
            return;
        }
        if (a.Count + b.Count <= target) return;
        bool swap = a.Count > b.Count;
        int n1 = swap ? b.Count : a.Count, n2;
        n2 = n1 > target ? n1 : Math.Max(n1, target - n1);
        if (n1 + n2 > target)
        {
            n1 = target / 2;
            n2 = n1 + target % 2;
        }
        if (swap) (n1, n2) = (n2, n1);
        if (a.Count > n1) a.RemoveRange(n1, a.Count - n1);
        if (b.Count > n2) b.RemoveRange(n2, b.Count - n2);
    }
}
