using System.Text;

namespace Unmask.Tokenization;

/// <summary>
/// A Hugging Face tokenizer as a pipeline (tokenizers' design): added tokens split off, normalizer, pre-tokenizer,
/// model, post-processor; a decoder for the way back. Built from tokenizer.json (fast-tokenizer semantics) or from
/// the legacy files of transformers' slow tokenizers (vocab.json + merges.txt, SentencePiece models).
/// </summary>
public sealed class PipelineTokenizer : ITokenizer
{
    readonly PipelineSettings settings;
    readonly ITokenModel model;
    readonly Dictionary<int, string> addedById = [];
    readonly Dictionary<string, int> addedByContent = new(StringComparer.Ordinal);
    readonly AddedTokenMatcher rawMatcher, normalizedMatcher;
    readonly HashSet<int> specialIds;
    readonly bool[] continuation;

    internal PipelineTokenizer(PipelineSettings settings)
    {
        this.settings = settings;
        model = settings.Model;
        foreach (var t in settings.AddedTokens)
        {
            addedById[t.Id] = t.Content;
            addedByContent[t.Content] = t.Id;
        }
        // Slow tokenizers match every added token in the raw text; tokenizers matches the "normalized" ones in the
        // normalised text.
        rawMatcher = new AddedTokenMatcher(settings.AddedTokens.Where(t => settings.Slow || !t.Normalized));
        normalizedMatcher = new AddedTokenMatcher(settings.Slow ? [] : settings.AddedTokens.Where(t => t.Normalized));
        VocabSize = Math.Max(model.Size, settings.AddedTokens.Count == 0 ? 0 : settings.AddedTokens.Max(t => t.Id) + 1);
        specialIds = [.. settings.Specials.AllIds];
        if (!settings.Slow) specialIds.UnionWith(settings.AddedTokens.Where(t => t.Special).Select(t => t.Id));
        continuation = new bool[VocabSize];
        for (int id = 0; id < VocabSize; id++)
        {
            var token = TokenOrNull(id);
            continuation[id] = token != null && !specialIds.Contains(id) && !addedById.ContainsKey(id)
                && settings.IsContinuationToken(token);
        }
        int Id(string? token) => token != null && TokenToId(token) is int id ? id : -1;
        UnkId = Id(settings.Specials.Unk);
        ClsId = Id(settings.Specials.Cls);
        SepId = Id(settings.Specials.Sep);
        PadId = Id(settings.Specials.Pad);
        MaskId = Id(settings.Specials.Mask);
    }

    public int VocabSize { get; }
    public int ClsId { get; }
    public int SepId { get; }
    public int PadId { get; }
    public int MaskId { get; }
    public int UnkId { get; }
    public string MaskToken => settings.Specials.Mask ?? "";
    public SpecialTokenSet Specials => settings.Specials;
    public int? ModelMaxLength => settings.ModelMaxLength;
    public PaddingSide PaddingSide => settings.PaddingSide;
    public bool ReturnsTokenTypeIds => settings.ReturnsTokenTypeIds;
    public bool CleanUpTokenizationSpaces => settings.CleanUpTokenizationSpaces;
    public string Fingerprint => settings.Fingerprint;

    /// <summary>Whether this tokenizer follows transformers' slow tokenizer rather than the tokenizers library.</summary>
    public bool IsSlow => settings.Slow;

    public int? TokenToId(string token) =>
        addedByContent.TryGetValue(token, out var id) ? id : model.TokenToId(token);

    string? TokenOrNull(int id) => addedById.TryGetValue(id, out var t) ? t : model.IdToToken(id);

    public string IdToToken(int id)
    {
        if ((uint)id >= (uint)VocabSize)
            throw new ArgumentOutOfRangeException(nameof(id), id, $"Token id {id} is outside the vocabulary [0, {VocabSize}).");
        return TokenOrNull(id) ?? settings.Specials.Unk ?? "";
    }

    public bool IsSpecial(int id) => specialIds.Contains(id);

    public bool IsContinuation(int id) => (uint)id < (uint)VocabSize && continuation[id];

    public BatchEncoding EncodeBatch(IReadOnlyList<string> texts, IReadOnlyList<string>? pairs = null, bool addSpecialTokens = true,
        int? maxLength = null, bool pad = true, PaddingSide? side = null) =>
        BatchEncoding.Encode(this, texts, pairs, addSpecialTokens, maxLength, pad, side);

    public IReadOnlyList<string> Tokenize(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return EncodeSequence(text, 0).Select(t => t.Token).ToArray();
    }

