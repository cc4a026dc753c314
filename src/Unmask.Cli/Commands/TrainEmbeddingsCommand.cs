using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Spectre.Console;
using Unmask.Inference;
using Unmask.Training;

namespace Unmask.Cli.Commands;

/// <summary>`unmask train-embeddings`: Mirror-BERT or supervised contrastive training into a sentence-transformers folder.</summary>
public static class TrainEmbeddingsCommand
{
    public static Command Create(CliOutput io)
    {
        var defaults = new EmbeddingTrainingOptions { ModelDir = "", TrainPath = "", OutputDir = "" };
        var model = ModelOptions.Model();
        var device = ModelOptions.DeviceOption();
        var output = new Option<string>("--output") { Description = "Folder for the sentence-transformers model, metrics.jsonl and training.png", Required = true };
        var objective = new Option<string>("--objective") { Description = "mirror (Mirror-BERT, no labels) or pairs (anchor, positive[, negative] rows)", DefaultValueFactory = _ => "mirror" }
            .AcceptOnlyFromAmong("mirror", "pairs");
        var train = new Option<string>("--train") { Description = "mirror: a text file or folder of .txt (split into sentences); pairs: CSV/TSV/JSON Lines rows", Required = true };
        var validation = new Option<string?>("--validation") { Description = "Scored pairs (STS-B CSV) for Spearman before training and after each epoch" };
        var epochs = new Option<int>("--epochs") { DefaultValueFactory = _ => defaults.Epochs };
        var batchSize = new Option<int>("--batch-size") { DefaultValueFactory = _ => defaults.BatchSize };
        var lr = new Option<double>("--lr") { DefaultValueFactory = _ => defaults.LearningRate };
        var temperature = new Option<double>("--temperature") { Description = "InfoNCE temperature", DefaultValueFactory = _ => defaults.Temperature };
        var spanMask = new Option<int>("--span-mask") { Description = "mirror: tokens masked in one random span of the second view", DefaultValueFactory = _ => defaults.SpanMask };
        var maxExamples = new Option<int?>("--max-examples") { Description = "Sentences or rows drawn by the seed (default 10000; 0 = all)" };
        var minScore = new Option<double?>("--min-score") { Description = "pairs: read scored pairs (sentence1,sentence2,score) and take those scoring at least this as positives" };
        var maxLength = new Option<int>("--max-seq-length") { DefaultValueFactory = _ => defaults.MaxSeqLength };
        var pooling = new Option<string>("--pooling") { DefaultValueFactory = _ => "mean" }.AcceptOnlyFromAmong("cls", "mean", "max");
        var dropout = new Option<double?>("--dropout") { Description = "Encoder dropout while training (hidden and attention; default: the config's)" };
        var seed = new Option<int>("--seed") { DefaultValueFactory = _ => defaults.Seed };
        var json = new Option<bool>("--json") { Description = "Print the result as one line of JSON" };
        var command = new Command("train-embeddings", "Contrastive sentence-embedding training (Mirror-BERT or pairs) into a sentence-transformers folder")
        {
            model, device, output, objective, train, validation, epochs, batchSize, lr, temperature, spanMask, maxExamples, minScore, maxLength, pooling, dropout, seed, json,
        };
        command.SetAction(parse => io.GuardCancellable(ct =>
        {
            var options = new EmbeddingTrainingOptions
            {
                ModelDir = ModelOptions.ExistingFolder(parse.GetValue(model)!),
                Device = ModelOptions.ReadDevice(parse, device),
                OutputDir = parse.GetValue(output)!,
                TrainPath = parse.GetValue(train)!,
                ValidationPath = parse.GetValue(validation),
                Objective = parse.GetValue(objective) == "pairs" ? EmbeddingObjective.Pairs : EmbeddingObjective.Mirror,
                Epochs = parse.GetValue(epochs),
                BatchSize = parse.GetValue(batchSize),
                LearningRate = parse.GetValue(lr),
                Temperature = parse.GetValue(temperature),
                SpanMask = parse.GetValue(spanMask),
                MaxExamples = parse.GetValue(maxExamples) is int n ? (n == 0 ? null : n) : defaults.MaxExamples,
                MinScore = parse.GetValue(minScore),
                MaxSeqLength = parse.GetValue(maxLength),
                Pooling = Enum.Parse<Pooling>(parse.GetValue(pooling)!, ignoreCase: true),
                Seed = parse.GetValue(seed),
                Dropout = parse.GetValue(dropout),
            };
            if (options.MinScore is not null && options.Objective != EmbeddingObjective.Pairs)
                throw new UnmaskException("--min-score applies to --objective pairs.");
            var result = ProgressDisplay.Run<EmbeddingTrainingProgress, EmbeddingTrainingResult>(io, "train-embeddings", p =>
            {
                var text = p.Phase switch
                {
                    "training" => $"step {p.Step:N0}/{p.TotalSteps:N0}  loss {p.Loss:F4}",
                    "evaluated" => $"step {p.Step:N0}/{p.TotalSteps:N0}  validation Spearman {p.Spearman:F2}",
                    _ => p.Phase,
                };
                return new ProgressView($"train-embeddings: {text}", p.TotalSteps > 0 ? (double)p.Step / p.TotalSteps : null, $"train-embeddings: {text}", p.Phase);
            }, p => EmbeddingTrainer.Run(options, p, ct));
            if (parse.GetValue(json))
            {
                io.Out.WriteLine(JsonSerializer.Serialize(new
                {
                    output = result.OutputDir,
                    steps = result.Steps,
                    examples = result.Examples,
                    seconds = result.Elapsed.TotalSeconds,
                    validation_spearman = result.Validation.Select(v => new { step = v.Step, spearman = v.Spearman }),
                }));
                return 0;
            }
            io.Console.MarkupLine(Markup.Escape($"{result.OutputDir}: {result.Steps} steps on {result.Examples} examples in {result.Elapsed.TotalSeconds.ToString("F0", CultureInfo.InvariantCulture)} s"));
            foreach (var (step, spearman) in result.Validation)
                io.Console.MarkupLine(Markup.Escape($"  step {step}: validation Spearman {spearman.ToString("F2", CultureInfo.InvariantCulture)}"));
            return 0;
        }));
        return command;
    }
}
