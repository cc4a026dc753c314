using System.Security.Cryptography;
using System.Text;

namespace Unmask.Tokenization;

/// <summary>
/// BERT WordPiece tokenizer with the exact behaviour of Hugging Face's slow <c>BertTokenizer</c> (transformers
/// 4.31): special tokens split off first (case-sensitive), BERT basic tokenization, greedy longest-match WordPiece.
/// Each token keeps the range of the text it came from. Thread-safe; instances are immutable apart from an internal
/// word cache.
/// </summary>
public sealed partial class WordPieceTokenizer : ITokenizer
{
    const string ContinuationPrefix = "##";

    readonly string[] vocab;                       // vocab.txt lines, index = id
    readonly string[] idTokens;                    // HF convert_ids_to_tokens, index = id
    readonly Dictionary<string, int> addedIds;     // special tokens missing from the vocabulary
    readonly WordPieceModel model;
    readonly bool[] specialIds, continuationIds;
    readonly SpecialTokenSplitter specialSplitter;
    readonly BasicTokenizer basic;
    readonly PostProcessor postProcessor;
    readonly WordCache<Piece[]> wordCache = new(1 << 18);
    [ThreadStatic] static CharBuffer? scratch;
    bool writesTokenizerJson = true;
    string? fingerprint;
    SpecialTokenSet? specialTokenSet;

    /// <summary>
    /// A tokenizer over <paramref name="vocab"/> (id = index). Special tokens absent from the vocabulary are added
    /// after it, as HF does; the unknown token must be in the vocabulary.
    /// </summary>
    public static WordPieceTokenizer FromVocab(
        IReadOnlyList<string> vocab, BertNormalizationOptions? normalization = null, BertSpecialTokens? specialTokens = null,
        int? modelMaxLength = 512, bool cleanUpTokenizationSpaces = true)
    {
        ArgumentNullException.ThrowIfNull(vocab);
        var specials = specialTokens ?? new BertSpecialTokens();
        var problem = CheckVocabulary(vocab, specials);
        if (problem != null) throw new ArgumentException(problem, nameof(vocab));
        return new WordPieceTokenizer(vocab.ToArray(), normalization ?? new BertNormalizationOptions(), specials,
            modelMaxLength, cleanUpTokenizationSpaces);
    }

    WordPieceTokenizer(string[] vocab, BertNormalizationOptions normalization, BertSpecialTokens specials,
        int? modelMaxLength, bool cleanUp)
    {
        this.vocab = vocab;
        Normalization = normalization;
        SpecialTokens = specials;
        ModelMaxLength = modelMaxLength;
        CleanUpTokenizationSpaces = cleanUp;

        // Later duplicates win, as in HF's dict-based vocabulary.
        var vocabulary = new Vocabulary(vocab.Select((token, id) => KeyValuePair.Create(token, id)));
        model = new WordPieceModel(vocabulary, specials.Unk, ContinuationPrefix, MaxInputCharsPerWord);

        var allSpecial = specials.All();
        var added = allSpecial.Where(t => vocabulary[t] == null).ToArray();
        addedIds = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < added.Length; i++) addedIds[added[i]] = vocab.Length + i;
        VocabSize = vocab.Length + added.Length;

        idTokens = new string[VocabSize];
        continuationIds = new bool[VocabSize];
        for (int id = 0; id < vocab.Length; id++)
        {
            // An id shadowed by a later duplicate has no token in HF's ids_to_tokens and decodes as the unknown token.
            idTokens[id] = vocabulary[vocab[id]] == id ? vocab[id] : specials.Unk;
            continuationIds[id] = vocab[id].Length > ContinuationPrefix.Length
                && vocab[id].StartsWith(ContinuationPrefix, StringComparison.Ordinal);
        }
        foreach (var (token, id) in addedIds) idTokens[id] = token;

        specialIds = new bool[VocabSize];
        foreach (var t in allSpecial) specialIds[Id(t)] = true;
        for (int id = 0; id < VocabSize; id++) continuationIds[id] &= !specialIds[id];

        UnkId = Id(specials.Unk);
        ClsId = Id(specials.Cls);
        SepId = Id(specials.Sep);
        PadId = Id(specials.Pad);
        MaskId = Id(specials.Mask);

