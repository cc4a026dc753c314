using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Unmask.Tokenization;

/// <summary>The special tokens of a BERT vocabulary, by their Hugging Face names.</summary>
public sealed record BertSpecialTokens(
    string Unk = "[UNK]", string Sep = "[SEP]", string Pad = "[PAD]", string Cls = "[CLS]", string Mask = "[MASK]")
{
    public IEnumerable<string> All => [Unk, Sep, Pad, Cls, Mask];
}

/// <summary>
/// Hugging Face's slow BertTokenizer: special tokens split off first (case-sensitively), the BasicTokenizer, then
/// greedy longest-match WordPiece with "##" continuations; a word with an unmatched piece, or longer than 100
/// characters, becomes [UNK].
/// </summary>
public sealed class WordPieceTokenizer : ITokenizer
{
    const int MaxInputCharsPerWord = 100;
    const string Prefix = "##";

    readonly string[] _vocab;
    readonly Dictionary<string, int> _ids;
    readonly HashSet<int> _specialIds;
    readonly string[] _specialsLongestFirst;
    readonly ConcurrentDictionary<string, int[]> _wordCache = new(StringComparer.Ordinal);

    public BertNormalizationOptions Normalization { get; }
    public BertSpecialTokens SpecialTokens { get; }
    public int ModelMaxLength { get; }
    public bool CleanUpTokenizationSpaces { get; }

    public int VocabSize => _vocab.Length;
    public int ClsId { get; }
    public int SepId { get; }
    public int PadId { get; }
    public int MaskId { get; }
    public int UnkId { get; }
    public string MaskToken => SpecialTokens.Mask;
    public string Fingerprint { get; }
    public IReadOnlyList<string> Vocab => _vocab;

