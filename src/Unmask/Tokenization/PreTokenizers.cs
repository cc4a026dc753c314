using System.Globalization;
using System.Text.RegularExpressions;

namespace Unmask.Tokenization;

/// <summary>A tokenizer.json <c>pre_tokenizer</c>: cuts normalised text into words, each tokenised on its own.</summary>
internal interface IPreTokenizer
{
    void PreTokenize(AlignedText text, List<AlignedText> words);
}

/// <summary>What a split does with the delimiters it finds (HF <c>SplitDelimiterBehavior</c>).</summary>
internal enum SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous }

internal static class Splitting
{
    public static SplitBehavior ParseBehavior(string? name, string path) => name switch
    {
        "Removed" => SplitBehavior.Removed,
        "Isolated" => SplitBehavior.Isolated,
        "MergedWithPrevious" => SplitBehavior.MergedWithPrevious,
        "MergedWithNext" => SplitBehavior.MergedWithNext,
        "Contiguous" => SplitBehavior.Contiguous,
        _ => throw new UnmaskException(
            $"{path}: split behavior '{name}' is not supported (Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous)."),
    };

    /// <summary>Each code point that satisfies <paramref name="isDelimiter"/> is a delimiter of its own.</summary>
    public static List<(int Start, int End)> CharMatches(string text, Func<int, bool> isDelimiter)
    {
        var matches = new List<(int, int)>();
        for (int i = 0; i < text.Length;)
        {
            int cp = PythonUnicode.CodePointAt(text, i, out int len);
            if (isDelimiter(cp)) matches.Add((i, i + len));
            i += len;
        }
        return matches;
    }

    public static List<(int Start, int End)> RegexMatches(Regex regex, string text) =>
        regex.Matches(text).Where(m => m.Length > 0).Select(m => (m.Index, m.Index + m.Length)).ToList();

    /// <summary>Cuts <paramref name="text"/> at the delimiters <paramref name="matches"/> (sorted, disjoint).</summary>
    public static void Split(AlignedText text, List<(int Start, int End)> matches, SplitBehavior behavior, bool invert,
        List<AlignedText> output)
    {
        var segments = new List<(int Start, int End, bool IsMatch)>();
        int last = 0;
        foreach (var (s, e) in matches)
        {
            if (s > last) segments.Add((last, s, invert));
            segments.Add((s, e, !invert));
            last = e;
        }
        if (last < text.Length) segments.Add((last, text.Length, invert));

        var pieces = new List<(int Start, int End)>();
        bool previousMatch = false;
        switch (behavior)
        {
            case SplitBehavior.Removed:
                pieces.AddRange(segments.Where(x => !x.IsMatch).Select(x => (x.Start, x.End)));
                break;
            case SplitBehavior.Isolated:
                pieces.AddRange(segments.Select(x => (x.Start, x.End)));
                break;
            case SplitBehavior.MergedWithPrevious:
                foreach (var (s, e, isMatch) in segments)
                {
                    if (isMatch && !previousMatch && pieces.Count > 0) pieces[^1] = (pieces[^1].Start, e);
                    else pieces.Add((s, e));
                    previousMatch = isMatch;
                }
                break;
            case SplitBehavior.MergedWithNext:
                for (int i = segments.Count - 1; i >= 0; i--)
                {
                    var (s, e, isMatch) = segments[i];
                    if (isMatch && !previousMatch && pieces.Count > 0) pieces[^1] = (s, pieces[^1].End);
                    else pieces.Add((s, e));
                    previousMatch = isMatch;
                }
                pieces.Reverse();
                break;
            case SplitBehavior.Contiguous:
                foreach (var (s, e, isMatch) in segments)
                {
                    if (isMatch == previousMatch && pieces.Count > 0) pieces[^1] = (pieces[^1].Start, e);
                    else pieces.Add((s, e));
                    previousMatch = isMatch;
                }
                break;
        }
        foreach (var (s, e) in pieces)
            if (e > s) output.Add(text.Slice(s, e));
    }

    public static bool IsWhitespace(int cp) => cp < 0x10000 && char.IsWhiteSpace((char)cp);

    /// <summary>Rust tokenizers' <c>is_punc</c>: ASCII punctuation or a Unicode P* category.</summary>
    public static bool IsPunctuation(int cp) =>
        cp < 0x80 ? char.IsAsciiLetterOrDigit((char)cp) == false && cp is > 0x20 and < 0x7F
            : CharUnicodeInfo.GetUnicodeCategory(cp) is UnicodeCategory.ConnectorPunctuation or UnicodeCategory.DashPunctuation
                or UnicodeCategory.OpenPunctuation or UnicodeCategory.ClosePunctuation or UnicodeCategory.InitialQuotePunctuation
                or UnicodeCategory.FinalQuotePunctuation or UnicodeCategory.OtherPunctuation;

    public static bool IsNumeric(int cp) => CharUnicodeInfo.GetUnicodeCategory(cp) is UnicodeCategory.DecimalDigitNumber
        or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber;
}

