using System.CommandLine;
using Spectre.Console;
using Unmask.Inference;

namespace Unmask.Cli.Commands;

public static class ForwardCommand
{
    public static Command Create(CliOutput io)
    {
        var model = ModelOptions.Model();
        var json = ModelOptions.Json();
        var inputs = new TextInputs();
        var command = new Command("forward", "Run the texts as one right-padded batch and print logits") { model, json };
        inputs.AddTo(command);
        command.SetAction(parse => io.Guard(() =>
        {
            var texts = inputs.Read(parse);
            using var mlm = MaskedLanguageModel.Load(ModelOptions.ExistingFolder(parse.GetValue(model)!));
            var results = mlm.Forward(texts);
            if (parse.GetValue(json))
            {
                foreach (var r in results)
                    JsonLines.Write(io.Out, w =>
                    {
                        w.WriteString("text", r.Text);
                        w.WriteStrings("tokens", r.Tokens);
                        w.WriteInts("input_ids", r.InputIds);
                        w.WriteStartArray("logits");
                        foreach (var row in r.Logits)
                        {
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
                var table = new Table().Title(Markup.Escape(r.Text)).AddColumns("position", "token", "id", "argmax", "max logit", "logits[0..3]");
                for (int p = 0; p < r.Logits.Length; p++)
                {
                    var row = r.Logits[p];
                    int arg = Array.IndexOf(row, row.Max());
                    table.AddRow(p.ToString(), Markup.Escape(r.Tokens[p]), r.InputIds[p].ToString(),
                        Markup.Escape(mlm.Tokenizer.IdToToken(arg)), row[arg].ToString("F4"),
                        string.Join(" ", row.Take(4).Select(v => v.ToString("F4"))));
                }
                io.Console.Write(table);
            }
            return 0;
        }));
        return command;
    }
}
