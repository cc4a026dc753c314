using System.Globalization;
using System.Text;

namespace Unmask.Tokenization;

/// <summary>
/// GPT-2's byte-level alphabet (every byte shown as a printable character, space as 'Ġ') and its pre-tokenisation
/// pattern <c>'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+</c>, matched on code points
/// (a regex over UTF-16 would not see astral letters as \p{L}).
/// </summary>
internal static class ByteLevel
{
    public static readonly char[] ByteToChar = BuildAlphabet();
    static readonly Dictionary<char, byte> CharToByte = ByteToChar.Select((c, b) => (c, b)).ToDictionary(x => x.c, x => (byte)x.b);

    static char[] BuildAlphabet()
    {
        var map = new char[256];
        int next = 256;
        for (int b = 0; b < 256; b++)
        {
            bool printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            map[b] = printable ? (char)b : (char)next++;
        }
        return map;
    }

    /// <summary>The byte-level form of a text: each UTF-8 byte as its alphabet character.</summary>
    public static string Encode(string text)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        return string.Create(bytes.Length, bytes, static (dst, src) =>
        {
            for (int i = 0; i < src.Length; i++) dst[i] = ByteToChar[src[i]];
        });
    }

    /// <summary>Appends the bytes a byte-level token stands for; false (nothing appended) if it is not byte-level.</summary>
    public static bool TryAppendBytes(string token, List<byte> bytes)
    {
        foreach (char c in token)
            if (!CharToByte.ContainsKey(c)) return false;
        foreach (char c in token) bytes.Add(CharToByte[c]);
        return true;
    }

    /// <summary>UTF-8 decoding that replaces each invalid sequence with U+FFFD, as Python's errors="replace".</summary>
    public static string DecodeUtf8(List<byte> bytes) => Encoding.UTF8.GetString(bytes.ToArray());

    /// <summary>The [start, end) ranges of the GPT-2 pattern's matches in <paramref name="text"/>.</summary>
    public static List<(int Start, int End)> Gpt2Split(string text)
    {
        var result = new List<(int, int)>();
        int i = 0;
        while (i < text.Length)
        {
            int end = MatchAt(text, i);
            result.Add((i, end));
            i = end;
        }
        return result;
    }

    enum Kind { Letter, Number, Space, Other }

    static Kind KindAt(string s, int i, out int len)
    {
        int cp = PythonUnicode.CodePointAt(s, i, out len);
        if (cp < 0x10000 && char.IsWhiteSpace((char)cp)) return Kind.Space;
        return CharUnicodeInfo.GetUnicodeCategory(cp) switch
        {
            UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
                or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter => Kind.Letter,
            UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber => Kind.Number,
            _ => Kind.Other,
        };
    }

    static readonly string[] Contractions = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d"];

    // The end of the pattern's match at i; some alternative always matches a non-empty string.
    static int MatchAt(string s, int i)
    {
        if (s[i] == '\'')
            foreach (var c in Contractions)
                if (string.CompareOrdinal(s, i, c, 0, c.Length) == 0) return i + c.Length;

        int body = i;
        if (s[i] == ' ' && i + 1 < s.Length) body = i + 1;
        if (body < s.Length)
        {
            var kind = KindAt(s, body, out int len);
            if (kind != Kind.Space)
            {
                int j = body + len;
                while (j < s.Length && KindAt(s, j, out int l) == kind) j += l;
                return j;
            }
        }
        // \s+(?!\S) leaves the last space of a run to the word after it; \s+ takes the rest.
        int k = i;
        int last = i;
        while (k < s.Length && KindAt(s, k, out int l) == Kind.Space)
        {
            last = k;
            k += l;
        }
        if (k == s.Length || last == i) return k;
        return last;
    }
}
