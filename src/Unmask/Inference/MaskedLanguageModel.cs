using Unmask.Checkpoints;
using Unmask.Modeling;
using Unmask.Tokenization;
using static TorchSharp.torch;

namespace Unmask.Inference;

public sealed record FillCandidate(string Token, int Id, float Probability);
public sealed record MaskFill(int Position, IReadOnlyList<FillCandidate> Candidates);
public sealed record FillResult(string Text, IReadOnlyList<MaskFill> Masks);

/// <summary>One text of a forward batch: its tokens and one logits row per non-padding position.</summary>
public sealed record ForwardResult(string Text, IReadOnlyList<string> Tokens, IReadOnlyList<int> InputIds, float[][] Logits);

/// <summary>A model folder loaded for use: tokenizer plus model, in eval mode. The CLI's commands call these methods.</summary>
public sealed class MaskedLanguageModel : IDisposable
{
    public ITokenizer Tokenizer { get; }
    public BertForMaskedLM Model { get; }

    MaskedLanguageModel(ITokenizer tokenizer, BertForMaskedLM model)
    {
        Tokenizer = tokenizer;
        Model = model;
        Model.eval();
    }

    public static MaskedLanguageModel Load(string directory)
    {
        if (!Directory.Exists(directory)) throw new UnmaskException($"{directory}: model folder not found");
        var model = ModelFolder.LoadBert(directory);
        try
        {
            return new MaskedLanguageModel(TokenizerLoader.Load(directory), model);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>Encodes a text, truncated to what the model's position embeddings can take.</summary>
    public TokenizedText Tokenize(string text, bool addSpecialTokens = true) =>
        Tokenizer.Encode(NormalizeMaskToken(text), addSpecialTokens: addSpecialTokens, maxLength: Model.Config.MaxPositionEmbeddings);

    /// <summary>Runs the texts as one right-padded batch, like the parity fixtures' tokenizer call.</summary>
    public IReadOnlyList<ForwardResult> Forward(IReadOnlyList<string> texts)
    {
        var encodings = texts.Select(t => Tokenize(t)).ToList();
        using var scope = NewDisposeScope();
        using var mode = inference_mode();
        var (ids, mask) = Pad(encodings);
        using var output = Model.Forward(ids, mask);
        var results = new List<ForwardResult>();
        for (int b = 0; b < encodings.Count; b++)
        {
            var e = encodings[b];
            var rows = output.Logits[b].narrow(0, 0, e.InputIds.Length).contiguous(); // [len, vocab]
            var flat = rows.data<float>().ToArray();
            int v = (int)rows.shape[1];
            var logits = Enumerable.Range(0, e.InputIds.Length).Select(i => flat.AsSpan(i * v, v).ToArray()).ToArray();
            results.Add(new ForwardResult(texts[b], e.Tokens, e.InputIds, logits));
        }
        return results;
    }

    /// <summary>
    /// The top-k tokens for every mask position, probabilities from a softmax over the whole vocabulary. With
    /// <paramref name="targets"/>, only those tokens are ranked (a target that is several pieces is represented by
    /// its first piece, as Hugging Face's fill-mask pipeline does).
    /// </summary>
    public IReadOnlyList<FillResult> Fill(IReadOnlyList<string> texts, int topK = 5, IReadOnlyList<string>? targets = null)
    {
        if (topK < 1) throw new UnmaskException($"--top-k must be at least 1, got {topK}");
        var encodings = texts.Select(t => Tokenize(t)).ToList();
        for (int i = 0; i < encodings.Count; i++)
            if (!encodings[i].InputIds.Contains(Tokenizer.MaskId))
                throw new UnmaskException($"text {i + 1} has no mask token ({Tokenizer.MaskToken} or [MASK]): \"{texts[i]}\"");
        var targetIds = targets?.Select(TargetId).Distinct().ToArray();

        using var scope = NewDisposeScope();
        using var mode = inference_mode();
        var (ids, mask) = Pad(encodings);
        using var output = Model.Forward(ids, mask);
        var probabilities = output.Logits.softmax(-1); // [batch, seq, vocab]
        var results = new List<FillResult>();
        for (int b = 0; b < encodings.Count; b++)
        {
            var masks = new List<MaskFill>();
            for (int p = 0; p < encodings[b].InputIds.Length; p++)
            {
                if (encodings[b].InputIds[p] != Tokenizer.MaskId) continue;
                var row = probabilities[b, p]; // [vocab]
                var candidates = new List<FillCandidate>();
                if (targetIds is null)
                {
                    var (values, indices) = row.topk(Math.Min(topK, (int)row.shape[0]));
                    var vals = values.data<float>().ToArray();
                    var idx = indices.data<long>().ToArray();
                    for (int k = 0; k < vals.Length; k++) candidates.Add(Candidate((int)idx[k], vals[k]));
                }
                else
                {
                    var all = row.data<float>().ToArray();
                    candidates.AddRange(targetIds.Select(id => Candidate(id, all[id])).OrderByDescending(c => c.Probability).Take(topK));
                }
                masks.Add(new MaskFill(p, candidates));
            }
            results.Add(new FillResult(texts[b], masks));
        }
        return results;
    }

    FillCandidate Candidate(int id, float probability) =>
        new(id < Tokenizer.VocabSize ? Tokenizer.IdToToken(id) : $"<id {id}>", id, probability);

    int TargetId(string target)
    {
        if (Tokenizer.TokenToId(target) is { } direct) return direct;
        var pieces = Tokenizer.Encode(target, addSpecialTokens: false).InputIds;
        if (pieces.Length == 0) throw new UnmaskException($"target \"{target}\" is empty after tokenization");
        return pieces[0];
    }

    /// <summary>Lets "[MASK]" stand for the model's own mask token whatever that is.</summary>
    string NormalizeMaskToken(string text) =>
        Tokenizer.MaskToken == "[MASK]" ? text : text.Replace("[MASK]", Tokenizer.MaskToken, StringComparison.Ordinal);

    (Tensor Ids, Tensor Mask) Pad(IReadOnlyList<TokenizedText> encodings)
    {
        int length = encodings.Max(e => e.InputIds.Length);
        var ids = new long[encodings.Count * length];
        var mask = new long[encodings.Count * length];
        Array.Fill(ids, Tokenizer.PadId);
        for (int b = 0; b < encodings.Count; b++)
            for (int t = 0; t < encodings[b].InputIds.Length; t++)
            {
                ids[b * length + t] = encodings[b].InputIds[t];
                mask[b * length + t] = 1;
            }
        var shape = new long[] { encodings.Count, length };
        return (tensor(ids, shape), tensor(mask, shape)); // [batch, seq] each
    }

    public void Dispose() => Model.Dispose();
}
