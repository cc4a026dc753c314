using System.Text.Json.Serialization;
using Unmask.Data;
using Unmask.Inference;
using Unmask.Modeling;

namespace Unmask.Evaluation;

/// <summary>Scores of a classifier on labelled data. <see cref="Metrics"/> (in %, ×100 for correlations): accuracy,
/// macro_f1, mcc (classification); f1 (micro) and accuracy (exact match) for multi-label; pearson, spearman
/// (regression); precision, recall, f1, token_accuracy (tokens, with <see cref="Entities"/> per type).</summary>
public sealed record ClassificationEvaluation(ClassificationTask Task, int Examples, IReadOnlyDictionary<string, double> Metrics, EntityReport? Entities)
{
    /// <summary>The metric that picks the best checkpoint: accuracy, f1 (multi-label, tokens) or spearman.</summary>
    public double Primary => Metrics[PrimaryMetric(Task)];

    public static string PrimaryMetric(ClassificationTask task) => task switch
    {
        ClassificationTask.Regression => "spearman",
        ClassificationTask.Classification or ClassificationTask.Prompt => "accuracy",
        _ => "f1",
    };
}

/// <summary>Runs a classifier over encoded data and scores it.</summary>
public static class ClassificationEvaluator
{
    /// <param name="examples">Encoded with the model's labels (targets and, for tokens, word starts).</param>
    /// <param name="goldTags">Token task: each sentence's gold tags (the whole sentence, also words cut off by truncation).</param>
    public static ClassificationEvaluation Evaluate(PretrainedModel model, int padId, ClassificationTask task, IReadOnlyList<EncodedExample> examples,
        IReadOnlyList<IReadOnlyList<string>>? goldTags = null, int batchSize = 64, CancellationToken cancellationToken = default)
    {
        if (task == ClassificationTask.TokenClassification)
        {
            var labels = ((TokenClassificationModel)model).Labels;
            var predicted = Classifier.WordTags(model, examples, labels, padId, batchSize, cancellationToken);
            var report = ClassificationMetrics.Entities(goldTags ?? throw new ArgumentNullException(nameof(goldTags)), predicted);
            return new ClassificationEvaluation(task, examples.Count, new Dictionary<string, double>
            {
                ["precision"] = report.Overall.Precision,
                ["recall"] = report.Overall.Recall,
                ["f1"] = report.Overall.F1,
                ["token_accuracy"] = report.TokenAccuracy,
            }, report);
        }

        var logits = Classifier.SequenceLogits(model, examples, padId, batchSize, cancellationToken);
        Dictionary<string, double> metrics;
        switch (task)
        {
            case ClassificationTask.Regression:
                var scores = ClassificationMetrics.Regression([.. examples.Select(e => (double)e.Targets[0])], [.. logits.Select(l => (double)l[0])]);
                metrics = new() { ["pearson"] = scores.Pearson, ["spearman"] = scores.Spearman };
                break;
            case ClassificationTask.MultiLabel:
                long tp = 0, fp = 0, fn = 0, exact = 0;
                for (int i = 0; i < examples.Count; i++)
                {
                    bool all = true;
                    for (int k = 0; k < logits[i].Length; k++)
                    {
                        bool p = logits[i][k] >= 0, g = examples[i].Targets[k] >= 0.5f;
                        if (p && g) tp++;
                        else if (p) fp++;
                        else if (g) fn++;
                        all &= p == g;
                    }
                    if (all) exact++;
                }
                metrics = new()
                {
                    ["f1"] = tp == 0 ? 0 : 100.0 * 2 * tp / (2 * tp + fp + fn),
                    ["accuracy"] = 100.0 * exact / examples.Count,
                };
                break;
            default:
                var gold = examples.Select(e => (int)e.Targets[0]).ToList();
                var predicted = logits.Select(l => Array.IndexOf(l, l.Max())).ToList();
                var c = ClassificationMetrics.Classification(gold, predicted);
                metrics = new() { ["accuracy"] = c.Accuracy, ["macro_f1"] = c.MacroF1, ["mcc"] = c.Mcc };
                break;
        }
        return new ClassificationEvaluation(task, examples.Count, metrics, null);
    }
}

