using System.Runtime.CompilerServices;
using System.Text;

namespace Unmask.Tokenization;

/// <summary>
/// HF's BERT <c>BasicTokenizer</c>: text cleaning, CJK spacing, NFC, whitespace split, lowercasing, accent
/// stripping and punctuation split. Shared by encoding and by the trainer so both see the same words.
/// </summary>
internal sealed class BasicTokenizer(BertNormalizationOptions options, IReadOnlySet<string> neverSplit)
{
    readonly bool lowerCase = options.LowerCase;
    readonly bool stripAccents = options.StripAccents ?? options.LowerCase;
    readonly bool spaceChinese = options.TokenizeChineseChars;

    /// <summary>The per-character lowercasing HF applies to the raw text before anything else.</summary>
    public static string LowerPerCodePoint(string text)
    {
        bool ascii = true, upper = false;
        foreach (char c in text)
        {
            if (c >= 0x80) { ascii = false; break; }
            upper |= c is >= 'A' and <= 'Z';
        }
        if (ascii) return upper ? string.Create(text.Length, text, static (dst, src) => Ascii.ToLower(src, dst, out _)) : text;
        var sb = new StringBuilder(text.Length);
        AppendLower(sb, text);
        return sb.ToString();
    }

    public static void AppendLower(StringBuilder sb, ReadOnlySpan<char> text)
    {
        for (int i = 0; i < text.Length;)
        {
            int cp = PythonUnicode.CodePointAt(text, i, out int len);
            PythonUnicode.AppendLower(sb, cp);
            i += len;
        }
    }

    /// <summary>
    /// Drops NUL, U+FFFD and control characters, maps whitespace to a space, surrounds CJK ideographs with spaces
    /// (if enabled) and applies NFC: the part of the pipeline that runs on a whole segment before splitting.
    /// With <paramref name="lower"/> it also lowercases per code point, which commutes with the rest: case mapping
    /// neither produces nor changes control, whitespace or CJK characters. The result lives in
    /// <paramref name="buffer"/>, which also knows the range of <paramref name="segment"/> each unit came from.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public ReadOnlySpan<char> Clean(ReadOnlySpan<char> segment, bool lower, CharBuffer buffer)
    {
        buffer.Clear();
        bool mayNeedNfc = false;
        for (int i = 0; i < segment.Length;)
        {
            char c = segment[i];
            if (c < 0x80)
            {
                if (c is ' ' or '\t' or '\n' or '\r') buffer.Append(' ', i, i + 1);
                else if (c >= 0x20 && c != 0x7F) buffer.Append(lower && c is >= 'A' and <= 'Z' ? (char)(c + 32) : c, i, i + 1);
                i++;
                continue;
            }
            int start = i;
            int cp = PythonUnicode.CodePointAt(segment, i, out int len);
            i += len;
            if (cp == 0xFFFD || PythonUnicode.IsControl(cp)) continue;
            if (PythonUnicode.IsWhitespace(cp))
            {
                buffer.Append(' ', start, i);
                continue;
            }
            if (spaceChinese && PythonUnicode.IsChineseChar(cp))
            {
                buffer.Append(' ', start, i);
                buffer.AppendCodePoint(cp, start, i);
                buffer.Append(' ', start, i);
                // CJK compatibility ideographs have canonical decompositions.
                mayNeedNfc |= cp >= 0xF900;
                continue;
            }
            if (lower && cp == 0x130)
            {
                buffer.Append('i', start, i);
                buffer.Append('\u0307', start, i);
                mayNeedNfc = true;
                continue;
            }
            if (lower) cp = PythonUnicode.LowerSingle(cp);
            // Below U+0300 there is neither a combining mark nor a character that NFC changes.
            mayNeedNfc |= cp >= 0x300;
            buffer.AppendCodePoint(cp, start, i);
        }
        if (mayNeedNfc) buffer.Rewrite(Nfc);
        return buffer.Span;
    }

    static string Nfc(string s) => PythonUnicode.Normalize(s, NormalizationForm.FormC);

    /// <summary>
    /// Python <c>str.split()</c> step by step: the next whitespace-separated token of <paramref name="s"/> at or
    /// after <paramref name="pos"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static bool NextToken(ReadOnlySpan<char> s, ref int pos, out Range token)
    {
        int i = pos;
        while (i < s.Length && IsSplitSpace(s[i])) i++;
        int start = i;
        while (i < s.Length && !IsSplitSpace(s[i])) i++;
        pos = i;
        token = new Range(start, i);
        return i > start;
    }

    static bool IsSplitSpace(char c) =>
        c < 0x80 ? c is ' ' or (>= '\t' and <= '\r') or (>= '\x1c' and <= '\x1f') : PythonUnicode.IsPythonSpace(c);

