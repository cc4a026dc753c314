using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Spectre.Console;
using Unmask.Data;
using Unmask.Evaluation;
using Unmask.Training;

namespace Unmask.Cli.Commands;

/// <summary>`unmask finetune`: a classifier, regressor or token tagger from a model folder, as run_glue.py / run_ner.py.</summary>
public static class FinetuneCommand
{
    /// <summary>The data options finetune and eval classification|token-classification share.</summary>
    public sealed class DataArguments
    {
        public Option<string?> TextColumn { get; } = new("--text-column") { Description = "Column (or JSON field) of the text; guessed from text, sentence, sentence1, ..." };
        public Option<string?> TextPairColumn { get; } = new("--text-pair-column") { Description = "Column of the second text of a pair; guessed from text_pair, sentence2, ..." };
        public Option<string?> LabelColumn { get; } = new("--label-column") { Description = "Column of the label; guessed from label, score, ..." };
        public Option<string?> Columns { get; } = new("--columns") { Description = "Names of the columns of a file without a header row, comma-separated (e.g. sentence1,sentence2,score)" };
        public Option<int> MaxSeqLength { get; } = new("--max-seq-length") { Description = "Longest input in tokens (longer ones are truncated)", DefaultValueFactory = _ => 128 };

        public void AddTo(Command command)
        {
            foreach (var option in new Option[] { TextColumn, TextPairColumn, LabelColumn, Columns, MaxSeqLength }) command.Options.Add(option);
        }

