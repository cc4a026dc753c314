
namespace Unmask.Modeling;

// What transformers' *ForSequenceClassification and *ForTokenClassification share across families: the label set
// from config.json, the problem type and its loss. Each family's file defines its own head modules and names.

/// <summary>
/// A sequence classifier or regressor (HF's *ForSequenceClassification): one row of num_labels logits per sequence.
/// Labels are [batch] int64 class ids (single-label), [batch, num_labels] float 0/1 (multi-label), or [batch] /
/// [batch, num_labels] float targets (regression).
/// </summary>
public abstract class SequenceClassificationModel : PretrainedModel
{
    private protected SequenceClassificationModel(string name, IHfConfig config, string encoderPrefix, Encoder encoder)
        : base(name, config, encoderPrefix, encoder)
    {
        Labels = config.Labels;
    }

    /// <summary>Label names in id order (config.json's id2label).</summary>
    public IReadOnlyList<string> Labels { get; }

    public int NumLabels => Labels.Count;

    public override HeadKind Head => HeadKind.SequenceClassification;

    private protected override IReadOnlySet<string> TiedNames { get; } = new HashSet<string>();

    private protected override void CheckLabels(Tensor labels, Tensor inputIds)
    {
        var batch = inputIds.shape[0];
        bool perSequence = labels.shape.SequenceEqual([batch]) || labels.shape.SequenceEqual([batch, NumLabels]);
        if (!perSequence)
            throw new ArgumentException($"labels has shape [{string.Join(", ", labels.shape)}]; a sequence classifier takes [{batch}] or [{batch}, {NumLabels}].");
    }

    /// <summary>transformers' rule: problem_type when set, else regression for one label, single-label for integer
    /// labels and multi-label for float ones.</summary>
    internal string ResolveProblemType(Tensor labels) => HfConfig.ProblemType
        ?? (NumLabels == 1 ? "regression" : labels.dtype is ScalarType.Int64 or ScalarType.Int32 ? "single_label_classification" : "multi_label_classification");

    private protected override Tensor HeadLoss(Tensor logits, Tensor labels, Tensor? attentionMask)
    {
        switch (ResolveProblemType(labels))
        {
            case "regression":
                var target = labels.to(ScalarType.Float32);
                return NumLabels == 1 ? F.mse_loss(logits.squeeze(), target.squeeze()) : F.mse_loss(logits, target);
            case "single_label_classification":
                return F.cross_entropy(logits.view(-1, NumLabels), labels.reshape(-1).to(ScalarType.Int64));
            default:
                return F.binary_cross_entropy_with_logits(logits, labels.to(ScalarType.Float32));
        }
    }
}

/// <summary>A token classifier (HF's *ForTokenClassification): num_labels logits per position; labels are [batch, seq]
/// int64 ids, -100 where no loss is wanted (padding, special tokens, a word's later pieces).</summary>
public abstract class TokenClassificationModel : PretrainedModel
{
    private protected TokenClassificationModel(string name, IHfConfig config, string encoderPrefix, Encoder encoder)
        : base(name, config, encoderPrefix, encoder)
    {
        Labels = config.Labels;
    }

    /// <summary>Label names in id order (config.json's id2label), e.g. O, B-person, I-person.</summary>
    public IReadOnlyList<string> Labels { get; }

    public int NumLabels => Labels.Count;

    public override HeadKind Head => HeadKind.TokenClassification;

    private protected override IReadOnlySet<string> TiedNames { get; } = new HashSet<string>();

    // As transformers: cross-entropy over every labelled position (padding is labelled -100 by the data, not masked here).
    private protected override Tensor HeadLoss(Tensor logits, Tensor labels, Tensor? attentionMask) =>
        F.cross_entropy(logits.reshape(-1, NumLabels), labels.reshape(-1));
}

/// <summary>
/// RoBERTa's and ELECTRA's sequence head (classifier.dense, classifier.out_proj) on the first token: dropout, dense,
/// activation (tanh for RoBERTa, exact GELU for ELECTRA), dropout, out_proj.
/// </summary>
internal sealed class FirstTokenClassificationHead : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "dense")] readonly Linear dense;
    [ComponentName(Name = "out_proj")] readonly Linear outProj;
    readonly Func<Tensor, Tensor> activation;
    readonly double dropout;

    public FirstTokenClassificationHead(int hiddenSize, int numLabels, double initializerRange, double dropout, Func<Tensor, Tensor> activation)
        : base(nameof(FirstTokenClassificationHead))
    {
        dense = new Linear(hiddenSize, hiddenSize, initializerRange);
        outProj = new Linear(hiddenSize, numLabels, initializerRange);
        this.activation = activation;
        this.dropout = dropout;
        RegisterComponents();
    }

    /// <param name="sequence">[batch, seq, hidden]</param>
    /// <returns>[batch, num_labels] float32</returns>
    public override Tensor forward(Tensor sequence)
    {
        var first = F.dropout(sequence.select(1, 0), dropout, training); // [batch, hidden]
        var hidden = F.dropout(activation(dense.forward(first)), dropout, training);
        return outProj.forward(hidden).to(ScalarType.Float32);
    }
}