        specialSplitter = new SpecialTokenSplitter(allSpecial, normalization.LowerCase);
        basic = new BasicTokenizer(normalization, new HashSet<string>(allSpecial, StringComparer.Ordinal));
        postProcessor = PostProcessor.Bert(specials.Cls, ClsId, specials.Sep, SepId);
    }

    int Id(string token) => TokenToId(token)!.Value;

    public BertNormalizationOptions Normalization { get; }
    public BertSpecialTokens SpecialTokens { get; }

    /// <summary>HF <c>model_max_length</c>; null when the files leave it unbounded.</summary>
    public int? ModelMaxLength { get; }

    /// <summary>HF <c>clean_up_tokenization_spaces</c>, applied by <see cref="Decode"/>.</summary>
    public bool CleanUpTokenizationSpaces { get; }

    /// <summary>Words longer than this many code points become the unknown token (100 in BERT, as vocab.txt cannot say otherwise).</summary>
    public int MaxInputCharsPerWord => 100;

    /// <summary>The vocabulary as in vocab.txt (id = index), without added tokens.</summary>
    public IReadOnlyList<string> Vocabulary => vocab;

    public int VocabSize { get; }
    public int ClsId { get; }
    public int SepId { get; }
    public int PadId { get; }
    public int MaskId { get; }
    public int UnkId { get; }
    public string MaskToken => SpecialTokens.Mask;

    /// <summary>tokenizer_config.json's tokenizer_class (BertTokenizer, DistilBertTokenizer, ElectraTokenizer...).</summary>
    public string TokenizerClass { get; private set; } = "BertTokenizer";

    public PaddingSide PaddingSide { get; private set; } = PaddingSide.Right;

    public bool ReturnsTokenTypeIds { get; private set; } = true;

    public SpecialTokenSet Specials => specialTokenSet ??= new SpecialTokenSet(SpecialTokens.Unk, SpecialTokens.Cls,
        SpecialTokens.Sep, SpecialTokens.Pad, SpecialTokens.Mask, null, null, SpecialTokens.Additional ?? [],
        SpecialTokens.All().Select(Id).Distinct().ToArray());

    public int? TokenToId(string token) => addedIds.TryGetValue(token, out var id) ? id : model.TokenToId(token);

    public string IdToToken(int id)
    {
        if ((uint)id >= (uint)VocabSize)
            throw new ArgumentOutOfRangeException(nameof(id), id, $"Token id {id} is outside the vocabulary [0, {VocabSize}).");
        return idTokens[id];
    }

    public bool IsSpecial(int id) => (uint)id < (uint)VocabSize && specialIds[id];

    public bool IsContinuation(int id) => (uint)id < (uint)VocabSize && continuationIds[id];

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
        // Unlike transformers, the pair keeps type id 1 without special tokens: the behaviour this class always had.
        return EncodingAssembly.Assemble(a, b, postProcessor, addSpecialTokens, maxLength,
            slowTruncation: true, templateTypes: true, ReturnsTokenTypeIds);
    }

    /// <summary>One piece of a whitespace token: its id, range in the token and word (punctuation split) among the token's.</summary>
    readonly record struct Piece(int Id, int Start, int End, int Word);

    List<EncodedToken> EncodeSequence(string text, int sequence)
    {
        var tokens = new List<EncodedToken>();
        var buffer = scratch ??= new CharBuffer();
        int word = 0;
        if (!specialSplitter.MayOccurIn(text))
        {
            // No special token can occur, not even after lowercasing: cleaning lowercases on the way.
            AppendSegment(text, Normalization.LowerCase, null, 0, buffer, sequence, ref word, tokens);
            return tokens;
        }
        var lowered = Normalization.LowerCase ? specialSplitter.LowerOutside(text) : AlignedText.Original(text);
        int start = 0;
        foreach (var (at, special) in specialSplitter.Find(lowered.Text))
        {
            AppendSegment(lowered.Text.AsSpan(start, at - start), false, lowered, start, buffer, sequence, ref word, tokens);
            var (s, e) = lowered.Span(at, at + special.Length);
            int id = Id(special);
            tokens.Add(new EncodedToken(id, idTokens[id], s, e, word++, sequence, 0, false));
            start = at + special.Length;
        }
        AppendSegment(lowered.Text.AsSpan(start), false, lowered, start, buffer, sequence, ref word, tokens);
        return tokens;
    }

    // A stretch of text between special tokens; lowered, when not null, maps its positions (from offset) to the text.
    void AppendSegment(ReadOnlySpan<char> segment, bool lower, AlignedText? lowered, int offset, CharBuffer buffer,
        int sequence, ref int word, List<EncodedToken> tokens)
    {
        if (segment.IsEmpty) return;
        var cleaned = basic.Clean(segment, lower, buffer);
        int pos = 0;
        while (BasicTokenizer.NextToken(cleaned, ref pos, out var range))
        {
            int tokenStart = range.Start.Value;
            var token = cleaned[range];
            if (!wordCache.TryGet(token, out var pieces))
            {
                var tokenText = token.ToString();
                pieces = PiecesOf(tokenText);
                wordCache.Add(tokenText, pieces);
            }
            foreach (var piece in pieces)
            {
                var (s, e) = buffer.Source(tokenStart + piece.Start, tokenStart + piece.End);
                (s, e) = lowered == null ? (offset + s, offset + e) : lowered.Span(offset + s, offset + e);
                tokens.Add(new EncodedToken(piece.Id, idTokens[piece.Id], s, e, word + piece.Word, sequence, 0, false));
            }
            if (pieces.Length > 0) word += pieces[^1].Word + 1;
        }
    }

    Piece[] PiecesOf(string token)
    {
        var normalized = basic.NormalizeWord(token);
        var alignment = normalized == token ? default : TextAlignment.Align(token, normalized, basic.NormalizeWord);
        var words = new List<Range>();
        basic.SplitOnPunctuation(normalized, words);
        var pieces = new List<Piece>();
        var found = new List<ModelToken>();
        for (int w = 0; w < words.Count; w++)
        {
            var (wordStart, wordLength) = words[w].GetOffsetAndLength(normalized.Length);
            found.Clear();
            model.Tokenize(normalized.Substring(wordStart, wordLength), found);
            foreach (var p in found)
            {
                int s = wordStart + p.Start, e = wordStart + p.End;
                if (alignment.Starts != null) (s, e) = (alignment.Starts[s], alignment.Ends[e - 1]);
                pieces.Add(new Piece(p.Id, s, e, w));
            }
        }
        return pieces.ToArray();
    }

    public string Decode(IReadOnlyList<int> ids, bool skipSpecialTokens = false)
    {
        ArgumentNullException.ThrowIfNull(ids);
        // Added tokens are decoded on their own, between spaces, as HF does.
        var parts = new List<string>();
        var run = new List<string>();
        foreach (var id in ids)
        {
            var token = IdToToken(id);
            if (skipSpecialTokens && specialIds[id]) continue;
            if (addedIds.ContainsKey(token))
            {
                if (run.Count > 0) parts.Add(JoinPieces(run));
                run.Clear();
                parts.Add(token);
            }
            else run.Add(token);
        }
        if (run.Count > 0) parts.Add(JoinPieces(run));
        var text = string.Join(' ', parts);
        return CleanUpTokenizationSpaces ? CleanUp.Transformers(text) : text;
    }

    static string JoinPieces(List<string> tokens) =>
        TrimPythonSpace(string.Join(' ', tokens).Replace(" " + ContinuationPrefix, "", StringComparison.Ordinal));

    static string TrimPythonSpace(string s)
    {
        int start = 0, end = s.Length;
        while (start < end && PythonUnicode.IsPythonSpace(s[start])) start++;
        while (end > start && PythonUnicode.IsPythonSpace(s[end - 1])) end--;
        return s[start..end];
    }

    public string Fingerprint => fingerprint ??= ComputeFingerprint();

    // Token stores cache encodings under this value: what goes into it, and how, must not change.
    string ComputeFingerprint()
    {
        var sb = new StringBuilder();
        sb.Append("wordpiece-v1\n");
        sb.Append($"lower={Normalization.LowerCase}\nstrip_accents={Normalization.StripAccents?.ToString() ?? "null"}\n");
        sb.Append($"chinese={Normalization.TokenizeChineseChars}\nmax_chars={MaxInputCharsPerWord}\n");
        sb.Append("specials=").AppendJoin('\u0001', SpecialTokens.All()).Append('\n');
        sb.Append($"unk={SpecialTokens.Unk}\u0001sep={SpecialTokens.Sep}\u0001pad={SpecialTokens.Pad}\u0001cls={SpecialTokens.Cls}\u0001mask={SpecialTokens.Mask}\n");
        foreach (var token in vocab) sb.Append(token).Append('\n');
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(sb.ToString())));
    }
}
