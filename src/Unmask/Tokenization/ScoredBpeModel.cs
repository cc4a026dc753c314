using System.Text;

namespace Unmask.Tokenization;

/// <summary>
/// SentencePiece's BPE model: starting from characters, the adjacent pair whose concatenation is the piece of
/// highest score is merged (leftmost on ties) until no concatenation is a piece. Characters no piece covers become
/// byte pieces (byte_fallback) or the unknown piece, consecutive unknowns fused.
/// </summary>
internal sealed class ScoredBpeModel : ITokenModel
{
    readonly string[] pieces;
    readonly Dictionary<string, int> ids = new(StringComparer.Ordinal);
    readonly Dictionary<string, (int Id, float Score)> mergeable = new(StringComparer.Ordinal);
    readonly int unkId;
    readonly bool byteFallback;

    public ScoredBpeModel(IReadOnlyList<(string Piece, float Score, SentencePieceType Type)> vocab, int unkId, bool byteFallback)
    {
        pieces = vocab.Select(v => v.Piece).ToArray();
        for (int i = 0; i < vocab.Count; i++)
        {
            ids.TryAdd(vocab[i].Piece, i);
            if (vocab[i].Type is SentencePieceType.Normal or SentencePieceType.UserDefined)
                mergeable.TryAdd(vocab[i].Piece, (i, vocab[i].Score));
        }
        this.unkId = unkId;
        this.byteFallback = byteFallback;
    }

    public int Size => pieces.Length;

    public int? TokenToId(string token) => ids.TryGetValue(token, out var id) ? id : null;

    public string? IdToToken(int id) => (uint)id < (uint)pieces.Length ? pieces[id] : null;

    public void Tokenize(string word, List<ModelToken> output)
    {
        var symbols = new List<(string Text, int Start, int End)>();
        for (int i = 0; i < word.Length;)
        {
            PythonUnicode.CodePointAt(word, i, out int len);
            symbols.Add((word.Substring(i, len), i, i + len));
            i += len;
        }
        while (symbols.Count > 1)
        {
            int best = -1;
            float bestScore = float.NegativeInfinity;
            for (int i = 0; i + 1 < symbols.Count; i++)
            {
                if (mergeable.TryGetValue(symbols[i].Text + symbols[i + 1].Text, out var p) && p.Score > bestScore)
                {
                    best = i;
                    bestScore = p.Score;
                }
            }
            if (best < 0) break;
            symbols[best] = (symbols[best].Text + symbols[best + 1].Text, symbols[best].Start, symbols[best + 1].End);
            symbols.RemoveAt(best + 1);
        }
        bool previousUnknown = false;
        foreach (var (text, start, end) in symbols)
        {
            if (mergeable.TryGetValue(text, out var p))
            {
                output.Add(new ModelToken(p.Id, text, start, end));
                previousUnknown = false;
                continue;
            }
            if (byteFallback)
            {
                var bytes = Encoding.UTF8.GetBytes(text).Select(b => $"<0x{b:X2}>").ToArray();
                if (bytes.All(ids.ContainsKey))
                {
                    foreach (var b in bytes) output.Add(new ModelToken(ids[b], b, start, end));
                    previousUnknown = false;
                    continue;
                }
            }
            if (previousUnknown) output[^1] = output[^1] with { End = end };
            else output.Add(new ModelToken(unkId, pieces[unkId], start, end));
            previousUnknown = true;
        }
    }
}