/// <summary>
/// What <c>eval classification|token-classification</c> reports, flat as the JSON names it: accuracy, macro_f1, mcc
/// (classification); f1 and accuracy (multi-label); pearson, spearman (regression); precision, recall, f1,
/// token_accuracy and per_type (tokens). Fields that do not apply are null and left out of the JSON.
/// </summary>
public sealed record ClassificationReport(string Model, string Data, string Task, int Examples)
{
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public double? Accuracy { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public double? MacroF1 { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public double? Mcc { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public double? Pearson { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public double? Spearman { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public double? Precision { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public double? Recall { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public double? F1 { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public double? TokenAccuracy { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public IReadOnlyDictionary<string, EntityScores>? PerType { get; init; }

    /// <summary>The metrics by name, for tables.</summary>
    [JsonIgnore]
    public IReadOnlyDictionary<string, double> Metrics { get; init; } = new Dictionary<string, double>();

    [JsonIgnore]
    public EntityReport? Entities { get; init; }
}

/// <summary>Reads labelled data, encodes it with a classifier's labels and scores the classifier on it.</summary>
public static class ClassificationEvaluations
{
    public static ClassificationReport Run(Classifier classifier, ClassificationTask task, string dataPath, DataColumns columns, int maxSeqLength,
        CancellationToken cancellationToken = default)
    {
        var maxLength = Math.Min(maxSeqLength, classifier.Model.MaxSequenceLength);
        ClassificationEvaluation evaluation;
        if (task == ClassificationTask.TokenClassification)
        {
            var sentences = LabelledData.ReadWords(dataPath);
            var examples = ClassificationData.EncodeWords(classifier.Tokenizer, sentences, classifier.Labels, maxLength, labelAllPieces: false);
            evaluation = ClassificationEvaluator.Evaluate(classifier.Model, classifier.Tokenizer.PadId, task, examples,
                [.. sentences.Select(s => s.Tags)], cancellationToken: cancellationToken);
        }
        else
        {
            var texts = LabelledData.ReadTexts(dataPath, columns);
            var examples = ClassificationData.EncodeTexts(classifier.Tokenizer, texts, task, classifier.Labels, maxLength);
            evaluation = ClassificationEvaluator.Evaluate(classifier.Model, classifier.Tokenizer.PadId, task, examples, cancellationToken: cancellationToken);
        }
        double? Get(string key) => evaluation.Metrics.TryGetValue(key, out var v) ? v : null;
        return new ClassificationReport(classifier.Model.Architecture, dataPath, task.ToString(), evaluation.Examples)
        {
            Accuracy = Get("accuracy"),
            MacroF1 = Get("macro_f1"),
            Mcc = Get("mcc"),
            Pearson = Get("pearson"),
            Spearman = Get("spearman"),
            Precision = Get("precision"),
            Recall = Get("recall"),
            F1 = Get("f1"),
            TokenAccuracy = Get("token_accuracy"),
            PerType = evaluation.Entities?.PerType,
            Metrics = evaluation.Metrics,
            Entities = evaluation.Entities,
        };
    }
}

/// <summary>Prompt classification (<see cref="PromptClassifier"/>) scored like a fine-tuned classifier.</summary>
public static class PromptEvaluation
{
    /// <summary>Accuracy, macro-F1 and MCC of the prompt's labels against the data's; a gold label the verbalizer
    /// does not name is an error naming its file and line.</summary>
    public static ClassificationReport Run(PromptClassifier prompt, string model, string dataPath, DataColumns columns, CancellationToken cancellationToken = default)
    {
        var texts = LabelledData.ReadTexts(dataPath, columns);
        var index = prompt.Labels.Select((l, i) => (l, i)).ToDictionary(p => p.l, p => p.i, StringComparer.Ordinal);
        var gold = texts.Select(e => index.TryGetValue(e.Label, out var id) ? id
            : throw new UnmaskException($"{e.Source}: label '{e.Label}' is not one of the verbalizer's labels ({string.Join(", ", prompt.Labels)}).")).ToList();
        var predictions = prompt.Predict([.. texts.Select(e => (e.Text, e.Pair))], cancellationToken);
        var scores = ClassificationMetrics.Classification(gold, [.. predictions.Select(p => index[p.Label])]);
        var metrics = new Dictionary<string, double> { ["accuracy"] = scores.Accuracy, ["macro_f1"] = scores.MacroF1, ["mcc"] = scores.Mcc };
        return new ClassificationReport(model, dataPath, prompt.Calibrate ? "prompt (calibrated)" : "prompt", texts.Count)
        {
            Accuracy = scores.Accuracy,
            MacroF1 = scores.MacroF1,
            Mcc = scores.Mcc,
            Metrics = metrics,
        };
    }
}
