using System.CommandLine;
using Spectre.Console;
using Unmask.Tokenization;

namespace Unmask.Cli.Commands;

public static class TokenizeCommand
{
    public static Command Create(CliOutput io)
    {
        var model = ModelOptions.Model();
        var noSpecial = new Option<bool>("--no-special") { Description = "Do not add the special tokens ([CLS]/[SEP], <s>/</s>, ...)" };
        var json = ModelOptions.Json();
        var inputs = new TextInputs();
        var command = new Command("tokenize", "Show tokens, ids and the decoded string") { model, noSpecial, json };
        inputs.AddTo(command);
        command.SetAction(parse => io.Guard(() =>
        {
            var texts = inputs.Read(parse);
            var tokenizer = TokenizerLoader.Load(ModelOptions.ExistingFolder(parse.GetValue(model)!));
            bool special = !parse.GetValue(noSpecial);
            var table = new Table().AddColumns("text", "tokens", "ids", "decoded");
            foreach (var text in texts)
            {
                var e = tokenizer.Encode(text, addSpecialTokens: special);
                var decoded = tokenizer.Decode(e.InputIds);
                if (parse.GetValue(json))
                    JsonLines.Write(io.Out, w =>
                    {
                        w.WriteString("text", text);
                        w.WriteStrings("tokens", e.Tokens);
                        w.WriteInts("input_ids", e.InputIds);
                        w.WriteString("decoded", decoded);
                    });
                else
                    table.AddRow(Markup.Escape(text), Markup.Escape(string.Join(" ", e.Tokens)), string.Join(" ", e.InputIds), Markup.Escape(decoded));
            }
            if (!parse.GetValue(json)) io.Console.Write(table);
            return 0;
        }));
        return command;
    }
}
