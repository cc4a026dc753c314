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
        var corpus = new Option<string?>("--corpus") { Description = "Corpus file or folder (.txt, .txt.gz, .jsonl, .jsonl.gz); default: the .NET SDK's API documentation" };
        var encoding = new Option<string>("--encoding") { DefaultValueFactory = _ => "utf-8", Description = "utf-8 (reject other bytes) or auto (files that are not UTF-8 are read as Latin-1)" };
        encoding.AcceptOnlyFromAmong("utf-8", "auto");
        var output = new Option<string?>("--output") { Description = "Run folder; default runs/<date-time>" };
        var size = new Option<string>("--size") { Description = "tiny, mini, small, medium or base", DefaultValueFactory = _ => "mini" };
        var config = new Option<string?>("--config") { Description = "A Hugging Face config.json instead of a size preset" };
        var steps = new Option<long?>("--steps") { Description = "Stop after this many optimizer steps" };
        var tokens = new Option<long?>("--tokens") { Description = "Stop after this many training tokens" };
        var time = new Option<string?>("--time") { Description = "Stop after this much training time (90s, 10m, 1h30m); the default budget is 10m" };
        var batch = new Option<int>("--batch-size") { DefaultValueFactory = _ => 16, Description = "Sequences per micro-batch" };
        var accumulation = new Option<int>("--gradient-accumulation") { DefaultValueFactory = _ => 1 };
        var seqLength = new Option<int>("--max-seq-length") { DefaultValueFactory = _ => 128 };
        var lr = new Option<double>("--lr") { DefaultValueFactory = _ => 5e-4, Description = "Peak learning rate" };
        var warmup = new Option<double>("--warmup") { DefaultValueFactory = _ => 0.05, Description = "Warm-up as a fraction of the budget" };
        var decay = new Option<DecayKind>("--decay") { DefaultValueFactory = _ => DecayKind.Linear, Description = "linear, cosine or constant" };
        var weightDecay = new Option<double>("--weight-decay") { DefaultValueFactory = _ => 0.01 };
        var clip = new Option<double>("--max-grad-norm") { DefaultValueFactory = _ => 1.0 };
        var vocab = new Option<int>("--vocab-size") { DefaultValueFactory = _ => 16384 };
        var dropout = new Option<double>("--dropout") { DefaultValueFactory = _ => 0.0, Description = "Dropout of a size preset (a --config keeps its own)" };
        var cased = new Option<bool>("--cased") { Description = "Keep case (default: lower-case as bert-base-uncased)" };
        var precision = new Option<Precision>("--precision") { DefaultValueFactory = _ => Precision.Auto, Description = "auto, bf16 or fp32 matrix products" };
        var seed = new Option<int>("--seed") { DefaultValueFactory = _ => 42 };
        var saveSteps = new Option<int>("--save-steps") { DefaultValueFactory = _ => 1000 };
        var resume = new Option<string?>("--resume") { Description = "Continue from a checkpoint folder (or a run folder's newest checkpoint)" };
        var attentionInit = new Option<AttentionInit>("--attention-init") { DefaultValueFactory = _ => AttentionInit.Local, Description = "local (default: sinusoid positions and identity query/key projections, so attention starts near each token) or random (HF's initialisation)" };
        var objective = new Option<string>("--objective")
        {
            DefaultValueFactory = _ => "mlm",
            Description = "mlm (BERT masking, shaped by the masking options), mdlm (masked diffusion: per-sequence rate t ~ U(0,1), loss weighted 1/t) "
                + "or electra (a small generator fills the masked positions, the discriminator learns which tokens were replaced; masking defaults to 15% at 85/0/15; "
                + "saves generator/ and discriminator/)",
        };
        objective.AcceptOnlyFromAmong("mlm", "mdlm", "electra");
        var generatorSize = new Option<double>("--generator-size") { DefaultValueFactory = _ => 0.25, Description = "electra: generator hidden size and heads as a fraction of the discriminator's" };
        var discWeight = new Option<double>("--disc-weight") { DefaultValueFactory = _ => 50, Description = "electra: weight of the discriminator's loss beside the generator's" };
        var initFrom = new Option<string?>("--init-from") { Description = "Continue pretraining a Hugging Face BERT/RoBERTa model folder, with its own tokenizer and config" };

        var command = new Command("pretrain", "Pretrain a BERT masked language model, or an ELECTRA discriminator and generator")
        {
            corpus, encoding, output, size, config, steps, tokens, time, batch, accumulation, seqLength, lr, warmup, decay, weightDecay, clip,
            vocab, dropout, cased, precision, seed, saveSteps, resume, initFrom, objective, attentionInit, generatorSize, discWeight,
        };
        var masking = new MaskingArguments();
        masking.AddTo(command);
        command.SetAction(parse => io.Guard(() =>
        {
            var maxTime = parse.GetValue(time) is { } t ? ParseDuration(t) : (TimeSpan?)null;
            using var cts = new CancellationTokenSource();
            ConsoleCancelEventHandler onCancel = (_, e) =>
            {
                e.Cancel = true;
                cts.Cancel();
            };
            Console.CancelKeyPress += onCancel;
            try
            {
                PretrainResult result;
                if (parse.GetValue(resume) is { } from)
                {
                    result = WithProgress(io, p => Pretrainer.Resume(from, o => o with
                    {
                        MaxSteps = parse.GetValue(steps) ?? o.MaxSteps,
                        MaxTokens = parse.GetValue(tokens) ?? o.MaxTokens,
                        MaxTime = maxTime ?? o.MaxTime,
                    }, p, cts.Token));
                }
                else
                {
                    var options = new PretrainOptions
                    {
                        Corpus = parse.GetValue(corpus),
                        CorpusLatin1Fallback = parse.GetValue(encoding) == "auto",
                        Output = parse.GetValue(output) ?? Path.Combine("runs", DateTime.Now.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture)),
                        Size = parse.GetValue(size)!,
                        ConfigPath = parse.GetValue(config),
                        InitFrom = parse.GetValue(initFrom) is { } init ? Path.GetFullPath(init) : null,
                        MaxSteps = parse.GetValue(steps),
                        MaxTokens = parse.GetValue(tokens),
                        MaxTime = maxTime,
                        BatchSize = parse.GetValue(batch),
                        GradientAccumulationSteps = parse.GetValue(accumulation),
                        MaxSeqLength = parse.GetValue(seqLength),
                        LearningRate = parse.GetValue(lr),
                        WarmupRatio = parse.GetValue(warmup),
                        Decay = parse.GetValue(decay),
                        WeightDecay = parse.GetValue(weightDecay),
                        MaxGradNorm = parse.GetValue(clip),
                        AttentionInit = parse.GetValue(attentionInit),
                        Objective = Enum.Parse<ObjectiveKind>(parse.GetValue(objective)!, ignoreCase: true),
                        GeneratorSize = parse.GetValue(generatorSize),
                        DiscriminatorWeight = parse.GetValue(discWeight),
                        Masking = masking.Read(parse),
                        VocabSize = parse.GetValue(vocab),
                        PresetDropout = parse.GetValue(dropout),
                        LowerCase = !parse.GetValue(cased),
                        Precision = parse.GetValue(precision),
                        Seed = parse.GetValue(seed),
                        SaveSteps = parse.GetValue(saveSteps),
                    };
                    options.Validate();
                    if (Directory.Exists(options.Output) && Directory.EnumerateFileSystemEntries(options.Output).Any())
                        throw new UnmaskException($"{options.Output}: output folder exists and is not empty (use --resume to continue a run)");
                    result = WithProgress(io, p => Pretrainer.Run(options, p, cts.Token));
                }
                Report(io, result);
                return result.Interrupted ? 130 : 0;
            }
            finally
            {
                Console.CancelKeyPress -= onCancel;
            }
        }));
        return command;
    }

    static PretrainResult WithProgress(CliOutput io, Func<IProgress<PretrainProgress>, PretrainResult> run)
    {
        if (!io.Console.Profile.Capabilities.Interactive)
        {
            var last = DateTime.MinValue;
            string lastPhase = "";
            return run(new SyncProgress<PretrainProgress>(p =>
            {
                if (p.Phase == lastPhase && DateTime.UtcNow - last < TimeSpan.FromSeconds(15)) return;
                (last, lastPhase) = (DateTime.UtcNow, p.Phase);
                io.Error.WriteLine(p.Phase == "training"
                    ? $"step {p.Step}  tokens {p.Tokens:N0}  {p.Fraction:P0}  loss {p.Loss:F3}  {p.TokensPerSecond:N0} tok/s  eta {p.Remaining:hh\\:mm\\:ss}"
                    : p.Phase + "…");
            }));
        }
        PretrainResult? result = null;
        io.Console.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask("starting", maxValue: 1.0);
                result = run(new SyncProgress<PretrainProgress>(p =>
                {
                    task.Description = p.Phase == "training"
                        ? $"step {p.Step} · loss {p.Loss:F3} · {p.TokensPerSecond:N0} tok/s"
                        : Markup.Escape(p.Phase);
                    if (p.Phase == "training") task.Value = p.Fraction;
                }));
                task.Value = 1.0;
            });
        return result!;
    }

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
