using Unmask.Data;

namespace Unmask.Evaluation;

public sealed record BlimpOptions
{
    public PllOptions Pll { get; init; } = new();

    /// <summary>Only the first N pairs of each paradigm (a quick look; published numbers use all 1,000).</summary>
    public int? LimitPerParadigm { get; init; }

    public BadLinePolicy BadLines { get; init; } = BadLinePolicy.Fail;
}

/// <summary>One minimal pair as BLiMP ships it, with where it was read.</summary>
public sealed record BlimpPair(string Uid, string Field, string Phenomenon, string PairId, string Good, string Bad, string File, int Line);

/// <summary>
/// Accuracy of one group of pairs. For a paradigm: correct / scored pairs. For a field, a phenomenon or overall: the
/// unweighted mean of its paradigms' accuracies, as BLiMP and mlm-scoring report them. Ties are never correct.
/// </summary>
public sealed record BlimpAccuracy(string Name, int Paradigms, int Pairs, int Correct, int Ties, int Skipped, double Accuracy);

public sealed record BlimpResult(
    PllVariant Variant,
    BlimpAccuracy Overall,
    IReadOnlyList<BlimpAccuracy> ByField,
    IReadOnlyList<BlimpAccuracy> ByPhenomenon,
    IReadOnlyList<BlimpAccuracy> ByParadigm,
    PseudoPerplexity GoodSentences,
    PseudoPerplexity BadSentences,
    IReadOnlyList<InputIssue> Issues);

/// <summary>
/// BLiMP (Warstadt et al. 2020) scored as Salazar et al. 2020 do: a pair is correct when PLL(good) &gt; PLL(bad),
/// strictly.
/// </summary>
public static class BlimpEvaluator
{
    /// <summary>Reads every *.jsonl and *.jsonl.gz file of <paramref name="directory"/> (or one such file).</summary>
    public static IReadOnlyList<BlimpPair> Load(string directory, BadLinePolicy policy, ICollection<InputIssue> issues, int? limitPerParadigm = null)
    {
        List<string> files = File.Exists(directory) ? [directory]
            : Directory.Exists(directory)
                ? Directory.EnumerateFiles(directory).Where(f => f.EndsWith(".jsonl", StringComparison.Ordinal) || f.EndsWith(".jsonl.gz", StringComparison.Ordinal))
                    .Order(StringComparer.Ordinal).ToList()
                : throw new UnmaskException($"{directory}: BLiMP data not found");
        if (files.Count == 0) throw new UnmaskException($"{directory}: no .jsonl or .jsonl.gz files");
        var pairs = new List<BlimpPair>();
        var perParadigm = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var file in files)
            foreach (var (line, pair) in JsonLinesReader.Read(file, o => new BlimpPair(
                         JsonLinesReader.String(o, "UID"), JsonLinesReader.String(o, "field"), JsonLinesReader.String(o, "linguistics_term"),
                         PairId(o), JsonLinesReader.String(o, "sentence_good"), JsonLinesReader.String(o, "sentence_bad"), file, 0),
                         InputIssue.Recorder(file, policy, issues)))
            {
                int seen = perParadigm.GetValueOrDefault(pair.Uid);
                if (limitPerParadigm is { } limit && seen >= limit) continue;
                perParadigm[pair.Uid] = seen + 1;
                pairs.Add(pair with { Line = line });
            }
        if (pairs.Count == 0) throw new UnmaskException($"{directory}: no BLiMP pairs read");
        return pairs;
    }

    // pairID is a string in the released files; a number is accepted too.
    static string PairId(System.Text.Json.JsonElement o) =>
        o.TryGetProperty("pairID", out var id) && id.ValueKind == System.Text.Json.JsonValueKind.Number ? id.GetRawText() : JsonLinesReader.OptionalString(o, "pairID") ?? "";

    public static BlimpResult Evaluate(ScoringContext context, string directory, BlimpOptions? options = null,
        IProgress<ScoringProgress>? progress = null, CancellationToken ct = default)
    {
        options ??= new BlimpOptions();
        var issues = new List<InputIssue>();
        var pairs = Load(directory, options.BadLines, issues, options.LimitPerParadigm);
        return Evaluate(context, pairs, options, issues, progress, ct);
    }

    public static BlimpResult Evaluate(ScoringContext context, IReadOnlyList<BlimpPair> pairs, BlimpOptions options,
        IReadOnlyList<InputIssue> readIssues, IProgress<ScoringProgress>? progress = null, CancellationToken ct = default)
    {
        var scorer = new PllScorer(context, options.Pll);
        var issues = readIssues.ToList();
        var usable = new List<BlimpPair>();
        var skippedPerParadigm = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var pair in pairs)
        {
            var problem = scorer.Problem(pair.Good) is { } g ? $"sentence_good: {g}" : scorer.Problem(pair.Bad) is { } b ? $"sentence_bad: {b}" : null;
            if (problem is null)
            {
                usable.Add(pair);
                continue;
            }
            var issue = new InputIssue(pair.File, pair.Line, problem);
            if (options.BadLines == BadLinePolicy.Fail) throw new UnmaskException(issue.ToString());
            issues.Add(issue);
            skippedPerParadigm[pair.Uid] = skippedPerParadigm.GetValueOrDefault(pair.Uid) + 1;
        }

        var sentences = usable.SelectMany(p => new[] { p.Good, p.Bad }).ToList();
        var scores = scorer.Score(sentences, progress, ct);
        var outcomes = usable.Select((p, i) => (Pair: p, Good: scores[2 * i].Pll, Bad: scores[2 * i + 1].Pll)).ToList();

        var paradigms = outcomes.GroupBy(o => o.Pair.Uid).Select(g => (
            Uid: g.Key, g.First().Pair.Field, g.First().Pair.Phenomenon,
            Accuracy: new BlimpAccuracy(g.Key, 1, g.Count(), g.Count(o => o.Good > o.Bad), g.Count(o => o.Good == o.Bad),
                skippedPerParadigm.GetValueOrDefault(g.Key), (double)g.Count(o => o.Good > o.Bad) / g.Count())))
            .OrderBy(p => p.Uid, StringComparer.Ordinal).ToList();

        BlimpAccuracy Mean(string name, IReadOnlyCollection<BlimpAccuracy> members) => new(name, members.Count, members.Sum(m => m.Pairs),
            members.Sum(m => m.Correct), members.Sum(m => m.Ties), members.Sum(m => m.Skipped), members.Count == 0 ? double.NaN : members.Average(m => m.Accuracy));

        // A paradigm whose every pair was skipped has no accuracy; it still shows in the counts.
        var emptyParadigms = skippedPerParadigm.Keys.Where(uid => paradigms.All(p => p.Uid != uid)).ToList();
        var byParadigm = paradigms.Select(p => p.Accuracy).ToList();
        return new BlimpResult(
            options.Pll.Variant,
            Mean("overall", byParadigm) with { Skipped = issues.Count },
            paradigms.GroupBy(p => p.Field).OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => Mean(g.Key, g.Select(p => p.Accuracy).ToList())).ToList(),
            paradigms.GroupBy(p => p.Phenomenon).OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => Mean(g.Key, g.Select(p => p.Accuracy).ToList())).ToList(),
            byParadigm.Concat(emptyParadigms.Select(uid => new BlimpAccuracy(uid, 1, 0, 0, 0, skippedPerParadigm[uid], double.NaN))).ToList(),
            PseudoPerplexity.From(scores.Where((_, i) => i % 2 == 0)),
            PseudoPerplexity.From(scores.Where((_, i) => i % 2 == 1)),
            issues);
    }
}
