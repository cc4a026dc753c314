using System.Globalization;
using System.Text;

namespace Unmask.Tokenization;

/// <summary>BERT's text normalisation flags, with Hugging Face's names in tokenizer_config.json.</summary>
/// <param name="LowerCase">do_lower_case</param>
/// <param name="StripAccents">strip_accents; null means "follow LowerCase", as in transformers.</param>
/// <param name="TokenizeChineseChars">tokenize_chinese_chars</param>
public sealed record BertNormalizationOptions(bool LowerCase = true, bool? StripAccents = null, bool TokenizeChineseChars = true)
{
    public bool StripsAccents => StripAccents ?? LowerCase;
}

/// <summary>
/// The slow BertTokenizer's BasicTokenizer, step for step: drop control characters and map whitespace to spaces,
/// space out CJK ideographs, NFC, split on whitespace, lower-case and strip accents per word, split off
/// punctuation. Lower-casing is per code point (Python's str.lower without context), which is what the slow
/// tokenizer's character-by-character pass produces.
/// </summary>
public static class BasicTokenizer
{
    public static List<string> Split(string text, BertNormalizationOptions options)
    {
        var words = new List<string>();
        if (options.LowerCase) text = LowerPerCodePoint(text);
        var cleaned = Clean(text, options.TokenizeChineseChars);
        if (!IsAscii(cleaned)) cleaned = cleaned.Normalize(NormalizationForm.FormC);
        foreach (var raw in cleaned.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries))
        {
            var word = raw;
            if (options.LowerCase) word = LowerPerCodePoint(word);
            if (options.StripsAccents && !IsAscii(word)) word = StripAccents(word);
            SplitPunctuation(word, words);
        }
        return words;
    }

    static bool IsAscii(string s)
    {
        foreach (var c in s)
            if (c >= 0x80) return false;
        return true;
    }

    /// <summary>Python's str.lower applied to one code point at a time (İ becomes i + combining dot, as in Python).</summary>
    public static string LowerPerCodePoint(string text)
    {
        if (IsAscii(text)) return text.ToLowerInvariant();
        var builder = new StringBuilder(text.Length);
        foreach (var rune in text.EnumerateRunes())
        {
            if (rune.Value == 0x130) builder.Append("i\u0307");
            else builder.Append(Rune.ToLowerInvariant(rune).ToString());
        }
        return builder.ToString();
    }

    static string Clean(string text, bool spaceCjk)
    {
        var builder = new StringBuilder(text.Length + 8);
        foreach (var rune in text.EnumerateRunes())
        {
            int cp = rune.Value;
            if (cp == 0 || cp == 0xFFFD || IsControl(rune)) continue;
            if (IsWhitespace(rune)) builder.Append(' ');
            else if (spaceCjk && IsCjk(cp)) builder.Append(' ').Append(rune.ToString()).Append(' ');
            else builder.Append(rune.ToString());
        }
        return builder.ToString();
    }

    static bool IsWhitespace(Rune r) =>
        r.Value is ' ' or '\t' or '\n' or '\r' || Rune.GetUnicodeCategory(r) == UnicodeCategory.SpaceSeparator;

    static bool IsControl(Rune r)
    {
        if (r.Value is '\t' or '\n' or '\r') return false;
        return Rune.GetUnicodeCategory(r) is UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.PrivateUse
            or UnicodeCategory.Surrogate or UnicodeCategory.OtherNotAssigned;
    }

    public static bool IsCjk(int cp) =>
        cp is >= 0x4E00 and <= 0x9FFF or >= 0x3400 and <= 0x4DBF or >= 0x20000 and <= 0x2A6DF or >= 0x2A700 and <= 0x2B73F
            or >= 0x2B740 and <= 0x2B81F or >= 0x2B820 and <= 0x2CEAF or >= 0xF900 and <= 0xFAFF or >= 0x2F800 and <= 0x2FA1F;

    /// <summary>Every ASCII non-alphanumeric printable character counts, plus all Unicode punctuation (P*).</summary>
    public static bool IsPunctuation(Rune r)
    {
        int cp = r.Value;
        if (cp is >= 33 and <= 47 or >= 58 and <= 64 or >= 91 and <= 96 or >= 123 and <= 126) return true;
        return Rune.GetUnicodeCategory(r) is UnicodeCategory.ConnectorPunctuation or UnicodeCategory.DashPunctuation
            or UnicodeCategory.OpenPunctuation or UnicodeCategory.ClosePunctuation or UnicodeCategory.InitialQuotePunctuation
            or UnicodeCategory.FinalQuotePunctuation or UnicodeCategory.OtherPunctuation;
    }

    static string StripAccents(string word)
    {
        var decomposed = word.Normalize(NormalizationForm.FormD);
        var builder = new StringBuilder(decomposed.Length);
        foreach (var rune in decomposed.EnumerateRunes())
            if (Rune.GetUnicodeCategory(rune) != UnicodeCategory.NonSpacingMark) builder.Append(rune.ToString());
        return builder.ToString();
    }

    static void SplitPunctuation(string word, List<string> output)
    {
        int start = 0, i = 0;
        while (i < word.Length)
        {
            var rune = Rune.GetRuneAt(word, i);
            if (IsPunctuation(rune))
            {
                if (i > start) output.Add(word[start..i]);
                output.Add(word.Substring(i, rune.Utf16SequenceLength));
                start = i + rune.Utf16SequenceLength;
            }
            i += rune.Utf16SequenceLength;
        }
        if (start < word.Length) output.Add(word[start..]);
    }
}
