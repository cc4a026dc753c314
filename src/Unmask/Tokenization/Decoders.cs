using System.Text;
using System.Text.RegularExpressions;

namespace Unmask.Tokenization;

/// <summary>A tokenizer.json <c>decoder</c>: turns tokens back into text pieces, joined without separator at the end.</summary>
internal interface IDecoder
{
    List<string> Decode(List<string> tokens);
}

/// <summary>HF <c>WordPiece</c> decoder: continuation pieces lose the prefix, other tokens get a space before them.</summary>
internal sealed class WordPieceDecoder(string prefix, bool cleanup) : IDecoder
{
    public List<string> Decode(List<string> tokens)
    {
        var result = new List<string>(tokens.Count);
        for (int i = 0; i < tokens.Count; i++)
        {
            var token = tokens[i];
            if (i > 0)
                token = token.StartsWith(prefix, StringComparison.Ordinal) ? token[prefix.Length..] : " " + token;
            result.Add(cleanup ? CleanUp.Tokenizers(token) : token);
        }
        return result;
    }
}

/// <summary>HF <c>ByteLevel</c> decoder: the tokens' bytes as UTF-8; a token outside the alphabet counts as its own UTF-8.</summary>
internal sealed class ByteLevelDecoder : IDecoder
{
    public static readonly ByteLevelDecoder Instance = new();

    public List<string> Decode(List<string> tokens)
    {
        var bytes = new List<byte>();
        foreach (var token in tokens)
            if (!ByteLevel.TryAppendBytes(token, bytes)) bytes.AddRange(Encoding.UTF8.GetBytes(token));
        return [ByteLevel.DecodeUtf8(bytes)];
    }
}

/// <summary>HF <c>Metaspace</c> decoder: the replacement character becomes a space, dropped in the first token.</summary>
internal sealed class MetaspaceDecoder(char replacement, bool dropFirstSpace) : IDecoder
{
    public List<string> Decode(List<string> tokens)
    {
        var result = new List<string>(tokens.Count);
        for (int i = 0; i < tokens.Count; i++)
        {
            var sb = new StringBuilder(tokens[i].Length);
            foreach (char c in tokens[i])
            {
                if (c != replacement) sb.Append(c);
                else if (!(i == 0 && dropFirstSpace)) sb.Append(' ');
            }
            result.Add(sb.ToString());
        }
        return result;
    }
}

/// <summary>HF <c>BPEDecoder</c>: the end-of-word suffix becomes a space (nothing after the last token).</summary>
internal sealed class BpeSuffixDecoder(string suffix) : IDecoder
{
    public List<string> Decode(List<string> tokens) =>
        tokens.Select((t, i) => t.Replace(suffix, i == tokens.Count - 1 ? "" : " ", StringComparison.Ordinal)).ToList();
}

/// <summary>HF <c>Replace</c> decoder, applied to each token.</summary>
internal sealed class ReplaceDecoder(Regex pattern, string content) : IDecoder
{
    public List<string> Decode(List<string> tokens) => tokens.Select(t => pattern.Replace(t, content.Replace("$", "$$"))).ToList();
}

/// <summary>HF <c>Strip</c> decoder: removes up to <c>start</c>/<c>stop</c> copies of a character at each token's ends.</summary>
internal sealed class StripDecoder(char content, int start, int stop) : IDecoder
{
    public List<string> Decode(List<string> tokens) => tokens.Select(t =>
    {
        int a = 0, b = t.Length;
        while (a < Math.Min(start, t.Length) && t[a] == content) a++;
        for (int k = 0; k < stop && b > a && t[b - 1] == content; k++) b--;
        return t[a..b];
    }).ToList();
}

/// <summary>HF <c>Fuse</c> decoder: all tokens into one string.</summary>
internal sealed class FuseDecoder : IDecoder
{
    public List<string> Decode(List<string> tokens) => [string.Concat(tokens)];
}

/// <summary>HF <c>ByteFallback</c> decoder: runs of &lt;0xNN&gt; tokens become their UTF-8 text (U+FFFD per byte if invalid).</summary>
internal sealed class ByteFallbackDecoder : IDecoder
{
    public List<string> Decode(List<string> tokens)
    {
        var result = new List<string>(tokens.Count);
        var pending = new List<byte>();
        void Flush()
        {
            if (pending.Count == 0) return;
            try
            {
                result.Add(new UTF8Encoding(false, true).GetString(pending.ToArray()));
            }
            catch (DecoderFallbackException)
            {
                result.AddRange(Enumerable.Repeat("\uFFFD", pending.Count));
            }
            pending.Clear();
        }
        foreach (var t in tokens)
        {
            if (t.Length == 6 && t.StartsWith("<0x", StringComparison.Ordinal) && t[5] == '>'
                && byte.TryParse(t.AsSpan(3, 2), System.Globalization.NumberStyles.HexNumber, null, out var b))
            {
                pending.Add(b);
                continue;
            }
            Flush();
            result.Add(t);
        }
        Flush();
        return result;
    }
}

internal sealed class DecoderSequence(IReadOnlyList<IDecoder> decoders) : IDecoder
{
    public List<string> Decode(List<string> tokens)
    {
        foreach (var d in decoders) tokens = d.Decode(tokens);
        return tokens;
    }
}
