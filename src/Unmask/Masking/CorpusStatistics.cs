using System.Text;
using System.Text.Json;

namespace Unmask.Masking;

/// <summary>An n-gram of whole words (each word its token ids) that occurs together far more often than chance.</summary>
public sealed record Collocation(int[][] Words, long Count, double Pmi);

/// <summary>
/// Corpus statistics for the <c>weighted</c> and <c>pmi</c> strategies: how often each token occurs and, for
/// <c>pmi</c>, the collocations of the corpus.
/// </summary>
/// <remarks>
/// <para>Statistics read at most the first <see cref="TokenLimit"/> tokens of the corpus, one document at a time;
/// words are found with <see cref="WordBoundaries"/>, and special tokens (such as [UNK]) end an n-gram.</para>
/// <para>Collocations follow PMI-Masking (Levine et al., 2021). With N the number of words and c(g) the count of the
/// word n-gram g, p(g) = c(g) / N. For an n-gram of 2..<see cref="PmiOptions.MaxWords"/> words its score is the
/// smallest, over every way σ of cutting it into two or more contiguous parts, of log p(g) − Σ_{s∈σ} log p(s): high
/// only when the n-gram is more frequent than every combination of its parts would predict, so "of the" inside a
/// trigram does not make the trigram look like a unit. N-grams seen fewer than <see cref="PmiOptions.MinCount"/>
/// times are skipped (counting proceeds by length and only extends n-grams whose two (n−1)-word parts are frequent
/// enough, which skips nothing that could qualify); of those with a positive score the
/// <see cref="PmiOptions.Collocations"/> highest become collocations.</para>
/// </remarks>
public sealed class CorpusStatistics
{
    /// <summary>Tokens read at most; enough for stable frequencies, and bounds the memory of n-gram counting.</summary>
    public const long TokenLimit = 20_000_000;

    public required long[] TokenCounts { get; init; }
    public required long TotalTokens { get; init; }
    public IReadOnlyList<Collocation> Collocations { get; init; } = [];

    /// <summary>Counts tokens, and collocations when <paramref name="collocations"/> is given.</summary>
    public static CorpusStatistics Compute(IEnumerable<int[]> documents, WordBoundaries boundaries, PmiOptions? collocations,
        CancellationToken ct = default)
    {
        var counts = new long[boundaries.VocabSize];
        long total = 0;
        var words = new WordTable(boundaries.VocabSize);
        var sequence = new List<int>();
        var spans = new List<WordSpan>();
        foreach (var doc in documents)
        {
            ct.ThrowIfCancellationRequested();
            if (total >= TokenLimit) break;
            foreach (var id in doc)
                if (id >= 0 && id < counts.Length) counts[id]++;
            total += doc.Length;
            if (collocations is null) continue;
            var row = Array.ConvertAll(doc, x => (long)x);
            spans.Clear();
            boundaries.Words(row, 0, spans);
            for (int i = 0; i < spans.Count; i++)
            {
                if (i > 0 && spans[i].Start != spans[i - 1].End) sequence.Add(-1);
                sequence.Add(words.Intern(row.AsSpan(spans[i].Start, spans[i].Length)));
            }
            sequence.Add(-1);
        }
        var result = collocations is null ? [] : FindCollocations(sequence, words, collocations, ct);
        return new CorpusStatistics { TokenCounts = counts, TotalTokens = total, Collocations = result };
    }

    static List<Collocation> FindCollocations(List<int> sequence, WordTable words, PmiOptions options, CancellationToken ct)
    {
        long n = sequence.Count(w => w >= 0);
        var levels = new List<Dictionary<Gram, long>> { new() };
        foreach (var w in sequence)
            if (w >= 0) levels[0][new Gram(w)] = levels[0].GetValueOrDefault(new Gram(w)) + 1;
        for (int length = 2; length <= options.MaxWords; length++)
        {
            ct.ThrowIfCancellationRequested();
            var shorter = levels[length - 2];
            var counts = new Dictionary<Gram, long>();
            for (int i = 0; i + length <= sequence.Count; i++)
            {
                var gram = Gram.At(sequence, i, length);
                if (gram.Length != length) continue;
                if (shorter.GetValueOrDefault(gram.Slice(0, length - 1)) < options.MinCount ||
                    shorter.GetValueOrDefault(gram.Slice(1, length - 1)) < options.MinCount) continue;
                counts[gram] = counts.GetValueOrDefault(gram) + 1;
            }
            levels.Add(counts);
        }
        double LogP(Gram g) => Math.Log((double)levels[g.Length - 1][g] / n);
        var scored = new List<(Gram Gram, long Count, double Pmi)>();
        for (int length = 2; length <= options.MaxWords; length++)
            foreach (var (gram, count) in levels[length - 1])
            {
                if (count < options.MinCount) continue;
                double whole = LogP(gram), pmi = double.PositiveInfinity;
                for (int cuts = 1; cuts < 1 << (length - 1); cuts++)
                {
                    double parts = 0;
                    int start = 0;
                    for (int k = 0; k < length; k++)
                        if (k == length - 1 || (cuts & (1 << k)) != 0)
                        {
                            parts += LogP(gram.Slice(start, k + 1 - start));
                            start = k + 1;
                        }
                    pmi = Math.Min(pmi, whole - parts);
                }
                if (pmi > 0) scored.Add((gram, count, pmi));
            }
        return scored
            .OrderByDescending(s => s.Pmi).ThenByDescending(s => s.Count).ThenBy(s => s.Gram.ToString(), StringComparer.Ordinal)
            .Take(options.Collocations)
            .Select(s => new Collocation(s.Gram.Ids().Select(words.Tokens).ToArray(), s.Count, s.Pmi))
            .ToList();
    }

