using Unmask.Checkpoints;
using Unmask.Data;
using Unmask.Modeling;
using Unmask.Tokenization;

namespace Unmask.Inference;

/// <summary>
/// A sequence prediction. Classification: <see cref="Label"/> with its probability <see cref="Score"/> and every
/// label's probability (softmax). Multi-label: the labels whose sigmoid is at least 0.5 in <see cref="Predicted"/>,
/// <see cref="Scores"/> holding each sigmoid. Regression: <see cref="Value"/> (the first output).
/// </summary>
public sealed record TextPrediction(string Text, string? Pair, string? Label, double? Score, IReadOnlyDictionary<string, double>? Scores,
    IReadOnlyList<string>? Predicted, double? Value, float[] Logits);

/// <summary>An entity as transformers' token-classification pipeline with aggregation_strategy="simple" gives it:
/// the type, the mean probability of its tokens, and its span [Start, End) of the input (UTF-16 offsets).</summary>
public sealed record EntitySpan(string EntityGroup, double Score, string Word, int Start, int End);

/// <summary>A text's tokens with their predicted tags and probabilities, and the entities merged from them.</summary>
public sealed record TokenPrediction(string Text, IReadOnlyList<string> Tokens, IReadOnlyList<string> Tags, IReadOnlyList<double> Scores,
    IReadOnlyList<EntitySpan> Entities);

/// <summary>A classifier folder loaded for prediction: tokenizer plus a sequence or token classification model, in eval mode.</summary>
public sealed class Classifier : IDisposable
{
    internal Classifier(ITokenizer tokenizer, PretrainedModel model)
    {
        Tokenizer = tokenizer;
        Model = model;
        Model.eval();
    }

    public ITokenizer Tokenizer { get; }
    public PretrainedModel Model { get; }

    public IReadOnlyList<string> Labels => Model switch
    {
        SequenceClassificationModel s => s.Labels,
        TokenClassificationModel t => t.Labels,
        _ => [],
    };

    /// <summary>problem_type, else transformers' reading of it: regression for one label, single-label otherwise.</summary>
    public string ProblemType => Model.HfConfig.ProblemType ?? (Labels.Count == 1 ? "regression" : "single_label_classification");

