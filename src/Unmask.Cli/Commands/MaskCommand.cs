using System.CommandLine;
using Spectre.Console;
using Unmask.Data;
using Unmask.Masking;
using Unmask.Tokenization;

namespace Unmask.Cli.Commands;

/// <summary>
/// `unmask mask`: how a masking strategy corrupts texts, through the same strategy objects the trainer uses. Each
/// text is one batch of one row with its special tokens; one generator seeded by --seed serves the texts in order.
/// </summary>
public static class MaskCommand
{
    public static Command Create(CliOutput io)
    {
        var model = ModelOptions.Model();
        var seed = new Option<int>("--seed") { DefaultValueFactory = _ => 42 };
        var progress = new Option<double>("--progress") { DefaultValueFactory = _ => 0.0, Description = "Point in training, 0..1 (for rate schedules)" };
        var statsFrom = new Option<string?>("--stats-from") { Description = "Corpus file or folder for the statistics of pmi and weighted (default: the texts themselves)" };
        var json = ModelOptions.Json();
        var inputs = new TextInputs();
        var masking = new MaskingArguments();
        var command = new Command("mask", "Show how a masking strategy corrupts texts") { model, seed, progress, statsFrom, json };
        masking.AddTo(command);
        inputs.AddTo(command);
        command.SetAction(parse => io.Guard(() =>
        {
            var options = masking.Read(parse);
            double at = parse.GetValue(progress);
            if (at is < 0 or > 1) throw new UnmaskException($"--progress must be in [0, 1], got {at}");
            var texts = inputs.Read(parse);
            var tokenizer = TokenizerLoader.Load(ModelOptions.ExistingFolder(parse.GetValue(model)!));
            var vocab = MaskingVocabulary.FromTokenizer(tokenizer, tokenizer.VocabSize);
            var boundaries = WordBoundaries.FromTokenizer(tokenizer, vocab);
            CorpusStatistics? statistics = null;
            if (MaskingStrategies.NeedsStatistics(options.Strategy))
            {
                IEnumerable<string> source = texts;
                if (parse.GetValue(statsFrom) is { } path)
                {
                    var corpus = Corpus.Load(path);
                    source = corpus.Train.Concat(corpus.Validation);
                }
                statistics = CorpusStatistics.Compute(source.Select(t => tokenizer.Encode(t, addSpecialTokens: false).InputIds),
                    boundaries, MaskingStrategies.CollocationOptions(options));
            }
            var strategy = MaskingStrategies.Create(options, vocab, boundaries, statistics);
            var rng = new Random(parse.GetValue(seed));
            var table = new Table().AddColumns("text", "corrupted");
            table.Caption("[[M:x]] masked  [[R:x→y]] replaced by a random token  [[K:x]] kept (selected, unchanged)");
            foreach (var text in texts)
            {
                var encoded = tokenizer.Encode(text);
                var ids = Array.ConvertAll(encoded.InputIds, x => (long)x);
                var result = strategy.Apply(ids, 1, ids.Length, rng, at);
                var selected = Enumerable.Range(0, ids.Length).Where(i => result.Labels[i] != MaskedBatch.Ignore).ToArray();
                if (parse.GetValue(json))
                    JsonLines.Write(io.Out, w =>
                    {
                        w.WriteString("text", text);
                        w.WriteStrings("tokens", encoded.Tokens);
                        w.WriteInts("input_ids", encoded.InputIds);
                        w.WriteInts("selected", selected);
                        w.WriteInts("corrupted_ids", result.InputIds.Select(x => (int)x));
                    });
                else
                    table.AddRow(Markup.Escape(text), Markup.Escape(Render(encoded.Tokens, ids, result, tokenizer)));
            }
            if (!parse.GetValue(json)) io.Console.Write(table);
            return 0;
        }));
        return command;
    }

    static string Render(string[] tokens, long[] ids, MaskedBatch result, ITokenizer tokenizer) =>
        string.Join(" ", tokens.Select((token, i) =>
            result.Labels[i] == MaskedBatch.Ignore ? token
            : result.InputIds[i] == ids[i] ? $"[K:{token}]"
            : result.InputIds[i] == tokenizer.MaskId ? $"[M:{token}]"
            : $"[R:{token}→{tokenizer.IdToToken((int)result.InputIds[i])}]"));
}
