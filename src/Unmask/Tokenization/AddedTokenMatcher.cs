namespace Unmask.Tokenization;

/// <summary>Finds added tokens in text: leftmost match first, the longest of those starting there.</summary>
internal sealed class AddedTokenMatcher
{
    readonly Dictionary<char, AddedToken[]> byFirstChar;

    public AddedTokenMatcher(IEnumerable<AddedToken> tokens)
    {
        byFirstChar = tokens.Where(t => t.Content.Length > 0)
            .GroupBy(t => t.Content[0])
            .ToDictionary(g => g.Key, g => g.OrderByDescending(t => t.Content.Length).ToArray());
    }

    public bool IsEmpty => byFirstChar.Count == 0;

    /// <summary>
    /// The matches in <paramref name="text"/>, each widened over the whitespace its token strips (transformers'
    /// slow tokenizers strip Python whitespace, tokenizers Unicode whitespace); ranges are [Start, End).
    /// </summary>
    public List<(int Start, int End, AddedToken Token)> Find(string text, bool pythonWhitespace)
    {
        var found = new List<(int Start, int End, AddedToken Token)>();
        for (int i = 0; i < text.Length;)
        {
            var token = MatchAt(text, i);
            if (token == null || (token.SingleWord && !AtWordBoundary(text, i, i + token.Content.Length)))
            {
                i++;
                continue;
            }
            found.Add((i, i + token.Content.Length, token));
            i += token.Content.Length;
        }
        bool IsSpace(char c) => pythonWhitespace ? PythonUnicode.IsPythonSpace(c) : char.IsWhiteSpace(c);
        for (int k = 0; k < found.Count; k++)
        {
            var (start, end, token) = found[k];
            int lower = k == 0 ? 0 : found[k - 1].End;
            int upper = k + 1 < found.Count ? found[k + 1].Start : text.Length;
            if (token.LStrip) while (start > lower && IsSpace(text[start - 1])) start--;
            if (token.RStrip) while (end < upper && IsSpace(text[end])) end++;
            found[k] = (start, end, token);
        }
        return found;
    }

    AddedToken? MatchAt(string text, int i)
    {
        if (!byFirstChar.TryGetValue(text[i], out var candidates)) return null;
        foreach (var t in candidates)
            if (string.CompareOrdinal(text, i, t.Content, 0, t.Content.Length) == 0) return t;
        return null;
    }

    static bool AtWordBoundary(string text, int start, int end)
    {
        static bool IsWordChar(char c) => char.IsLetterOrDigit(c) || c == '_';
        return (start == 0 || !IsWordChar(text[start - 1])) && (end == text.Length || !IsWordChar(text[end]));
    }
}
