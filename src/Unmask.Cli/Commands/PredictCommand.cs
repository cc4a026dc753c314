using System.CommandLine;
using System.Globalization;
using Spectre.Console;
using Unmask.Inference;
using Unmask.Serving;

namespace Unmask.Cli.Commands;

/// <summary>`unmask predict`: labels, values or entities from a fine-tuned classifier folder.</summary>
public static class PredictCommand
{
    public static Command Create(CliOutput io)
    {
        var model = ModelOptions.Model();
        var device = ModelOptions.DeviceOption();
        var inputs = new TextInputs(withPairs: true);
        var maxLength = new Option<int>("--max-seq-length") { Description = "Longest input in tokens (longer ones are truncated)", DefaultValueFactory = _ => 512 };
        var json = ModelOptions.Json();
        var command = new Command("predict", "Classify texts (label and probabilities), regress a value, or tag entities with a fine-tuned model");
        command.Options.Add(model);
        command.Options.Add(device);
        inputs.AddTo(command);
        command.Options.Add(maxLength);
        command.Options.Add(json);
        command.SetAction(parse => io.GuardCancellable(ct =>
        {
            var (texts, pairs) = inputs.ReadWithPairs(parse);
            using var classifier = Classifier.Load(ModelOptions.ExistingFolder(parse.GetValue(model)!), ModelOptions.ReadDevice(parse, device));
            var lines = new List<string>();
            var table = new Table();
            if (classifier.Model.Head == Modeling.HeadKind.TokenClassification)
            {
                if (pairs is not null) throw new UnmaskException("a token classifier takes single texts, not pairs.");
                table.AddColumns("text", "entities");
                foreach (var p in classifier.PredictTokens(texts, parse.GetValue(maxLength), cancellationToken: ct))
                {
                    lines.Add(JsonLines.Line(w => ResultJson.Entities(w, p)));
                    table.AddRow(Markup.Escape(p.Text), Markup.Escape(string.Join("; ", p.Entities.Select(e => $"{e.Word} [{e.EntityGroup} {e.Score:F2}]"))));
                }
            }
            else
            {
                var rows = texts.Select((t, i) => (t, pairs?[i])).ToList();
                var predictions = classifier.Predict(rows, parse.GetValue(maxLength), cancellationToken: ct);
                table.AddColumns("text", "prediction");
                foreach (var p in predictions)
                {
                    lines.Add(JsonLines.Line(w => ResultJson.Prediction(w, p, classifier.ProblemType)));
                    var shown = p.Value is double v ? v.ToString("F4", CultureInfo.InvariantCulture)
                        : p.Predicted is { } many ? string.Join(", ", many)
                        : $"{p.Label} ({p.Score:F3})";
                    table.AddRow(Markup.Escape(p.Pair is null ? p.Text : $"{p.Text} ||| {p.Pair}"), Markup.Escape(shown));
                }
            }
            // Everything is computed before the first line goes out: an error leaves no partial output.
            if (parse.GetValue(json)) foreach (var line in lines) io.Out.WriteLine(line);
            else io.Console.Write(table);
            return 0;
        }));
        return command;
    }
}
