using System.Collections.Concurrent;
using System.Text;

namespace Unmask.Tokenization;

/// <summary>
/// Byte-pair encoding with ranked merges (HF <c>BPE</c> model and GPT-2's slow <c>bpe()</c>): the adjacent pair of
/// lowest rank is merged everywhere in the word, left to right, until no ranked pair remains.
/// </summary>
internal sealed class BpeModel : ITokenModel
{
    readonly Vocabulary vocab;
    readonly Dictionary<(string, string), int> ranks;
    readonly string? unkToken;
    readonly string prefix, suffix;
    readonly bool fuseUnk, byteFallback, ignoreMerges;
    readonly ConcurrentDictionary<string, ModelToken[]> cache = new(StringComparer.Ordinal);

    public BpeModel(Vocabulary vocab, IReadOnlyList<(string A, string B)> merges, string? unkToken = null,
        string? continuingSubwordPrefix = null, string? endOfWordSuffix = null, bool fuseUnk = false,
        bool byteFallback = false, bool ignoreMerges = false)
    {
        this.vocab = vocab;
        ranks = new Dictionary<(string, string), int>(merges.Count);
        for (int i = 0; i < merges.Count; i++) ranks.TryAdd(merges[i], i);
        this.unkToken = unkToken;
        prefix = continuingSubwordPrefix ?? "";
        suffix = endOfWordSuffix ?? "";
        this.fuseUnk = fuseUnk;
        this.byteFallback = byteFallback;
        this.ignoreMerges = ignoreMerges;
    }

    public int Size => vocab.Size;

    public int? TokenToId(string token) => vocab[token];

    public string? IdToToken(int id) => vocab.Token(id);

    public void Tokenize(string word, List<ModelToken> output)
    {
        if (word.Length == 0) return;
        if (!cache.TryGetValue(word, out var tokens))
        {
            tokens = TokenizeWord(word);
            if (cache.Count > 100_000) cache.Clear();
            cache.TryAdd(word, tokens);
        }
        output.AddRange(tokens);
    }

    ModelToken[] TokenizeWord(string word)
    {
        if (ignoreMerges && vocab[word] is int whole) return [new ModelToken(whole, word, 0, word.Length)];

        // Symbols: each code point, with the continuation prefix on all but the first and the suffix on the last.
        var symbols = new List<(string Text, int Start, int End, bool Unknown)>();
        for (int i = 0; i < word.Length;)
        {
            PythonUnicode.CodePointAt(word, i, out int len);
            var text = word.Substring(i, len);
            if (i > 0) text = prefix + text;
            if (i + len == word.Length) text += suffix;
            symbols.Add((text, i, i + len, false));
            i += len;
        }
        if (unkToken != null || byteFallback) symbols = ReplaceUnknown(symbols);

        while (symbols.Count > 1)
        {
            int best = int.MaxValue;
            (string, string) bestPair = default;
            for (int i = 0; i + 1 < symbols.Count; i++)
            {
                if (symbols[i].Unknown || symbols[i + 1].Unknown) continue;
                if (ranks.TryGetValue((symbols[i].Text, symbols[i + 1].Text), out int r) && r < best)
                {
                    best = r;
                    bestPair = (symbols[i].Text, symbols[i + 1].Text);
                }
            }
            if (best == int.MaxValue) break;
            var merged = new List<(string, int, int, bool)>(symbols.Count);
            for (int i = 0; i < symbols.Count; i++)
            {
                if (i + 1 < symbols.Count && !symbols[i].Unknown && !symbols[i + 1].Unknown
                    && symbols[i].Text == bestPair.Item1 && symbols[i + 1].Text == bestPair.Item2)
                {
                    var right = symbols[i + 1].Text;
                    if (prefix.Length > 0 && right.StartsWith(prefix, StringComparison.Ordinal)) right = right[prefix.Length..];
                    merged.Add((symbols[i].Text + right, symbols[i].Start, symbols[i + 1].End, false));
                    i++;
                }
                else merged.Add(symbols[i]);
            }
            symbols = merged;
        }

        var result = new List<ModelToken>(symbols.Count);
        int? unkId = unkToken == null ? null : vocab[unkToken];
        foreach (var (text, start, end, _) in symbols)
        {
            if (vocab[text] is int id) result.Add(new ModelToken(id, text, start, end));
            else if (unkId is int u) result.Add(new ModelToken(u, unkToken!, start, end));
        }
        return result.ToArray();
    }

    // Symbols missing from the vocabulary become byte tokens <0xNN> (byte_fallback) or the unknown token, consecutive
    // unknowns fused into one when fuse_unk.
    List<(string Text, int Start, int End, bool Unknown)> ReplaceUnknown(List<(string Text, int Start, int End, bool Unknown)> symbols)
    {
        var result = new List<(string, int, int, bool)>(symbols.Count);
        foreach (var s in symbols)
        {
            if (vocab.Contains(s.Text))
            {
                result.Add(s);
                continue;
            }
            if (byteFallback)
            {
                var bytes = Encoding.UTF8.GetBytes(s.Text);
                var pieces = bytes.Select(b => $"<0x{b:X2}>").ToArray();
                if (pieces.All(vocab.Contains))
                {
                    foreach (var p in pieces) result.Add((p, s.Start, s.End, true));
                    continue;
                }
            }
            if (unkToken == null) continue;
            if (fuseUnk && result.Count > 0 && result[^1].Item4 && result[^1].Item1 == unkToken)
                result[^1] = (unkToken, result[^1].Item2, s.End, true);
            else result.Add((unkToken, s.Start, s.End, true));
        }
        return result;
    }
}
