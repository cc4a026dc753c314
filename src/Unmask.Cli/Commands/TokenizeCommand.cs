using System.CommandLine;
using Spectre.Console;
using Unmask.Inference;
using Unmask.Tokenization;

namespace Unmask.Cli.Commands;

public static class TokenizeCommand
{
    public static Command Create(CliOutput io)
    {
        var model = ModelOptions.Model();
        var noSpecial = new Option<bool>("--no-special") { Description = "Do not add the special tokens ([CLS]/[SEP], <s>/</s>, ...)" };
        var json = ModelOptions.Json();
        var paddingSide = ModelOptions.PaddingSide("Pad the texts to the longest on this side and show the attention mask");
        var inputs = new TextInputs(withPairs: true);
        var command = new Command("tokenize", "Show tokens, ids and the decoded string") { model, noSpecial, json, paddingSide };
        inputs.AddTo(command);
        command.SetAction(parse => io.Guard(() =>
        {
            var (texts, pairs) = inputs.ReadWithPairs(parse);
            var tokenizer = TokenizerLoader.Load(ModelOptions.ExistingFolder(parse.GetValue(model)!));
            bool special = !parse.GetValue(noSpecial);
            var encodings = texts.Select((t, i) => tokenizer.Encode(t, pairs?[i], addSpecialTokens: special)).ToList();
            var side = parse.GetValue(paddingSide);
            var length = encodings.Max(e => e.InputIds.Length);
            var table = new Table().AddColumns(side is null ? ["text", "tokens", "ids", "decoded"] : ["text", "tokens", "ids", "attention mask", "decoded"]);
            for (int i = 0; i < texts.Count; i++)
            {
                var e = encodings[i];
                var decoded = tokenizer.Decode(e.InputIds);
                var pad = length - e.InputIds.Length;
                // HF pads ids with the pad token, token types with 0 and the mask with 0, on the chosen side.
                T[] Padded<T>(IEnumerable<T> values, T padding) => side switch
                {
                    PaddingSide.Left => [.. Enumerable.Repeat(padding, pad), .. values],
                    PaddingSide.Right => [.. values, .. Enumerable.Repeat(padding, pad)],
                    _ => [.. values],
                };
                var tokens = Padded(e.Tokens, tokenizer.IdToToken(tokenizer.PadId));
                var ids = Padded(e.InputIds, tokenizer.PadId);
                var mask = Padded(e.InputIds.Select(_ => 1), 0);
                if (parse.GetValue(json))
                    JsonLines.Write(io.Out, w =>
                    {
                        w.WriteString("text", texts[i]);
                        if (pairs?[i] is { } pair) w.WriteString("text_pair", pair);
                        w.WriteStrings("tokens", tokens);
                        w.WriteInts("input_ids", ids);
                        if (pairs is not null) w.WriteInts("token_type_ids", Padded(e.TokenTypeIds, 0));
                        if (side is not null) w.WriteInts("attention_mask", mask);
                        w.WriteString("decoded", decoded);
                    });
                else
                {
                    var text = Markup.Escape(pairs?[i] is { } pair ? $"{texts[i]} | {pair}" : texts[i]);
                    string[] cells = side is null
                        ? [text, Markup.Escape(string.Join(" ", tokens)), string.Join(" ", ids), Markup.Escape(decoded)]
                        : [text, Markup.Escape(string.Join(" ", tokens)), string.Join(" ", ids), string.Join("", mask), Markup.Escape(decoded)];
                    table.AddRow(cells);
                }
            }
            if (!parse.GetValue(json)) io.Console.Write(table);
            return 0;
        }));
        return command;
    }
}
