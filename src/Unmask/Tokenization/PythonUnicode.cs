using System.Globalization;
using System.Text;

namespace Unmask.Tokenization;

/// <summary>
/// The character classes and case mapping that Hugging Face's slow BERT tokenizer gets from Python 3.11
/// (<c>unicodedata</c> at Unicode 14.0 and <c>str.lower</c>), reproduced on top of .NET's tables.
/// </summary>
/// <remarks>
/// A comparison of every code point between Python 3.11.7 and .NET 10 found only two kinds of difference, both
/// corrected here: .NET does not map U+0130 to "i" + U+0307, and .NET knows characters assigned after Unicode 14.0
/// (marks and punctuation that Python still reports as unassigned, so the tokenizer treats them as letters).
/// </remarks>
internal static class PythonUnicode
{
    // Code points that .NET classifies as Mn, P*, Cc/Cf or Zs but Python 3.11 reports as unassigned (Cn).
    static readonly (int First, int Last)[] AssignedAfterUnicode14 =
    [
        (0x897, 0x897), (0xECE, 0xECE), (0x1B4E, 0x1B4F), (0x1B7F, 0x1B7F), (0x10D69, 0x10D6E), (0x10EFC, 0x10EFF),
        (0x11241, 0x11241), (0x113BB, 0x113C0), (0x113CE, 0x113CE), (0x113D0, 0x113D0), (0x113D2, 0x113D2),
        (0x113D4, 0x113D5), (0x113D7, 0x113D8), (0x113E1, 0x113E2), (0x11B00, 0x11B09), (0x11BE1, 0x11BE1),
        (0x11F00, 0x11F01), (0x11F36, 0x11F3A), (0x11F40, 0x11F40), (0x11F42, 0x11F4F), (0x11F5A, 0x11F5A),
        (0x13439, 0x13440), (0x13447, 0x13455), (0x1611E, 0x16129), (0x1612D, 0x1612F), (0x16D6D, 0x16D6F),
        (0x1E08F, 0x1E08F), (0x1E4EC, 0x1E4EF), (0x1E5EE, 0x1E5EF), (0x1E5FF, 0x1E5FF),
    ];

    // Unicode 16 moved this Takri vowel sign from Mn to Mc; Python 3.11 still strips it as an accent.
    const int TakriSignNukta = 0x1171E;

    public static UnicodeCategory Category(int cp)
    {
        if (cp < 0x897) return CharUnicodeInfo.GetUnicodeCategory(cp);
        if (cp == TakriSignNukta) return UnicodeCategory.NonSpacingMark;
        foreach (var (first, last) in AssignedAfterUnicode14)
        {
            if (cp < first) break;
            if (cp <= last) return UnicodeCategory.OtherNotAssigned;
        }
        return CharUnicodeInfo.GetUnicodeCategory(cp);
    }

    /// <summary>HF <c>_is_control</c>: categories Cc and Cf, except tab, newline and carriage return.</summary>
    public static bool IsControl(int cp)
    {
        if (cp < 0x80) return cp is < 0x20 and not ('\t' or '\n' or '\r') || cp == 0x7F;
        var cat = Category(cp);
        return cat is UnicodeCategory.Control or UnicodeCategory.Format;
    }

    /// <summary>HF <c>_is_whitespace</c>: space, tab, newline, carriage return, and category Zs.</summary>
    public static bool IsWhitespace(int cp)
    {
        if (cp < 0x80) return cp is ' ' or '\t' or '\n' or '\r';
        return Category(cp) == UnicodeCategory.SpaceSeparator;
    }

    /// <summary>HF <c>_is_punctuation</c>: every ASCII non-alphanumeric printable character, and categories P*.</summary>
    public static bool IsPunctuation(int cp)
    {
        if (cp < 0x80) return cp is >= 33 and <= 47 or >= 58 and <= 64 or >= 91 and <= 96 or >= 123 and <= 126;
        return Category(cp) is UnicodeCategory.ConnectorPunctuation or UnicodeCategory.DashPunctuation
            or UnicodeCategory.OpenPunctuation or UnicodeCategory.ClosePunctuation
            or UnicodeCategory.InitialQuotePunctuation or UnicodeCategory.FinalQuotePunctuation
            or UnicodeCategory.OtherPunctuation;
    }

