using Unmask.Checkpoints;
using Unmask.Data;
using Unmask.Modeling;
using Unmask.Tokenization;

namespace Unmask.Inference;

/// <summary>How token vectors become one sentence vector.</summary>
public enum Pooling
{
    /// <summary>The first token's vector ([CLS] / &lt;s&gt;).</summary>
    Cls,

    /// <summary>The mean over real tokens, special tokens included, as sentence-transformers computes it.</summary>
    Mean,

    /// <summary>The element-wise maximum over real tokens.</summary>
    Max,

    /// <summary>BERT's pooler (dense and tanh over the first token); only folders that carry one.</summary>
    Pooler,
}

/// <summary>Choices for <see cref="SentenceEmbedder.Embed"/>; null takes the folder's sentence-transformers setting
/// (mean pooling, no normalisation and the model's longest input without one).</summary>
/// <param name="Layer">Which hidden state to pool: 0 the embedding output, 1..L a layer's output, negative counts
/// from the last (-1); null is the last.</param>
/// <param name="TokenBudget">Most tokens (rows × padded length) per forward pass.</param>
public sealed record EmbeddingOptions(Pooling? Pooling = null, int? Layer = null, bool? Normalize = null, int? MaxLength = null,
    int TokenBudget = 8192);

/// <summary>A vocabulary term of a sparse (SPLADE) vector.</summary>
public sealed record SparseTerm(string Token, int Id, float Weight);

/// <summary>
/// Sentence vectors from any model folder: a masked LM, a classifier, or a sentence-transformers folder, whose pooling,
/// maximum length and normalisation it then follows. Sparse SPLADE vectors come from the masked-LM head.
/// </summary>
public sealed class SentenceEmbedder : IDisposable
{
    internal SentenceEmbedder(ITokenizer tokenizer, PretrainedModel model, SentenceTransformersConfig? folderConfig)
    {
        Tokenizer = tokenizer;
        Model = model;
        FolderConfig = folderConfig;
        Model.eval();
    }

    public ITokenizer Tokenizer { get; }
    public PretrainedModel Model { get; }

    /// <summary>The folder's sentence-transformers configuration, null for a plain Hugging Face folder.</summary>
    public SentenceTransformersConfig? FolderConfig { get; }

    public ComputeDtype ComputeDtype
    {
        get => Model.ComputeDtype;
        set => Model.ComputeDtype = value;
    }

