using System.Collections.Concurrent;
using System.Text;

namespace Unmask.Tokenization;

public sealed record WordPieceTrainerOptions(int VocabSize = 16384, bool LowerCase = true, bool? StripAccents = null, int MinFrequency = 2);

/// <summary>
/// Learns a WordPiece vocabulary the way Hugging Face's `tokenizers` WordPiece trainer does: words from the
/// BasicTokenizer, split into characters (non-initial ones carrying "##"), then repeatedly merge the most frequent
/// adjacent pair until the vocabulary is full. Ties go to the pair of earlier-created symbols, so the result is
/// deterministic. Specials come first: [PAD]=0, [UNK]=1, [CLS]=2, [SEP]=3, [MASK]=4.
/// </summary>
public static class WordPieceTrainer
{
    public static WordPieceTokenizer Train(IEnumerable<string> lines, WordPieceTrainerOptions options, IProgress<string>? progress = null,
        CancellationToken ct = default)
    {
        var specials = new BertSpecialTokens();
        string[] specialOrder = [specials.Pad, specials.Unk, specials.Cls, specials.Sep, specials.Mask];
        if (options.VocabSize < specialOrder.Length + 1) throw new UnmaskException($"vocabulary size {options.VocabSize} is too small");
        var normalization = new BertNormalizationOptions(options.LowerCase, options.StripAccents);

        progress?.Report("counting words");
        var counts = CountWords(lines, normalization, ct);

        // Symbols: the alphabet (in both word-initial and continuation form), then merges.
        var symbols = new List<string>();
        var symbolIds = new Dictionary<string, int>(StringComparer.Ordinal);
        int Symbol(string s)
        {
            if (symbolIds.TryGetValue(s, out var id)) return id;
            symbolIds[s] = symbols.Count;
            symbols.Add(s);
            return symbols.Count - 1;
        }
        var words = counts.OrderBy(kv => kv.Key, StringComparer.Ordinal).ToArray();
        var alphabet = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var (word, _) in words)
        {
            bool first = true;
            foreach (var rune in word.EnumerateRunes())
            {
                alphabet.Add(first ? rune.ToString() : "##" + rune);
                first = false;
            }
        }
        foreach (var s in alphabet) Symbol(s);

        var pieces = new List<int>[words.Length];
        var frequency = new long[words.Length];
        for (int w = 0; w < words.Length; w++)
        {
            frequency[w] = words[w].Value;
            pieces[w] = [];
            bool first = true;
            foreach (var rune in words[w].Key.EnumerateRunes())
            {
                pieces[w].Add(symbolIds[first ? rune.ToString() : "##" + rune]);
                first = false;
            }
        }

        var pairCounts = new Dictionary<(int, int), long>();
        var pairWords = new Dictionary<(int, int), HashSet<int>>();
        for (int w = 0; w < words.Length; w++)
            for (int i = 0; i + 1 < pieces[w].Count; i++) AddPair((pieces[w][i], pieces[w][i + 1]), frequency[w], w);

        void AddPair((int, int) pair, long count, int word)
        {
            pairCounts[pair] = pairCounts.GetValueOrDefault(pair) + count;
            if (!pairWords.TryGetValue(pair, out var set)) pairWords[pair] = set = [];
            set.Add(word);
        }

        var queue = new PriorityQueue<(int A, int B), (long NegCount, int A, int B)>();
        foreach (var (pair, count) in pairCounts) queue.Enqueue(pair, (-count, pair.Item1, pair.Item2));

        int target = options.VocabSize - specialOrder.Length;
        progress?.Report("merging");
        while (symbols.Count < target && queue.TryDequeue(out var pair, out var priority))
        {
            ct.ThrowIfCancellationRequested();
            long current = pairCounts.GetValueOrDefault(pair);
            if (current != -priority.NegCount) continue; // stale entry; the live count was queued again
            if (current < options.MinFrequency) break;
            var right = symbols[pair.B];
            var merged = symbols[pair.A] + (right.StartsWith("##", StringComparison.Ordinal) ? right[2..] : right);
            int mergedId = Symbol(merged);
            var touched = new Dictionary<(int, int), long>();
            foreach (var w in pairWords[pair].ToArray())
            {
                var p = pieces[w];
                for (int i = 0; i + 1 < p.Count; i++)
                {
                    if (p[i] != pair.A || p[i + 1] != pair.B) continue;
                    long f = frequency[w];
                    if (i > 0) Shift(touched, (p[i - 1], p[i]), -f);
                    if (i + 2 < p.Count) Shift(touched, (p[i + 1], p[i + 2]), -f);
                    Shift(touched, pair, -f);
                    p[i] = mergedId;
                    p.RemoveAt(i + 1);
                    if (i > 0)
                    {
                        Shift(touched, (p[i - 1], p[i]), f);
                        pairWords.TryAdd((p[i - 1], p[i]), []);
                        pairWords[(p[i - 1], p[i])].Add(w);
                    }
                    if (i + 1 < p.Count)
                    {
                        Shift(touched, (p[i], p[i + 1]), f);
                        pairWords.TryAdd((p[i], p[i + 1]), []);
                        pairWords[(p[i], p[i + 1])].Add(w);
                    }
                }
            }
            foreach (var (changed, delta) in touched)
            {
                long updated = pairCounts.GetValueOrDefault(changed) + delta;
                if (updated <= 0)
                {
                    pairCounts.Remove(changed);
                    pairWords.Remove(changed);
                }
                else
                {
                    pairCounts[changed] = updated;
                    queue.Enqueue(changed, (-updated, changed.Item1, changed.Item2));
                }
            }
        }

        var vocab = new List<string>(specialOrder);
        vocab.AddRange(symbols.Where(s => !specialOrder.Contains(s)));
        return new WordPieceTokenizer(vocab, normalization, specials);
    }

    static void Shift(Dictionary<(int, int), long> touched, (int, int) pair, long delta) =>
        touched[pair] = touched.GetValueOrDefault(pair) + delta;

    static Dictionary<string, long> CountWords(IEnumerable<string> lines, BertNormalizationOptions normalization, CancellationToken ct)
    {
        var total = new ConcurrentDictionary<string, long>(StringComparer.Ordinal);
        Parallel.ForEach(lines.Chunk(2048), new ParallelOptions { CancellationToken = ct },
            () => new Dictionary<string, long>(StringComparer.Ordinal),
            (chunk, _, local) =>
            {
                foreach (var line in chunk)
                    foreach (var word in BasicTokenizer.Split(line, normalization))
                        local[word] = local.GetValueOrDefault(word) + 1;
                return local;
            },
            local =>
            {
                foreach (var (word, count) in local) total.AddOrUpdate(word, count, (_, c) => c + count);
            });
        return new Dictionary<string, long>(total, StringComparer.Ordinal);
    }
}