    public TokenizedText Encode(string text, string? pair = null, bool addSpecialTokens = true, int? maxLength = null)
    {
        ArgumentNullException.ThrowIfNull(text);
        var a = EncodeSequence(text, 0);
        var b = pair == null ? null : EncodeSequence(pair, 1);
        return EncodingAssembly.Assemble(a, b, settings.PostProcessor, addSpecialTokens, maxLength,
            slowTruncation: settings.Slow, templateTypes: !settings.Slow, settings.ReturnsTokenTypeIds);
    }

    List<EncodedToken> EncodeSequence(string text, int sequence)
    {
        var result = new List<EncodedToken>();
        var original = AlignedText.Original(text);
        if (settings.SlowPrefixSpace && text.Length > 0 && !PythonUnicode.IsPythonSpace(text[0]))
            original = new PrependNormalizer(" ").Normalize(original);
        int word = 0;
        int last = 0;
        foreach (var (start, end, token) in rawMatcher.IsEmpty ? [] : rawMatcher.Find(original.Text, settings.Slow))
        {
            EncodeSegment(original.Slice(last, start), sequence, ref word, result);
            var (s, e) = original.Span(start, end);
            result.Add(new EncodedToken(token.Id, token.Content, s, e, word++, sequence, 0, false));
            last = end;
        }
        EncodeSegment(original.Slice(last, original.Length), sequence, ref word, result);
        return result;
    }

    void EncodeSegment(AlignedText segment, int sequence, ref int word, List<EncodedToken> result)
    {
        if (segment.Length == 0) return;
        var normalized = settings.Normalizer?.Normalize(segment) ?? segment;
        if (normalizedMatcher.IsEmpty)
        {
            EncodeWords(normalized, sequence, ref word, result);
            return;
        }
        int last = 0;
        foreach (var (start, end, token) in normalizedMatcher.Find(normalized.Text, false))
        {
            EncodeWords(normalized.Slice(last, start), sequence, ref word, result);
            var (s, e) = normalized.Span(start, end);
            result.Add(new EncodedToken(token.Id, token.Content, s, e, word++, sequence, 0, false));
            last = end;
        }
        EncodeWords(normalized.Slice(last, normalized.Length), sequence, ref word, result);
    }

    void EncodeWords(AlignedText text, int sequence, ref int word, List<EncodedToken> result)
    {
        if (text.Length == 0) return;
        var words = new List<AlignedText>();
        if (settings.PreTokenizer == null) words.Add(text);
        else settings.PreTokenizer.PreTokenize(text, words);
        var pieces = new List<ModelToken>();
        foreach (var w in words)
        {
            pieces.Clear();
            model.Tokenize(w.Text, pieces);
            foreach (var p in pieces)
            {
                var (s, e) = w.Span(p.Start, p.End);
                result.Add(new EncodedToken(p.Id, IdToToken(p.Id), s, e, word, sequence, 0, false));
            }
            word++;
        }
    }

    public string Decode(IReadOnlyList<int> ids, bool skipSpecialTokens = false)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var tokens = new List<string>(ids.Count);
        foreach (var id in ids)
        {
            var token = IdToToken(id);
            if (skipSpecialTokens && specialIds.Contains(id)) continue;
            tokens.Add(token);
        }
        string text;
        if (settings.Slow)
        {
            var join = settings.SlowJoin ?? (run => string.Concat(settings.Decoder?.Decode(run) ?? run));
            var parts = new List<string>();
            var run = new List<string>();
            foreach (var token in tokens)
            {
                if (!settings.DecodedApart.Contains(token))
                {
                    run.Add(token);
                    continue;
                }
                if (run.Count > 0)
                {
                    var joined = join(run);
                    if (joined.Length > 0) parts.Add(joined);
                    run.Clear();
                }
                parts.Add(token);
            }
            if (run.Count > 0) parts.Add(join(run));
            text = string.Join(' ', parts);
        }
        else text = settings.Decoder == null ? string.Join(' ', tokens) : string.Concat(settings.Decoder.Decode(tokens));
        return settings.CleanUpTokenizationSpaces ? CleanUp.Transformers(text) : text;
    }

    /// <summary>Writes back the Hugging Face files this tokenizer was loaded from.</summary>
    public void Save(string directory)
    {
        ArgumentNullException.ThrowIfNull(directory);
        Directory.CreateDirectory(directory);
        foreach (var (name, content) in settings.Files) AtomicFile.WriteAllBytes(Path.Combine(directory, name), content);
    }

    internal static string Hash(IEnumerable<string> parts)
    {
        var sb = new StringBuilder();
        foreach (var p in parts) sb.Append(p).Append('\u0001');
        return Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes(sb.ToString())));
    }
}