    /// <summary>
    /// One whitespace token to its words: lowercase and strip accents unless it is a never-split token, then split
    /// off every punctuation character. Appends to <paramref name="words"/>.
    /// </summary>
    public void SplitWord(string token, List<string> words)
    {
        var normalized = NormalizeWord(token);
        var ranges = new List<Range>();
        SplitOnPunctuation(normalized, ranges);
        foreach (var range in ranges) words.Add(normalized[range]);
    }

    /// <summary>A whitespace token lowercased and without accents as the flags say; never-split tokens stay as they are.</summary>
    public string NormalizeWord(string token)
    {
        if (neverSplit.Contains(token)) return token;
        if (lowerCase) token = LowerPerCodePoint(token);
        return stripAccents ? StripAccents(token) : token;
    }

    /// <summary>
    /// The words of a normalised token: every punctuation character on its own, unless the token is a never-split
    /// token (which lowercasing may have made it). Appends their ranges to <paramref name="words"/>.
    /// </summary>
    public void SplitOnPunctuation(string token, List<Range> words)
    {
        if (token.Length == 0) return;
        if (neverSplit.Contains(token))
        {
            words.Add(Range.All);
            return;
        }
        int wordStart = 0;
        for (int i = 0; i < token.Length;)
        {
            int cp = PythonUnicode.CodePointAt(token, i, out int len);
            if (PythonUnicode.IsPunctuation(cp))
            {
                if (i > wordStart) words.Add(wordStart..i);
                words.Add(i..(i + len));
                wordStart = i + len;
            }
            i += len;
        }
        if (wordStart < token.Length) words.Add(wordStart..token.Length);
    }

    static string StripAccents(string token)
    {
        bool plain = true;
        foreach (char c in token)
            if (c >= 0xC0) { plain = false; break; }
        if (plain) return token;
        var nfd = PythonUnicode.Normalize(token, NormalizationForm.FormD);
        var sb = new StringBuilder(nfd.Length);
        for (int i = 0; i < nfd.Length;)
        {
            int cp = PythonUnicode.CodePointAt(nfd, i, out int len);
            if (!PythonUnicode.IsNonSpacingMark(cp)) sb.Append(nfd, i, len);
            i += len;
        }
        return sb.ToString();
    }
}

/// <summary>
/// A reusable, growable character buffer (one per thread) that spares an allocation per text; each unit remembers
/// the range [start, end) of the source text it was written for.
/// </summary>
internal sealed class CharBuffer
{
    char[] data = new char[256];
    int[] starts = new int[256], ends = new int[256];

    public int Length { get; private set; }

    public ReadOnlySpan<char> Span => data.AsSpan(0, Length);

    public void Clear() => Length = 0;

    public void Append(char c, int start, int end)
    {
        if (Length == data.Length) Grow(Length * 2);
        starts[Length] = start;
        ends[Length] = end;
        data[Length++] = c;
    }

    public void AppendCodePoint(int cp, int start, int end)
    {
        if (cp < 0x10000)
        {
            Append((char)cp, start, end);
            return;
        }
        cp -= 0x10000;
        Append((char)(0xD800 + (cp >> 10)), start, end);
        Append((char)(0xDC00 + (cp & 0x3FF)), start, end);
    }

    /// <summary>Replaces the text by <paramref name="rewrite"/> of all of it, each new unit keeping the source of those it came from.</summary>
    public void Rewrite(Func<string, string> rewrite)
    {
        var before = Span.ToString();
        var after = rewrite(before);
        if (after == before) return;
        var (from, to) = TextAlignment.Align(before, after, rewrite);
        // The three arrays keep one capacity: Append checks only the characters' for room.
        var capacity = Math.Max(after.Length, data.Length);
        var newStarts = new int[capacity];
        var newEnds = new int[capacity];
        for (int u = 0; u < after.Length; u++) (newStarts[u], newEnds[u]) = Source(from[u], to[u]);
        if (capacity > data.Length) data = new char[capacity];
        after.CopyTo(data);
        (starts, ends, Length) = (newStarts, newEnds, after.Length);
    }

    /// <summary>The source range of the units [start, end); an empty range maps to the point where it stands.</summary>
    public (int Start, int End) Source(int start, int end)
    {
        if (end > start) return (starts[start], ends[end - 1]);
        int at = start < Length ? starts[start] : Length > 0 ? ends[Length - 1] : 0;
        return (at, at);
    }

    void Grow(int size)
    {
        Array.Resize(ref data, size);
        Array.Resize(ref starts, size);
        Array.Resize(ref ends, size);
    }
}
