using System.Diagnostics;
using Unmask.Inference;
using Unmask.Tokenization;

namespace Unmask.Generation;

/// <summary>What to generate: texts whose masks are filled, <see cref="Length"/> masked positions appended to each
/// (to none, with no text: unconditional samples), each <see cref="NumSamples"/> times.</summary>
public sealed record GenerateRequest
{
    public IReadOnlyList<string> Texts { get; init; } = [];
    public int Length { get; init; }
    public int NumSamples { get; init; } = 1;
    public SamplingOptions Sampling { get; init; } = new();
}

/// <param name="Text">The input text ("" for an unconditional sample).</param>
/// <param name="Output">The decoded result, special tokens left out.</param>
/// <param name="Tokens">Every token of the result, special tokens included.</param>
/// <param name="GeneratedPositions">Indexes into <paramref name="Tokens"/> that the sampler filled.</param>
/// <param name="ForwardPasses">Forward passes of the batch this sample was generated in (NFE).</param>
public sealed record GeneratedText(string Text, string Output, IReadOnlyList<string> Tokens, IReadOnlyList<long> Ids,
    IReadOnlyList<int> GeneratedPositions, int ForwardPasses, double Seconds, IReadOnlyList<TraceStep>? Steps);

/// <summary>Texts in, filled texts out: tokenization, the masked rows a sampler takes, and decoding.</summary>
public static class TextGeneration
{
    public static IReadOnlyList<GeneratedText> Generate(MaskedLanguageModel mlm, GenerateRequest request,
        IProgress<GenerationProgress>? progress = null, CancellationToken ct = default)
    {
        if (request.Length < 0) throw new UnmaskException($"--length must not be negative, got {request.Length}");
        if (request.NumSamples < 1) throw new UnmaskException($"--num-samples must be at least 1, got {request.NumSamples}");
        var logits = new ModelLogits(mlm.Model);
        var texts = request.Texts.Count == 0 ? [""] : request.Texts;
        var tokenizer = mlm.Tokenizer;
        var rows = new List<long[]>();
        for (int i = 0; i < texts.Count; i++)
        {
            var row = Row(mlm, texts[i], request.Length);
            if (!row.Contains(tokenizer.MaskId))
                throw new UnmaskException(texts[i].Length == 0
                    ? "nothing to generate: give a text with [MASK] positions, or --length N"
                    : $"text {i + 1} has no mask token ({tokenizer.MaskToken} or [MASK]) and no --length: nothing to fill: \"{texts[i]}\"");
            if (row.Length > mlm.Model.MaxSequenceLength)
                throw new UnmaskException($"text {i + 1} needs {row.Length} positions, beyond the model's {mlm.Model.MaxSequenceLength}");
            for (int s = 0; s < request.NumSamples; s++) rows.Add(row);
        }
        var input = new GenerationInput(rows, tokenizer.MaskId, tokenizer.PadId, ForbiddenIds(tokenizer, logits.VocabSize));
        Sampler.Validate(input, request.Sampling);

        var clock = Stopwatch.StartNew();
        var result = Sampler.Generate(logits, input, request.Sampling, progress, ct);
        double seconds = clock.Elapsed.TotalSeconds;
        return result.Rows.Select((r, i) => new GeneratedText(texts[i / request.NumSamples],
            tokenizer.Decode(r.Ids.Select(id => (int)id).ToArray(), skipSpecialTokens: true),
            r.Ids.Select(id => id < tokenizer.VocabSize ? tokenizer.IdToToken((int)id) : $"<id {id}>").ToList(),
            r.Ids, r.GeneratedPositions, result.ForwardPasses, seconds, r.Steps)).ToList();
    }

    /// <summary>Ids a sampler must never write: the tokenizer's special tokens and rows past its vocabulary.</summary>
    public static IReadOnlyCollection<long> ForbiddenIds(ITokenizer tokenizer, int modelVocabSize) =>
        Enumerable.Range(0, modelVocabSize).Where(id => id >= tokenizer.VocabSize || tokenizer.IsSpecial(id)).Select(id => (long)id).ToList();

    /// <summary>The text's ids with special tokens, and <paramref name="length"/> mask ids before the closing special tokens.</summary>
    static long[] Row(MaskedLanguageModel mlm, string text, int length)
    {
        var tokenizer = mlm.Tokenizer;
        var ids = tokenizer.Encode(text.Replace("[MASK]", tokenizer.MaskToken, StringComparison.Ordinal)).InputIds.Select(id => (long)id).ToList();
        int end = ids.Count;
        while (end > 0 && ids[end - 1] != tokenizer.MaskId && tokenizer.IsSpecial((int)ids[end - 1])) end--;
        ids.InsertRange(end, Enumerable.Repeat((long)tokenizer.MaskId, length));
        return [.. ids];
    }
}