/// <summary>HF <c>BertPreTokenizer</c>: whitespace removed, each punctuation character a word of its own.</summary>
internal sealed class BertPreTokenizer : IPreTokenizer
{
    public void PreTokenize(AlignedText text, List<AlignedText> words)
    {
        var parts = new List<AlignedText>();
        Splitting.Split(text, Splitting.CharMatches(text.Text, Splitting.IsWhitespace), SplitBehavior.Removed, false, parts);
        foreach (var part in parts)
            Splitting.Split(part, Splitting.CharMatches(part.Text, Splitting.IsPunctuation), SplitBehavior.Isolated, false, words);
    }
}

/// <summary>HF <c>WhitespaceSplit</c> (whitespace removed) and <c>CharDelimiterSplit</c>.</summary>
internal sealed class CharDelimiterPreTokenizer(Func<int, bool> isDelimiter) : IPreTokenizer
{
    public void PreTokenize(AlignedText text, List<AlignedText> words) =>
        Splitting.Split(text, Splitting.CharMatches(text.Text, isDelimiter), SplitBehavior.Removed, false, words);
}

/// <summary>HF <c>Whitespace</c>: the matches of <c>\w+|[^\w\s]+</c>.</summary>
internal sealed class WhitespacePreTokenizer : IPreTokenizer
{
    static readonly Regex Words = new(@"\w+|[^\w\s]+", RegexOptions.Compiled);

    public void PreTokenize(AlignedText text, List<AlignedText> words) =>
        Splitting.Split(text, Splitting.RegexMatches(Words, text.Text), SplitBehavior.Removed, true, words);
}

/// <summary>HF <c>Punctuation</c> and <c>Digits</c>: character-class splits with a behavior.</summary>
internal sealed class CharClassPreTokenizer(Func<int, bool> isDelimiter, SplitBehavior behavior) : IPreTokenizer
{
    public void PreTokenize(AlignedText text, List<AlignedText> words) =>
        Splitting.Split(text, Splitting.CharMatches(text.Text, isDelimiter), behavior, false, words);
}

/// <summary>HF <c>Split</c>: a literal or regex pattern with a behavior, optionally inverted.</summary>
internal sealed class PatternPreTokenizer(Regex pattern, SplitBehavior behavior, bool invert) : IPreTokenizer
{
    public void PreTokenize(AlignedText text, List<AlignedText> words) =>
        Splitting.Split(text, Splitting.RegexMatches(pattern, text.Text), behavior, invert, words);
}

/// <summary>
/// HF <c>ByteLevel</c>: optional prefix space, the GPT-2 split, then every UTF-8 byte as its alphabet character.
/// </summary>
internal sealed class ByteLevelPreTokenizer(bool addPrefixSpace, bool useRegex) : IPreTokenizer
{
    public void PreTokenize(AlignedText text, List<AlignedText> words)
    {
        if (addPrefixSpace && !text.Text.StartsWith(' ')) text = new PrependNormalizer(" ").Normalize(text);
        var parts = new List<AlignedText>();
        if (useRegex)
        {
            foreach (var (s, e) in ByteLevel.Gpt2Split(text.Text)) parts.Add(text.Slice(s, e));
        }
        else if (text.Length > 0) parts.Add(text);
        var bytes = new byte[4];
        foreach (var part in parts)
        {
            words.Add(part.MapCodePoints((cp, b) =>
            {
                int n = System.Text.Encoding.UTF8.GetBytes(char.ConvertFromUtf32(IsScalar(cp) ? cp : 0xFFFD), bytes);
                for (int i = 0; i < n; i++) b.Append(ByteLevel.ByteToChar[bytes[i]]);
            }));
        }
    }

    static bool IsScalar(int cp) => cp is >= 0 and < 0xD800 or > 0xDFFF and <= 0x10FFFF;
}

/// <summary>
/// HF <c>Metaspace</c>: spaces become the replacement ('▁'), which is also prepended ("always", or "first" for the
/// start of the input only), and words start at each replacement character when <c>split</c>.
/// </summary>
internal sealed class MetaspacePreTokenizer(char replacement, string prependScheme, bool split) : IPreTokenizer
{
    public void PreTokenize(AlignedText text, List<AlignedText> words)
    {
        text = text.MapCodePoints((cp, b) => b.Append(cp == ' ' ? replacement : cp));
        bool prepend = prependScheme switch
        {
            "always" => true,
            "first" => text.Length > 0 && text.StartOf(0) == 0,
            _ => false,
        };
        if (prepend && !text.Text.StartsWith(replacement)) text = new PrependNormalizer(replacement.ToString()).Normalize(text);
        if (!split)
        {
            if (text.Length > 0) words.Add(text);
            return;
        }
        Splitting.Split(text, Splitting.CharMatches(text.Text, cp => cp == replacement), SplitBehavior.MergedWithNext, false, words);
    }
}

internal sealed class PreTokenizerSequence(IReadOnlyList<IPreTokenizer> steps) : IPreTokenizer
{
    public void PreTokenize(AlignedText text, List<AlignedText> words)
    {
        var current = new List<AlignedText> { text };
        foreach (var step in steps)
        {
            var next = new List<AlignedText>();
            foreach (var piece in current) step.PreTokenize(piece, next);
            current = next;
        }
        words.AddRange(current);
    }
}
