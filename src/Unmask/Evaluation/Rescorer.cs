using System.Text.Json;
using Unmask.Data;

namespace Unmask.Evaluation;

/// <summary>One hypothesis of an n-best list: its text, the score its system gave it (a log-probability), and the system.</summary>
public sealed record NBestHypothesis(string Text, double Score, string? System);

/// <summary>An utterance's hypotheses, with the reference transcript when there is one.</summary>
public sealed record NBestList(string Id, string? Reference, IReadOnlyList<NBestHypothesis> Hypotheses, int Line);

public sealed record RescoreOptions
{
    public PllOptions Pll { get; init; } = new();

    /// <summary>λ in score + λ·PLL.</summary>
    public double Weight { get; init; } = 1.0;

    /// <summary>Use the PLL per scored token instead of the total, so long hypotheses are not penalised for their length.</summary>
    public bool LengthNorm { get; init; }

    public BadLinePolicy BadLines { get; init; } = BadLinePolicy.Fail;
}

public sealed record RescoredHypothesis(string Text, double Score, string? System, double Pll, int NumScored, int NumWords, double Combined);

/// <summary><see cref="Before"/>: index of the best hypothesis by its own score; <see cref="After"/>: by the combined score.</summary>
public sealed record RescoredUtterance(string Id, string? Reference, IReadOnlyList<RescoredHypothesis> Hypotheses, int Before, int After)
{
    public RescoredHypothesis Chosen => Hypotheses[After];
}

/// <summary>Corpus word error rate (word edits / reference words) of the first-best, the rescored and the oracle choice.</summary>
public sealed record WerSummary(int Utterances, long ReferenceWords, long ErrorsBefore, long ErrorsAfter, long ErrorsOracle,
    double Before, double After, double Oracle);

/// <summary>
/// A system's outputs judged without references: pseudo-perplexity of everything it produced (lower reads as more
/// fluent to the model), how often the combined score chose it, and its WER where references exist.
/// </summary>
public sealed record SystemRanking(string System, int Hypotheses, double TotalPll, long Tokens, long Words, double TokenPseudoPerplexity,
    double WordPseudoPerplexity, int Chosen, double? Wer);

public sealed record RescoreResult(PllVariant Variant, double Weight, bool LengthNorm, IReadOnlyList<RescoredUtterance> Utterances,
    WerSummary? Wer, IReadOnlyList<SystemRanking> Systems, IReadOnlyList<InputIssue> Issues);

/// <summary>
/// N-best rescoring by log-linear interpolation: combined = score + λ·PLL (or λ·PLL/token with length normalisation),
/// as Salazar et al. 2020 rescore ASR and NMT lists. Hypotheses tagged with a system also rank the systems by
/// pseudo-perplexity, which needs no reference.
/// </summary>
public static class Rescorer
{
    /// <summary>
    /// JSON Lines, one utterance per line: <c>{"id": "u1", "reference": "…", "hypotheses": [{"text": "…", "score": -12.3,
    /// "system": "A"}, …]}</c>. <c>id</c>, <c>reference</c>, <c>score</c> (0) and <c>system</c> are optional.
    /// </summary>
    public static IReadOnlyList<NBestList> Load(string path, BadLinePolicy policy, ICollection<InputIssue> issues)
    {
        var lists = JsonLinesReader.Read(path, o =>
        {
            if (!o.TryGetProperty("hypotheses", out var hyps) || hyps.ValueKind != JsonValueKind.Array)
                throw new InputFormatException("missing array field \"hypotheses\"");
            if (hyps.GetArrayLength() == 0) throw new InputFormatException("field \"hypotheses\" is empty");
            var hypotheses = new List<NBestHypothesis>();
            int k = 0;
            foreach (var h in hyps.EnumerateArray())
            {
                if (h.ValueKind != JsonValueKind.Object) throw new InputFormatException($"hypotheses[{k}] is not an object");
                try
                {
                    hypotheses.Add(new NBestHypothesis(JsonLinesReader.String(h, "text"), JsonLinesReader.OptionalNumber(h, "score") ?? 0, JsonLinesReader.OptionalString(h, "system")));
                }
                catch (InputFormatException e)
                {
                    throw new InputFormatException($"hypotheses[{k}]: {e.Message}");
                }
                k++;
            }
            var id = o.TryGetProperty("id", out var idValue) && idValue.ValueKind == JsonValueKind.Number ? idValue.GetRawText() : JsonLinesReader.OptionalString(o, "id");
            return new NBestList(id ?? "", JsonLinesReader.OptionalString(o, "reference"), hypotheses, 0);
        }, InputIssue.Recorder(path, policy, issues)).ToList();
        if (lists.Count == 0) throw new UnmaskException($"{path}: no n-best lists");
        return lists.Select(l => l.Value with { Id = l.Value.Id.Length > 0 ? l.Value.Id : $"line {l.Line}", Line = l.Line }).ToList();
    }

