using Unmask.Tokenization;

namespace Unmask.Evaluation;

/// <summary>How the copies of a sentence are masked.</summary>
public enum PllVariant
{
    /// <summary>Salazar et al. 2020: each scored token is masked alone.</summary>
    Original,

    /// <summary>
    /// Kauf &amp; Ivanova 2023 (PLL-word-l2r): a piece is masked together with the later pieces of its word, so a word's
    /// first piece cannot be read off its own continuation.
    /// </summary>
    WordL2R,
}

public sealed record PllOptions
{
    public PllVariant Variant { get; init; } = PllVariant.Original;

    /// <summary>
    /// Most tokens (rows × padded length) in one forward pass. Past a few thousand, activations outgrow the CPU caches
    /// and throughput drops again (measured with bench mode=pll).
    /// </summary>
    public int TokenBudget { get; init; } = 2048;
}

/// <summary>The score of one token: natural-log probability of the true id with that position masked.</summary>
public sealed record TokenScore(int Position, string Token, int Id, float LogProb);

/// <summary>
/// A sentence's pseudo-log-likelihood. When <see cref="Problem"/> is set (empty, or too long for the model) nothing was
/// scored and <see cref="Pll"/> is NaN.
/// </summary>
public sealed record PllResult(string Text, IReadOnlyList<TokenScore> Tokens, double Pll, int NumWords, string? Problem = null)
{
    public int NumScored => Tokens.Count;

    public double PllMean => NumScored == 0 ? double.NaN : Pll / NumScored;

    public bool IsScored => Problem is null;
}

/// <summary>Progress of a long evaluation: masked copies for PLL scoring (one copy is one model row), sequences for MLM evaluation.</summary>
public sealed record ScoringProgress(long RowsDone, long RowsTotal);

/// <summary>
/// Pseudo-perplexity over a set of scored sentences: exp(−ΣPLL / N) with N the scored tokens (token level) or the
/// scored words, i.e. tokens that start a word (word level, comparable across tokenizers).
/// </summary>
public sealed record PseudoPerplexity(int Sentences, long Tokens, long Words, double TotalPll, double TokenLevel, double WordLevel)
{
    public static PseudoPerplexity From(IEnumerable<PllResult> results)
    {
        int sentences = 0;
        long tokens = 0, words = 0;
        double total = 0;
        foreach (var r in results.Where(r => r.IsScored))
        {
            sentences++;
            tokens += r.NumScored;
            words += r.NumWords;
            total += r.Pll;
        }
        return new PseudoPerplexity(sentences, tokens, words, total,
            tokens == 0 ? double.NaN : Math.Exp(-total / tokens), words == 0 ? double.NaN : Math.Exp(-total / words));
    }
}

/// <summary>
/// Pseudo-log-likelihood scoring: every non-special token is masked in turn and the log-probability of the true token
/// summed (in float64). The masked copies of many sentences share batches; see <see cref="PllOptions.TokenBudget"/>.
/// </summary>
public sealed class PllScorer(ScoringContext context, PllOptions? options = null)
{
    /// <summary>Sentences per round of batching; bounds memory on very large inputs while keeping batches well filled.</summary>
    const int ChunkSize = 8192;

    public PllOptions Options { get; } = options ?? new PllOptions();

    public ScoringContext Context => context;

    /// <summary>Why <paramref name="text"/> cannot be scored (empty, or longer than the model takes), or null.</summary>
    public string? Problem(string text) => MaskedRowRunner.Check(context, context.Tokenizer.Encode(text));

    /// <summary>Scores texts in input order. Texts that cannot be scored come back with a <see cref="PllResult.Problem"/>.</summary>
    public IReadOnlyList<PllResult> Score(IReadOnlyList<string> texts, IProgress<ScoringProgress>? progress = null, CancellationToken ct = default)
    {
        // Each distinct text is scored once: repeated sentences (common in minimal-pair sets) cost nothing and always
        // get identical scores, whatever batch rows they would have landed in.
        var distinct = texts.Distinct(StringComparer.Ordinal).ToList();
        var encodings = new TokenizedText[distinct.Count];
        Parallel.For(0, distinct.Count, new ParallelOptions { CancellationToken = ct }, i => encodings[i] = context.Tokenizer.Encode(distinct[i]));
        var results = ScoreEncoded(encodings, distinct, progress, ct);
        if (distinct.Count == texts.Count) return results;
        var byText = new Dictionary<string, PllResult>(StringComparer.Ordinal);
        for (int i = 0; i < distinct.Count; i++) byText[distinct[i]] = results[i];
        return texts.Select(t => byText[t]).ToList();
    }

