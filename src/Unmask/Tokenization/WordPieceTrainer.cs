using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Unmask.Tokenization;

/// <summary>
/// Options of <see cref="WordPieceTrainer"/>. <see cref="MinFrequency"/> is the least number of occurrences of a
/// pair worth merging; <see cref="Threads"/> 0 means one per processor.
/// </summary>
public sealed record WordPieceTrainerOptions(
    int VocabSize = 16384, bool LowerCase = true, bool? StripAccents = null, int MinFrequency = 2, int Threads = 0,
    bool TokenizeChineseChars = true, int ModelMaxLength = 512);

/// <summary>
/// Learns a BERT WordPiece vocabulary the way Hugging Face tokenizers' WordPiece trainer does: words from BERT's basic
/// tokenization (the same as encoding), split into characters with "##" on all but the first, then BPE merges of the
/// most frequent adjacent pair until the vocabulary is full.
/// </summary>
/// <remarks>
/// Vocabulary layout: [PAD]=0, [UNK]=1, [CLS]=2, [SEP]=3, [MASK]=4; every character seen, in code point order;
/// the "##" form of every character seen (punctuation excepted: it is always a word of its own); then the merged
/// pieces in the order learned. The result is independent of the number of threads. The vocabulary is smaller than
/// requested only when no pair occurs <see cref="WordPieceTrainerOptions.MinFrequency"/> times any more.
/// </remarks>
public static class WordPieceTrainer
{
    static readonly string[] Specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];
    const int LinesPerBatch = 4096;

    public static WordPieceTokenizer Train(
        IEnumerable<string> lines, WordPieceTrainerOptions options, IProgress<string>? progress = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(lines);
        ArgumentNullException.ThrowIfNull(options);
        if (options.VocabSize <= Specials.Length)
            throw new ArgumentOutOfRangeException(nameof(options), options.VocabSize, $"VocabSize must exceed the {Specials.Length} special tokens.");
        if (options.MinFrequency < 1)
            throw new ArgumentOutOfRangeException(nameof(options), options.MinFrequency, "MinFrequency must be at least 1.");
        if (options.Threads < 0)
            throw new ArgumentOutOfRangeException(nameof(options), options.Threads, "Threads must be 0 (all processors) or more.");

        var normalization = new BertNormalizationOptions(options.LowerCase, options.StripAccents, options.TokenizeChineseChars);
        var words = CountWords(lines, normalization, options.Threads == 0 ? Environment.ProcessorCount : options.Threads, ct);
        progress?.Report($"{words.Count:N0} distinct words, {words.Values.Sum():N0} in all");
        var vocab = new BpeLearner(words, options, progress, ct).Learn();
        progress?.Report($"vocabulary of {vocab.Count:N0} tokens");
        return WordPieceTokenizer.FromVocab(vocab, normalization, new BertSpecialTokens(), options.ModelMaxLength);
    }

    static Dictionary<string, long> CountWords(
        IEnumerable<string> lines, BertNormalizationOptions normalization, int threads, CancellationToken ct)
    {
        var basic = new BasicTokenizer(normalization, new HashSet<string>());
        // Whitespace tokens first: lowercasing, accent stripping and punctuation split then run once per distinct token.
        var tokens = new Dictionary<string, long>(StringComparer.Ordinal);
        var gate = new object();
        Parallel.ForEach(
            lines.Chunk(LinesPerBatch),
            new ParallelOptions { MaxDegreeOfParallelism = threads, CancellationToken = ct },
            () => new Dictionary<string, long>(StringComparer.Ordinal),
            (batch, state, local) =>
            {
                CountTokens(batch, basic, normalization.LowerCase, local);
                return local;
            },
            local =>
            {
                lock (gate) MergeCounts(tokens, local);
            });

        var words = new Dictionary<string, long>(StringComparer.Ordinal);
        var split = new List<string>();
        foreach (var (token, count) in tokens)
        {
            split.Clear();
            basic.SplitWord(token, split);
            foreach (var word in split) CollectionsMarshal.GetValueRefOrAddDefault(words, word, out _) += count;
        }
        return words;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void CountTokens(string[] lines, BasicTokenizer basic, bool lowerCase, Dictionary<string, long> counts)
    {
        var lookup = counts.GetAlternateLookup<ReadOnlySpan<char>>();
        var buffer = new CharBuffer();
        foreach (var line in lines)
        {
            var cleaned = basic.Clean(line, lowerCase, buffer);
            int pos = 0;
            while (BasicTokenizer.NextToken(cleaned, ref pos, out var range))
                CollectionsMarshal.GetValueRefOrAddDefault(lookup, cleaned[range], out _)++;
        }
    }

    static void MergeCounts(Dictionary<string, long> into, Dictionary<string, long> from)
    {
        foreach (var (key, count) in from) CollectionsMarshal.GetValueRefOrAddDefault(into, key, out _) += count;
    }

    /// <summary>BPE over distinct words, updating only the words that contain the merged pair.</summary>
    sealed class BpeLearner
    {
        readonly WordPieceTrainerOptions options;
        readonly IProgress<string>? progress;
        readonly CancellationToken ct;
        readonly List<string> vocab = [];
        readonly Dictionary<string, int> ids = new(StringComparer.Ordinal);
        readonly List<int[]> symbols = [];     // per word: its current pieces, first Length[w] entries valid
        readonly List<int> lengths = [];
        readonly List<long> frequencies = [];
        readonly Dictionary<long, long> pairCounts = [];
        readonly Dictionary<long, List<int>> pairWords = [];  // superset of the words holding the pair
        readonly PriorityQueue<long, (long Count, long Pair)> queue = new(Comparer<(long Count, long Pair)>.Create(
            (x, y) => x.Count != y.Count ? y.Count.CompareTo(x.Count) : x.Pair.CompareTo(y.Pair)));

        public BpeLearner(Dictionary<string, long> words, WordPieceTrainerOptions options, IProgress<string>? progress, CancellationToken ct)
        {
            this.options = options;
            this.progress = progress;
            this.ct = ct;
            foreach (var s in Specials) Add(s);
            var alphabet = ChooseAlphabet(words, options.VocabSize - Specials.Length);
            foreach (var cp in alphabet) Add(char.ConvertFromUtf32(cp));
            foreach (var cp in alphabet)
                if (!PythonUnicode.IsPunctuation(cp)) Add("##" + char.ConvertFromUtf32(cp));

            // Distinct words in ordinal order, so that ids and tie-breaks do not depend on thread scheduling.
            var pieces = new List<int>();
            foreach (var word in words.Keys.Order(StringComparer.Ordinal))
            {
                pieces.Clear();
                bool known = true;
                for (int i = 0; i < word.Length && known;)
                {
                    int cp = PythonUnicode.CodePointAt(word, i, out int len);
                    var piece = (i == 0 ? "" : "##") + word.Substring(i, len);
                    known = ids.TryGetValue(piece, out var id);
                    pieces.Add(id);
                    i += len;
                }
                if (!known || pieces.Count < 2) continue;
                symbols.Add(pieces.ToArray());
                lengths.Add(pieces.Count);
                frequencies.Add(words[word]);
            }
        }

        int Add(string token)
        {
            if (ids.TryGetValue(token, out var id)) return id;
            ids[token] = vocab.Count;
            vocab.Add(token);
            return vocab.Count - 1;
        }

        // Every character fits unless the alphabet alone overflows the budget; then the rarest characters go.
        static int[] ChooseAlphabet(Dictionary<string, long> words, int budget)
        {
            var counts = new Dictionary<int, long>();
            foreach (var (word, count) in words)
            {
                for (int i = 0; i < word.Length;)
                {
                    int cp = PythonUnicode.CodePointAt(word, i, out int len);
                    if (!char.IsSurrogate(word[i]) || len == 2) CollectionsMarshal.GetValueRefOrAddDefault(counts, cp, out _) += count;
                    i += len;
                }
            }
            var kept = new List<int>();
            int used = 0;
            foreach (var (cp, _) in counts.OrderByDescending(kv => kv.Value).ThenBy(kv => kv.Key))
            {
                int cost = PythonUnicode.IsPunctuation(cp) ? 1 : 2;
                if (used + cost > budget) continue;
                used += cost;
                kept.Add(cp);
            }
            kept.Sort();
            return kept.ToArray();
        }

        public List<string> Learn()
        {
            for (int w = 0; w < symbols.Count; w++)
            {
                var s = symbols[w];
                for (int i = 0; i + 1 < s.Length; i++)
                {
                    long pair = Key(s[i], s[i + 1]);
                    CollectionsMarshal.GetValueRefOrAddDefault(pairCounts, pair, out _) += frequencies[w];
                    AddWord(pair, w);
                }
            }
            foreach (var (pair, count) in pairCounts) queue.Enqueue(pair, (count, pair));

            var seen = new int[symbols.Count];
            var delta = new Dictionary<long, long>();
            int merges = 0;
            while (vocab.Count < options.VocabSize && queue.TryDequeue(out var pair, out var priority))
            {
                long count = pairCounts.GetValueOrDefault(pair);
                if (count != priority.Count)
                {
                    // A stale entry: counts that dropped are re-queued here, counts that grew were queued already.
                    if (count > 0 && count < priority.Count) queue.Enqueue(pair, (count, pair));
                    continue;
                }
                if (count < options.MinFrequency) break;
                if ((++merges & 255) == 0)
                {
                    ct.ThrowIfCancellationRequested();
                    if ((merges & 4095) == 0) progress?.Report($"{merges:N0} merges, vocabulary {vocab.Count:N0}/{options.VocabSize:N0}");
                }
                int a = (int)(pair >> 32), b = (int)pair;
                int merged = Add(vocab[a] + vocab[b][2..]);
                delta.Clear();
                foreach (var w in pairWords[pair])
                {
                    if (seen[w] == merges) continue;
                    seen[w] = merges;
                    MergeInWord(w, a, b, merged, delta);
                }
                pairWords.Remove(pair);
                foreach (var (p, d) in delta)
                {
                    if (d == 0) continue;
                    ref long c = ref CollectionsMarshal.GetValueRefOrAddDefault(pairCounts, p, out _);
                    c += d;
                    if (c == 0) pairCounts.Remove(p);
                    else if (d > 0) queue.Enqueue(p, (c, p));
                }
            }
            return vocab;
        }

        void MergeInWord(int w, int a, int b, int merged, Dictionary<long, long> delta)
        {
            var s = symbols[w];
            int n = lengths[w];
            bool present = false;
            for (int i = 0; i + 1 < n && !present; i++) present = s[i] == a && s[i + 1] == b;
            if (!present) return;
            long f = frequencies[w];
            for (int i = 0; i + 1 < n; i++) CollectionsMarshal.GetValueRefOrAddDefault(delta, Key(s[i], s[i + 1]), out _) -= f;
            int m = 0;
            for (int i = 0; i < n; i++)
            {
                if (i + 1 < n && s[i] == a && s[i + 1] == b)
                {
                    s[m++] = merged;
                    i++;
                }
                else s[m++] = s[i];
            }
            lengths[w] = m;
            for (int i = 0; i + 1 < m; i++)
            {
                long pair = Key(s[i], s[i + 1]);
                CollectionsMarshal.GetValueRefOrAddDefault(delta, pair, out _) += f;
                if (s[i] == merged || s[i + 1] == merged) AddWord(pair, w);
            }
        }

        void AddWord(long pair, int w)
        {
            ref var list = ref CollectionsMarshal.GetValueRefOrAddDefault(pairWords, pair, out _);
            list ??= [];
            if (list.Count == 0 || list[^1] != w) list.Add(w);
        }

        static long Key(int a, int b) => ((long)a << 32) | (uint)b;
    }
}