    static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    public void Save(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        File.WriteAllText(path + ".tmp", JsonSerializer.Serialize(this, Json));
        File.Move(path + ".tmp", path, overwrite: true);
    }

    public static CorpusStatistics Load(string path)
    {
        try
        {
            return JsonSerializer.Deserialize<CorpusStatistics>(File.ReadAllText(path), Json)
                ?? throw new UnmaskException($"{path}: empty corpus statistics");
        }
        catch (JsonException e)
        {
            throw new UnmaskException($"{path}: invalid corpus statistics ({e.Message})", e);
        }
    }

    /// <summary>The statistics cached at <paramref name="path"/>, computed and written there the first time.</summary>
    public static CorpusStatistics LoadOrCompute(string path, Func<CorpusStatistics> compute)
    {
        if (File.Exists(path)) return Load(path);
        var statistics = compute();
        statistics.Save(path);
        return statistics;
    }

    /// <summary>
    /// Ids for words: a one-token word is its token id, a longer word an id past the vocabulary, so the common case
    /// needs no lookup.
    /// </summary>
    internal sealed class WordTable(int vocabSize)
    {
        readonly Dictionary<string, int> _ids = new(StringComparer.Ordinal);
        readonly List<int[]> _pieces = [];

        public int Intern(ReadOnlySpan<long> tokens)
        {
            if (tokens.Length == 1) return (int)tokens[0];
            var key = Key(tokens);
            if (_ids.TryGetValue(key, out var id)) return id;
            id = vocabSize + _pieces.Count;
            _ids.Add(key, id);
            var pieces = new int[tokens.Length];
            for (int i = 0; i < tokens.Length; i++) pieces[i] = (int)tokens[i];
            _pieces.Add(pieces);
            return id;
        }

        /// <summary>The id of a known word, or −1.</summary>
        public int Find(ReadOnlySpan<long> tokens) =>
            tokens.Length == 1 ? (int)tokens[0] : _ids.TryGetValue(Key(tokens), out var id) ? id : -1;

        public int[] Tokens(int id) => id < vocabSize ? [id] : _pieces[id - vocabSize];

        static string Key(ReadOnlySpan<long> tokens)
        {
            var sb = new StringBuilder(tokens.Length * 6);
            foreach (var t in tokens) sb.Append(t).Append(',');
            return sb.ToString();
        }
    }

    /// <summary>A word n-gram of up to five word ids (unused slots −1), usable as a dictionary key.</summary>
    internal readonly record struct Gram(int A, int B = -1, int C = -1, int D = -1, int E = -1)
    {
        public const int MaxLength = 5;

        public int Length => E >= 0 ? 5 : D >= 0 ? 4 : C >= 0 ? 3 : B >= 0 ? 2 : 1;

        public int this[int i] => i switch { 0 => A, 1 => B, 2 => C, 3 => D, _ => E };

        public IEnumerable<int> Ids()
        {
            var self = this;
            return Enumerable.Range(0, Length).Select(i => self[i]);
        }

        public Gram Slice(int start, int length)
        {
            var self = this;
            return From(i => self[start + i], length);
        }

        /// <summary>The n-gram of <paramref name="length"/> words at <paramref name="start"/>, shorter if a −1 (a break) interrupts it.</summary>
        public static Gram At(IReadOnlyList<int> sequence, int start, int length)
        {
            int n = 0;
            while (n < length && sequence[start + n] >= 0) n++;
            return n == 0 ? new Gram(-1) : From(i => sequence[start + i], n);
        }

        static Gram From(Func<int, int> id, int length) => new(id(0),
            length > 1 ? id(1) : -1, length > 2 ? id(2) : -1, length > 3 ? id(3) : -1, length > 4 ? id(4) : -1);

        public override string ToString() => string.Join(" ", Ids());
    }
}