    public WordPieceTokenizer(IReadOnlyList<string> vocab, BertNormalizationOptions normalization, BertSpecialTokens? specials = null,
        int modelMaxLength = 512, bool cleanUpTokenizationSpaces = true, string source = "vocabulary")
    {
        _vocab = vocab.ToArray();
        _ids = new Dictionary<string, int>(_vocab.Length, StringComparer.Ordinal);
        for (int i = 0; i < _vocab.Length; i++) _ids.TryAdd(_vocab[i], i);
        Normalization = normalization;
        SpecialTokens = specials ?? new BertSpecialTokens();
        ModelMaxLength = modelMaxLength;
        CleanUpTokenizationSpaces = cleanUpTokenizationSpaces;
        int Require(string token, string role) => _ids.TryGetValue(token, out var id)
            ? id
            : throw new UnmaskException($"{source}: the {role} token '{token}' is not in the vocabulary");
        UnkId = Require(SpecialTokens.Unk, "unk");
        SepId = Require(SpecialTokens.Sep, "sep");
        PadId = Require(SpecialTokens.Pad, "pad");
        ClsId = Require(SpecialTokens.Cls, "cls");
        MaskId = Require(SpecialTokens.Mask, "mask");
        _specialIds = [UnkId, SepId, PadId, ClsId, MaskId];
        _specialsLongestFirst = SpecialTokens.All.Distinct().OrderByDescending(s => s.Length).ToArray();
        var identity = string.Join("\n", _vocab) + $"\n{normalization}\n{SpecialTokens}";
        Fingerprint = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(identity)))[..32].ToLowerInvariant();
    }

    public int? TokenToId(string token) => _ids.TryGetValue(token, out var id) ? id : null;

    public string IdToToken(int id) => id >= 0 && id < _vocab.Length
        ? _vocab[id]
        : throw new ArgumentOutOfRangeException(nameof(id), $"id {id} is outside the vocabulary of {_vocab.Length}");

    public bool IsSpecial(int id) => _specialIds.Contains(id);

    public bool IsContinuation(int id) => id >= 0 && id < _vocab.Length && _vocab[id].StartsWith(Prefix, StringComparison.Ordinal);

    public IReadOnlyList<string> Tokenize(string text) => EncodeIds(text).Select(id => _vocab[id]).ToList();

    List<int> EncodeIds(string text)
    {
        var ids = new List<int>();
        foreach (var (chunk, isSpecial) in SplitOnSpecialTokens(text))
        {
            if (isSpecial)
            {
                ids.Add(_ids[chunk]);
                continue;
            }
            foreach (var word in BasicTokenizer.Split(chunk, Normalization)) ids.AddRange(WordPieces(word));
        }
        return ids;
    }

    /// <summary>Special tokens written in the text are matched as they are (before lower-casing), leftmost and longest first.</summary>
    IEnumerable<(string Chunk, bool IsSpecial)> SplitOnSpecialTokens(string text)
    {
        int start = 0;
        for (int i = 0; i < text.Length; i++)
        {
            if (text[i] != '[' && !_specialsLongestFirst.Any(s => s[0] == text[i])) continue;
            var match = _specialsLongestFirst.FirstOrDefault(s => string.CompareOrdinal(text, i, s, 0, s.Length) == 0);
            if (match is null) continue;
            if (i > start) yield return (text[start..i], false);
            yield return (match, true);
            start = i + match.Length;
            i = start - 1;
        }
        if (start < text.Length) yield return (text[start..], false);
    }

    int[] WordPieces(string word)
    {
        if (_wordCache.TryGetValue(word, out var cached)) return cached;
        var pieces = ComputeWordPieces(word);
        if (_wordCache.Count < 1_000_000) _wordCache.TryAdd(word, pieces);
        return pieces;
    }

    int[] ComputeWordPieces(string word)
    {
        // Boundaries between code points: a piece never splits a surrogate pair.
        var bounds = new List<int>(word.Length + 1);
        for (int i = 0; i < word.Length; i += char.IsSurrogatePair(word, i) ? 2 : 1) bounds.Add(i);
        bounds.Add(word.Length);
        if (bounds.Count - 1 > MaxInputCharsPerWord) return [UnkId];
        var pieces = new List<int>();
        int startIndex = 0;
        while (startIndex < bounds.Count - 1)
        {
            int found = -1, endIndex = bounds.Count - 1;
            for (; endIndex > startIndex; endIndex--)
            {
                var piece = word[bounds[startIndex]..bounds[endIndex]];
                if (startIndex > 0) piece = Prefix + piece;
                if (_ids.TryGetValue(piece, out found)) break;
                found = -1;
            }
            if (found < 0) return [UnkId];
            pieces.Add(found);
            startIndex = endIndex;
        }
        return pieces.ToArray();
    }

    public TokenizedText Encode(string text, string? pair = null, bool addSpecialTokens = true, int? maxLength = null)
    {
        var first = EncodeIds(text);
        var second = pair is null ? null : EncodeIds(pair);
        if (maxLength is { } max)
        {
            int specials = addSpecialTokens ? (second is null ? 2 : 3) : 0;
            Truncate(first, second, first.Count + (second?.Count ?? 0) + specials - max);
        }
        var ids = new List<int>();
        var types = new List<int>();
        var special = new List<bool>();
        void Add(int id, int type, bool isSpecial)
        {
            ids.Add(id);
            types.Add(type);
            special.Add(isSpecial);
        }
        if (addSpecialTokens) Add(ClsId, 0, true);
        foreach (var id in first) Add(id, 0, false);
        if (addSpecialTokens) Add(SepId, 0, true);
        if (second is not null)
        {
            foreach (var id in second) Add(id, 1, false);
            if (addSpecialTokens) Add(SepId, 1, true);
        }
        return new TokenizedText(ids.ToArray(), ids.Select(i => _vocab[i]).ToArray(), types.ToArray(), special.ToArray());
    }

    /// <summary>transformers' "longest_first" truncation: remove from the longer side first, then split the rest.</summary>
    static void Truncate(List<int> first, List<int>? second, int remove)
    {
        if (remove <= 0) return;
        if (second is null)
        {
            first.RemoveRange(Math.Max(0, first.Count - remove), Math.Min(remove, first.Count));
            return;
        }
        int firstRemove = Math.Min(Math.Abs(second.Count - first.Count), remove);
        int secondRemove = remove - firstRemove;
        int fromFirst, fromSecond;
        if (first.Count > second.Count)
        {
            fromFirst = firstRemove + secondRemove / 2;
            fromSecond = secondRemove - secondRemove / 2;
        }
        else
        {
            fromFirst = secondRemove / 2;
            fromSecond = firstRemove + secondRemove - secondRemove / 2;
        }
        first.RemoveRange(Math.Max(0, first.Count - fromFirst), Math.Min(fromFirst, first.Count));
        second.RemoveRange(Math.Max(0, second.Count - fromSecond), Math.Min(fromSecond, second.Count));
    }

    public string Decode(IReadOnlyList<int> ids, bool skipSpecialTokens = false)
    {
        var tokens = ids.Where(id => !(skipSpecialTokens && IsSpecial(id))).Select(IdToToken);
        var text = string.Join(" ", tokens).Replace(" " + Prefix, "", StringComparison.Ordinal).Trim();
        if (!CleanUpTokenizationSpaces) return text;
        return text.Replace(" .", ".").Replace(" ?", "?").Replace(" !", "!").Replace(" ,", ",").Replace(" ' ", "'")
            .Replace(" n't", "n't").Replace(" 'm", "'m").Replace(" 's", "'s").Replace(" 've", "'ve").Replace(" 're", "'re");
    }

    public void Save(string directory)
    {
        Directory.CreateDirectory(directory);
        WriteAtomically(Path.Combine(directory, "vocab.txt"), string.Concat(_vocab.Select(v => v + "\n")));
        var config = new JsonObject
        {
            ["tokenizer_class"] = "BertTokenizer",
            ["do_lower_case"] = Normalization.LowerCase,
            ["strip_accents"] = Normalization.StripAccents,
            ["tokenize_chinese_chars"] = Normalization.TokenizeChineseChars,
            ["do_basic_tokenize"] = true,
            ["never_split"] = null,
            ["clean_up_tokenization_spaces"] = CleanUpTokenizationSpaces,
            ["model_max_length"] = ModelMaxLength,
        };
        foreach (var (key, value) in SpecialTokenMap()) config[key] = value;
        WriteAtomically(Path.Combine(directory, "tokenizer_config.json"), Indented(config));
        var map = new JsonObject();
        foreach (var (key, value) in SpecialTokenMap()) map[key] = value;
        WriteAtomically(Path.Combine(directory, "special_tokens_map.json"), Indented(map));
        WriteAtomically(Path.Combine(directory, "tokenizer.json"), Indented(TokenizerJson()));
    }

    IEnumerable<(string Key, string Value)> SpecialTokenMap() =>
    [
        ("cls_token", SpecialTokens.Cls), ("mask_token", SpecialTokens.Mask), ("pad_token", SpecialTokens.Pad),
        ("sep_token", SpecialTokens.Sep), ("unk_token", SpecialTokens.Unk),
    ];

    /// <summary>The same tokenizer in the `tokenizers` library's format, so fast-tokenizer users load it too.</summary>
    JsonObject TokenizerJson()
    {
        var added = new JsonArray();
        foreach (var id in _specialIds.Order())
            added.Add(new JsonObject
            {
                ["id"] = id, ["content"] = _vocab[id], ["single_word"] = false, ["lstrip"] = false, ["rstrip"] = false,
                ["normalized"] = false, ["special"] = true,
            });
        JsonObject Special(string token, int type) => new() { ["SpecialToken"] = new JsonObject { ["id"] = token, ["type_id"] = type } };
        JsonObject Sequence(string id, int type) => new() { ["Sequence"] = new JsonObject { ["id"] = id, ["type_id"] = type } };
        var vocab = new JsonObject();
        for (int i = 0; i < _vocab.Length; i++) vocab.TryAdd(_vocab[i], i);
        return new JsonObject
        {
            ["version"] = "1.0",
            ["truncation"] = null,
            ["padding"] = null,
            ["added_tokens"] = added,
            ["normalizer"] = new JsonObject
            {
                ["type"] = "BertNormalizer", ["clean_text"] = true, ["handle_chinese_chars"] = Normalization.TokenizeChineseChars,
                ["strip_accents"] = Normalization.StripAccents, ["lowercase"] = Normalization.LowerCase,
            },
            ["pre_tokenizer"] = new JsonObject { ["type"] = "BertPreTokenizer" },
            ["post_processor"] = new JsonObject
            {
                ["type"] = "TemplateProcessing",
                ["single"] = new JsonArray(Special(SpecialTokens.Cls, 0), Sequence("A", 0), Special(SpecialTokens.Sep, 0)),
                ["pair"] = new JsonArray(Special(SpecialTokens.Cls, 0), Sequence("A", 0), Special(SpecialTokens.Sep, 0),
                    Sequence("B", 1), Special(SpecialTokens.Sep, 1)),
                ["special_tokens"] = new JsonObject
                {
                    [SpecialTokens.Cls] = new JsonObject { ["id"] = SpecialTokens.Cls, ["ids"] = new JsonArray(ClsId), ["tokens"] = new JsonArray(SpecialTokens.Cls) },
                    [SpecialTokens.Sep] = new JsonObject { ["id"] = SpecialTokens.Sep, ["ids"] = new JsonArray(SepId), ["tokens"] = new JsonArray(SpecialTokens.Sep) },
                },
            },
            ["decoder"] = new JsonObject { ["type"] = "WordPiece", ["prefix"] = Prefix, ["cleanup"] = CleanUpTokenizationSpaces },
            ["model"] = new JsonObject
            {
                ["type"] = "WordPiece", ["unk_token"] = SpecialTokens.Unk, ["continuing_subword_prefix"] = Prefix,
                ["max_input_chars_per_word"] = MaxInputCharsPerWord, ["vocab"] = vocab,
            },
        };
    }

    static string Indented(JsonNode node) =>
        node.ToJsonString(new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });

    static void WriteAtomically(string path, string content)
    {
        var temp = path + ".tmp";
        File.WriteAllText(temp, content, new UTF8Encoding(false));
        File.Move(temp, path, overwrite: true);
    }
}
