using System.Buffers;
using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;

namespace Unmask.Tokenization;

/// <summary>
/// BERT WordPiece tokenizer with the exact behaviour of Hugging Face's slow <c>BertTokenizer</c> (transformers
/// 4.31): special tokens split off first (case-sensitive), BERT basic tokenization, greedy longest-match WordPiece.
/// Thread-safe; instances are immutable apart from an internal word cache.
/// </summary>
public sealed partial class WordPieceTokenizer : ITokenizer
{
    const string ContinuationPrefix = "##";
    const int MaxCachedWords = 1 << 18;

    readonly string[] vocab;                       // vocab.txt lines, index = id
    readonly int[] addedIds;                       // ids of special tokens missing from the vocabulary
    readonly string[] idTokens;                    // HF convert_ids_to_tokens, index = id
    readonly Dictionary<string, int> tokenIds;     // vocabulary and added tokens
    readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> wordStarts;
    readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> continuations; // keyed without "##"
    readonly int longestWordStart, longestContinuation;
    readonly HashSet<string> addedTokens;
    readonly bool[] specialIds, continuationIds;
    readonly string[] noSplitAlternation;          // the order HF's lowercasing regex tries special tokens in
    readonly Dictionary<char, string[]> noSplitByFirstChar; // longest first, for the split on special tokens
    readonly SearchValues<char> noSplitFirstChars;
    readonly SearchValues<char> specialTokenTriggers;  // characters that are, or lowercase to, a special token's first
    readonly BasicTokenizer basic;
    bool writesTokenizerJson = true;
    readonly ConcurrentDictionary<string, int[]> wordCache = new(StringComparer.Ordinal);
    readonly ConcurrentDictionary<string, int[]>.AlternateLookup<ReadOnlySpan<char>> wordCacheLookup;
    int cachedWordCount;
    [ThreadStatic] static CharBuffer? scratch;
    string? fingerprint;
    SpecialTokenSet? specialTokenSet;
    PipelineTokenizer? offsetTracker;

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
        var problem = CheckVocabulary(vocab, specials, 100);
        if (problem != null) throw new ArgumentException(problem, nameof(vocab));
        return new WordPieceTokenizer(vocab.ToArray(), normalization ?? new BertNormalizationOptions(), specials,
            modelMaxLength, cleanUpTokenizationSpaces, 100);
    }

    WordPieceTokenizer(string[] vocab, BertNormalizationOptions normalization, BertSpecialTokens specials,
        int? modelMaxLength, bool cleanUp, int maxInputCharsPerWord)
    {
        this.vocab = vocab;
        Normalization = normalization;
        SpecialTokens = specials;
        ModelMaxLength = modelMaxLength;
        CleanUpTokenizationSpaces = cleanUp;
        MaxInputCharsPerWord = maxInputCharsPerWord;

        // Later duplicates win, as in HF's dict-based vocabulary.
        var vocabIds = new Dictionary<string, int>(vocab.Length, StringComparer.Ordinal);
        var continuationIdsByRest = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int id = 0; id < vocab.Length; id++)
        {
            var token = vocab[id];
            vocabIds[token] = id;
            longestWordStart = Math.Max(longestWordStart, token.Length);
            if (token.StartsWith(ContinuationPrefix, StringComparison.Ordinal))
            {
                continuationIdsByRest[token[ContinuationPrefix.Length..]] = id;
                longestContinuation = Math.Max(longestContinuation, token.Length - ContinuationPrefix.Length);
            }
        }
        wordStarts = vocabIds.GetAlternateLookup<ReadOnlySpan<char>>();
        continuations = continuationIdsByRest.GetAlternateLookup<ReadOnlySpan<char>>();

        var allSpecial = specials.All();
        tokenIds = new Dictionary<string, int>(vocabIds, StringComparer.Ordinal);
        var added = allSpecial.Where(t => !vocabIds.ContainsKey(t)).ToArray();
        addedTokens = new HashSet<string>(added, StringComparer.Ordinal);
        addedIds = new int[added.Length];
        for (int i = 0; i < added.Length; i++)
        {
            addedIds[i] = vocab.Length + i;
            tokenIds[added[i]] = addedIds[i];
        }
        VocabSize = vocab.Length + added.Length;

        idTokens = new string[VocabSize];
        continuationIds = new bool[VocabSize];
        for (int id = 0; id < vocab.Length; id++)
        {
            // An id shadowed by a later duplicate has no token in HF's ids_to_tokens and decodes as the unknown token.
            idTokens[id] = vocabIds[vocab[id]] == id ? vocab[id] : specials.Unk;
            continuationIds[id] = vocab[id].Length > ContinuationPrefix.Length
                && vocab[id].StartsWith(ContinuationPrefix, StringComparison.Ordinal);
        }
        for (int i = 0; i < added.Length; i++) idTokens[addedIds[i]] = added[i];

        specialIds = new bool[VocabSize];
        foreach (var t in allSpecial) specialIds[tokenIds[t]] = true;
        for (int id = 0; id < VocabSize; id++) continuationIds[id] &= !specialIds[id];

        UnkId = tokenIds[specials.Unk];
        ClsId = tokenIds[specials.Cls];
        SepId = tokenIds[specials.Sep];
        PadId = tokenIds[specials.Pad];
        MaskId = tokenIds[specials.Mask];

        var noSplit = allSpecial.Where(t => t.Length > 0).ToArray();
        noSplitAlternation = noSplit.OrderBy(t => t, CodePointComparer.Instance).Concat(noSplit).ToArray();
        noSplitByFirstChar = noSplit.GroupBy(t => t[0])
            .ToDictionary(g => g.Key, g => g.OrderByDescending(t => t.Length).ToArray());
        noSplitFirstChars = SearchValues.Create(noSplitByFirstChar.Keys.ToArray());
        specialTokenTriggers = SearchValues.Create(TriggerChars(noSplitByFirstChar.Keys, normalization.LowerCase));
        basic = new BasicTokenizer(normalization, new HashSet<string>(allSpecial, StringComparer.Ordinal));
        wordCacheLookup = wordCache.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    public BertNormalizationOptions Normalization { get; }
    public BertSpecialTokens SpecialTokens { get; }

    /// <summary>HF <c>model_max_length</c>; null when the files leave it unbounded.</summary>
    public int? ModelMaxLength { get; }

    /// <summary>HF <c>clean_up_tokenization_spaces</c>, applied by <see cref="Decode"/>.</summary>
    public bool CleanUpTokenizationSpaces { get; }

    /// <summary>Words longer than this many code points become the unknown token (100 in BERT).</summary>
    public int MaxInputCharsPerWord { get; }

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
        SpecialTokens.All().Select(t => tokenIds[t]).Distinct().ToArray());

    public int? TokenToId(string token) => tokenIds.TryGetValue(token, out var id) ? id : null;

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
        var ids = new List<int>();
        AppendIds(text, ids);
        return ids.Select(id => idTokens[id]).ToArray();
    }

    public TokenizedText Encode(string text, string? pair = null, bool addSpecialTokens = true, int? maxLength = null)
    {
        ArgumentNullException.ThrowIfNull(text);
        var first = new List<int>();
        AppendIds(text, first);
        List<int>? second = null;
        if (pair != null)
        {
            second = [];
            AppendIds(pair, second);
        }
        int specialCount = addSpecialTokens ? (second == null ? 2 : 3) : 0;
        if (maxLength is int max)
        {
            int least = specialCount + (second == null ? 1 : 0);
            if (max < least)
                throw new ArgumentOutOfRangeException(nameof(maxLength), max,
                    $"maxLength must be at least {least} to leave room for the special tokens.");
            Truncate(first, second, first.Count + (second?.Count ?? 0) + specialCount - max);
        }

        int length = first.Count + (second?.Count ?? 0) + specialCount;
        var ids = new int[length];
        var types = new int[length];
        var specialMask = new bool[length];
        int n = 0;
        if (addSpecialTokens) { specialMask[n] = true; ids[n++] = ClsId; }
        foreach (var id in first) ids[n++] = id;
        if (addSpecialTokens) { specialMask[n] = true; ids[n++] = SepId; }
        if (second != null)
        {
            int secondStart = n;
            foreach (var id in second) ids[n++] = id;
            if (addSpecialTokens) { specialMask[n] = true; ids[n++] = SepId; }
            if (ReturnsTokenTypeIds) types.AsSpan(secondStart).Fill(1);
        }
        var tokens = new string[length];
        for (int i = 0; i < length; i++) tokens[i] = idTokens[ids[i]];
        // Within a word every piece after the first is a continuation, and every word starts with a piece that is not.
        var wordIds = new int?[length];
        var sequenceIds = new int?[length];
        int firstStart = addSpecialTokens ? 1 : 0;
        MarkWords(firstStart, first.Count, 0);
        if (second != null) MarkWords(firstStart + first.Count + (addSpecialTokens ? 1 : 0), second.Count, 1);
        void MarkWords(int start, int count, int sequence)
        {
            int word = -1;
            for (int i = start; i < start + count; i++)
            {
                if (!continuationIds[ids[i]] || word < 0) word++;
                wordIds[i] = word;
                sequenceIds[i] = sequence;
            }
        }
        return new TokenizedText(ids, tokens, types, specialMask)
        {
            WordIds = wordIds,
            SequenceIds = sequenceIds,
            OffsetsSource = () => OffsetsOf(ids, text, pair, addSpecialTokens, maxLength),
        };
    }

    // The fast BERT pipeline tracks offsets through normalisation; it gives the same ids except where only the slow
    // tokenizer's extra steps (NFC, lowercasing before special tokens are split off) matter.
    TokenOffset[]? OffsetsOf(int[] ids, string text, string? pair, bool addSpecialTokens, int? maxLength)
    {
        var tracker = offsetTracker ??= new PipelineTokenizer(new PipelineSettings
        {
            Normalizer = new BertNormalizer(true, Normalization.TokenizeChineseChars, Normalization.StripAccents, Normalization.LowerCase),
            PreTokenizer = new BertPreTokenizer(),
            Model = new WordPieceModel(new Vocabulary(Enumerable.Range(0, VocabSize)
                    .Where(id => tokenIds[idTokens[id]] == id).Select(id => KeyValuePair.Create(idTokens[id], id))),
                SpecialTokens.Unk, ContinuationPrefix, MaxInputCharsPerWord),
            PostProcessor = PostProcessor.Bert(SpecialTokens.Cls, ClsId, SpecialTokens.Sep, SepId),
            AddedTokens = SpecialTokens.All().Select(t => new AddedToken(t, tokenIds[t], true)).ToArray(),
            Slow = true,
            Specials = Specials,
            IsContinuationToken = _ => false,
            Fingerprint = Fingerprint,
        });
        var tracked = tracker.Encode(text, pair, addSpecialTokens, maxLength);
        return tracked.InputIds.AsSpan().SequenceEqual(ids) ? tracked.Offsets : null;
    }

    // HF "longest_first": a single text loses its tail; of a pair, the longer part loses one token at a time (the
    // second one on ties).
    static void Truncate(List<int> first, List<int>? second, int remove)
    {
        if (remove <= 0) return;
        if (second == null)
        {
            first.RemoveRange(first.Count - remove, remove);
            return;
        }
        for (int i = 0; i < remove; i++)
        {
            if (first.Count > second.Count) first.RemoveAt(first.Count - 1);
            else if (second.Count > 0) second.RemoveAt(second.Count - 1);
        }
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
            if (addedTokens.Contains(token))
            {
                if (run.Count > 0) parts.Add(JoinPieces(run));
                run.Clear();
                parts.Add(token);
            }
            else run.Add(token);
        }
        if (run.Count > 0) parts.Add(JoinPieces(run));
        var text = string.Join(' ', parts);
        return CleanUpTokenizationSpaces ? CleanUpTokenization(text) : text;
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

    /// <summary>HF <c>clean_up_tokenization</c>: removes the space before punctuation and English contractions.</summary>
    static string CleanUpTokenization(string s) => s
        .Replace(" .", ".", StringComparison.Ordinal).Replace(" ?", "?", StringComparison.Ordinal)
        .Replace(" !", "!", StringComparison.Ordinal).Replace(" ,", ",", StringComparison.Ordinal)
        .Replace(" ' ", "'", StringComparison.Ordinal).Replace(" n't", "n't", StringComparison.Ordinal)
        .Replace(" 'm", "'m", StringComparison.Ordinal).Replace(" 's", "'s", StringComparison.Ordinal)
        .Replace(" 've", "'ve", StringComparison.Ordinal).Replace(" 're", "'re", StringComparison.Ordinal);

    public string Fingerprint => fingerprint ??= ComputeFingerprint();

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

    void AppendIds(string text, List<int> ids)
    {
        var buffer = scratch ??= new CharBuffer();
        if (text.AsSpan().IndexOfAny(specialTokenTriggers) < 0)
        {
            // No special token can occur, not even after lowercasing: one pass does it all.
            AppendSegmentIds(text, Normalization.LowerCase, buffer, ids);
            return;
        }
        // 1. Lowercase everything except special tokens, one code point at a time.
        string lowered = Normalization.LowerCase ? LowerOutsideSpecialTokens(text) : text;
        // 2. Split on special tokens (leftmost, longest), which are kept whole.
        var rest = lowered.AsSpan();
        int segmentStart = 0;
        int i = 0;
        while (true)
        {
            int hit = rest[i..].IndexOfAny(noSplitFirstChars);
            if (hit < 0) break;
            i += hit;
            var match = MatchSpecial(rest, i, longest: true);
            if (match == null)
            {
                i++;
                continue;
            }
            AppendSegmentIds(rest[segmentStart..i], false, buffer, ids);
            ids.Add(tokenIds[match]);
            i += match.Length;
            segmentStart = i;
        }
        AppendSegmentIds(rest[segmentStart..], false, buffer, ids);
    }

    string LowerOutsideSpecialTokens(string text)
    {
        var span = text.AsSpan();
        if (span.IndexOfAny(noSplitFirstChars) < 0) return BasicTokenizer.LowerPerCodePoint(text);
        var sb = new StringBuilder(text.Length);
        int start = 0;
        int i = 0;
        while (true)
        {
            int hit = span[i..].IndexOfAny(noSplitFirstChars);
            if (hit < 0) break;
            i += hit;
            var match = MatchSpecial(span, i, longest: false);
            if (match == null)
            {
                i++;
                continue;
            }
            BasicTokenizer.AppendLower(sb, span[start..i]);
            sb.Append(match);
            i += match.Length;
            start = i;
        }
        BasicTokenizer.AppendLower(sb, span[start..]);
        return sb.ToString();
    }

    // HF lowercases with a regex that tries the special tokens in a fixed order (first match wins), but splits with
    // a trie (longest match wins).
    string? MatchSpecial(ReadOnlySpan<char> text, int at, bool longest)
    {
        var candidates = longest ? noSplitByFirstChar[text[at]] : noSplitAlternation;
        foreach (var token in candidates)
            if (text[at..].StartsWith(token, StringComparison.Ordinal)) return token;
        return null;
    }

    void AppendSegmentIds(ReadOnlySpan<char> segment, bool lower, CharBuffer buffer, List<int> ids)
    {
        if (segment.IsEmpty) return;
        var cleaned = basic.Clean(segment, lower, buffer);
        List<string>? words = null;
        int pos = 0;
        while (BasicTokenizer.NextToken(cleaned, ref pos, out var range))
        {
            var token = cleaned[range];
            if (!wordCacheLookup.TryGetValue(token, out var cached))
            {
                words ??= [];
                words.Clear();
                var tokenText = token.ToString();
                basic.SplitWord(tokenText, words);
                var pieceIds = new List<int>();
                foreach (var word in words) AppendWordPieces(word, pieceIds);
                cached = pieceIds.ToArray();
                if (Interlocked.Increment(ref cachedWordCount) > MaxCachedWords)
                {
                    wordCache.Clear();
                    Interlocked.Exchange(ref cachedWordCount, 0);
                }
                wordCache.TryAdd(tokenText, cached);
            }
            ids.AddRange(cached);
        }
    }

    void AppendWordPieces(string word, List<int> ids)
    {
        if (word.Length > MaxInputCharsPerWord && PythonUnicode.CountCodePoints(word) > MaxInputCharsPerWord)
        {
            ids.Add(UnkId);
            return;
        }
        int mark = ids.Count;
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
                if (lookup.TryGetValue(word.AsSpan(start, end - start), out var id))
                {
                    found = id;
                    break;
                }
            }
            if (found < 0)
            {
                ids.RemoveRange(mark, ids.Count - mark);
                ids.Add(UnkId);
                return;
            }
            ids.Add(found);
            start = end;
        }
    }

    static char[] TriggerChars(IEnumerable<char> firstChars, bool lowerCase)
    {
        var first = new HashSet<char>(firstChars);
        var triggers = new HashSet<char>(first);
        if (lowerCase)
        {
            for (int c = 0; c < 0x10000; c++)
            {
                if (char.IsSurrogate((char)c)) continue;
                int lowered = c == 0x130 ? 'i' : PythonUnicode.LowerSingle(c);
                if (lowered < 0x10000 && first.Contains((char)lowered)) triggers.Add((char)c);
            }
            // Astral characters lowercase to astral ones: any high surrogate may start such a special token.
            if (first.Any(char.IsHighSurrogate))
                for (int c = 0xD800; c < 0xDC00; c++) triggers.Add((char)c);
        }
        return triggers.ToArray();
    }

    /// <summary>Python's string order (by code point), which differs from UTF-16 order above the surrogates.</summary>
    sealed class CodePointComparer : IComparer<string>
    {
        public static readonly CodePointComparer Instance = new();

        public int Compare(string? x, string? y)
        {
            if (x == null || y == null) return string.CompareOrdinal(x, y);
            int i = 0, j = 0;
            while (i < x.Length && j < y.Length)
            {
                int a = PythonUnicode.CodePointAt(x, i, out int la), b = PythonUnicode.CodePointAt(y, j, out int lb);
                if (a != b) return a.CompareTo(b);
                i += la;
                j += lb;
            }
            return (x.Length - i).CompareTo(y.Length - j);
        }
    }
}
