using System.Text.Json;

namespace Unmask.Tokenization;

/// <summary>
/// What transformers' slow (Python) tokenizers take from tokenizer_config.json and special_tokens_map.json: the
/// special tokens by role, the added tokens with their ids and flags, and the settings shared by all of them.
/// </summary>
internal sealed class SlowTokenizerFiles
{
    public required HfTokenizerConfig Config { get; init; }
    public required SpecialTokenSet Specials { get; init; }
    public required IReadOnlyList<AddedToken> AddedTokens { get; init; }
    public required IReadOnlySet<string> DecodedApart { get; init; }
    public required Dictionary<string, byte[]> Files { get; init; }

    static readonly string[] Roles = ["unk_token", "cls_token", "sep_token", "pad_token", "mask_token", "bos_token", "eos_token"];

    /// <summary>
    /// Reads the configuration; <paramref name="defaults"/> are the class's own special tokens (role to text) and
    /// <paramref name="defaultLStrip"/> the tokens the class creates with lstrip (RoBERTa's mask token).
    /// </summary>
    public static SlowTokenizerFiles Read(string directory, Func<string, int?> vocabId, int vocabSize,
        IReadOnlyDictionary<string, string> defaults, IReadOnlySet<string> defaultLStrip, IEnumerable<string> modelFiles)
    {
        var config = HfTokenizerConfig.Read(directory);
        var files = new Dictionary<string, byte[]>();
        foreach (var name in modelFiles.Concat([WordPieceTokenizer.ConfigFile, WordPieceTokenizer.SpecialTokensMapFile,
            WordPieceTokenizer.AddedTokensFile]))
        {
            var path = Path.Combine(directory, name);
            if (File.Exists(path)) files[name] = File.ReadAllBytes(path);
        }

        var byRole = Roles.ToDictionary(r => r, r => config.Role(r) ?? defaults.GetValueOrDefault(r));
        var additional = config.Additional ?? [];
        var specialTexts = byRole.Values.Where(v => v != null).Select(v => v!).Concat(additional)
            .Distinct(StringComparer.Ordinal).ToList();

        // Ids: the vocabulary's, then added_tokens_decoder / added_tokens.json, then new ids after the vocabulary in
        // the order transformers adds the special tokens.
        var added = new Dictionary<string, AddedToken>(StringComparer.Ordinal);
        foreach (var t in config.AddedTokensDecoder ?? []) added[t.Content] = t;
        var addedJson = Path.Combine(directory, WordPieceTokenizer.AddedTokensFile);
        if (files.ContainsKey(WordPieceTokenizer.AddedTokensFile))
        {
            using var doc = HfTokenizerConfig.ParseJson(addedJson);
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new UnmaskException($"{addedJson}: expected a JSON object.");
            foreach (var entry in doc.RootElement.EnumerateObject())
            {
                if (!entry.Value.TryGetInt32(out var id))
                    throw new UnmaskException($"{addedJson}: added token '{entry.Name}' must have an integer id.");
                // transformers before 4.34 stored these as plain strings, which strip the whitespace on both sides.
                if (!added.ContainsKey(entry.Name))
                    added[entry.Name] = new AddedToken(entry.Name, id, false, LStrip: config.AddedTokensDecoder == null, RStrip: config.AddedTokensDecoder == null);
            }
        }
        int next = Math.Max(vocabSize, added.Count == 0 ? 0 : added.Values.Max(t => t.Id) + 1);
        var tokens = new List<AddedToken>();
        foreach (var text in specialTexts)
        {
            var flags = config.TokenFlags.GetValueOrDefault(text);
            int id = added.TryGetValue(text, out var a) ? a.Id : vocabId(text) ?? next++;
            var token = a ?? new AddedToken(text, id, true, flags?.LStrip ?? defaultLStrip.Contains(text), flags?.RStrip ?? false,
                flags?.SingleWord ?? false, flags?.Normalized ?? false);
            tokens.Add(token with { Special = true });
        }
        foreach (var t in added.Values)
            if (!specialTexts.Contains(t.Content)) tokens.Add(t);

        var ids = tokens.ToDictionary(t => t.Content, t => t.Id, StringComparer.Ordinal);
        var specials = new SpecialTokenSet(byRole["unk_token"], byRole["cls_token"], byRole["sep_token"], byRole["pad_token"],
            byRole["mask_token"], byRole["bos_token"], byRole["eos_token"], additional,
            specialTexts.Select(t => ids[t]).Distinct().ToArray());

        // transformers up to 4.33 decodes every token outside the vocabulary on its own; later versions only the
        // added tokens that are not special (plus additional special tokens outside the vocabulary).
        var apart = config.AddedTokensDecoder == null
            ? tokens.Where(t => vocabId(t.Content) == null).Select(t => t.Content)
            : tokens.Where(t => !specialTexts.Contains(t.Content)).Select(t => t.Content)
                .Concat(additional.Where(t => ids[t] >= vocabSize));
        return new SlowTokenizerFiles
        {
            Config = config,
            Specials = specials,
            AddedTokens = tokens,
            DecodedApart = new HashSet<string>(apart, StringComparer.Ordinal),
            Files = files,
        };
    }

    public PaddingSide PaddingSide(string path) => Config.PaddingSide switch
    {
        null or "right" => Tokenization.PaddingSide.Right,
        "left" => Tokenization.PaddingSide.Left,
        var other => throw new UnmaskException($"{path}: padding_side '{other}' is not supported (left, right)."),
    };

    public string Fingerprint(string kind) =>
        PipelineTokenizer.Hash(new[] { kind }.Concat(Files.OrderBy(f => f.Key, StringComparer.Ordinal)
            .Select(f => f.Key + "=" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(f.Value)))));
}
