using System.CommandLine;
using System.Globalization;
using Spectre.Console;
using Unmask.Data;
using Unmask.Evaluation;
using Unmask.Inference;
using Unmask.Serving;

namespace Unmask.Cli.Commands;

public static class ScoreCommand
{
    public static Command Create(CliOutput io)
    {
        var json = ModelOptions.Json();
        var perToken = new Option<bool>("--per-token") { Description = "Also give every token's log-probability" };
        var file = new Option<string?>("--file") { Description = "Plain text file, one sentence per line" };
        var scoring = new ScoringArguments();
        var inputs = new TextInputs();
        var command = new Command("score", "Pseudo-log-likelihood of sentences (natural log), and pseudo-perplexity over them") { json, perToken, file };
        scoring.AddTo(command);
        command.Arguments.Add(inputs.Texts);
        command.Options.Add(inputs.Input);
        command.SetAction(parse => io.GuardCancellable(ct =>
        {
            var policy = scoring.Policy(parse);
            var issues = new List<InputIssue>();
            var sentences = new List<(string Text, string Source)>();
            var arguments = parse.GetValue(inputs.Texts) ?? [];
            for (int i = 0; i < arguments.Length; i++) sentences.Add((arguments[i], $"argument {i + 1}"));
            if (parse.GetValue(inputs.Input) is { } jsonl)
                sentences.AddRange(JsonLinesReader.Read(jsonl, o => JsonLinesReader.String(o, "text"), InputIssue.Recorder(jsonl, policy, issues))
                    .Select(v => (v.Value, $"{jsonl}:{v.Line}")));
            if (parse.GetValue(file) is { } plain)
                sentences.AddRange(JsonLinesReader.ReadLines(plain).Select(l => (l.Text, $"{plain}:{l.Line}")));
            if (sentences.Count == 0 && issues.Count == 0)
                throw new UnmaskException("no input text: give sentences as arguments, --input FILE (JSON Lines) or --file FILE");

            using var mlm = scoring.LoadModel(parse);
            var scorer = new PllScorer(ScoringContext.From(mlm), scoring.PllOptions(parse));
            var usable = new List<(string Text, string Source)>();
            var skipped = issues.Select(i => i.ToString()).ToList();
            foreach (var sentence in sentences)
            {
                if (scorer.Problem(sentence.Text) is not { } problem)
                {
                    usable.Add(sentence);
                    continue;
                }
                if (policy == BadLinePolicy.Fail) throw new UnmaskException($"{sentence.Source}: {problem}");
                skipped.Add($"{sentence.Source}: {problem}");
            }
            foreach (var warning in skipped) io.Error.WriteLine($"warning: {warning}; skipped");

            var results = ScoringArguments.WithProgress(io, "scoring", p => scorer.Score(usable.Select(s => s.Text).ToList(), p, ct));
            if (parse.GetValue(json)) WriteJson(io, results, parse.GetValue(perToken));
            else WriteTables(io, results, parse.GetValue(perToken));
            return 0;
        }));
        return command;
    }

    static void WriteJson(CliOutput io, IReadOnlyList<PllResult> results, bool perToken)
    {
        foreach (var r in results) JsonLines.WriteValue(io.Out, w => ResultJson.Score(w, r, perToken));
    }

    static void WriteTables(CliOutput io, IReadOnlyList<PllResult> results, bool perToken)
    {
        string F(double v, string format = "F4") => v.ToString(format, CultureInfo.InvariantCulture);
        var table = new Table().AddColumns("#", "text", "tokens", "PLL", "PLL/token");
        for (int i = 0; i < results.Count; i++)
        {
            var r = results[i];
            table.AddRow((i + 1).ToString(CultureInfo.InvariantCulture), Markup.Escape(r.Text), r.NumScored.ToString(CultureInfo.InvariantCulture), F(r.Pll), F(r.PllMean));
        }
        io.Console.Write(table);
        if (perToken)
            foreach (var r in results)
            {
                var tokens = new Table().Title(Markup.Escape(r.Text)).AddColumns("position", "token", "id", "log-prob");
                foreach (var t in r.Tokens)
                    tokens.AddRow(t.Position.ToString(CultureInfo.InvariantCulture), Markup.Escape(t.Token), t.Id.ToString(CultureInfo.InvariantCulture), F(t.LogProb));
                io.Console.Write(tokens);
            }
        var pppl = PseudoPerplexity.From(results);
        var summary = new Table().AddColumns("summary", "value");
        summary.AddRow("sentences", pppl.Sentences.ToString(CultureInfo.InvariantCulture));
        summary.AddRow("scored tokens / words", $"{pppl.Tokens} / {pppl.Words}");
        summary.AddRow("total PLL", F(pppl.TotalPll));
        summary.AddRow("pseudo-perplexity (per token)", F(pppl.TokenLevel, "F2"));
        summary.AddRow("pseudo-perplexity (per word)", F(pppl.WordLevel, "F2"));
        io.Console.Write(summary);
    }
}