        public DataColumns Read(ParseResult parse) => new(parse.GetValue(TextColumn), parse.GetValue(TextPairColumn), parse.GetValue(LabelColumn),
            parse.GetValue(Columns) is { } names ? [.. names.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)] : null);
    }

    public static Option<string> TaskOption() => new("--task")
    {
        Description = "classification, multi-label, regression, token-classification, or prompt (PET: the masked-LM head on --template and --verbalizer)",
        DefaultValueFactory = _ => "classification",
    };

    public static ClassificationTask ParseTask(string name) => name switch
    {
        "classification" => ClassificationTask.Classification,
        "multi-label" => ClassificationTask.MultiLabel,
        "regression" => ClassificationTask.Regression,
        "token-classification" => ClassificationTask.TokenClassification,
        "prompt" => ClassificationTask.Prompt,
        _ => throw new UnmaskException($"--task '{name}' is not one of classification, multi-label, regression, token-classification, prompt."),
    };

    public static Command Create(CliOutput io)
    {
        var model = new Option<string?>("--model") { Description = "Model folder to start from (a masked LM, or a classifier to continue)" };
        var task = TaskOption();
        var train = new Option<string?>("--train") { Description = "Training data: .csv, .tsv, .jsonl, or CoNLL (.conll) for tokens" };
        var validation = new Option<string?>("--validation") { Description = "Validation data in the same format (best model, early stopping)" };
        var output = new Option<string?>("--output") { Description = "Run folder for the fine-tuned model, metrics.jsonl and training.png" };
        var data = new DataArguments();
        var labelAll = new Option<bool>("--label-all-pieces") { Description = "Token task: label every word piece, not only the first" };
        var epochs = new Option<int>("--epochs") { DefaultValueFactory = _ => 3 };
        var lr = new Option<double>("--lr") { Description = "Peak learning rate", DefaultValueFactory = _ => 5e-5 };
        var batch = new Option<int>("--batch-size") { Description = "Sequences per micro-batch", DefaultValueFactory = _ => 32 };
        var accumulation = new Option<int>("--gradient-accumulation") { DefaultValueFactory = _ => 1 };
        var warmup = new Option<double>("--warmup") { Description = "Warm-up as a fraction of the steps", DefaultValueFactory = _ => 0.0 };
        var weightDecay = new Option<double>("--weight-decay") { DefaultValueFactory = _ => 0.0 };
        var layerDecay = new Option<double>("--layer-lr-decay") { Description = "Layer-wise learning-rate decay (ELECTRA: 0.8); 1 = off", DefaultValueFactory = _ => 1.0 };
        var precision = new Option<Precision>("--precision") { Description = "fp32, bf16 or auto matrix products", DefaultValueFactory = _ => Precision.Fp32 };
        var seed = new Option<int>("--seed") { DefaultValueFactory = _ => 42 };
        var seeds = new Option<string?>("--seeds") { Description = "One run per seed, e.g. 1,2,3, each in <output>/seed-N, with a mean ± std summary" };
        var evalEvery = new Option<int?>("--eval-every") { Description = "Evaluate and checkpoint every N optimizer steps (default: each epoch)" };
        var early = new Option<int?>("--early-stopping") { Description = "Stop after N evaluations without a better validation metric" };
        var freeze = new Option<bool>("--freeze-encoder") { Description = "Train only the head: a linear probe of the encoder" };
        var dropout = new Option<double?>("--dropout") { Description = "Encoder dropout while fine-tuning (hidden and attention; BERT, RoBERTa, ELECTRA, DistilBERT); default: the config's" };
        var randomInit = new Option<bool>("--random-init") { Description = "Start from random weights of the same architecture (a baseline)" };
        var maxTrain = new Option<int?>("--max-train-examples") { Description = "Train on N examples drawn by the seed (few-shot)" };
        var maxSteps = new Option<long?>("--max-steps") { Description = "Stop after N optimizer steps" };
        var resume = new Option<string?>("--resume") { Description = "Continue the run in this folder from its newest checkpoint" };
        var json = new Option<bool>("--json") { Description = "Print the result as one line of JSON" };
        var prompt = new PromptArguments();

        var device = ModelOptions.DeviceOption();
        var command = new Command("finetune", "Fine-tune a model folder into a classifier, regressor or token tagger");
        foreach (var option in new Option[] { model, device, task, train, validation, output, labelAll, epochs, lr, batch, accumulation, warmup,
                     weightDecay, layerDecay, precision, seed, seeds, evalEvery, early, freeze, randomInit, dropout, maxTrain, maxSteps, resume, json,
                     prompt.Template, prompt.Verbalizer })
            command.Options.Add(option);
        data.AddTo(command);
        command.SetAction(parse => io.GuardCancellable(ct =>
        {
            if (parse.GetValue(resume) is { } resumeFrom)
            {
                var resumed = Show(io, "fine-tuning", p => FineTuner.Resume(resumeFrom, p, ct, ModelOptions.ReadDevice(parse, device)));
                Print(io, [resumed], parse.GetValue(json));
                return 0;
            }
            string Need(Option<string?> option) => parse.GetValue(option) ?? throw new UnmaskException($"{option.Name} is required (or --resume DIR).");
            var options = new FineTuneOptions
            {
                ModelDir = ModelOptions.ExistingFolder(Need(model)),
                Device = ModelOptions.ReadDevice(parse, device),
                TrainPath = Need(train),
                ValidationPath = parse.GetValue(validation),
                OutputDir = Need(output),
                Task = ParseTask(parse.GetValue(task)!),
                Columns = data.Read(parse),
                LabelAllPieces = parse.GetValue(labelAll),
                Epochs = parse.GetValue(epochs),
                LearningRate = parse.GetValue(lr),
                BatchSize = parse.GetValue(batch),
                GradientAccumulation = parse.GetValue(accumulation),
                Warmup = parse.GetValue(warmup),
                WeightDecay = parse.GetValue(weightDecay),
                LayerLrDecay = parse.GetValue(layerDecay),
                MaxSeqLength = parse.GetValue(data.MaxSeqLength),
                Precision = parse.GetValue(precision),
                Seed = parse.GetValue(seed),
                EvalEvery = parse.GetValue(evalEvery),
                EarlyStoppingPatience = parse.GetValue(early),
                FreezeEncoder = parse.GetValue(freeze),
                RandomInit = parse.GetValue(randomInit),
                Dropout = parse.GetValue(dropout),
                MaxTrainExamples = parse.GetValue(maxTrain),
                MaxSteps = parse.GetValue(maxSteps),
                Template = parse.GetValue(prompt.Template),
                VerbalizerPath = parse.GetValue(prompt.Verbalizer),
            };
            if (parse.GetValue(seeds) is { } list)
            {
                var values = list.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
                    .Select(s => int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v : throw new UnmaskException($"--seeds: '{s}' is not an integer.")).ToList();
                if (values.Count == 0 || values.Distinct().Count() != values.Count) throw new UnmaskException("--seeds needs distinct integers, e.g. 1,2,3.");
                var runs = new List<FineTuneResult>();
                foreach (var value in values)
                    runs.Add(Show(io, $"seed {value}", p => FineTuner.Run(options with { Seed = value, OutputDir = Path.Combine(options.OutputDir, $"seed-{value}") }, p, ct)));
                var summary = FineTuneSummary.Write(options.OutputDir, options.Task, values, runs);
                Print(io, runs, parse.GetValue(json), summary);
                return 0;
            }
            Print(io, [Show(io, "fine-tuning", p => FineTuner.Run(options, p, ct))], parse.GetValue(json));
            return 0;
        }));
        return command;
    }

    static FineTuneResult Show(CliOutput io, string label, Func<IProgress<FineTuneProgress>, FineTuneResult> work) =>
        ProgressDisplay.Run<FineTuneProgress, FineTuneResult>(io, label, p =>
        {
            var text = p.Phase switch
            {
                "training" => $"step {p.Step:N0}/{p.TotalSteps:N0}  loss {p.Loss:F4}",
                "evaluated" => $"step {p.Step:N0}/{p.TotalSteps:N0}  validation {p.Metric:F2}",
                _ => p.Phase,
            };
            return new ProgressView($"{label}: {text}", p.TotalSteps > 0 ? (double)p.Step / p.TotalSteps : null, $"{label}: {text}", p.Phase);
        }, work);

    static void Print(CliOutput io, IReadOnlyList<FineTuneResult> runs, bool json, IReadOnlyDictionary<string, (double Mean, double Std)>? summary = null)
    {
        if (json)
        {
            io.Out.WriteLine(JsonSerializer.Serialize(new
            {
                runs = runs.Select(r => new { output = r.OutputDir, best_step = r.Best?.Step, best = r.Best?.Metrics, steps = r.Steps, seconds = r.Elapsed.TotalSeconds, stopped_early = r.StoppedEarly }),
                summary = summary?.ToDictionary(p => p.Key, p => new { mean = p.Value.Mean, std = p.Value.Std }),
            }));
            return;
        }
        var table = new Table().AddColumns("run", "steps", "best step", "validation", "time");
        foreach (var r in runs)
            table.AddRow(Markup.Escape(r.OutputDir), r.Steps.ToString("N0", CultureInfo.InvariantCulture), r.Best?.Step.ToString(CultureInfo.InvariantCulture) ?? "-",
                Markup.Escape(r.Best is null ? "-" : string.Join("  ", r.Best.Metrics.Select(m => $"{m.Key} {m.Value:F2}"))), r.Elapsed.ToString(@"hh\:mm\:ss", CultureInfo.InvariantCulture));
        io.Console.Write(table);
        if (summary is not null)
            io.Console.WriteLine(string.Join("  ", summary.Select(p => $"{p.Key} {p.Value.Mean:F2} ± {p.Value.Std:F2}")));
    }
}
