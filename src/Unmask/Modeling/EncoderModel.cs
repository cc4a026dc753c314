namespace Unmask.Modeling;

/// <summary>
/// transformers' bare encoder classes (BertModel, RobertaModel, XLMRobertaModel, DistilBertModel, ElectraModel,
/// ModernBertModel): what sentence-transformers folders and ONNX exports hold. There is no head: the "logits" are the
/// last hidden state. As in transformers, the tensors are saved without the encoder prefix (embeddings.*, not
/// bert.embeddings.*), and a checkpoint with or without the prefix loads.
/// </summary>
public sealed class EncoderModel : PretrainedModel
{
    readonly double initializerRange;

    EncoderModel(IHfConfig config, string encoderPrefix, Encoder encoder, double initializerRange)
        : base(nameof(EncoderModel), config, encoderPrefix, encoder)
    {
        this.initializerRange = initializerRange;
    }

    /// <summary>A randomly initialised bare encoder of the config's family, in training mode.</summary>
    /// <param name="addPoolingLayer">BERT and RoBERTa: also build the pooler (transformers' default; checkpoints
    /// exported without it leave it out).</param>
    public static EncoderModel Create(IHfConfig config, bool addPoolingLayer = false) => config switch
    {
        BertConfig c => new EncoderModel(c with { Architectures = [BertConfig.ClassName(c.ModelType, "Model")] }, c.IsRoberta ? "roberta" : "bert",
            new BertModel(c, addPoolingLayer), c.InitializerRange),
        DistilBertConfig c => new EncoderModel(c with { Architectures = [DistilBertClassName] }, "distilbert", new DistilBertModel(c), c.InitializerRange),
        ElectraConfig c => new EncoderModel(c with { Architectures = [ElectraClassName] }, "electra", new ElectraModel(c), c.InitializerRange),
        ModernBertConfig c => new EncoderModel(c with { Architectures = [ModernBertClassName] }, "model", new ModernBertModel(c), c.InitializerRange),
        _ => throw new ArgumentException($"{config.GetType().Name} is not a family config of this library", nameof(config)),
    };

    public const string DistilBertClassName = "DistilBertModel";
    public const string ElectraClassName = "ElectraModel";
    public const string ModernBertClassName = "ModernBertModel";

    public override HeadKind Head => HeadKind.None;
    private protected override double InitializerRange => initializerRange;
    private protected override IReadOnlySet<string> TiedNames { get; } = new HashSet<string>();
    private protected override bool SavesWithoutEncoderPrefix => true;

    // A view, not the same tensor: the output holds the hidden state twice and disposes each handle once.
    private protected override Tensor HeadForward(Tensor hidden, Tensor? attentionMask) => hidden.alias();

    private protected override Tensor HeadLoss(Tensor logits, Tensor labels, Tensor? attentionMask) =>
        throw new ArgumentException($"{Architecture} has no head and so no loss; load it with a head to train on labels.");
}
