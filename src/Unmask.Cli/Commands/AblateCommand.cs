using System.CommandLine;
using System.Globalization;
using Spectre.Console;
using Unmask.Evaluation;
using Unmask.Masking;
using Unmask.Training;

namespace Unmask.Cli.Commands;

/// <summary>`unmask ablate`: one pretraining run per objective × masking strategy, equal tokens each, compared in a table.</summary>
public static class AblateCommand
{
    static readonly IReadOnlyDictionary<string, ObjectiveKind> ObjectivesByName =
        Enum.GetValues<ObjectiveKind>().ToDictionary(AblationOptions.ObjectiveName);

    public static Command Create(CliOutput io)
    {
        var strategies = new Option<string>("--strategies")
        {
            DefaultValueFactory = _ => MaskingStrategies.Random,
            Description = $"Comma-separated masking strategies ({string.Join(", ", MaskingStrategies.Names)}); the masking flags apply to each",
        };
        var objectives = new Option<string>("--objectives")
        {
            DefaultValueFactory = _ => "mlm",
            Description = $"Comma-separated objectives ({string.Join(", ", ObjectivesByName.Keys)}), each crossed with the strategies; one without masking (mdlm) runs once",
        };
        var budget = new Option<string?>("--budget") { Description = "Wall time for the whole ablation (90s, 10m, 1h30m); a short calibration run turns it into equal tokens per variant; default 10m" };
        var tokens = new Option<long?>("--tokens") { Description = "Training tokens per variant instead of a time budget (rounded up to whole steps)" };
        var blimp = new Option<string?>("--blimp") { Description = "BLiMP folder of <UID>.jsonl(.gz) files, or one file: score every final model (PLL) and add its accuracy" };
        var blimpLimit = new Option<int?>("--blimp-limit") { Description = "Only the first N pairs of each BLiMP paradigm" };
        var output = new Option<string?>("--output") { Description = "Ablation folder (one run folder per variant inside); default runs/ablate-<date-time>" };
        var json = new Option<bool>("--json") { Description = "Print the whole result as one line of JSON instead of a table" };
        var command = new Command("ablate", "Pretrain the same model once per objective × masking strategy with equal tokens and compare them on the same validation copy")
        {
            strategies, objectives, budget, tokens, blimp, blimpLimit, output, json,
        };
        var training = new TrainingArguments();
        training.AddTo(command);
        var masking = new MaskingArguments(withStrategy: false);
        masking.AddTo(command);
        command.SetAction(parse => io.GuardCancellable(ct =>
        {
            if (parse.GetValue(blimpLimit) is < 1) throw new UnmaskException($"--blimp-limit must be positive, got {parse.GetValue(blimpLimit)}");
            var folder = parse.GetValue(output) ?? Path.Combine("runs", "ablate-" + DateTime.Now.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture));
            var options = new AblationOptions
            {
                Base = training.Read(parse, folder, masking.Read(parse)),
                Strategies = List(parse.GetValue(strategies)!),
                Objectives = List(parse.GetValue(objectives)!).Select(name => ObjectivesByName.TryGetValue(name, out var kind) ? kind
                    : throw new UnmaskException($"--objectives: unknown objective '{name}' (valid: {string.Join(", ", ObjectivesByName.Keys)})")).ToList(),
                Budget = parse.GetValue(budget) is { } b ? PretrainCommand.ParseDuration(b, "--budget") : null,
                TokensPerVariant = parse.GetValue(tokens),
                BlimpData = parse.GetValue(blimp),
                Blimp = new BlimpOptions { LimitPerParadigm = parse.GetValue(blimpLimit) },
            };
            var result = WithProgress(io, options, p => Ablation.Run(options, p, ct));
            foreach (var warning in result.Warnings) io.Error.WriteLine($"warning: {warning}");
            if (parse.GetValue(json)) io.Out.WriteLine(EvalReport.ToJsonLine(result));
            else Table(io, result);
            if (result.InterruptedVariant is { } stopped)
            {
                io.Error.WriteLine($"interrupted while training {stopped}: its checkpoint is in its folder; the table holds the runs that finished");
                return 130;
            }
            return 0;
        }));
        return command;
    }

    static List<string> List(string text) => text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).ToList();

    static string Percent(double v) => (100 * v).ToString("F1", CultureInfo.InvariantCulture);

    static string Duration(double seconds) => TimeSpan.FromSeconds(seconds).ToString(@"hh\:mm\:ss", CultureInfo.InvariantCulture);

    static void Table(CliOutput io, AblationResult r)
    {
        bool blimp = r.BlimpData is not null;
        long masked = r.Runs.Count > 0 ? r.Runs[0].MaskedTokens : 0;
        var table = new Table()
            .Title($"Ablation: {r.Runs.Count} variants, {r.TokensPerVariant.ToString("N0", CultureInfo.InvariantCulture)} tokens each; validation on the same {masked.ToString("N0", CultureInfo.InvariantCulture)} masked tokens")
            .AddColumns("variant", "tokens", "steps", "train time", "wall time", "tokens/s", "val loss", "masked acc %", "baseline %");
        if (blimp) table.AddColumn("BLiMP %");
        foreach (var run in r.Runs)
        {
            var cells = new List<string>
            {
                Markup.Escape(run.Name), run.Tokens.ToString("N0", CultureInfo.InvariantCulture), run.Steps.ToString(CultureInfo.InvariantCulture),
                Duration(run.TrainingSeconds), Duration(run.WallSeconds), run.TokensPerSecond.ToString("N0", CultureInfo.InvariantCulture),
                run.ValidationLoss.ToString("F4", CultureInfo.InvariantCulture), Percent(run.MaskedAccuracy), Percent(run.BaselineAccuracy),
            };
            if (blimp) cells.Add(run.BlimpAccuracy is { } a ? Percent(a) : "-");
            table.AddRow(cells.ToArray());
        }
        io.Console.Write(table);
        var budget = r.BudgetSeconds is { } s ? $" of a {Duration(s)} budget" : "";
        io.Console.WriteLine($"total {Duration(r.WallSeconds)}{budget}; report {Path.Combine(r.Output, AblationResult.ReportFileName)}, curves {Path.Combine(r.Output, AblationResult.PlotFileName)}");
    }

    /// <summary>One bar over the whole ablation; in a log, a line at each new phase, run and step of a run, besides every 15 seconds.</summary>
    static AblationResult WithProgress(CliOutput io, AblationOptions options, Func<IProgress<AblationProgress>, AblationResult> run)
    {
        var budget = options.EffectiveBudget is { } b ? $" of {b:hh\\:mm\\:ss}" : "";
        return ProgressDisplay.Run<AblationProgress, AblationResult>(io, "starting", p =>
        {
            var who = p.Phase == "calibrating" ? "calibrating" : $"[{p.Index + 1}/{p.Variants} {p.Variant}]";
            var label = p.Variant is null ? p.Phase + "…"
                : p.Training is { Phase: "training" } t ? $"{who} step {t.Step}  tokens {t.Tokens:N0}  loss {t.Loss:F3}  {t.TokensPerSecond:N0} tok/s"
                : $"{who} {p.Training?.Phase ?? p.Phase}…";
            var overall = Math.Min(1, (p.Index + (p.Phase == "training" ? p.Training?.Fraction ?? 0 : 0)) / Math.Max(p.Variants, 1));
            // Validation passes come every tenth of a run: part of training, not news worth a line.
            var phase = $"{p.Phase}/{p.Index}/{(p.Training?.Phase == "validating" ? "training" : p.Training?.Phase)}";
            return new ProgressView(label, overall, $"{label}  elapsed {p.Elapsed:hh\\:mm\\:ss}{budget}", phase);
        }, run);
    }
}