    /// <param name="device">Where the model runs; null: auto, this process's GPU when CUDA is present, else the CPU
    /// (see <see cref="ComputeDevice"/>).</param>
    public static Classifier Load(string directory, Device? device = null)
    {
        var model = ModelLoader.Load(directory, device ?? ComputeDevice.Default);
        try
        {
            if (model.Head is not (HeadKind.SequenceClassification or HeadKind.TokenClassification))
                throw new UnmaskException($"{directory}: {model.Architecture} is not a classifier (a *ForSequenceClassification or *ForTokenClassification folder, as finetune writes).");
            return new Classifier(TokenizerLoader.Load(directory), model);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    public void Dispose() => Model.Dispose();

    /// <summary>Sequence predictions in input order.</summary>
    public IReadOnlyList<TextPrediction> Predict(IReadOnlyList<(string Text, string? Pair)> inputs, int maxLength = 512, int batchSize = 32,
        CancellationToken cancellationToken = default)
    {
        if (Model.Head != HeadKind.SequenceClassification)
            throw new UnmaskException($"{Model.Architecture} labels tokens; use token predictions.");
        var examples = inputs.Select(i => Encode(i.Text, i.Pair, maxLength)).ToList();
        var logits = SequenceLogits(Model, examples, Tokenizer.PadId, batchSize, cancellationToken);
        return [.. inputs.Select((input, i) => Describe(input.Text, input.Pair, logits[i], Labels, ProblemType))];
    }

    EncodedExample Encode(string text, string? pair, int maxLength)
    {
        if (string.IsNullOrWhiteSpace(text)) throw new UnmaskException("an input text is empty.");
        var tokens = Tokenizer.Encode(text, pair, maxLength: Math.Min(maxLength, Model.MaxSequenceLength));
        return new EncodedExample(tokens.InputIds, tokens.TokenTypeIds, [], null, null, 0);
    }

    internal static TextPrediction Describe(string text, string? pair, float[] logits, IReadOnlyList<string> labels, string problemType)
    {
        switch (problemType)
        {
            case "regression":
                return new TextPrediction(text, pair, null, null, null, null, logits[0], logits);
            case "multi_label_classification":
                var sigmoid = logits.Select(l => 1 / (1 + Math.Exp(-l))).ToArray();
                var scores = labels.Select((name, i) => (name, i)).ToDictionary(p => p.name, p => sigmoid[p.i]);
                return new TextPrediction(text, pair, null, null, scores, [.. labels.Where((_, i) => sigmoid[i] >= 0.5)], null, logits);
            default:
                var probabilities = Softmax(logits);
                int best = Array.IndexOf(probabilities, probabilities.Max());
                var all = labels.Select((name, i) => (name, i)).ToDictionary(p => p.name, p => probabilities[p.i]);
                return new TextPrediction(text, pair, labels[best], probabilities[best], all, null, null, logits);
        }
    }

    static double[] Softmax(float[] logits)
    {
        double max = logits.Max();
        var exp = logits.Select(l => Math.Exp(l - max)).ToArray();
        double sum = exp.Sum();
        return [.. exp.Select(e => e / sum)];
    }

    /// <summary>Per text, each token's tag and probability, and entities grouped as the "simple" pipeline does: a
    /// B- tag or a change of type starts an entity, O ends one.</summary>
    public IReadOnlyList<TokenPrediction> PredictTokens(IReadOnlyList<string> texts, int maxLength = 512, int batchSize = 32,
        CancellationToken cancellationToken = default)
    {
        if (Model.Head != HeadKind.TokenClassification)
            throw new UnmaskException($"{Model.Architecture} labels whole sequences; use sequence predictions.");
        var encodings = texts.Select(t => string.IsNullOrWhiteSpace(t) ? throw new UnmaskException("an input text is empty.")
            : Tokenizer.Encode(t, maxLength: Math.Min(maxLength, Model.MaxSequenceLength))).ToList();
        var examples = encodings.Select(e => new EncodedExample(e.InputIds, e.TokenTypeIds, [], null, null, 0)).ToList();
        var logits = TokenLogits(Model, examples, Tokenizer.PadId, batchSize, cancellationToken);
        var predictions = new List<TokenPrediction>(texts.Count);
        for (int i = 0; i < texts.Count; i++)
        {
            var tokens = new List<string>();
            var tags = new List<string>();
            var scores = new List<double>();
            var spans = new List<TokenOffset>();
            for (int t = 0; t < encodings[i].InputIds.Length; t++)
            {
                if (encodings[i].SpecialTokensMask[t]) continue;
                var probabilities = Softmax(logits[i][t]);
                int best = Array.IndexOf(probabilities, probabilities.Max());
                tokens.Add(encodings[i].Tokens[t]);
                tags.Add(Labels[best]);
                scores.Add(probabilities[best]);
                spans.Add(encodings[i].Offsets![t]);
            }
            predictions.Add(new TokenPrediction(texts[i], tokens, tags, scores, GroupEntities(texts[i], tags, scores, spans)));
        }
        return predictions;
    }

    internal static List<EntitySpan> GroupEntities(string text, IReadOnlyList<string> tags, IReadOnlyList<double> scores, IReadOnlyList<TokenOffset> spans)
    {
        var entities = new List<EntitySpan>();
        string? type = null;
        int first = 0;
        void Close(int last)
        {
            if (type is null) return;
            int start = spans[first].Start, end = spans[last].End;
            var mean = Enumerable.Range(first, last - first + 1).Average(i => scores[i]);
            entities.Add(new EntitySpan(type, mean, text[start..end].Trim(), start, end));
            type = null;
        }
        for (int i = 0; i < tags.Count; i++)
        {
            var tag = tags[i];
            var (prefix, tagType) = tag == "O" ? ("O", "") : tag.Length > 2 && tag[1] == '-' ? (tag[..1], tag[2..]) : ("I", tag);
            if (prefix == "O")
            {
                Close(i - 1);
                continue;
            }
            if (type is not null && (prefix == "B" || tagType != type)) Close(i - 1);
            if (type is null)
            {
                type = tagType;
                first = i;
            }
        }
        Close(tags.Count - 1);
        return entities;
    }

    /// <summary>Per sentence of words, the tag of each word: the prediction at its first piece (O for a word cut off
    /// by the length limit or dropped by the tokenizer), as run_ner.py evaluates.</summary>
    public IReadOnlyList<IReadOnlyList<string>> TagWords(IReadOnlyList<IReadOnlyList<string>> sentences, int maxLength = 512, int batchSize = 32,
        CancellationToken cancellationToken = default)
    {
        var examples = sentences.Select(words =>
        {
            var (tokens, wordOfToken, _) = ClassificationData.EncodeWordsOnly(Tokenizer, words, Math.Min(maxLength, Model.MaxSequenceLength));
            return new EncodedExample(tokens.InputIds, tokens.TokenTypeIds, [], null, wordOfToken, words.Count);
        }).ToList();
        return WordTags(Model, examples, Labels, Tokenizer.PadId, batchSize, cancellationToken);
    }

    internal static IReadOnlyList<IReadOnlyList<string>> WordTags(PretrainedModel model, IReadOnlyList<EncodedExample> examples,
        IReadOnlyList<string> labels, int padId, int batchSize, CancellationToken cancellationToken)
    {
        var logits = TokenLogits(model, examples, padId, batchSize, cancellationToken);
        var result = new List<IReadOnlyList<string>>(examples.Count);
        for (int i = 0; i < examples.Count; i++)
        {
            var tags = Enumerable.Repeat("O", examples[i].Words).ToArray();
            for (int t = 0; t < examples[i].InputIds.Length; t++)
            {
                var word = examples[i].WordOfToken![t];
                if (word < 0) continue;
                var row = logits[i][t];
                tags[word] = labels[Array.IndexOf(row, row.Max())];
            }
            result.Add(tags);
        }
        return result;
    }

    /// <summary>Right-padded [batch, seq] ids, attention mask and token types of the selected examples, on <paramref name="device"/>.</summary>
    internal static (Tensor Ids, Tensor Mask, Tensor Types) Collate(IReadOnlyList<EncodedExample> examples, IReadOnlyList<int> rows, int padId, Device device)
    {
        int length = rows.Max(r => examples[r].InputIds.Length);
        var ids = new long[rows.Count * length];
        var mask = new long[ids.Length];
        var types = new long[ids.Length];
        Array.Fill(ids, padId);
        for (int b = 0; b < rows.Count; b++)
        {
            var e = examples[rows[b]];
            for (int t = 0; t < e.InputIds.Length; t++)
            {
                ids[b * length + t] = e.InputIds[t];
                mask[b * length + t] = 1;
                types[b * length + t] = e.TokenTypeIds.Length > t ? e.TokenTypeIds[t] : 0;
            }
        }
        long[] shape = [rows.Count, length];
        return (tensor(ids, shape, device: device), tensor(mask, shape, device: device), tensor(types, shape, device: device));
    }

    /// <summary>The sequence logits of every example, in order: [num_labels] each.</summary>
    internal static float[][] SequenceLogits(PretrainedModel model, IReadOnlyList<EncodedExample> examples, int padId, int batchSize,
        CancellationToken cancellationToken)
    {
        var result = new float[examples.Count][];
        using var mode = inference_mode();
        foreach (var rows in ClassificationData.SortedBatches(examples, batchSize))
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope();
            var (ids, mask, types) = Collate(examples, rows, padId, model.Device);
            using var output = model.Forward(ids, mask, types);
            var flat = output.Logits.cpu().data<float>().ToArray(); // [batch * num_labels]
            int labels = (int)output.Logits.shape[1];
            for (int b = 0; b < rows.Length; b++) result[rows[b]] = flat[(b * labels)..((b + 1) * labels)];
        }
        return result;
    }

    /// <summary>The token logits of every example, in order: per token (padding left out) a row of [num_labels].</summary>
    internal static float[][][] TokenLogits(PretrainedModel model, IReadOnlyList<EncodedExample> examples, int padId, int batchSize,
        CancellationToken cancellationToken)
    {
        var result = new float[examples.Count][][];
        using var mode = inference_mode();
        foreach (var rows in ClassificationData.SortedBatches(examples, batchSize))
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope();
            var (ids, mask, types) = Collate(examples, rows, padId, model.Device);
            using var output = model.Forward(ids, mask, types);
            var flat = output.Logits.cpu().data<float>().ToArray(); // [batch * seq * num_labels]
            var (seq, labels) = ((int)output.Logits.shape[1], (int)output.Logits.shape[2]);
            for (int b = 0; b < rows.Length; b++)
            {
                int length = examples[rows[b]].InputIds.Length;
                result[rows[b]] = [.. Enumerable.Range(0, length).Select(t => flat[((b * seq + t) * labels)..((b * seq + t + 1) * labels)])];
            }
        }
        return result;
    }
}
