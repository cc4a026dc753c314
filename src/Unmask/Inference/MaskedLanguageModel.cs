using System.Text.Json;
using Unmask.Checkpoints;
using Unmask.Modeling;
using Unmask.Tokenization;

namespace Unmask.Inference;

public sealed record FillCandidate(string Token, int Id, float Probability);
public sealed record MaskFill(int Position, IReadOnlyList<FillCandidate> Candidates);
public sealed record FillResult(string Text, IReadOnlyList<MaskFill> Masks);

/// <summary>
/// One text (or text pair) of a forward batch: its tokens and, per non-padding position, a row of vocabulary logits
/// (an ELECTRA discriminator: a one-element row, the logit that the token was replaced).
/// </summary>
public sealed record ForwardResult(string Text, string? Pair, IReadOnlyList<string> Tokens, IReadOnlyList<int> InputIds,
    IReadOnlyList<int> TokenTypeIds, float[][] Logits);

/// <summary>
/// A model folder loaded for use: tokenizer plus model (any family <see cref="ModelLoader"/> supports), in eval mode.
/// The CLI's commands call these methods.
/// </summary>
public sealed class MaskedLanguageModel : IDisposable
{
    public ITokenizer Tokenizer { get; }
    public PretrainedModel Model { get; }

    /// <summary>The tokenizer's own padding side (tokenizer_config.json <c>padding_side</c>, right when absent).</summary>
    public PaddingSide DefaultPaddingSide => Tokenizer.PaddingSide;

    internal MaskedLanguageModel(ITokenizer tokenizer, PretrainedModel model)
    {
        Tokenizer = tokenizer;
        Model = model;
        Model.eval();
    }

    /// <summary>
    /// Element type of the matrix products: float32 (the default, matching transformers) or bfloat16, several times
    /// faster on CPUs with bf16 units at a cost of about two decimal digits in each log-probability. Every family.
    /// </summary>
    public ComputeDtype ComputeDtype
    {
        get => Model.ComputeDtype;
        set => Model.ComputeDtype = value;
    }

    /// <param name="device">Where the model runs; null: auto, this process's GPU when CUDA is present, else the CPU
    /// (see <see cref="ComputeDevice"/>).</param>
    public static MaskedLanguageModel Load(string directory, Device? device = null)
    {
        if (!Directory.Exists(directory)) throw new UnmaskException($"{directory}: model folder not found");
        var model = ModelLoader.Load(directory, device ?? ComputeDevice.Default);
        try
        {
            if (model.Head == HeadKind.None)
                throw new UnmaskException($"{directory}: {model.Architecture} is a bare encoder without a masked-LM head; embed and eval sts use it as it is.");
            return new MaskedLanguageModel(TokenizerLoader.Load(directory), model);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Writes a Hugging Face model folder: config.json, model.safetensors and the tokenizer's files, all replacing
    /// <paramref name="directory"/> at once (see <see cref="ModelFolder.Save"/>).
    /// </summary>
    public void Save(string directory) => ModelFolder.Save(directory, Model, Tokenizer.Save);

    /// <summary>Encodes a text (and its pair), truncated to what the model's positions can take.</summary>
    public TokenizedText Tokenize(string text, bool addSpecialTokens = true, string? pair = null) =>
        Tokenizer.Encode(NormalizeMaskToken(text), pair is null ? null : NormalizeMaskToken(pair), addSpecialTokens, Model.MaxSequenceLength);

    /// <summary>
    /// Runs the texts (with their pairs, when given: one per text, null for none) as one padded batch, like the parity
    /// fixtures' tokenizer call; <paramref name="paddingSide"/> defaults to the tokenizer's own.
    /// </summary>
    public IReadOnlyList<ForwardResult> Forward(IReadOnlyList<string> texts, IReadOnlyList<string?>? pairs = null, PaddingSide? paddingSide = null)
    {
        if (pairs is not null && pairs.Count != texts.Count)
            throw new UnmaskException($"{pairs.Count} text pair(s) for {texts.Count} text(s); give one pair per text");
        var encodings = texts.Select((t, i) => Tokenize(t, pair: pairs?[i])).ToList();
        var side = paddingSide ?? DefaultPaddingSide;
        using var scope = NewDisposeScope();
        using var mode = inference_mode();
        var (ids, mask, types) = Pad(encodings, side);
        using var output = Model.Forward(ids, mask, Model.UsesTokenTypeIds ? types : null);
        var results = new List<ForwardResult>();
        for (int b = 0; b < encodings.Count; b++)
        {
            var e = encodings[b];
            var start = side == PaddingSide.Left ? ids.shape[1] - e.InputIds.Length : 0;
            var rows = output.Logits[b].narrow(0, start, e.InputIds.Length).reshape(e.InputIds.Length, -1).contiguous(); // [len, vocab or 1]
            var flat = rows.cpu().data<float>().ToArray();
            int v = (int)rows.shape[1];
            var logits = Enumerable.Range(0, e.InputIds.Length).Select(i => flat.AsSpan(i * v, v).ToArray()).ToArray();
            results.Add(new ForwardResult(texts[b], pairs?[b], e.Tokens, e.InputIds, e.TokenTypeIds, logits));
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
        if (Model.Head != HeadKind.MaskedLm)
            throw new UnmaskException($"a {Model.Architecture} has no masked-LM head, so it cannot fill masks (use its generator, or forward for its per-token scores)");
        var encodings = texts.Select(t => Tokenize(t)).ToList();
        for (int i = 0; i < encodings.Count; i++)
            if (!encodings[i].InputIds.Contains(Tokenizer.MaskId))
                throw new UnmaskException($"text {i + 1} has no mask token ({Tokenizer.MaskToken} or [MASK]): \"{texts[i]}\"");
        var targetIds = targets?.Select(TargetId).Distinct().ToArray();

        using var scope = NewDisposeScope();
        using var mode = inference_mode();
        var (ids, mask, types) = Pad(encodings, PaddingSide.Right);
        using var output = Model.Forward(ids, mask, Model.UsesTokenTypeIds ? types : null);
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
                    var vals = values.cpu().data<float>().ToArray();
                    var idx = indices.cpu().data<long>().ToArray();
                    for (int k = 0; k < vals.Length; k++) candidates.Add(Candidate((int)idx[k], vals[k]));
                }
                else
                {
                    var all = row.cpu().data<float>().ToArray();
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

    (Tensor Ids, Tensor Mask, Tensor TokenTypes) Pad(IReadOnlyList<TokenizedText> encodings, PaddingSide side)
    {
        int length = encodings.Max(e => e.InputIds.Length);
        var ids = new long[encodings.Count * length];
        var mask = new long[encodings.Count * length];
        var types = new long[encodings.Count * length];
        Array.Fill(ids, Tokenizer.PadId);
        for (int b = 0; b < encodings.Count; b++)
        {
            var e = encodings[b];
            var start = side == PaddingSide.Left ? length - e.InputIds.Length : 0;
            for (int t = 0; t < e.InputIds.Length; t++)
            {
                ids[b * length + start + t] = e.InputIds[t];
                mask[b * length + start + t] = 1;
                types[b * length + start + t] = e.TokenTypeIds.Length > t ? e.TokenTypeIds[t] : 0;
            }
        }
        var shape = new long[] { encodings.Count, length };
        return (tensor(ids, shape, device: Model.Device), tensor(mask, shape, device: Model.Device), tensor(types, shape, device: Model.Device)); // [batch, seq] each
    }

    public void Dispose() => Model.Dispose();
}
