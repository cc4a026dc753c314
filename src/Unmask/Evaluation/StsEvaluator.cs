using System.Globalization;
using Unmask.Data;
using Unmask.Inference;

namespace Unmask.Evaluation;

/// <summary>A sentence pair with its gold similarity (null where the file has no score column).</summary>
public sealed record SentencePair(string Sentence1, string Sentence2, double? Score, int Line);

/// <summary>A pair's cosine similarity.</summary>
public sealed record PairSimilarity(string Sentence1, string Sentence2, double Cosine, double? Gold);

/// <summary>STS: Spearman and Pearson (×100) between the cosine of the two sentence vectors and the gold score.</summary>
public sealed record StsResult(string Model, string Data, string Pooling, bool Normalize, int? Layer, double Spearman, double Pearson, int Pairs);

public static class StsEvaluator
{
    /// <summary>
    /// Reads sentence pairs from CSV (RFC 4180), TSV or JSON Lines: <c>sentence1,sentence2[,score]</c> without a header
    /// (STS-B as ../shared ships it), or with a header row naming sentence1, sentence2 and score (or label).
    /// </summary>
    public static List<SentencePair> ReadPairs(string path, bool requireScores)
    {
        if (!File.Exists(path)) throw new UnmaskException($"{path}: file not found");
        List<(int Line, string[] Fields)> records;
        if (path.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase))
            return ReadJsonLines(path, requireScores);
        var text = File.ReadAllText(path);
        records = path.EndsWith(".tsv", StringComparison.OrdinalIgnoreCase)
            ? CsvReader.ParseTsv(text)
            : [.. CsvReader.Parse(text, path).Where(r => !(r.Fields.Length == 1 && r.Fields[0].Length == 0))];
        if (records.Count == 0) throw new UnmaskException($"{path}: no sentence pairs.");

        int first = 0, second = 1, score = 2;
        var head = records[0].Fields.Select(f => f.Trim().ToLowerInvariant()).ToArray();
        if (head.Contains("sentence1") || head.Contains("sentence2"))
        {
            first = Column(head, path, "sentence1");
            second = Column(head, path, "sentence2");
            score = Array.FindIndex(head, h => h is "score" or "label" or "similarity");
            records = records.Skip(1).ToList();
        }
        var pairs = new List<SentencePair>(records.Count);
        foreach (var (line, fields) in records)
        {
            int needed = Math.Max(first, second) + 1;
            if (fields.Length < needed) throw new UnmaskException($"{path}:{line}: {fields.Length} field(s), expected sentence1, sentence2 and a score.");
            double? gold = null;
            if (score >= 0 && score < fields.Length)
                gold = double.TryParse(fields[score], NumberStyles.Float, CultureInfo.InvariantCulture, out var g) && double.IsFinite(g) ? g
                    : throw new UnmaskException($"{path}:{line}: score '{fields[score]}' is not a number.");
            if (requireScores && gold is null) throw new UnmaskException($"{path}:{line}: no score column.");
            pairs.Add(Pair(fields[first], fields[second], gold, line, path));
        }
        return pairs;
    }

    static List<SentencePair> ReadJsonLines(string path, bool requireScores)
    {
        var pairs = new List<SentencePair>();
        foreach (var (line, row) in JsonLinesReader.Read(path, obj => (
                     A: JsonLinesReader.String(obj, "sentence1"),
                     B: JsonLinesReader.String(obj, "sentence2"),
                     Gold: JsonLinesReader.OptionalNumber(obj, "score") ?? JsonLinesReader.OptionalNumber(obj, "label"))))
        {
            if (requireScores && row.Gold is null) throw new UnmaskException($"{path}:{line}: no \"score\" field.");
            pairs.Add(Pair(row.A, row.B, row.Gold, line, path));
        }
        if (pairs.Count == 0) throw new UnmaskException($"{path}: no sentence pairs.");
        return pairs;
    }

    static SentencePair Pair(string a, string b, double? gold, int line, string path) =>
        string.IsNullOrWhiteSpace(a) || string.IsNullOrWhiteSpace(b)
            ? throw new UnmaskException($"{path}:{line}: an empty sentence.")
            : new SentencePair(a, b, gold, line);

    static int Column(string[] head, string path, string name)
    {
        int index = Array.IndexOf(head, name);
        return index >= 0 ? index : throw new UnmaskException($"{path}:1: the header has no '{name}' column ({string.Join(", ", head)}).");
    }

    /// <summary>The cosine of each pair's two sentence vectors, in order.</summary>
    public static List<PairSimilarity> Similarities(SentenceEmbedder embedder, IReadOnlyList<SentencePair> pairs, EmbeddingOptions? options,
        CancellationToken cancellationToken = default) =>
        Similarities(pairs, sentences => embedder.Embed(sentences, options, cancellationToken));

    /// <summary>The cosines with vectors from <paramref name="embed"/>, which gets each distinct sentence once.</summary>
    public static List<PairSimilarity> Similarities(IReadOnlyList<SentencePair> pairs, Func<IReadOnlyList<string>, float[][]> embed)
    {
        var sentences = pairs.SelectMany(p => new[] { p.Sentence1, p.Sentence2 }).Distinct().ToList();
        var index = sentences.Select((s, i) => (s, i)).ToDictionary(p => p.s, p => p.i);
        var vectors = embed(sentences);
        return [.. pairs.Select(p => new PairSimilarity(p.Sentence1, p.Sentence2, Cosine(vectors[index[p.Sentence1]], vectors[index[p.Sentence2]]), p.Score))];
    }

    /// <summary>Spearman (×100) of scored pairs' cosines against their gold scores.</summary>
    public static double Spearman(IReadOnlyList<PairSimilarity> similarities) =>
        ClassificationMetrics.Regression([.. similarities.Select(s => s.Gold!.Value)], [.. similarities.Select(s => s.Cosine)]).Spearman;

    public static StsResult Run(SentenceEmbedder embedder, string model, string data, EmbeddingOptions? options, CancellationToken cancellationToken = default)
    {
        var pairs = ReadPairs(data, requireScores: true);
        var resolved = embedder.Resolve(options);
        var similarities = Similarities(embedder, pairs, resolved, cancellationToken);
        var scores = ClassificationMetrics.Regression([.. pairs.Select(p => p.Score!.Value)], [.. similarities.Select(s => s.Cosine)]);
        return new StsResult(model, data, resolved.Pooling!.Value.ToString().ToLowerInvariant(), resolved.Normalize!.Value, resolved.Layer,
            scores.Spearman, scores.Pearson, pairs.Count);
    }

    /// <summary>Cosine similarity in double precision; 0 for a zero vector.</summary>
    public static double Cosine(float[] a, float[] b)
    {
        if (a.Length != b.Length) throw new ArgumentException($"vectors of {a.Length} and {b.Length} dimensions");
        double dot = 0, na = 0, nb = 0;
        for (int i = 0; i < a.Length; i++)
        {
            dot += (double)a[i] * b[i];
            na += (double)a[i] * a[i];
            nb += (double)b[i] * b[i];
        }
        return na == 0 || nb == 0 ? 0 : dot / Math.Sqrt(na * nb);
    }
}