    public static bool IsNonSpacingMark(int cp) => cp >= 0x300 && Category(cp) == UnicodeCategory.NonSpacingMark;

    /// <summary>Python <c>str.isspace</c>, the separator set of <c>str.split()</c> and <c>str.strip()</c>.</summary>
    public static bool IsPythonSpace(int cp) => cp switch
    {
        >= 0x9 and <= 0xD or >= 0x1C and <= 0x20 or 0x85 or 0xA0 or 0x1680 => true,
        >= 0x2000 and <= 0x200A or 0x2028 or 0x2029 or 0x202F or 0x205F or 0x3000 => true,
        _ => false,
    };

    /// <summary>The CJK ideograph blocks of HF <c>_is_chinese_char</c> (kana and hangul are not among them).</summary>
    public static bool IsChineseChar(int cp) =>
        cp is >= 0x4E00 and <= 0x9FFF or >= 0x3400 and <= 0x4DBF or >= 0x20000 and <= 0x2A6DF
            or >= 0x2A700 and <= 0x2B73F or >= 0x2B740 and <= 0x2B81F or >= 0x2B820 and <= 0x2CEAF
            or >= 0xF900 and <= 0xFAFF or >= 0x2F800 and <= 0x2FA1F;

    /// <summary>Appends Python's <c>chr(cp).lower()</c>.</summary>
    public static void AppendLower(StringBuilder sb, int cp)
    {
        if (cp == 0x130) sb.Append('i').Append('\u0307');
        else AppendCodePoint(sb, LowerSingle(cp));
    }

    /// <summary>Python's lowercase of one code point, for every code point but U+0130 (which becomes two).</summary>
    public static int LowerSingle(int cp)
    {
        if (cp < 0x80) return cp is >= 'A' and <= 'Z' ? cp + 32 : cp;
        return Rune.IsValid(cp) ? Rune.ToLowerInvariant(new Rune(cp)).Value : cp;
    }

    public static void AppendCodePoint(StringBuilder sb, int cp)
    {
        if (cp < 0x10000) sb.Append((char)cp);
        else sb.Append(char.ConvertFromUtf32(cp));
    }

    /// <summary>The code point at <paramref name="i"/> and its UTF-16 length; a lone surrogate counts as one.</summary>
    public static int CodePointAt(ReadOnlySpan<char> s, int i, out int length)
    {
        char c = s[i];
        if (char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
        {
            length = 2;
            return char.ConvertToUtf32(c, s[i + 1]);
        }
        length = 1;
        return c;
    }

    public static int CountCodePoints(ReadOnlySpan<char> s)
    {
        int n = 0;
        for (int i = 0; i < s.Length; i++)
        {
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) i++;
            n++;
        }
        return n;
    }

    /// <summary>
    /// Unicode normalisation that, like Python, passes through what .NET refuses to normalise (lone surrogates and
    /// U+FFFE): those are starters that never compose, so normalising the pieces between them is equivalent.
    /// </summary>
    public static string Normalize(string s, NormalizationForm form)
    {
        int bad = FindUnnormalizable(s, 0);
        if (bad < 0) return s.Normalize(form);
        var sb = new StringBuilder(s.Length);
        int start = 0;
        while (bad >= 0)
        {
            sb.Append(s.AsSpan(start, bad - start).ToString().Normalize(form)).Append(s[bad]);
            start = bad + 1;
            bad = FindUnnormalizable(s, start);
        }
        sb.Append(s.AsSpan(start).ToString().Normalize(form));
        return sb.ToString();
    }

    static int FindUnnormalizable(string s, int from)
    {
        for (int i = from; i < s.Length; i++)
        {
            char c = s[i];
            if (c == '\uFFFE') return i;
            if (char.IsHighSurrogate(c))
            {
                if (i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) i++;
                else return i;
            }
            else if (char.IsLowSurrogate(c)) return i;
        }
        return -1;
    }
}
