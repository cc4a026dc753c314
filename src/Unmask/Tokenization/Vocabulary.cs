namespace Unmask.Tokenization;

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

    /// <summary>Each token once, with its id.</summary>
    public IEnumerable<KeyValuePair<string, int>> Entries => ids;

    public int? this[string token] => ids.TryGetValue(token, out var id) ? id : null;

    public bool Contains(string token) => ids.ContainsKey(token);

    public string? Token(int id) => (uint)id < (uint)tokens.Length ? tokens[id] : null;
}
