using System.Buffers;
using System.Text;

namespace Unmask.Tokenization;

/// <summary>
/// How transformers' slow tokenizer treats special tokens written in the text: with lowercasing, everything but
/// them is lowercased first (a regex that tries them in a fixed order, first match wins); then the text is split on
/// them (a trie, longest match wins), and they are kept whole.
/// </summary>
internal sealed class SpecialTokenSplitter
{
    readonly string[] alternation;
    readonly Dictionary<char, string[]> byFirstChar; // longest first
    readonly SearchValues<char> firstChars;
    readonly SearchValues<char> triggers;            // characters that are, or lowercase to, a special token's first

    public SpecialTokenSplitter(IReadOnlyList<string> tokens, bool lowerCase)
    {
        var nonEmpty = tokens.Where(t => t.Length > 0).ToArray();
        alternation = nonEmpty.OrderBy(t => t, CodePointComparer.Instance).Concat(nonEmpty).ToArray();
        byFirstChar = nonEmpty.GroupBy(t => t[0]).ToDictionary(g => g.Key, g => g.OrderByDescending(t => t.Length).ToArray());
        firstChars = SearchValues.Create(byFirstChar.Keys.ToArray());
        triggers = SearchValues.Create(TriggerChars(byFirstChar.Keys, lowerCase));
    }

    /// <summary>Whether a special token can occur in <paramref name="text"/>, lowercased or not.</summary>
    public bool MayOccurIn(ReadOnlySpan<char> text) => text.IndexOfAny(triggers) >= 0;

    /// <summary>The text with everything but the special tokens lowercased one code point at a time.</summary>
    public AlignedText LowerOutside(string text)
    {
        var original = AlignedText.Original(text);
        var lowered = new AlignedText.Builder(text.Length);
        var one = new StringBuilder(2);
        int start = 0;
        foreach (var (at, token) in Matches(text, longest: false))
        {
            Lower(start, at);
            lowered.Append(original, at, at + token.Length);
            start = at + token.Length;
        }
        Lower(start, text.Length);
        return lowered.Build();

        void Lower(int from, int to)
        {
            for (int i = from; i < to;)
            {
                int cp = PythonUnicode.CodePointAt(text, i, out int len);
                lowered.SetSource(original.StartOf(i), original.EndOf(i + len - 1));
                one.Clear();
                PythonUnicode.AppendLower(one, cp);
                lowered.Append(one.ToString());
                i += len;
            }
        }
    }

    /// <summary>The special tokens in <paramref name="text"/>, leftmost first, each the longest that starts there.</summary>
    public IEnumerable<(int At, string Token)> Find(string text) => Matches(text, longest: true);

    IEnumerable<(int At, string Token)> Matches(string text, bool longest)
    {
        for (int i = 0; ;)
        {
            int hit = text.AsSpan(i).IndexOfAny(firstChars);
            if (hit < 0) yield break;
            i += hit;
            var match = MatchAt(text, i, longest);
            if (match == null)
            {
                i++;
                continue;
            }
            yield return (i, match);
            i += match.Length;
        }
    }

    string? MatchAt(string text, int at, bool longest)
    {
        foreach (var token in longest ? byFirstChar[text[at]] : alternation)
            if (text.AsSpan(at).StartsWith(token, StringComparison.Ordinal)) return token;
        return null;
    }

    static char[] TriggerChars(IEnumerable<char> firstChars, bool lowerCase)
    {
        var first = new HashSet<char>(firstChars);
        var triggers = new HashSet<char>(first);
        if (lowerCase)
        {
            for (int c = 0; c < 0x10000; c++)
            {
                if (char.IsSurrogate((char)c)) continue;
                int lowered = c == 0x130 ? 'i' : PythonUnicode.LowerSingle(c);
                if (lowered < 0x10000 && first.Contains((char)lowered)) triggers.Add((char)c);
            }
            // Astral characters lowercase to astral ones: any high surrogate may start such a special token.
            if (first.Any(char.IsHighSurrogate))
                for (int c = 0xD800; c < 0xDC00; c++) triggers.Add((char)c);
        }
        return triggers.ToArray();
    }

    /// <summary>Python's string order (by code point), which differs from UTF-16 order above the surrogates.</summary>
    sealed class CodePointComparer : IComparer<string>
    {
        public static readonly CodePointComparer Instance = new();

        public int Compare(string? x, string? y)
        {
            if (x == null || y == null) return string.CompareOrdinal(x, y);
            int i = 0, j = 0;
            while (i < x.Length && j < y.Length)
            {
                int a = PythonUnicode.CodePointAt(x, i, out int la), b = PythonUnicode.CodePointAt(y, j, out int lb);
                if (a != b) return a.CompareTo(b);
                i += la;
                j += lb;
            }
            return (x.Length - i).CompareTo(y.Length - j);
        }
    }
}