    /// <param name="device">Where the model runs; null: auto, this process's GPU when CUDA is present, else the CPU
    /// (see <see cref="ComputeDevice"/>).</param>
    public static SentenceEmbedder Load(string directory, Device? device = null)
    {
        if (!Directory.Exists(directory)) throw new UnmaskException($"{directory}: model folder not found");
        var folderConfig = SentenceTransformersFolder.Read(directory);
        var model = ModelLoader.Load(directory, device ?? ComputeDevice.Default);
        try
        {
            if (folderConfig?.WordEmbeddingDimension is int dimension && dimension != model.Encoder.WordEmbeddingWeight.shape[1])
                throw new UnmaskException($"{Path.Combine(directory, SentenceTransformersFolder.PoolingFolder, "config.json")}: word_embedding_dimension is {dimension}, but the model's hidden size is {model.Encoder.WordEmbeddingWeight.shape[1]}.");
            return new SentenceEmbedder(TokenizerLoader.Load(directory), model, folderConfig);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    public void Dispose() => Model.Dispose();

    /// <summary>The options this folder runs with: <paramref name="options"/> where given, else the folder's own.
    /// A pooling or normalisation that contradicts a sentence-transformers folder is an error.</summary>
    public EmbeddingOptions Resolve(EmbeddingOptions? options)
    {
        options ??= new EmbeddingOptions();
        if (FolderConfig is { } folder)
        {
            if (options.Pooling is { } pooling && pooling != folder.Pooling)
                throw new UnmaskException($"the folder's sentence-transformers config pools with {folder.Pooling.ToString().ToLowerInvariant()}, not {pooling.ToString().ToLowerInvariant()}; leave the pooling out to use it.");
            if (options.Normalize == false && folder.Normalize)
                throw new UnmaskException("the folder's sentence-transformers modules end with Normalize; its vectors are always normalised.");
        }
        var maxLength = Math.Min(options.MaxLength ?? FolderConfig?.MaxSeqLength ?? Model.MaxSequenceLength, Model.MaxSequenceLength);
        if (maxLength < 2) throw new UnmaskException($"the maximum length must be at least 2 tokens, got {maxLength}.");
        if (options.TokenBudget < 1) throw new UnmaskException($"the token budget must be positive, got {options.TokenBudget}.");
        return options with
        {
            Pooling = options.Pooling ?? FolderConfig?.Pooling ?? Pooling.Mean,
            Normalize = options.Normalize ?? FolderConfig?.Normalize ?? false,
            MaxLength = maxLength,
        };
    }

    /// <summary>One vector per text, in input order, [hidden] each.</summary>
    public float[][] Embed(IReadOnlyList<string> texts, EmbeddingOptions? options = null, CancellationToken cancellationToken = default)
    {
        var resolved = Resolve(options);
        var pooling = resolved.Pooling!.Value;
        if (pooling == Pooling.Pooler && resolved.Layer is not null)
            throw new UnmaskException("the pooler reads the last layer; leave the layer out with pooler pooling.");

        var encoded = Encode(texts, resolved.MaxLength!.Value);
        var result = new float[texts.Count][];
        // Under mpiexec each rank runs every N-th batch of the same plan (so each text meets the same batch, and its
        // vector the same floats, as in one process); the vectors are then summed back, zeros from the other ranks.
        var world = Distributed.MpiWorld.Current;
        int batchIndex = 0;
        foreach (var rows in Batches(encoded, resolved.TokenBudget))
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (batchIndex++ % world.Size != world.Rank) continue;
            using var scope = torch.NewDisposeScope();
            using var mode = torch.inference_mode();
            var (ids, mask, types) = Classifier.Collate(encoded, rows, Tokenizer.PadId, Model.Device); // [batch, seq] each
            var hiddenStates = resolved.Layer is null ? null : new List<Tensor>();
            var last = Model.Encoder.forward(ids, mask, Model.UsesTokenTypeIds ? types : null, hiddenStates); // [batch, seq, hidden]
            var vectors = pooling == Pooling.Pooler
                ? Model.Pool(last) ?? throw new UnmaskException($"{Model.Architecture} carries no pooler weights (masked-LM checkpoints drop them); use cls, mean or max.")
                : Pool(hiddenStates is null ? last : SelectLayer(hiddenStates, resolved.Layer!.Value).to(ScalarType.Float32), mask, pooling); // [batch, hidden]
            if (resolved.Normalize == true) vectors = F.normalize(vectors, p: 2, dim: 1);
            var data = vectors.to(ScalarType.Float32).contiguous().cpu().data<float>().ToArray();
            int width = (int)vectors.shape[1];
            for (int b = 0; b < rows.Count; b++) result[rows[b]] = data[(b * width)..((b + 1) * width)];
        }
        if (world.Size > 1) Gather(result, world);
        return result;
    }

    static void Gather(float[][] result, Distributed.MpiWorld world)
    {
        int width = result.FirstOrDefault(r => r is not null)?.Length ?? 0;
        var widths = new[] { (double)width };
        world.AllReduceMax(widths);
        width = (int)widths[0];
        var flat = new float[result.Length * width];
        for (int i = 0; i < result.Length; i++) result[i]?.CopyTo(flat, i * width);
        world.AllReduceSum(flat);
        for (int i = 0; i < result.Length; i++) result[i] = flat[(i * width)..((i + 1) * width)];
    }

    /// <summary>Hidden state <paramref name="layer"/> of the embedding output and the L layer outputs; negative counts from the end.</summary>
    static Tensor SelectLayer(List<Tensor> hiddenStates, int layer)
    {
        int count = hiddenStates.Count;
        if (layer < -count || layer >= count)
            throw new UnmaskException($"layer {layer} is outside the model's hidden states 0..{count - 1} (or -{count}..-1).");
        return hiddenStates[layer < 0 ? count + layer : layer];
    }

    /// <summary>
    /// Pools [batch, seq, hidden] token vectors into [batch, hidden] over the positions where
    /// <paramref name="attentionMask"/> ([batch, seq]) is 1, as sentence-transformers' Pooling does.
    /// </summary>
    public static Tensor Pool(Tensor hidden, Tensor attentionMask, Pooling pooling)
    {
        using var scope = torch.NewDisposeScope();
        var mask = attentionMask.unsqueeze(-1).to(hidden.dtype); // [batch, seq, 1]
        var pooled = pooling switch
        {
            Pooling.Cls => hidden.select(1, 0),
            Pooling.Mean => hidden.mul(mask).sum(1).div(mask.sum(1).clamp_min(1e-9)),
            // sentence-transformers sets padding to -1e9 before the maximum, which a row of real tokens always beats.
            Pooling.Max => hidden.masked_fill(mask.eq(0), -1e9).amax(1),
            _ => throw new ArgumentException($"{pooling} pooling needs the model's pooler.", nameof(pooling)),
        }; // [batch, hidden]
        return pooled.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// SPLADE vectors from the masked-LM head: w_v = max over real positions of log(1 + ReLU(logit_v)), the
    /// <paramref name="topTerms"/> largest non-zero weights per text, largest first.
    /// </summary>
    public IReadOnlyList<IReadOnlyList<SparseTerm>> Sparse(IReadOnlyList<string> texts, int topTerms = 32, int? maxLength = null,
        int tokenBudget = 8192, CancellationToken cancellationToken = default)
    {
        if (Model.Head != HeadKind.MaskedLm)
            throw new UnmaskException($"{Model.Architecture} has no masked-LM head; sparse vectors need one (a *ForMaskedLM folder).");
        if (topTerms < 1) throw new UnmaskException($"--top-terms must be positive, got {topTerms}.");
        var resolved = Resolve(new EmbeddingOptions(MaxLength: maxLength, TokenBudget: tokenBudget) with { Pooling = FolderConfig?.Pooling });
        var encoded = Encode(texts, resolved.MaxLength!.Value);
        var result = new IReadOnlyList<SparseTerm>[texts.Count];
        foreach (var rows in Batches(encoded, resolved.TokenBudget))
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var scope = torch.NewDisposeScope();
            using var mode = torch.inference_mode();
            var (ids, mask, types) = Classifier.Collate(encoded, rows, Tokenizer.PadId, Model.Device); // [batch, seq] each
            using var output = Model.Forward(ids, mask, types);
            var weights = SpladeWeights(output.Logits, mask); // [batch, vocab]
            int k = (int)Math.Min(topTerms, weights.shape[1]);
            var (values, indices) = weights.topk(k, dim: 1); // [batch, k] each
            var v = values.contiguous().cpu().data<float>().ToArray();
            var ix = indices.contiguous().cpu().data<long>().ToArray();
            for (int b = 0; b < rows.Count; b++)
                result[rows[b]] = [.. Enumerable.Range(b * k, k).Where(i => v[i] > 0)
                    .Select(i => new SparseTerm(Tokenizer.IdToToken((int)ix[i]), (int)ix[i], v[i]))];
        }
        return result;
    }

    /// <summary>[batch, seq, vocab] logits and a [batch, seq] mask → [batch, vocab] SPLADE weights. Every weight is
    /// at least 0, so zeroing the padding before the maximum leaves the real positions' maximum.</summary>
    public static Tensor SpladeWeights(Tensor logits, Tensor attentionMask)
    {
        using var scope = torch.NewDisposeScope();
        var weights = logits.to(ScalarType.Float32).relu().log1p().mul(attentionMask.unsqueeze(-1).to(ScalarType.Float32)); // [batch, seq, vocab]
        return weights.amax(1).MoveToOuterDisposeScope();
    }

    List<EncodedExample> Encode(IReadOnlyList<string> texts, int maxLength) =>
        [.. texts.Select((t, i) => string.IsNullOrWhiteSpace(t)
            ? throw new UnmaskException($"text {i + 1} is empty.")
            : Tokenizer.Encode(t, maxLength: maxLength) is var e ? new EncodedExample(e.InputIds, e.TokenTypeIds, [], null, null, 0) : null!)];

    /// <summary>Rows grouped longest first so that each batch pads little, each within the token budget.</summary>
    static IEnumerable<List<int>> Batches(IReadOnlyList<EncodedExample> examples, int tokenBudget)
    {
        var order = Enumerable.Range(0, examples.Count).OrderByDescending(i => examples[i].InputIds.Length).ToList();
        var batch = new List<int>();
        int longest = 0;
        foreach (var row in order)
        {
            int length = Math.Max(longest, examples[row].InputIds.Length);
            if (batch.Count > 0 && (batch.Count + 1) * length > tokenBudget)
            {
                yield return batch;
                batch = [];
                length = examples[row].InputIds.Length;
            }
            batch.Add(row);
            longest = length;
        }
        if (batch.Count > 0) yield return batch;
    }
}
