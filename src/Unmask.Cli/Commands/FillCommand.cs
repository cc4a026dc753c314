using System.CommandLine;
using Spectre.Console;
using Unmask.Inference;
using Unmask.Serving;

namespace Unmask.Cli.Commands;

public static class FillCommand
{
    public static Command Create(CliOutput io)
    {
        var model = ModelOptions.Model();
        var device = ModelOptions.DeviceOption();
        var topK = new Option<int>("--top-k") { Description = "Candidates per mask", DefaultValueFactory = _ => 5 };
        var targets = new Option<string?>("--targets") { Description = "Comma-separated tokens to rank instead of the whole vocabulary" };
        var json = ModelOptions.Json();
        var inputs = new TextInputs();
        var command = new Command("fill", "Predict the tokens at [MASK] positions") { model, device, topK, targets, json };
        inputs.AddTo(command);
        command.SetAction(parse => io.Guard(() =>
        {
            var texts = inputs.Read(parse);
            using var mlm = MaskedLanguageModel.Load(ModelOptions.ExistingFolder(parse.GetValue(model)!), ModelOptions.ReadDevice(parse, device));
            var targetList = parse.GetValue(targets)?.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
            var results = mlm.Fill(texts, parse.GetValue(topK), targetList);
            foreach (var r in results)
            {
                if (parse.GetValue(json))
                {
                    JsonLines.WriteValue(io.Out, w => ResultJson.Fill(w, r));
                    continue;
                }
                var table = new Table().Title(Markup.Escape(r.Text)).AddColumns("position", "rank", "token", "id", "probability");
                foreach (var m in r.Masks)
                    for (int k = 0; k < m.Candidates.Count; k++)
                        table.AddRow(k == 0 ? m.Position.ToString() : "", (k + 1).ToString(), Markup.Escape(m.Candidates[k].Token),
                            m.Candidates[k].Id.ToString(), m.Candidates[k].Probability.ToString("F4"));
                io.Console.Write(table);
            }
            return 0;
        }));
        return command;
    }
}
