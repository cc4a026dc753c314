using System.Text;

namespace Unmask.Tokenization;

/// <summary>
/// HF <c>Unigram</c> model (SentencePiece unigram): the segmentation of highest total log-probability (Viterbi);
/// a character no piece covers becomes the unknown piece, scored below every piece, consecutive unknowns fused.
/// </summary>
internal sealed class UnigramModel : ITokenModel
{
    const double UnknownPenalty = 10.0;
    readonly string[] pieces;
    readonly double[] scores;
    readonly Dictionary<string, int> ids = new(StringComparer.Ordinal);
    readonly int? unkId;
    readonly bool byteFallback;
    readonly int maxPieceLength;
    readonly double unkScore;

    readonly Dictionary<string, int> candidates = new(StringComparer.Ordinal);

    /// <param name="notMatched">Pieces kept out of segmentation (SentencePiece's control, unknown and unused pieces).</param>
    public UnigramModel(IReadOnlyList<(string Piece, double Score)> vocab, int? unkId, bool byteFallback,
        Func<int, bool>? notMatched = null)
    {
        pieces = vocab.Select(v => v.Piece).ToArray();
        scores = vocab.Select(v => v.Score).ToArray();
        for (int i = 0; i < pieces.Length; i++)
        {
            ids.TryAdd(pieces[i], i);
            if (notMatched?.Invoke(i) != true) candidates.TryAdd(pieces[i], i);
        }
        this.unkId = unkId;
        this.byteFallback = byteFallback;
        maxPieceLength = pieces.Length == 0 ? 1 : pieces.Max(p => p.Length);
        unkScore = (scores.Length == 0 ? 0 : scores.Min()) - UnknownPenalty;
    }

    public int Size => pieces.Length;

    public int? TokenToId(string token) => ids.TryGetValue(token, out var id) ? id : null;

    public string? IdToToken(int id) => (uint)id < (uint)pieces.Length ? pieces[id] : null;

    public void Tokenize(string word, List<ModelToken> output)
    {
        int n = word.Length;
        if (n == 0) return;
        var best = new double[n + 1];
        var from = new int[n + 1];
        var via = new int[n + 1];
        Array.Fill(best, double.NegativeInfinity);
        best[0] = 0;
        for (int i = 0; i < n; i++)
        {
            if (double.IsNegativeInfinity(best[i])) continue;
            if (char.IsLowSurrogate(word[i]) && i > 0 && char.IsHighSurrogate(word[i - 1])) continue;
            PythonUnicode.CodePointAt(word, i, out int charLen);
            bool singleChar = false;
            for (int len = 1; len <= maxPieceLength && i + len <= n; len++)
            {
                int end = i + len;
                if (end < n && char.IsLowSurrogate(word[end]) && char.IsHighSurrogate(word[end - 1])) continue;
                if (!candidates.TryGetValue(word.Substring(i, len), out int id)) continue;
                if (len == charLen) singleChar = true;
                double s = best[i] + scores[id];
                if (s > best[end])
                {
                    best[end] = s;
                    from[end] = i;
                    via[end] = id;
                }
            }
            if (!singleChar)
            {
                double s = best[i] + unkScore;
                if (s > best[i + charLen])
                {
                    best[i + charLen] = s;
                    from[i + charLen] = i;
                    via[i + charLen] = -1;
                }
            }
        }
        var path = new List<(int Id, int Start, int End)>();
        for (int end = n; end > 0; end = from[end]) path.Add((via[end], from[end], end));
        path.Reverse();

        for (int k = 0; k < path.Count; k++)
        {
            var (id, start, end) = path[k];
            if (id >= 0)
            {
                output.Add(new ModelToken(id, pieces[id], start, end));
                continue;
            }
            if (byteFallback && TryBytes(word[start..end], start, end, output)) continue;
            while (k + 1 < path.Count && path[k + 1].Id < 0 && !byteFallback) end = path[++k].End;
            if (unkId is int u) output.Add(new ModelToken(u, pieces[u], start, end));
        }
    }

    bool TryBytes(string text, int start, int end, List<ModelToken> output)
    {
        var tokens = Encoding.UTF8.GetBytes(text).Select(b => $"<0x{b:X2}>").ToArray();
        if (!tokens.All(ids.ContainsKey)) return false;
        foreach (var t in tokens) output.Add(new ModelToken(ids[t], t, start, end));
        return true;
    }
}
