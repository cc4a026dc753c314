using System.CommandLine;
using Spectre.Console;
using Unmask.Evaluation;
using Unmask.Inference;
using Unmask.Modeling;

namespace Unmask.Cli.Commands;

/// <summary>Options and plumbing shared by score, rescore and eval.</summary>
public static class EvalOptions
{
    public static Option<string> Variant() => new Option<string>("--variant")
    {
        Description = "PLL variant: original (Salazar et al. 2020) or word-l2r (Kauf & Ivanova 2023)",
        DefaultValueFactory = _ => "original",
    }.AcceptOnlyFromAmong("original", "word-l2r");

    public static Option<int> BatchTokens() => new("--batch-tokens")
    {
        Description = "Most tokens (rows x padded length) per forward pass", DefaultValueFactory = _ => new PllOptions().TokenBudget,
    };

    public static Option<string> Precision() => new Option<string>("--precision")
    {
        Description = "Matrix products in fp32 (exact, as transformers) or bf16 (several times faster on CPUs with bf16 units; BERT, RoBERTa and ELECTRA)",
        DefaultValueFactory = _ => "fp32",
    }.AcceptOnlyFromAmong("fp32", "bf16");

    /// <summary>Loads the model folder of <paramref name="model"/> computing in the precision asked for.</summary>
    public static MaskedLanguageModel LoadModel(ParseResult parse, Option<string> model, Option<string> precision)
    {
        var mlm = MaskedLanguageModel.Load(ModelOptions.ExistingFolder(parse.GetValue(model)!));
        try
        {
            mlm.ComputeDtype = parse.GetValue(precision) == "bf16" ? ComputeDtype.BFloat16 : ComputeDtype.Float32;
            return mlm;
        }
        catch
        {
            mlm.Dispose();
            throw;
        }
    }

    public static Option<bool> SkipBad() => new("--skip-bad")
    {
        Description = "Report malformed lines, empty and over-long sentences on stderr and go on without them (default: stop at the first)",
    };

    public static Option<string?> Report() => new("--report") { Description = "Also write the full result as a JSON report to this file" };

    public static int TokenBudget(ParseResult parse, Option<int> batchTokens)
    {
        int budget = parse.GetValue(batchTokens);
        return budget >= 1 ? budget : throw new UnmaskException($"--batch-tokens must be positive, got {budget}");
    }

    public static PllOptions PllOptions(ParseResult parse, Option<string> variant, Option<int> batchTokens) => new()
    {
        Variant = parse.GetValue(variant) == "word-l2r" ? PllVariant.WordL2R : PllVariant.Original,
        TokenBudget = TokenBudget(parse, batchTokens),
    };

    public static BadLinePolicy Policy(ParseResult parse, Option<bool> skipBad) => parse.GetValue(skipBad) ? BadLinePolicy.Skip : BadLinePolicy.Fail;

    public static void Warn(CliOutput io, IEnumerable<InputIssue> issues)
    {
        foreach (var issue in issues) io.Error.WriteLine($"warning: {issue}; skipped");
    }

    /// <summary>
    /// Runs long scoring work with a progress bar on stderr when it is a terminal, otherwise a plain line on stderr
    /// at most every 15 seconds.
    /// </summary>
    public static T WithProgress<T>(CliOutput io, string label, Func<IProgress<ScoringProgress>, T> run, string unit = "masked copies")
    {
        bool interactive = io.Console.Profile.Capabilities.Interactive && !Console.IsErrorRedirected;
        if (!interactive)
        {
            var last = DateTime.UtcNow;
            return run(new SyncProgress<ScoringProgress>(p =>
            {
                if (DateTime.UtcNow - last < TimeSpan.FromSeconds(15)) return;
                last = DateTime.UtcNow;
                io.Error.WriteLine($"{label}: {p.RowsDone:N0}/{p.RowsTotal:N0} {unit} ({(double)p.RowsDone / Math.Max(p.RowsTotal, 1):P0})");
            }));
        }
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        T result = default!;
        console.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask(Markup.Escape(label), maxValue: 1.0);
                result = run(new SyncProgress<ScoringProgress>(p => task.Value = (double)p.RowsDone / Math.Max(p.RowsTotal, 1)));
                task.Value = 1.0;
            });
        return result;
    }

    /// <summary>Cancels the token on Ctrl+C for the duration of <paramref name="body"/>.</summary>
    public static int Cancellable(Func<CancellationToken, int> body)
    {
        using var cts = new CancellationTokenSource();
        ConsoleCancelEventHandler onCancel = (_, e) =>
        {
            e.Cancel = true;
            cts.Cancel();
        };
        Console.CancelKeyPress += onCancel;
        try
        {
            return body(cts.Token);
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }
    }
}
