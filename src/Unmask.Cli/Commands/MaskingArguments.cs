using System.CommandLine;
using System.Globalization;
using Unmask.Masking;

namespace Unmask.Cli.Commands;

/// <summary>
/// The masking options shared by `pretrain`, `mask` and `ablate`: a strategy by name or a JSON config file, and flags
/// that override single fields of it. `ablate` names its strategies itself, so it asks for no --masking.
/// </summary>
public sealed class MaskingArguments(bool withStrategy = true)
{
    readonly Option<string?> _strategy = new("--masking") { Description = $"Masking strategy: {string.Join(", ", MaskingStrategies.Names)} (default random)" };
    readonly Option<string?> _config = new("--masking-config") { Description = "JSON masking config (the \"masking\" object of trainer_state.json); flags override its fields" };
    readonly Option<double> _rate = new("--mask-rate") { DefaultValueFactory = _ => 0.15, Description = "Share of tokens selected (the start rate of a schedule)" };
    readonly Option<string> _split = new("--mask-split") { DefaultValueFactory = _ => "80/10/10", Description = "Percent of selected tokens masked/random/kept" };
    readonly Option<string?> _schedule = new("--rate-schedule") { Description = "constant, linear or cosine from --mask-rate to --end-rate" };
    readonly Option<double?> _endRate = new("--end-rate") { Description = "Masking rate at the end of training (with --rate-schedule)" };
    readonly Option<double?> _spanP = new("--span-p") { Description = "span: geometric parameter of span lengths in words (0.2)" };
    readonly Option<int?> _spanMax = new("--span-max") { Description = "span: longest span in words (10)" };
    readonly Option<string?> _ngram = new("--ngram-probs") { Description = "ngram: probabilities of 1..N-word units, like 0.5,0.3,0.2" };
    readonly Option<int?> _pmiWords = new("--pmi-max-words") { Description = "pmi: longest collocation in words (3)" };
    readonly Option<int?> _pmiMinCount = new("--pmi-min-count") { Description = "pmi: least corpus count of a collocation (10)" };
    readonly Option<int?> _pmiCollocations = new("--pmi-collocations") { Description = "pmi: number of collocations kept (20000)" };
    readonly Option<double?> _pmiPower = new("--pmi-power") { Description = "pmi: exponent of the informativeness weight (1; 0 = uniform)" };
    readonly Option<double?> _temperature = new("--weighted-temperature") { Description = "weighted: a k times rarer token is masked k^(1/T) times as often (2)" };

    public void AddTo(Command command)
    {
        if (withStrategy) command.Options.Add(_strategy);
        foreach (var option in new Option[] { _config, _rate, _split, _schedule, _endRate, _spanP, _spanMax, _ngram, _pmiWords, _pmiMinCount, _pmiCollocations, _pmiPower, _temperature })
            command.Options.Add(option);
    }

    /// <summary>The options the command line describes, validated.</summary>
    public MaskingOptions Read(ParseResult parse)
    {
        var options = parse.GetValue(_config) is { } path ? MaskingOptions.Load(path) : new MaskingOptions();
        bool Given(Option option) => parse.GetResult(option) is { Implicit: false };
        if (withStrategy && parse.GetValue(_strategy) is { } name) options = options with { Strategy = name };
        if (Given(_rate)) options = options with { Rate = parse.GetValue(_rate) };
        if (Given(_split))
        {
            var (mask, random, keep) = ParseSplit(parse.GetValue(_split)!);
            options = options with { MaskFraction = mask, RandomFraction = random, KeepFraction = keep };
        }
        if (parse.GetValue(_schedule) is { } kind) options = options with { Schedule = options.Schedule with { Kind = ParseSchedule(kind) } };
        if (parse.GetValue(_endRate) is { } end) options = options with { Schedule = options.Schedule with { EndRate = end } };
        if (parse.GetValue(_spanP) is { } p) options = options with { Span = options.Span with { P = p } };
        if (parse.GetValue(_spanMax) is { } max) options = options with { Span = options.Span with { MaxLength = max } };
        if (parse.GetValue(_ngram) is { } probs) options = options with { Ngram = new NgramOptions(ParseList(probs)) };
        if (parse.GetValue(_pmiWords) is { } words) options = options with { Pmi = options.Pmi with { MaxWords = words } };
        if (parse.GetValue(_pmiMinCount) is { } minCount) options = options with { Pmi = options.Pmi with { MinCount = minCount } };
        if (parse.GetValue(_pmiCollocations) is { } top) options = options with { Pmi = options.Pmi with { Collocations = top } };
        if (parse.GetValue(_pmiPower) is { } power) options = options with { Pmi = options.Pmi with { InformativenessPower = power } };
        if (parse.GetValue(_temperature) is { } t) options = options with { Weighted = options.Weighted with { Temperature = t } };
        options.Validate();
        return options;
    }

    static (double, double, double) ParseSplit(string split)
    {
        var parts = split.Split('/');
        if (parts.Length != 3 || !parts.All(p => double.TryParse(p, NumberStyles.Float, CultureInfo.InvariantCulture, out _)))
            throw new UnmaskException($"--mask-split: expected three percentages like 80/10/10, got '{split}'");
        var v = parts.Select(p => double.Parse(p, CultureInfo.InvariantCulture) / 100).ToArray();
        return (v[0], v[1], v[2]);
    }

    static RateScheduleKind ParseSchedule(string text) => text.ToLowerInvariant() switch
    {
        "constant" => RateScheduleKind.Constant,
        "linear" => RateScheduleKind.Linear,
        "cosine" => RateScheduleKind.Cosine,
        _ => throw new UnmaskException($"--rate-schedule: expected constant, linear or cosine, got '{text}'"),
    };

    static double[] ParseList(string text)
    {
        var parts = text.Split(',');
        if (!parts.All(p => double.TryParse(p, NumberStyles.Float, CultureInfo.InvariantCulture, out _)))
            throw new UnmaskException($"--ngram-probs: expected comma-separated probabilities like 0.5,0.3,0.2, got '{text}'");
        return parts.Select(p => double.Parse(p, CultureInfo.InvariantCulture)).ToArray();
    }
}
