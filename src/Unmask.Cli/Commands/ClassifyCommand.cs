using System.CommandLine;
using System.Text.Json;
using Spectre.Console;
using Unmask.Inference;
using Unmask.Serving;

namespace Unmask.Cli.Commands;

/// <summary>The pattern and verbalizer options of classify and eval classification.</summary>
public sealed class PromptArguments
{
    public Option<string?> Template { get; } = new("--template") { Description = "Pattern with {text} (and optionally {text_pair}) and one [MASK], e.g. \"{text} It was [MASK].\"" };
    public Option<string?> Verbalizer { get; } = new("--verbalizer") { Description = "Label words: JSON {\"label\": [\"word\", ...]} or lines label<TAB>word,word" };
    public Option<bool> Calibrate { get; } = new("--calibrate") { Description = "Contextual calibration: divide by the label distribution of content-free inputs" };

    public PromptClassifier Create(ParseResult parse, MaskedLanguageModel mlm, CliOutput io)
    {
        var template = parse.GetValue(Template) ?? throw new UnmaskException("--template is required.");
        var path = parse.GetValue(Verbalizer) ?? throw new UnmaskException("--verbalizer is required with --template.");
        var classifier = new PromptClassifier(mlm, template, Inference.Verbalizer.Load(path), path) { Calibrate = parse.GetValue(Calibrate) };
        foreach (var (word, pieces) in classifier.SplitWords)
            io.Error.WriteLine($"note: '{word}' is {pieces.Count} pieces ({string.Join(" ", pieces)}), scored as a pseudo-log-likelihood over {pieces.Count} masks");
        return classifier;
    }
}

/// <summary>`unmask classify`: zero-shot classification through the masked-LM head with a pattern and label words.</summary>
public static class ClassifyCommand
{
    public static Command Create(CliOutput io)
    {
        var scoring = new ScoringArguments(withVariant: false, withBatchTokens: false, withSkipBad: false);
        var inputs = new TextInputs(withPairs: true);
        var prompt = new PromptArguments();
        var json = ModelOptions.Json();
        var command = new Command("classify", "Classify texts zero-shot through the masked-LM head: a pattern with [MASK] and label words per label");
        scoring.AddTo(command);
        inputs.AddTo(command);
        command.Options.Add(prompt.Template);
        command.Options.Add(prompt.Verbalizer);
        command.Options.Add(prompt.Calibrate);
        command.Options.Add(json);
        command.SetAction(parse => io.GuardCancellable(ct =>
        {
            var (texts, pairs) = inputs.ReadWithPairs(parse);
            using var mlm = scoring.LoadModel(parse);
            var classifier = prompt.Create(parse, mlm, io);
            var predictions = classifier.Predict([.. texts.Select((t, i) => (t, pairs?[i]))], ct);
            if (parse.GetValue(json))
            {
                foreach (var p in predictions)
                    JsonLines.WriteValue(io.Out, w => ResultJson.Prompt(w, p));
                return 0;
            }
            var table = new Table().AddColumns(["text", "label", .. classifier.Labels.Select(Markup.Escape)]);
            foreach (var p in predictions)
                table.AddRow([Markup.Escape(p.Text), Markup.Escape(p.Label), .. classifier.Labels.Select(l => p.Probabilities[l].ToString("F3", System.Globalization.CultureInfo.InvariantCulture))]);
            io.Console.Write(table);
            return 0;
        }));
        return command;
    }
}
