using System.CommandLine;
using System.Globalization;
using System.Text.RegularExpressions;
using Spectre.Console;
using Unmask.Training;

namespace Unmask.Cli.Commands;

public static partial class PretrainCommand
{
    public static Command Create(CliOutput io)
    {
        var output = new Option<string?>("--output") { Description = "Run folder; default runs/<date-time>" };
        var steps = new Option<long?>("--steps") { Description = "Stop after this many optimizer steps" };
        var tokens = new Option<long?>("--tokens") { Description = "Stop after this many training tokens" };
        var time = new Option<string?>("--time") { Description = "Stop after this much training time (90s, 10m, 1h30m); the default budget is 10m" };
        var saveSteps = new Option<int>("--save-steps") { DefaultValueFactory = _ => 1000 };
        var driftSteps = new Option<int>("--drift-check-steps") { Description = "Under mpiexec: compare the ranks' parameter checksums every this many steps", DefaultValueFactory = _ => 100 };
        var loggingSteps = new Option<int>("--logging-steps") { Description = "Write the mean training loss to metrics.jsonl every this many steps", DefaultValueFactory = _ => 20 };
        var resume = new Option<string?>("--resume") { Description = "Continue from a checkpoint folder (or a run folder's newest checkpoint)" };
        var objective = new Option<string>("--objective")
        {
            DefaultValueFactory = _ => "mlm",
            Description = "mlm (BERT masking, shaped by the masking options), mdlm (masked diffusion: per-sequence rate t ~ U(0,1), loss weighted 1/t) "
                + "or electra (a small generator fills the masked positions, the discriminator learns which tokens were replaced; masking defaults to 15% at 85/0/15; "
                + "saves generator/ and discriminator/)",
        };
        objective.AcceptOnlyFromAmong("mlm", "mdlm", "electra");

        var command = new Command("pretrain", "Pretrain a BERT masked language model, or an ELECTRA discriminator and generator")
        {
            output, steps, tokens, time, saveSteps, loggingSteps, driftSteps, resume, objective,
        };
        var training = new TrainingArguments();
        training.AddTo(command);
        var masking = new MaskingArguments();
        masking.AddTo(command);
        command.SetAction(parse => io.GuardCancellable(ct =>
        {
            var maxTime = parse.GetValue(time) is { } t ? ParseDuration(t) : (TimeSpan?)null;
            PretrainResult result;
            if (parse.GetValue(resume) is { } from)
            {
                result = WithProgress(io, p => Pretrainer.Resume(from, o => o with
                {
                    MaxSteps = parse.GetValue(steps) ?? o.MaxSteps,
                    MaxTokens = parse.GetValue(tokens) ?? o.MaxTokens,
                    MaxTime = maxTime ?? o.MaxTime,
                    Device = training.Device(parse),
                }, p, ct));
            }
            else
            {
                var runFolder = parse.GetValue(output) ?? Path.Combine("runs", DateTime.Now.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture));
                var options = training.Read(parse, runFolder, masking.Read(parse)) with
                {
                    MaxSteps = parse.GetValue(steps),
                    MaxTokens = parse.GetValue(tokens),
                    MaxTime = maxTime,
                    Objective = Enum.Parse<ObjectiveKind>(parse.GetValue(objective)!, ignoreCase: true),
                    SaveSteps = parse.GetValue(saveSteps),
                    LoggingSteps = parse.GetValue(loggingSteps),
                    DriftCheckSteps = parse.GetValue(driftSteps),
                };
                options.Validate();
                if (Directory.Exists(options.Output) && Directory.EnumerateFileSystemEntries(options.Output).Any())
                    throw new UnmaskException($"{options.Output}: output folder exists and is not empty (use --resume to continue a run)");
                // Under mpiexec no rank writes into the folder before every rank has found it empty.
                Distributed.MpiWorld.Current.Barrier();
                result = WithProgress(io, p => Pretrainer.Run(options, p, ct));
            }
            Report(io, result);
            return result.Interrupted ? 130 : 0;
        }));
        return command;
    }

    static PretrainResult WithProgress(CliOutput io, Func<IProgress<PretrainProgress>, PretrainResult> run) =>
        ProgressDisplay.Run<PretrainProgress, PretrainResult>(io, "starting", p => p.Phase == "training"
            ? new ProgressView($"step {p.Step} · loss {p.Loss:F3} · {p.TokensPerSecond:N0} tok/s", p.Fraction,
                $"step {p.Step}  tokens {p.Tokens:N0}  {p.Fraction:P0}  loss {p.Loss:F3}  {p.TokensPerSecond:N0} tok/s  eta {p.Remaining:hh\\:mm\\:ss}", p.Phase)
            : new ProgressView(p.Phase, null, p.Phase + "…", p.Phase), run);

    static void Report(CliOutput io, PretrainResult r)
    {
        var table = new Table().AddColumns("", "value");
        table.AddRow("model", Markup.Escape(r.Interrupted ? r.CheckpointDirectory! : r.OutputDirectory));
        table.AddRow("steps / tokens", $"{r.Steps:N0} / {r.Tokens:N0}");
        table.AddRow("training time", r.TrainingTime.ToString(@"hh\:mm\:ss"));
        table.AddRow("tokens/s", r.TokensPerSecond.ToString("N0"));
        table.AddRow("precision", r.Precision);
        table.AddRow("validation loss", r.Validation.Loss.ToString("F4"));
        table.AddRow("validation masked accuracy", r.Validation.MaskedAccuracy.ToString("F4"));
        table.AddRow("most-frequent-token baseline", r.Validation.BaselineAccuracy.ToString("F4"));
        foreach (var (name, label) in new[] { ("rtd_accuracy", "replaced-token detection accuracy"), ("rtd_baseline_accuracy", "all-original baseline") })
            if (r.Validation.ObjectiveMetrics.TryGetValue(name, out var value)) table.AddRow(label, value.ToString("F4"));
        io.Console.Write(table);
        if (r.Interrupted) io.Error.WriteLine($"interrupted: checkpoint saved in {r.CheckpointDirectory}; continue with --resume");
    }

    public static TimeSpan ParseDuration(string text, string option = "--time")
    {
        var m = DurationPattern().Match(text.Trim());
        if (!m.Success || m.Length == 0)
            throw new UnmaskException($"{option}: cannot read '{text}' as a duration (examples: 90s, 10m, 1h30m)");
        double Part(string g) => m.Groups[g].Success ? double.Parse(m.Groups[g].Value, CultureInfo.InvariantCulture) : 0;
        var span = TimeSpan.FromHours(Part("h")) + TimeSpan.FromMinutes(Part("m")) + TimeSpan.FromSeconds(Part("s"));
        if (span <= TimeSpan.Zero) throw new UnmaskException($"{option} must be positive, got '{text}'");
        return span;
    }

    [GeneratedRegex(@"^(?:(?<h>\d+(?:\.\d+)?)h)?(?:(?<m>\d+(?:\.\d+)?)m)?(?:(?<s>\d+(?:\.\d+)?)s)?$")]
    private static partial Regex DurationPattern();
}