    public static RescoreResult Rescore(ScoringContext context, IReadOnlyList<NBestList> lists, string source, RescoreOptions options,
        IReadOnlyList<InputIssue> readIssues, IProgress<ScoringProgress>? progress = null, CancellationToken ct = default)
    {
        var scorer = new PllScorer(context, options.Pll);
        var issues = readIssues.ToList();
        var kept = new List<NBestList>();
        foreach (var list in lists)
        {
            var usable = new List<NBestHypothesis>();
            for (int k = 0; k < list.Hypotheses.Count; k++)
            {
                if (scorer.Problem(list.Hypotheses[k].Text) is not { } problem)
                {
                    usable.Add(list.Hypotheses[k]);
                    continue;
                }
                var issue = new InputIssue(source, list.Line, $"hypotheses[{k}]: {problem}");
                if (options.BadLines == BadLinePolicy.Fail) throw new UnmaskException(issue.ToString());
                issues.Add(issue);
            }
            if (usable.Count > 0) kept.Add(list with { Hypotheses = usable });
        }

        var texts = kept.SelectMany(l => l.Hypotheses.Select(h => h.Text)).ToList();
        var scores = scorer.Score(texts, progress, ct);
        var utterances = new List<RescoredUtterance>();
        int next = 0;
        foreach (var list in kept)
        {
            var hypotheses = list.Hypotheses.Select(h =>
            {
                var s = scores[next++];
                double lm = options.LengthNorm ? s.PllMean : s.Pll;
                return new RescoredHypothesis(h.Text, h.Score, h.System, s.Pll, s.NumScored, s.NumWords, h.Score + options.Weight * lm);
            }).ToList();
            utterances.Add(new RescoredUtterance(list.Id, list.Reference, hypotheses, ArgMax(hypotheses, h => h.Score), ArgMax(hypotheses, h => h.Combined)));
        }
        return new RescoreResult(options.Pll.Variant, options.Weight, options.LengthNorm, utterances, Wer(utterances), Systems(utterances), issues);
    }

    /// <summary>The first index with the largest value, so equal scores keep the list's own order.</summary>
    static int ArgMax<T>(IReadOnlyList<T> items, Func<T, double> value)
    {
        int best = 0;
        for (int i = 1; i < items.Count; i++)
            if (value(items[i]) > value(items[best])) best = i;
        return best;
    }

    static WerSummary? Wer(IReadOnlyList<RescoredUtterance> utterances)
    {
        var withReference = utterances.Where(u => u.Reference is not null).ToList();
        if (withReference.Count == 0) return null;
        long words = 0, before = 0, after = 0, oracle = 0;
        foreach (var u in withReference)
        {
            var reference = Words(u.Reference!);
            var errors = u.Hypotheses.Select(h => (long)EditDistance(reference, Words(h.Text))).ToList();
            words += reference.Length;
            before += errors[u.Before];
            after += errors[u.After];
            oracle += errors.Min();
        }
        double Rate(long e) => words == 0 ? double.NaN : (double)e / words;
        return new WerSummary(withReference.Count, words, before, after, oracle, Rate(before), Rate(after), Rate(oracle));
    }

    static IReadOnlyList<SystemRanking> Systems(IReadOnlyList<RescoredUtterance> utterances)
    {
        var rows = utterances.SelectMany(u => u.Hypotheses.Select((h, i) => (Utterance: u, Hypothesis: h, Chosen: i == u.After)))
            .Where(x => x.Hypothesis.System is not null).GroupBy(x => x.Hypothesis.System!);
        var rankings = new List<SystemRanking>();
        foreach (var group in rows)
        {
            double pll = group.Sum(x => x.Hypothesis.Pll);
            long tokens = group.Sum(x => (long)x.Hypothesis.NumScored), words = group.Sum(x => (long)x.Hypothesis.NumWords);
            var referenced = group.Where(x => x.Utterance.Reference is not null).ToList();
            long referenceWords = referenced.Sum(x => (long)Words(x.Utterance.Reference!).Length);
            double? wer = referenced.Count == 0 || referenceWords == 0 ? null
                : (double)referenced.Sum(x => (long)EditDistance(Words(x.Utterance.Reference!), Words(x.Hypothesis.Text))) / referenceWords;
            rankings.Add(new SystemRanking(group.Key, group.Count(), pll, tokens, words, Math.Exp(-pll / tokens), Math.Exp(-pll / words),
                group.Count(x => x.Chosen), wer));
        }
        return rankings.OrderBy(r => r.TokenPseudoPerplexity).ThenBy(r => r.System, StringComparer.Ordinal).ToList();
    }

    /// <summary>Words for WER: whitespace-separated, compared exactly (no case or punctuation normalisation).</summary>
    public static string[] Words(string text) => text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);

    /// <summary>Levenshtein distance over words: substitutions, insertions and deletions all cost 1.</summary>
    public static int EditDistance(IReadOnlyList<string> reference, IReadOnlyList<string> hypothesis)
    {
        var previous = Enumerable.Range(0, hypothesis.Count + 1).ToArray();
        var current = new int[hypothesis.Count + 1];
        for (int i = 1; i <= reference.Count; i++)
        {
            current[0] = i;
            for (int j = 1; j <= hypothesis.Count; j++)
            {
                int substitution = previous[j - 1] + (string.Equals(reference[i - 1], hypothesis[j - 1], StringComparison.Ordinal) ? 0 : 1);
                current[j] = Math.Min(substitution, Math.Min(previous[j] + 1, current[j - 1] + 1));
            }
            (previous, current) = (current, previous);
        }
        return previous[hypothesis.Count];
    }
}
