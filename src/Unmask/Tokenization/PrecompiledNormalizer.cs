using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace Unmask.Tokenization;

/// <summary>
/// SentencePiece's precompiled normalisation map (HF <c>Precompiled</c>, the <c>precompiled_charsmap</c> of a
/// SentencePiece model): a double-array trie over UTF-8 from a character sequence to its replacement. Applied per
/// grapheme cluster when the whole cluster has an entry, else per character, as the tokenizers library does.
/// </summary>
internal sealed class PrecompiledNormalizer : INormalizer
{
    readonly uint[] trie;
    readonly byte[] normalized;

    PrecompiledNormalizer(uint[] trie, byte[] normalized)
    {
        this.trie = trie;
        this.normalized = normalized;
    }

    public static PrecompiledNormalizer FromBase64(string base64, string what)
    {
        try
        {
            return FromBytes(Convert.FromBase64String(base64), what);
        }
        catch (FormatException e)
        {
            throw new UnmaskException($"{what} is not valid base64.", e);
        }
    }

    /// <summary>The blob: trie size in bytes (uint32 LE), the trie's 32-bit units, then NUL-terminated replacements.</summary>
    public static PrecompiledNormalizer FromBytes(byte[] blob, string what)
    {
        if (blob.Length < 4) throw new UnmaskException($"{what} is too short to be a precompiled charsmap.");
        uint size = BinaryPrimitives.ReadUInt32LittleEndian(blob);
        if (size % 4 != 0 || size > blob.Length - 4) throw new UnmaskException($"{what}: trie size {size} does not fit the blob.");
        var trie = new uint[size / 4];
        for (int i = 0; i < trie.Length; i++) trie[i] = BinaryPrimitives.ReadUInt32LittleEndian(blob.AsSpan(4 + 4 * i));
        return new PrecompiledNormalizer(trie, blob[(4 + (int)size)..]);
    }

    // The longest entry that prefixes the bytes (SentencePiece's normaliser takes the longest match).
    string? Transform(ReadOnlySpan<byte> key) => Match(key, out int length) is { } r && length == key.Length ? r : null;

    /// <summary>The replacement of the longest entry that prefixes <paramref name="key"/>, and that entry's byte length.</summary>
    public string? Match(ReadOnlySpan<byte> key, out int length)
    {
        length = 0;
        if (trie.Length == 0) return null;
        int found = -1;
        uint pos = Offset(trie[0]);
        for (int i = 0; i < key.Length; i++)
        {
            byte c = key[i];
            pos ^= c;
            if (pos >= trie.Length) break;
            uint unit = trie[pos];
            if ((unit & ((1u << 31) | 0xFF)) != c) break;
            pos ^= Offset(unit);
            if (((unit >> 8) & 1) == 1 && pos < trie.Length)
            {
                found = (int)(trie[pos] & ((1u << 31) - 1));
                length = i + 1;
            }
        }
        if (found < 0 || found > normalized.Length)
        {
            length = 0;
            return null;
        }
        int end = found;
        while (end < normalized.Length && normalized[end] != 0) end++;
        return Encoding.UTF8.GetString(normalized, found, end - found);
    }

    static uint Offset(uint unit) => (unit >> 10) << (int)((unit & (1u << 9)) >> 6);

    public AlignedText Normalize(AlignedText text)
    {
        var b = new AlignedText.Builder(text.Length);
        var elements = StringInfo.GetTextElementEnumerator(text.Text);
        while (elements.MoveNext())
        {
            int start = elements.ElementIndex;
            var grapheme = (string)elements.Current;
            int end = start + grapheme.Length;
            if (Encoding.UTF8.GetByteCount(grapheme) < 6 && Transform(Encoding.UTF8.GetBytes(grapheme)) is { } whole)
            {
                b.SetSource(text.StartOf(start), text.EndOf(end - 1));
                b.Append(whole);
                continue;
            }
            for (int i = start; i < end;)
            {
                PythonUnicode.CodePointAt(text.Text, i, out int len);
                var part = text.Text.Substring(i, len);
                if (Transform(Encoding.UTF8.GetBytes(part)) is { } replaced)
                {
                    b.SetSource(text.StartOf(i), text.EndOf(i + len - 1));
                    b.Append(replaced);
                }
                else b.Append(text, i, i + len);
                i += len;
            }
        }
        return b.Build();
    }
}
