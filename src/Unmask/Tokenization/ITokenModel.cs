namespace Unmask.Tokenization;

/// <summary>One token a model produced for a word: its id and the UTF-16 range [Start, End) of the word it covers.</summary>
internal readonly record struct ModelToken(int Id, string Token, int Start, int End);

/// <summary>A tokenizer.json <c>model</c> (BPE, WordPiece, Unigram): turns one pre-tokenised word into tokens.</summary>
internal interface ITokenModel
{
    /// <summary>One past the largest id of the model's vocabulary.</summary>
    int Size { get; }

    int? TokenToId(string token);

    string? IdToToken(int id);

    void Tokenize(string word, List<ModelToken> output);
}

/// <summary>A vocabulary as tokenizer.json and vocab.json store it: token to id, ids not necessarily contiguous.</summary>
internal sealed class Vocabulary
{
    readonly Dictionary<string, int> ids;
    readonly string?[] tokens;

    public Vocabulary(IEnumerable<KeyValuePair<string, int>> entries)
    {
        ids = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var (token, id) in entries) ids[token] = id;
        tokens = new string?[ids.Count == 0 ? 0 : ids.Values.Max() + 1];
        foreach (var (token, id) in ids) tokens[id] = token;
    }

    public int Size => tokens.Length;

    public int? this[string token] => ids.TryGetValue(token, out var id) ? id : null;

    public bool Contains(string token) => ids.ContainsKey(token);

    public string? Token(int id) => (uint)id < (uint)tokens.Length ? tokens[id] : null;

    public IEnumerable<KeyValuePair<string, int>> Entries => ids;
}
