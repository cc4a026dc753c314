using System.CommandLine;
using System.Globalization;
using Unmask.Generation;

namespace Unmask.Cli.Commands;

/// <summary>The sampler options `generate` and `eval infill` share; `eval infill` takes lists of samplers and steps.</summary>
public sealed class SamplingArguments
{
    readonly Option<string> sampler = new("--sampler")
    {
        Description = "ancestral, confidence, dilated or mask-predict (eval infill: a comma-separated list)",
        DefaultValueFactory = _ => "confidence",
    };
    readonly Option<string> steps = new("--steps")
    {
        Description = "Time steps (ancestral), commit steps per block (confidence), iterations (mask-predict) (eval infill: a list)",
        DefaultValueFactory = _ => "32",
    };
    readonly Option<int?> blockLength = new("--block-length") { Description = "Decode left to right in blocks of B generated positions (dilated: required, a power of two)" };
    readonly Option<ConfidenceScore> score = new("--score") { Description = "confidence: probability, margin or entropy", DefaultValueFactory = _ => ConfidenceScore.Probability };
    readonly Option<double> temperature = new("--temperature") { Description = "0 takes the most probable token", DefaultValueFactory = _ => 1.0 };
    readonly Option<int?> topK = new("--top-k") { Description = "Sample among the k most probable tokens" };
    readonly Option<double?> topP = new("--top-p") { Description = "Sample among the most probable tokens whose mass reaches p" };
    readonly Option<double> remaskEta = new("--remask-eta") { Description = "ancestral: ReMDM cap remasking strength (0: off)", DefaultValueFactory = _ => 0.0 };
    readonly Option<int?> seed = new("--seed") { Description = "Same seed, same output" };

    public void AddTo(Command command)
    {
        foreach (var option in new Option[] { sampler, steps, blockLength, score, temperature, topK, topP, remaskEta, seed }) command.Options.Add(option);
    }

    /// <summary>One setting per sampler × steps given; `generate` takes exactly one.</summary>
    public IReadOnlyList<SamplingOptions> Settings(ParseResult parse, bool trace = false)
    {
        var samplers = List(parse.GetValue(sampler)!, "--sampler").Select(Sampler).ToList();
        var stepCounts = List(parse.GetValue(steps)!, "--steps").Select(s => int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) && n >= 1
            ? n : throw new UnmaskException($"--steps must be a whole number of at least 1, got '{s}'")).ToList();
        return samplers.SelectMany(kind => stepCounts.Select(n => new SamplingOptions
        {
            Sampler = kind,
            Steps = n,
            BlockLength = parse.GetValue(blockLength),
            Score = parse.GetValue(score),
            Temperature = parse.GetValue(temperature),
            TopK = parse.GetValue(topK),
            TopP = parse.GetValue(topP),
            RemaskEta = parse.GetValue(remaskEta),
            Seed = parse.GetValue(seed),
            Trace = trace,
        })).ToList();
    }

    static IEnumerable<string> List(string value, string option)
    {
        var items = value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        return items.Length > 0 ? items : throw new UnmaskException($"{option} is empty");
    }

    static SamplerKind Sampler(string name) => name.ToLowerInvariant() switch
    {
        "ancestral" => SamplerKind.Ancestral,
        "confidence" => SamplerKind.Confidence,
        "dilated" => SamplerKind.Dilated,
        "mask-predict" => SamplerKind.MaskPredict,
        _ => throw new UnmaskException($"--sampler '{name}' is not one of ancestral, confidence, dilated, mask-predict"),
    };

    public static string Describe(SamplingOptions s) => s.Sampler switch
    {
        SamplerKind.MaskPredict => "mask-predict",
        var kind => kind.ToString().ToLowerInvariant(),
    } + (s.Sampler == SamplerKind.Confidence && s.Score != ConfidenceScore.Probability ? $" ({s.Score.ToString().ToLowerInvariant()})" : "")
      + (s.BlockLength is { } b && s.Sampler is SamplerKind.Confidence or SamplerKind.Dilated ? $" B={b}" : "")
      + (s.RemaskEta > 0 && s.Sampler == SamplerKind.Ancestral ? $" remask η={s.RemaskEta}" : "");
}
