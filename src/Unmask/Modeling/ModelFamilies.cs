using System.Text.Json;

namespace Unmask.Modeling;

/// <summary>The families by config: which record a config.json reads into, and the masked-LM class built from it.</summary>
public static class ModelFamilies
{
    /// <summary>The model_type values this library builds, as config.json spells them.</summary>
    public static IReadOnlyList<string> ModelTypes { get; } = ["bert", "roberta", "xlm-roberta", "distilbert", "electra", "modernbert"];

    /// <summary>Reads config.json into its family's record, chosen by <c>model_type</c> (BERT's when absent).</summary>
    public static IHfConfig LoadConfig(string path)
    {
        var modelType = ReadModelType(path);
        return modelType switch
        {
            null or "bert" or "roberta" or "xlm-roberta" => BertConfig.Load(path),
            "distilbert" => DistilBertConfig.Load(path),
            "electra" => ElectraConfig.Load(path),
            "modernbert" => ModernBertConfig.Load(path),
            _ => throw new UnmaskException($"{path}: field 'model_type' is '{modelType}'; supported: {string.Join(", ", ModelTypes)}."),
        };
    }

    /// <summary>config.json's <c>model_type</c>, null when it has none.</summary>
    public static string? ReadModelType(string path)
    {
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllBytes(path),
                new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip });
            return document.RootElement.ValueKind == JsonValueKind.Object && document.RootElement.TryGetProperty("model_type", out var type)
                && type.ValueKind == JsonValueKind.String ? type.GetString() : null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new UnmaskException($"Cannot read model config '{path}': {ex.Message}", ex);
        }
        catch (JsonException ex)
        {
            throw new UnmaskException($"{path}: not valid JSON: {ex.Message}", ex);
        }
    }

    /// <summary>A randomly initialised masked LM of the config's family (ELECTRA's generator for an ELECTRA config),
    /// in training mode.</summary>
    /// <summary>The config with <paramref name="dropout"/> on hidden states and attention probabilities (BERT, RoBERTa,
    /// ELECTRA, DistilBERT), as a user would set it in config.json; null leaves it as it is.</summary>
    public static IHfConfig WithDropout(IHfConfig config, double? dropout) => dropout is not double p ? config : config switch
    {
        BertConfig c => c with { HiddenDropoutProb = p, AttentionProbsDropoutProb = p },
        ElectraConfig c => c with { HiddenDropoutProb = p, AttentionProbsDropoutProb = p },
        DistilBertConfig c => c with { Dropout = p, AttentionDropout = p },
        _ => throw new UnmaskException($"--dropout is not supported for '{config.ModelType}' models; set the dropout fields of its config.json instead."),
    };

    public static PretrainedModel CreateMaskedLm(IHfConfig config, ComputeDtype computeDtype = ComputeDtype.Float32) =>
        Create(config, HeadKind.MaskedLm, computeDtype);

    /// <summary>A randomly initialised model of the config's family with <paramref name="head"/>, in training mode;
    /// classifier heads take the config's labels (id2label).</summary>
    /// <param name="addPoolingLayer">BERT masked LM and bare encoder only: also build the pooler (for checkpoints that carry it).</param>
    public static PretrainedModel Create(IHfConfig config, HeadKind head, ComputeDtype computeDtype = ComputeDtype.Float32, bool addPoolingLayer = false)
    {
        PretrainedModel model = (config, head) switch
        {
            (BertConfig c, HeadKind.MaskedLm) => BertForMaskedLM.Create(c, addPoolingLayer: addPoolingLayer),
            (BertConfig c, HeadKind.SequenceClassification) => BertForSequenceClassification.Create(c),
            (BertConfig c, HeadKind.TokenClassification) => BertForTokenClassification.Create(c),
            (DistilBertConfig c, HeadKind.MaskedLm) => DistilBertForMaskedLM.Create(c),
            (DistilBertConfig c, HeadKind.SequenceClassification) => DistilBertForSequenceClassification.Create(c),
            (DistilBertConfig c, HeadKind.TokenClassification) => DistilBertForTokenClassification.Create(c),
            (ElectraConfig c, HeadKind.MaskedLm) => ElectraForMaskedLM.Create(c),
            (ElectraConfig c, HeadKind.ReplacedToken) => ElectraForPreTraining.Create(c),
            (ElectraConfig c, HeadKind.SequenceClassification) => ElectraForSequenceClassification.Create(c),
            (ElectraConfig c, HeadKind.TokenClassification) => ElectraForTokenClassification.Create(c),
            (ModernBertConfig c, HeadKind.MaskedLm) => ModernBertForMaskedLM.Create(c),
            (ModernBertConfig c, HeadKind.SequenceClassification) => ModernBertForSequenceClassification.Create(c),
            (ModernBertConfig c, HeadKind.TokenClassification) => ModernBertForTokenClassification.Create(c),
            (BertConfig or DistilBertConfig or ElectraConfig or ModernBertConfig, HeadKind.None) => EncoderModel.Create(config, addPoolingLayer),
            (BertConfig or DistilBertConfig or ElectraConfig or ModernBertConfig, _) =>
                throw new UnmaskException($"A '{config.ModelType}' model has no {head} head here."),
            _ => throw new ArgumentException($"{config.GetType().Name} is not a family config of this library", nameof(config)),
        };
        model.ComputeDtype = computeDtype;
        return model;
    }
}
