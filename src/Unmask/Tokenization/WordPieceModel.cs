namespace Unmask.Tokenization;

/// <summary>
/// HF <c>WordPiece</c> model: greedy longest match from the start of the word, continuation pieces carry the prefix
/// ("##"). The only WordPiece matcher: the slow BERT tokenizer and tokenizer.json pipelines both use it.
/// </summary>
internal sealed class WordPieceModel : ITokenModel
{
    readonly Vocabulary vocab;
    readonly string unkToken;
    readonly int maxInputCharsPerWord;
    // Looked up by span so that trying every candidate length allocates nothing; continuations keyed without the prefix.
    readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> wordStarts, continuations;
    readonly int longestWordStart, longestContinuation;

    public WordPieceModel(Vocabulary vocab, string unkToken, string prefix, int maxInputCharsPerWord)
    {
        this.vocab = vocab;
        this.unkToken = unkToken;
        this.maxInputCharsPerWord = maxInputCharsPerWord;
        var starts = new Dictionary<string, int>(StringComparer.Ordinal);
        var rests = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var (token, id) in vocab.Entries)
        {
            starts[token] = id;
            longestWordStart = Math.Max(longestWordStart, token.Length);
            if (!token.StartsWith(prefix, StringComparison.Ordinal)) continue;
            rests[token[prefix.Length..]] = id;
            longestContinuation = Math.Max(longestContinuation, token.Length - prefix.Length);
        }
        wordStarts = starts.GetAlternateLookup<ReadOnlySpan<char>>();
        continuations = rests.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    public int Size => vocab.Size;

    public int? TokenToId(string token) => vocab[token];

    public string? IdToToken(int id) => vocab.Token(id);

    public void Tokenize(string word, List<ModelToken> output)
    {
        if (word.Length == 0) return;
        if (word.Length > maxInputCharsPerWord && PythonUnicode.CountCodePoints(word) > maxInputCharsPerWord)
        {
            AddUnknown(word, output);
            return;
        }
        int mark = output.Count;
        int start = 0;
        while (start < word.Length)
        {
            var lookup = start == 0 ? wordStarts : continuations;
            int end = Math.Min(word.Length, start + (start == 0 ? longestWordStart : longestContinuation));
            int found = -1;
            for (; end > start; end--)
            {
                // Never cut a surrogate pair: HF works on code points.
                if (end < word.Length && char.IsLowSurrogate(word[end]) && char.IsHighSurrogate(word[end - 1])) continue;
                if (lookup.TryGetValue(word.AsSpan(start, end - start), out found)) break;
            }
            if (end == start)
            {
                output.RemoveRange(mark, output.Count - mark);
                AddUnknown(word, output);
                return;
            }
            output.Add(new ModelToken(found, vocab.Token(found)!, start, end));
            start = end;
        }
    }

    void AddUnknown(string word, List<ModelToken> output)
    {
        var id = vocab[unkToken] ?? throw new UnmaskException($"WordPiece: the unknown token '{unkToken}' is not in the vocabulary.");
        output.Add(new ModelToken(id, unkToken, 0, word.Length));
    }
}
