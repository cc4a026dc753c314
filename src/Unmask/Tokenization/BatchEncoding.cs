namespace Unmask.Tokenization;

/// <summary>A padded batch: one row per input, all of the same length.</summary>
public sealed record BatchEncoding(TokenizedText[] Rows)
{
    public int[][] InputIds => Rows.Select(r => r.InputIds).ToArray();
    public int[][] AttentionMask => Rows.Select(r => r.AttentionMask).ToArray();
    public int[][] TokenTypeIds => Rows.Select(r => r.TokenTypeIds).ToArray();

    /// <summary>Encodes each row with <paramref name="tokenizer"/>, then pads (see <see cref="ITokenizer.EncodeBatch"/>).</summary>
    public static BatchEncoding Encode(ITokenizer tokenizer, IReadOnlyList<string> texts, IReadOnlyList<string>? pairs,
        bool addSpecialTokens, int? maxLength, bool pad, PaddingSide? side)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(texts);
        if (pairs != null && pairs.Count != texts.Count)
            throw new ArgumentException($"{pairs.Count} pairs for {texts.Count} texts.", nameof(pairs));
        var rows = new TokenizedText[texts.Count];
        for (int i = 0; i < rows.Length; i++) rows[i] = tokenizer.Encode(texts[i], pairs?[i], addSpecialTokens, maxLength);
        int padId = tokenizer.PadId;
        return Pad(rows, pad, side ?? tokenizer.PaddingSide, padId, padId >= 0 ? tokenizer.IdToToken(padId) : "");
    }

    /// <summary>Pads <paramref name="rows"/> to the longest one (nothing when <paramref name="pad"/> is false).</summary>
    public static BatchEncoding Pad(TokenizedText[] rows, bool pad, PaddingSide side, int padId, string padToken)
    {
        ArgumentNullException.ThrowIfNull(rows);
        if (!pad || rows.Length == 0) return new BatchEncoding(rows);
        int longest = rows.Max(r => r.InputIds.Length);
        if (rows.Any(r => r.InputIds.Length < longest) && padId < 0)
            throw new UnmaskException("Cannot pad the batch: the tokenizer has no padding token.");
        var padded = new TokenizedText[rows.Length];
        for (int i = 0; i < rows.Length; i++)
        {
            var r = rows[i];
            int n = longest - r.InputIds.Length;
            if (n == 0)
            {
                padded[i] = r;
                continue;
            }
            T[] Fill<T>(T[] values, T padValue)
            {
                var result = new T[longest];
                int at = side == PaddingSide.Left ? n : 0;
                Array.Fill(result, padValue);
                values.CopyTo(result, at);
                return result;
            }
            padded[i] = new TokenizedText(Fill(r.InputIds, padId), Fill(r.Tokens, padToken), Fill(r.TokenTypeIds, 0),
                Fill(r.SpecialTokensMask, true))
            {
                AttentionMask = Fill(r.AttentionMask, 0),
                WordIds = Fill(r.WordIds.Length == r.InputIds.Length ? r.WordIds : new int?[r.InputIds.Length], null),
                SequenceIds = Fill(r.SequenceIds.Length == r.InputIds.Length ? r.SequenceIds : new int?[r.InputIds.Length], null),
                Offsets = r.Offsets == null ? null : Fill(r.Offsets, default),
            };
        }
        return new BatchEncoding(padded);
    }
}
