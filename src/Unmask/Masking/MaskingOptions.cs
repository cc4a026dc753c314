using System.Text.Json;
using System.Text.Json.Serialization;

namespace Unmask.Masking;

/// <summary>
/// Which strategy selects tokens, at what rate, and how selected tokens are corrupted: BERT's 80/10/10 by default;
/// the three fractions must sum to 1. <see cref="Rate"/> is the rate at the start of training; <see cref="Schedule"/>
/// moves it to an end rate as training progresses. The per-strategy records are read only by their strategy.
/// </summary>
public sealed record MaskingOptions(double Rate = 0.15, double MaskFraction = 0.8, double RandomFraction = 0.1, double KeepFraction = 0.1)
{
    /// <summary>One of <see cref="MaskingStrategies.Names"/>.</summary>
    public string Strategy { get; init; } = MaskingStrategies.Random;
    public RateSchedule Schedule { get; init; } = new();
    public SpanOptions Span { get; init; } = new();
    public NgramOptions Ngram { get; init; } = new();
    public PmiOptions Pmi { get; init; } = new();
    public WeightedOptions Weighted { get; init; } = new();

    /// <summary>The masking rate at a point of training (0: start, 1: end).</summary>
    public double RateAt(double progress) => Schedule.At(Rate, progress);

    public void Validate()
    {
        if (Rate is <= 0 or >= 1) throw new UnmaskException($"mask rate must be in (0, 1), got {Rate}");
        if (MaskFraction < 0 || RandomFraction < 0 || KeepFraction < 0)
            throw new UnmaskException("mask/random/keep fractions must not be negative");
        if (Math.Abs(MaskFraction + RandomFraction + KeepFraction - 1) > 1e-6)
            throw new UnmaskException(
                $"mask/random/keep fractions must sum to 1, got {MaskFraction} + {RandomFraction} + {KeepFraction}");
        MaskingStrategies.CheckName(Strategy);
        Schedule.Validate();
        Span.Validate();
        Ngram.Validate();
        Pmi.Validate();
        Weighted.Validate();
    }

    /// <summary>The JSON form of trainer_state.json's "masking" object, which is also what --masking-config reads.</summary>
    public static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    };

    /// <summary>Reads a masking configuration file; fields it leaves out keep their defaults.</summary>
    public static MaskingOptions Load(string path)
    {
        if (!File.Exists(path)) throw new UnmaskException($"{path}: masking config not found");
        MaskingOptions? options;
        try
        {
            options = JsonSerializer.Deserialize<MaskingOptions>(File.ReadAllText(path), Json);
        }
        catch (JsonException e)
        {
            throw new UnmaskException($"{path}: invalid masking config ({e.Message})", e);
        }
        if (options is null) throw new UnmaskException($"{path}: masking config is null");
        try
        {
            options.Validate();
        }
        catch (UnmaskException e)
        {
            throw new UnmaskException($"{path}: {e.Message}", e);
        }
        return options;
    }
}
