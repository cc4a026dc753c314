using System.Text;

namespace Unmask.Tokenization;

/// <summary>
/// Text that went through normalisation or pre-tokenisation, with the span of the original text that each UTF-16
/// unit came from (HF tokenizers' <c>NormalizedString</c>), so that tokens can report offsets into the input.
/// </summary>
internal sealed class AlignedText
{
    public string Text { get; }
    readonly int[] starts, ends;

    public AlignedText(string text, int[] starts, int[] ends)
    {
        Text = text;
        this.starts = starts;
        this.ends = ends;
    }

    /// <summary>The original text itself, beginning at <paramref name="offset"/> of the whole input.</summary>
    public static AlignedText Original(string text, int offset = 0)
    {
        var s = new int[text.Length];
        var e = new int[text.Length];
        for (int i = 0; i < text.Length; i++)
        {
            s[i] = offset + i;
            e[i] = offset + i + 1;
        }
        // A surrogate pair is one character: both halves cover both units.
        for (int i = 0; i + 1 < text.Length; i++)
        {
            if (char.IsHighSurrogate(text[i]) && char.IsLowSurrogate(text[i + 1]))
            {
                e[i] = offset + i + 2;
                s[i + 1] = offset + i;
                i++;
            }
        }
        return new AlignedText(text, s, e);
    }

    public int Length => Text.Length;

    public int StartOf(int unit) => starts[unit];

    public int EndOf(int unit) => ends[unit];

    /// <summary>The original span of the units [start, end); (p, p) for an empty range at p.</summary>
    public (int Start, int End) Span(int start, int end)
    {
        if (end <= start)
        {
            if (Length == 0) return (0, 0);
            int p = start < Length ? starts[start] : ends[Length - 1];
            return (p, p);
        }
        return (starts[start], ends[end - 1]);
    }

    public AlignedText Slice(int start, int end) =>
        new(Text[start..end], starts[start..end], ends[start..end]);

    /// <summary>Rebuilds the text one code point at a time; <paramref name="map"/> writes each one's replacement.</summary>
    public AlignedText MapCodePoints(Action<int, Builder> map)
    {
        var b = new Builder(Text.Length);
        for (int i = 0; i < Text.Length;)
        {
            int cp = PythonUnicode.CodePointAt(Text, i, out int len);
            b.SetSource(starts[i], ends[i + len - 1]);
            map(cp, b);
            i += len;
        }
        return b.Build();
    }

    /// <summary>Collects output text, each unit aligned to the source span set last.</summary>
    public sealed class Builder(int capacity)
    {
        readonly StringBuilder text = new(capacity);
        readonly List<int> s = new(capacity), e = new(capacity);
        int sourceStart, sourceEnd;

        public void SetSource(int start, int end)
        {
            sourceStart = start;
            sourceEnd = end;
        }

        public void Append(int codePoint)
        {
            int before = text.Length;
            PythonUnicode.AppendCodePoint(text, codePoint);
            Fill(text.Length - before);
        }

        public void Append(string value)
        {
            text.Append(value);
            Fill(value.Length);
        }

        /// <summary>Appends a range of another aligned text, keeping its alignment.</summary>
        public void Append(AlignedText source, int start, int end)
        {
            text.Append(source.Text, start, end - start);
            for (int i = start; i < end; i++)
            {
                s.Add(source.starts[i]);
                e.Add(source.ends[i]);
            }
        }

        void Fill(int count)
        {
            for (int i = 0; i < count; i++)
            {
                s.Add(sourceStart);
                e.Add(sourceEnd);
            }
        }

        public AlignedText Build() => new(text.ToString(), s.ToArray(), e.ToArray());
    }
}
