namespace Unmask.Tokenization;

/// <summary>One element of a post-processing template: a special token, or sequence A (0) / B (1).</summary>
internal readonly record struct TemplatePiece(string? SpecialToken, int Sequence, int TypeId);

/// <summary>
/// The special tokens a post-processor puts around the sequences (HF <c>TemplateProcessing</c>; <c>BertProcessing</c>
/// and <c>RobertaProcessing</c> are fixed templates, and the <c>ByteLevel</c> processor adds nothing).
/// </summary>
internal sealed class PostProcessor(IReadOnlyList<TemplatePiece> single, IReadOnlyList<TemplatePiece> pair,
    IReadOnlyDictionary<string, (int Id, string Token)[]> specialTokens)
{
    /// <summary>No special tokens: A, then B with type 1 (tokenizers' default processing).</summary>
    public static readonly PostProcessor None = new([new(null, 0, 0)], [new(null, 0, 0), new(null, 1, 1)],
        new Dictionary<string, (int, string)[]>());

    public static PostProcessor Bert(string cls, int clsId, string sep, int sepId) => new(
        [new(cls, 0, 0), new(null, 0, 0), new(sep, 0, 0)],
        [new(cls, 0, 0), new(null, 0, 0), new(sep, 0, 0), new(null, 1, 1), new(sep, 0, 1)],
        Specials((cls, clsId), (sep, sepId)));

    public static PostProcessor Roberta(string cls, int clsId, string sep, int sepId) => new(
        [new(cls, 0, 0), new(null, 0, 0), new(sep, 0, 0)],
        [new(cls, 0, 0), new(null, 0, 0), new(sep, 0, 0), new(sep, 0, 0), new(null, 1, 0), new(sep, 0, 0)],
        Specials((cls, clsId), (sep, sepId)));

    static Dictionary<string, (int, string)[]> Specials(params (string Token, int Id)[] tokens)
    {
        var map = new Dictionary<string, (int, string)[]>(StringComparer.Ordinal);
        foreach (var (token, id) in tokens) map[token] = [(id, token)];
        return map;
    }

    /// <summary>
    /// HF <c>trim_offsets</c> (ByteLevel and RobertaProcessing): a token's offsets leave out the spaces ('Ġ') at its
    /// ends, except the space <see cref="AddedPrefixSpace"/> put before the first word.
    /// </summary>
    public bool TrimOffsets { get; init; }

    public bool AddedPrefixSpace { get; init; }

    /// <summary>The same layout with other offset trimming.</summary>
    public PostProcessor WithTrimming(bool trim, bool addedPrefixSpace) =>
        new(single, pair, specialTokens) { TrimOffsets = trim, AddedPrefixSpace = addedPrefixSpace };

    /// <summary>How many special tokens the template adds around one sequence or a pair.</summary>
    public int AddedTokens(bool isPair) =>
        (isPair ? pair : single).Where(p => p.SpecialToken != null).Sum(p => specialTokens[p.SpecialToken!].Length);

    /// <summary>
    /// Lays out the sequences; without special tokens only the sequences remain, with the template's type ids when
    /// <paramref name="templateTypes"/> (tokenizers) or all zeros (transformers' slow tokenizers).
    /// </summary>
    public List<EncodedToken> Apply(List<EncodedToken> a, List<EncodedToken>? b, bool addSpecialTokens, bool templateTypes)
    {
        var result = new List<EncodedToken>(a.Count + (b?.Count ?? 0) + 4);
        foreach (var piece in b == null ? single : pair)
        {
            if (piece.SpecialToken != null)
            {
                if (!addSpecialTokens) continue;
                foreach (var (id, token) in specialTokens[piece.SpecialToken])
                    result.Add(new EncodedToken(id, token, 0, 0, null, null, piece.TypeId, true));
                continue;
            }
            int type = addSpecialTokens || templateTypes ? piece.TypeId : 0;
            foreach (var t in piece.Sequence == 0 ? a : b!)
                result.Add(Trim(t) with { TypeId = type, SequenceId = piece.Sequence });
        }
        return result;
    }

    EncodedToken Trim(EncodedToken t)
    {
        if (!TrimOffsets) return t;
        const char space = '\u0120';
        int leading = 0, trailing = 0;
        while (leading < t.Token.Length && t.Token[leading] == space) leading++;
        while (trailing < t.Token.Length - leading && t.Token[t.Token.Length - 1 - trailing] == space) trailing++;
        int start = t.Start, end = t.End;
        if (leading > 0 && !(start == 0 && AddedPrefixSpace)) start = Math.Min(start + leading, end);
        if (trailing > 0 && end >= trailing) end = Math.Max(end - trailing, start);
        return t with { Start = start, End = end };
    }
}
