using System.CommandLine;
using Spectre.Console;
using Unmask.Inference;
using Unmask.Modeling;

namespace Unmask.Cli.Commands;

public static class ForwardCommand
{
    public static Command Create(CliOutput io)
    {
        var model = ModelOptions.Model();
        var device = ModelOptions.DeviceOption();
        var json = ModelOptions.Json();
        var paddingSide = ModelOptions.PaddingSide("Pad the batch on the left or right (default: the tokenizer's own)");
        var inputs = new TextInputs(withPairs: true);
        var command = new Command("forward", "Run the texts as one padded batch and print logits") { model, device, json, paddingSide };
        inputs.AddTo(command);
        command.SetAction(parse => io.Guard(() =>
        {
            var (texts, pairs) = inputs.ReadWithPairs(parse);
            using var mlm = MaskedLanguageModel.Load(ModelOptions.ExistingFolder(parse.GetValue(model)!), ModelOptions.ReadDevice(parse, device));
            var results = mlm.Forward(texts, pairs, parse.GetValue(paddingSide));
            // A discriminator scores each position with one logit (token replaced or not) instead of a vocabulary row.
            var perPosition = mlm.Model.Head == HeadKind.ReplacedToken;
            if (parse.GetValue(json))
            {
                foreach (var r in results)
                    JsonLines.Write(io.Out, w =>
                    {
                        w.WriteString("text", r.Text);
                        if (r.Pair is not null) w.WriteString("text_pair", r.Pair);
                        w.WriteStrings("tokens", r.Tokens);
                        w.WriteInts("input_ids", r.InputIds);
                        if (r.Pair is not null) w.WriteInts("token_type_ids", r.TokenTypeIds);
                        w.WriteStartArray("logits");
                        foreach (var row in r.Logits)
                        {
                            if (perPosition)
                            {
                                w.WriteNumberValue(row[0]);
                                continue;
                            }
                            w.WriteStartArray();
                            foreach (var v in row) w.WriteNumberValue(v);
                            w.WriteEndArray();
                        }
                        w.WriteEndArray();
                    });
                return 0;
            }
            foreach (var r in results)
            {
                var title = Markup.Escape(r.Pair is null ? r.Text : $"{r.Text} | {r.Pair}");
                var table = perPosition
                    ? new Table().Title(title).AddColumns("position", "token", "id", "logit", "p(replaced)")
                    : new Table().Title(title).AddColumns("position", "token", "id", "argmax", "max logit", "logits[0..3]");
                for (int p = 0; p < r.Logits.Length; p++)
                {
                    var row = r.Logits[p];
                    if (perPosition)
                    {
                        table.AddRow(p.ToString(), Markup.Escape(r.Tokens[p]), r.InputIds[p].ToString(), row[0].ToString("F4"),
                            (1 / (1 + Math.Exp(-row[0]))).ToString("F4"));
                        continue;
                    }
                    int arg = Array.IndexOf(row, row.Max());
                    var argToken = arg < mlm.Tokenizer.VocabSize ? mlm.Tokenizer.IdToToken(arg) : $"<id {arg}>";
                    table.AddRow(p.ToString(), Markup.Escape(r.Tokens[p]), r.InputIds[p].ToString(),
                        Markup.Escape(argToken), row[arg].ToString("F4"),
                        string.Join(" ", row.Take(4).Select(v => v.ToString("F4"))));
                }
                io.Console.Write(table);
            }
            return 0;
        }));
        return command;
    }
}
