using System.Text;

namespace Unmask.Tokenization;

/// <summary>
/// The normaliser of the SentencePiece library (its NormalizerSpec), as slow tokenizers run it: the precompiled map
/// applied by longest match along the text, whitespace runs collapsed and trimmed, a space put in front
/// (add_dummy_prefix), and spaces shown as '▁'.
/// </summary>
internal sealed class SentencePieceNormalizer(PrecompiledNormalizer? map, bool addDummyPrefix, bool removeExtraWhitespaces,
    bool escapeWhitespaces) : INormalizer
{
    const int LongestKey = 32;

    public AlignedText Normalize(AlignedText text)
    {
        var mapped = map == null ? text : ApplyMap(text);
        var b = new AlignedText.Builder(mapped.Length + 1);
        int start = 0, end = mapped.Length;
        if (removeExtraWhitespaces)
        {
            while (start < end && mapped.Text[start] == ' ') start++;
            while (end > start && mapped.Text[end - 1] == ' ') end--;
        }
        if (start == end) return b.Build();
        char space = escapeWhitespaces ? '\u2581' : ' ';
        if (addDummyPrefix)
        {
            b.SetSource(mapped.StartOf(start), mapped.StartOf(start));
            b.Append(space);
        }
        for (int i = start; i < end; i++)
        {
            char c = mapped.Text[i];
            if (c != ' ')
            {
                b.Append(mapped, i, i + 1);
                continue;
            }
            if (removeExtraWhitespaces && i > start && mapped.Text[i - 1] == ' ') continue;
            b.SetSource(mapped.StartOf(i), mapped.EndOf(i));
            b.Append(space);
        }
        return b.Build();
    }

    AlignedText ApplyMap(AlignedText text)
    {
        var b = new AlignedText.Builder(text.Length);
        for (int i = 0; i < text.Length;)
        {
            int window = Math.Min(LongestKey, text.Length - i);
            var bytes = Encoding.UTF8.GetBytes(text.Text.Substring(i, window));
            var replacement = map!.Match(bytes, out int byteLength);
            int units = replacement == null ? 0 : UnitsForBytes(text.Text, i, byteLength);
            if (units == 0)
            {
                PythonUnicode.CodePointAt(text.Text, i, out int len);
                b.Append(text, i, i + len);
                i += len;
                continue;
            }
            b.SetSource(text.StartOf(i), text.EndOf(i + units - 1));
            b.Append(replacement!);
            i += units;
        }
        return b.Build();
    }

    // The UTF-16 length of the prefix that is byteLength UTF-8 bytes long; 0 when that falls inside a character.
    static int UnitsForBytes(string s, int start, int byteLength)
    {
        int bytes = 0, i = start;
        while (bytes < byteLength && i < s.Length)
        {
            int cp = PythonUnicode.CodePointAt(s, i, out int len);
            bytes += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
            i += len;
        }
        return bytes == byteLength ? i - start : 0;
    }
}
