using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Unmask.Tokenization;

/// <summary>A tokenizer.json <c>normalizer</c>: rewrites the text before pre-tokenisation, keeping alignment.</summary>
internal interface INormalizer
{
    AlignedText Normalize(AlignedText text);
}

/// <summary>HF <c>BertNormalizer</c>: clean control characters, space out CJK ideographs, strip accents, lowercase.</summary>
internal sealed class BertNormalizer(bool cleanText, bool handleChineseChars, bool? stripAccents, bool lowercase) : INormalizer
{
    public AlignedText Normalize(AlignedText text)
    {
        if (cleanText)
        {
            text = text.MapCodePoints((cp, b) =>
            {
                if (cp is 0 or 0xFFFD || IsOther(cp)) return;
                b.Append(Splitting.IsWhitespace(cp) ? ' ' : cp);
            });
        }
        if (handleChineseChars)
        {
            text = text.MapCodePoints((cp, b) =>
            {
                if (!PythonUnicode.IsChineseChar(cp))
                {
                    b.Append(cp);
                    return;
                }
                b.Append(' ');
                b.Append(cp);
                b.Append(' ');
            });
        }
        if (stripAccents ?? lowercase) text = StripAccentsNormalizer.Instance.Normalize(UnicodeNormalizer.Nfd.Normalize(text));
        if (lowercase) text = LowercaseNormalizer.Instance.Normalize(text);
        return text;
    }

    // Rust's is_control: categories Cc, Cf, Cn and Co, except tab, newline and carriage return.
    static bool IsOther(int cp)
    {
        if (cp is '\t' or '\n' or '\r') return false;
        return CharUnicodeInfo.GetUnicodeCategory(cp) is UnicodeCategory.Control or UnicodeCategory.Format
            or UnicodeCategory.OtherNotAssigned or UnicodeCategory.PrivateUse;
    }
}

/// <summary>HF <c>NFC</c>, <c>NFD</c>, <c>NFKC</c>, <c>NFKD</c>.</summary>
internal sealed class UnicodeNormalizer(NormalizationForm form) : INormalizer
{
    public static readonly UnicodeNormalizer Nfd = new(NormalizationForm.FormD);

    // Normalised one base character with its combining marks at a time, so every output unit keeps the span of the
    // cluster it came from.
    public AlignedText Normalize(AlignedText text)
    {
        var b = new AlignedText.Builder(text.Length);
        int i = 0;
        while (i < text.Length)
        {
            int start = i;
            PythonUnicode.CodePointAt(text.Text, i, out int len);
            i += len;
            while (i < text.Length)
            {
                int cp = PythonUnicode.CodePointAt(text.Text, i, out len);
                if (CharUnicodeInfo.GetUnicodeCategory(cp) is not (UnicodeCategory.NonSpacingMark
                    or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.EnclosingMark)) break;
                i += len;
            }
            var cluster = text.Text[start..i];
            var normalized = PythonUnicode.Normalize(cluster, form);
            if (normalized == cluster)
            {
                b.Append(text, start, i);
                continue;
            }
            b.SetSource(text.StartOf(start), text.EndOf(i - 1));
            b.Append(normalized);
        }
        return b.Build();
    }
}

/// <summary>HF <c>Lowercase</c>: full lowercase mapping, one character at a time (no final-sigma rule).</summary>
internal sealed class LowercaseNormalizer : INormalizer
{
    public static readonly LowercaseNormalizer Instance = new();

    public AlignedText Normalize(AlignedText text) => text.MapCodePoints((cp, b) =>
    {
        if (cp == 0x130)
        {
            b.Append('i');
            b.Append(0x307);
        }
        else b.Append(PythonUnicode.LowerSingle(cp));
    });
}

/// <summary>HF <c>StripAccents</c>: drops non-spacing marks (meant to follow NFD).</summary>
internal sealed class StripAccentsNormalizer : INormalizer
{
    public static readonly StripAccentsNormalizer Instance = new();

    public AlignedText Normalize(AlignedText text) => text.MapCodePoints((cp, b) =>
    {
        if (CharUnicodeInfo.GetUnicodeCategory(cp) != UnicodeCategory.NonSpacingMark) b.Append(cp);
    });
}

/// <summary>HF <c>Replace</c>: every match of a literal string or a regex becomes <c>content</c>.</summary>
internal sealed class ReplaceNormalizer(Regex pattern, string content) : INormalizer
{
    public AlignedText Normalize(AlignedText text)
    {
        var b = new AlignedText.Builder(text.Length);
        int last = 0;
        foreach (Match m in pattern.Matches(text.Text))
        {
            if (m.Length == 0) continue;
            b.Append(text, last, m.Index);
            var (s, e) = text.Span(m.Index, m.Index + m.Length);
            b.SetSource(s, e);
            b.Append(content);
            last = m.Index + m.Length;
        }
        b.Append(text, last, text.Length);
        return b.Build();
    }
}

/// <summary>HF <c>Prepend</c>: puts a string before any non-empty text.</summary>
internal sealed class PrependNormalizer(string prefix) : INormalizer
{
    public AlignedText Normalize(AlignedText text)
    {
        if (text.Length == 0) return text;
        var b = new AlignedText.Builder(text.Length + prefix.Length);
        b.SetSource(text.StartOf(0), text.EndOf(0));
        b.Append(prefix);
        b.Append(text, 0, text.Length);
        return b.Build();
    }
}

/// <summary>HF <c>Strip</c>: removes leading and/or trailing whitespace.</summary>
internal sealed class StripNormalizer(bool left, bool right) : INormalizer
{
    public AlignedText Normalize(AlignedText text)
    {
        int start = 0, end = text.Length;
        if (left) while (start < end && char.IsWhiteSpace(text.Text[start])) start++;
        if (right) while (end > start && char.IsWhiteSpace(text.Text[end - 1])) end--;
        return start == 0 && end == text.Length ? text : text.Slice(start, end);
    }
}

internal sealed class NormalizerSequence(IReadOnlyList<INormalizer> normalizers) : INormalizer
{
    public AlignedText Normalize(AlignedText text)
    {
        foreach (var n in normalizers) text = n.Normalize(text);
        return text;
    }
}
