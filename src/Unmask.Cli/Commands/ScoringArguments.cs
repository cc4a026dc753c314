using System.CommandLine;
using Unmask.Evaluation;
using Unmask.Inference;
using Unmask.Modeling;

namespace Unmask.Cli.Commands;

/// <summary>
/// The model and scoring options of score, rescore and eval: the model folder and its precision always; the PLL
/// variant, the token budget per forward pass and --skip-bad where the command scores sentences line by line.
/// </summary>
public sealed class ScoringArguments(bool withVariant = true, bool withBatchTokens = true, bool withSkipBad = true)
{
    readonly Option<string> _model = ModelOptions.Model();
    readonly Option<string> _device = ModelOptions.DeviceOption();

    readonly Option<string> _precision = new Option<string>("--precision")
    {
        Description = "Matrix products in fp32 (exact, as transformers) or bf16 (several times faster on CPUs with bf16 units; BERT, RoBERTa and ELECTRA)",
        DefaultValueFactory = _ => "fp32",
    }.AcceptOnlyFromAmong("fp32", "bf16");

    readonly Option<string>? _variant = withVariant
        ? new Option<string>("--variant")
        {
            Description = "PLL variant: original (Salazar et al. 2020) or word-l2r (Kauf & Ivanova 2023)",
            DefaultValueFactory = _ => "original",
        }.AcceptOnlyFromAmong("original", "word-l2r")
        : null;

    readonly Option<int>? _batchTokens = withBatchTokens
        ? new("--batch-tokens") { Description = "Most tokens (rows x padded length) per forward pass", DefaultValueFactory = _ => new PllOptions().TokenBudget }
        : null;

    readonly Option<bool>? _skipBad = withSkipBad
        ? new("--skip-bad") { Description = "Report malformed lines, empty and over-long sentences on stderr and go on without them (default: stop at the first)" }
        : null;

    public void AddTo(Command command)
    {
        foreach (var option in new Option?[] { _model, _device, _variant, _batchTokens, _precision, _skipBad })
            if (option is not null) command.Options.Add(option);
    }

    public string ModelFolder(ParseResult parse) => ModelOptions.ExistingFolder(parse.GetValue(_model)!);

    public TorchSharp.torch.Device Device(ParseResult parse) => ModelOptions.ReadDevice(parse, _device);

    public ComputeDtype Precision(ParseResult parse) => parse.GetValue(_precision) == "bf16" ? Modeling.ComputeDtype.BFloat16 : Modeling.ComputeDtype.Float32;

    /// <summary>Loads the model folder, computing in the precision asked for.</summary>
    public MaskedLanguageModel LoadModel(ParseResult parse)
    {
        var mlm = MaskedLanguageModel.Load(ModelOptions.ExistingFolder(parse.GetValue(_model)!), Device(parse));
        try
        {
            mlm.ComputeDtype = parse.GetValue(_precision) == "bf16" ? ComputeDtype.BFloat16 : ComputeDtype.Float32;
            return mlm;
        }
        catch
        {
            mlm.Dispose();
            throw;
        }
    }

    public int TokenBudget(ParseResult parse)
    {
        int budget = _batchTokens is null ? new PllOptions().TokenBudget : parse.GetValue(_batchTokens);
        return budget >= 1 ? budget : throw new UnmaskException($"--batch-tokens must be positive, got {budget}");
    }

    public PllOptions PllOptions(ParseResult parse) => new()
    {
        Variant = _variant is not null && parse.GetValue(_variant) == "word-l2r" ? PllVariant.WordL2R : PllVariant.Original,
        TokenBudget = TokenBudget(parse),
    };

    public BadLinePolicy Policy(ParseResult parse) => _skipBad is not null && parse.GetValue(_skipBad) ? BadLinePolicy.Skip : BadLinePolicy.Fail;

    public static Option<string?> Report() => new("--report") { Description = "Also write the full result as a JSON report to this file" };

    public static void Warn(CliOutput io, IEnumerable<InputIssue> issues)
    {
        foreach (var issue in issues) io.Error.WriteLine($"warning: {issue}; skipped");
    }

    /// <summary>Runs scoring work with its progress shown as rows (masked copies, or <paramref name="unit"/>) done.</summary>
    public static T WithProgress<T>(CliOutput io, string label, Func<IProgress<ScoringProgress>, T> work, string unit = "masked copies") =>
        ProgressDisplay.Run<ScoringProgress, T>(io, label, p =>
        {
            double fraction = (double)p.RowsDone / Math.Max(p.RowsTotal, 1);
            return new ProgressView(label, fraction, $"{label}: {p.RowsDone:N0}/{p.RowsTotal:N0} {unit} ({fraction:P0})");
        }, work);
}