    /// <summary>Scores already encoded inputs (with special tokens), e.g. ids taken from a reference file.</summary>
    public IReadOnlyList<PllResult> ScoreEncoded(IReadOnlyList<TokenizedText> encodings, IReadOnlyList<string>? texts = null,
        IProgress<ScoringProgress>? progress = null, CancellationToken ct = default)
    {
        if (texts is not null && texts.Count != encodings.Count)
            throw new ArgumentException($"{texts.Count} texts for {encodings.Count} encodings", nameof(texts));
        long total = encodings.Sum(e => (long)e.SpecialTokensMask.Count(s => !s));
        long done = 0;
        var results = new List<PllResult>(encodings.Count);
        for (int start = 0; start < encodings.Count; start += ChunkSize)
        {
            int count = Math.Min(ChunkSize, encodings.Count - start);
            results.AddRange(ScoreChunk(encodings, texts, start, count, rows =>
            {
                done += rows;
                progress?.Report(new ScoringProgress(done, total));
            }, ct));
        }
        return results;
    }

    IEnumerable<PllResult> ScoreChunk(IReadOnlyList<TokenizedText> encodings, IReadOnlyList<string>? texts, int start, int count,
        Action<int> rowsDone, CancellationToken ct)
    {
        var problems = new string?[count];
        var sequences = new int[count][];
        var types = new int[count][];
        var rows = new List<ScoringRow>();
        var rowStart = new int[count + 1];
        for (int i = 0; i < count; i++)
        {
            var e = encodings[start + i];
            (sequences[i], types[i]) = (e.InputIds, e.TokenTypeIds);
            problems[i] = MaskedRowRunner.Check(context, e);
            rowStart[i] = rows.Count;
            if (problems[i] is not null)
            {
                rowsDone(e.SpecialTokensMask.Count(s => !s));
                continue;
            }
            foreach (var position in ScoredPositions(e)) rows.Add(ScoringRow.MaskOne(i, position, MaskEnd(e, position)));
        }
        rowStart[count] = rows.Count;

        var logProbs = MaskedRowRunner.Run(context, sequences, types, rows, Options.TokenBudget, rowsDone, ct);

        for (int i = 0; i < count; i++)
        {
            var e = encodings[start + i];
            var text = texts?[start + i] ?? "";
            if (problems[i] is { } problem)
            {
                yield return new PllResult(text, [], double.NaN, 0, problem);
                continue;
            }
            var tokens = new TokenScore[rowStart[i + 1] - rowStart[i]];
            double sum = 0;
            int words = 0;
            for (int r = rowStart[i]; r < rowStart[i + 1]; r++)
            {
                int position = rows[r].SelectStart;
                float logProb = logProbs[r][0];
                tokens[r - rowStart[i]] = new TokenScore(position, e.Tokens[position], e.InputIds[position], logProb);
                sum += logProb;
                if (!context.Tokenizer.IsContinuation(e.InputIds[position])) words++;
            }
            yield return new PllResult(text, tokens, sum, words);
        }
    }

    /// <summary>Positions the tokenizer did not add: a special token typed in the text is scored like any other.</summary>
    static IEnumerable<int> ScoredPositions(TokenizedText e)
    {
        for (int p = 0; p < e.InputIds.Length; p++)
            if (!e.SpecialTokensMask[p]) yield return p;
    }

    /// <summary>End (exclusive) of the masked span for the token at <paramref name="position"/>.</summary>
    int MaskEnd(TokenizedText e, int position)
    {
        int end = position + 1;
        if (Options.Variant != PllVariant.WordL2R) return end;
        while (end < e.InputIds.Length && !e.SpecialTokensMask[end] && context.Tokenizer.IsContinuation(e.InputIds[end])) end++;
        return end;
    }
}
