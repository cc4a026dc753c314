namespace Unmask.Tokenization;

/// <summary>HF <c>WordPiece</c> model: greedy longest match, continuation pieces carry the prefix ("##").</summary>
internal sealed class WordPieceModel(Vocabulary vocab, string unkToken, string prefix, int maxInputCharsPerWord) : ITokenModel
{
    public int Size => vocab.Size;

    public int? TokenToId(string token) => vocab[token];

    public string? IdToToken(int id) => vocab.Token(id);

    public void Tokenize(string word, List<ModelToken> output)
    {
        if (word.Length == 0) return;
        int mark = output.Count;
        if (PythonUnicode.CountCodePoints(word) > maxInputCharsPerWord)
        {
            AddUnknown(word, output);
            return;
        }
        int start = 0;
        while (start < word.Length)
        {
            int end = word.Length;
            ModelToken? found = null;
            while (end > start)
            {
                if (end < word.Length && char.IsLowSurrogate(word[end]) && char.IsHighSurrogate(word[end - 1]))
                {
                    end--;
                    continue;
                }
                var piece = start > 0 ? prefix + word[start..end] : word[start..end];
                if (vocab[piece] is int id)
                {
                    found = new ModelToken(id, piece, start, end);
                    break;
                }
                end--;
            }
            if (found is not { } token)
            {
                output.RemoveRange(mark, output.Count - mark);
                AddUnknown(word, output);
                return;
            }
            output.Add(token);
            start = end;
        }
    }

    void AddUnknown(string word, List<ModelToken> output)
    {
        var id = vocab[unkToken] ?? throw new UnmaskException($"WordPiece: the unknown token '{unkToken}' is not in the vocabulary.");
        output.Add(new ModelToken(id, unkToken, 0, word.Length));
    }
}
