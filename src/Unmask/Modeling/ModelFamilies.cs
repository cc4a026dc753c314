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
    public static PretrainedModel CreateMaskedLm(IHfConfig config, ComputeDtype computeDtype = ComputeDtype.Float32)
    {
        PretrainedModel model = config switch
        {
            BertConfig c => BertForMaskedLM.Create(c),
            DistilBertConfig c => DistilBertForMaskedLM.Create(c),
            ElectraConfig c => ElectraForMaskedLM.Create(c),
            ModernBertConfig c => ModernBertForMaskedLM.Create(c),
            _ => throw new ArgumentException($"{config.GetType().Name} is not a family config of this library", nameof(config)),
        };
        model.ComputeDtype = computeDtype;
        return model;
    }
}
