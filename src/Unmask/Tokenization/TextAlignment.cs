using System.Globalization;

namespace Unmask.Tokenization;

/// <summary>
/// Where each UTF-16 unit of a rewritten string came from, for rewrites that must run on the whole string to give
/// Python's result (NFC, NFD with accents removed) and so carry no alignment of their own.
/// </summary>
internal static class TextAlignment
{
    /// <summary>
    /// For each unit of <paramref name="after"/> = <paramref name="rewrite"/>(<paramref name="before"/>), the range
    /// [Starts, Ends) of <paramref name="before"/> it came from. Each base character is rewritten with its combining
    /// marks on its own (each code point alone where that gives the same); where that does not give <paramref name="after"/> (Hangul jamo composing, marks reordered
    /// across bases), the units between the common prefix and suffix all map to the range between them.
    /// </summary>
    public static (int[] Starts, int[] Ends) Align(string before, string after, Func<string, string> rewrite)
    {
        var starts = new int[after.Length];
        var ends = new int[after.Length];
        if (ByClusters(before, after, rewrite, starts, ends)) return (starts, ends);
        int prefix = 0;
        while (prefix < before.Length && prefix < after.Length && before[prefix] == after[prefix]) prefix++;
        int suffix = 0;
        while (suffix < before.Length - prefix && suffix < after.Length - prefix
            && before[before.Length - 1 - suffix] == after[after.Length - 1 - suffix]) suffix++;
        for (int u = 0; u < after.Length; u++)
        {
            if (u < prefix) (starts[u], ends[u]) = (u, u + 1);
            else if (u >= after.Length - suffix)
            {
                int b = u - after.Length + before.Length;
                (starts[u], ends[u]) = (b, b + 1);
            }
            else (starts[u], ends[u]) = (prefix, before.Length - suffix);
        }
        return (starts, ends);
    }

    static bool ByClusters(string before, string after, Func<string, string> rewrite, int[] starts, int[] ends)
    {
        int written = 0;
        for (int i = 0; i < before.Length;)
        {
            int start = i;
            PythonUnicode.CodePointAt(before, i, out int len);
            i += len;
            while (i < before.Length && IsMark(PythonUnicode.CodePointAt(before, i, out len))) i += len;
            var piece = rewrite(before[start..i]);
            if (written + piece.Length > after.Length || string.CompareOrdinal(after, written, piece, 0, piece.Length) != 0)
                return false;
            if (!ByCodePoints(before, start, i, piece, rewrite, starts.AsSpan(written), ends.AsSpan(written)))
            {
                starts.AsSpan(written, piece.Length).Fill(start);
                ends.AsSpan(written, piece.Length).Fill(i);
            }
            written += piece.Length;
        }
        return written == after.Length;
    }

    // Finer still where each code point of the cluster rewrites on its own to the same text, so that a mark the
    // rewrite drops (accents stripped) is left out of the base character's range, as tokenizers does.
    static bool ByCodePoints(string before, int start, int end, string piece, Func<string, string> rewrite,
        Span<int> starts, Span<int> ends)
    {
        int written = 0;
        for (int i = start; i < end;)
        {
            PythonUnicode.CodePointAt(before, i, out int len);
            var part = rewrite(before.Substring(i, len));
            if (written + part.Length > piece.Length || string.CompareOrdinal(piece, written, part, 0, part.Length) != 0)
                return false;
            starts.Slice(written, part.Length).Fill(i);
            ends.Slice(written, part.Length).Fill(i + len);
            written += part.Length;
            i += len;
        }
        return written == piece.Length;
    }

    static bool IsMark(int cp) => CharUnicodeInfo.GetUnicodeCategory(cp)
        is UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.EnclosingMark;
}
