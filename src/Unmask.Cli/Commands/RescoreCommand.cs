using System.CommandLine;
using System.Globalization;
using Spectre.Console;
using Unmask.Evaluation;
using Unmask.Inference;

namespace Unmask.Cli.Commands;

public static class RescoreCommand
{
    public static Command Create(CliOutput io)
    {
        var nbest = new Option<string>("--nbest")
        {
            Description = "JSON Lines, one utterance per line: {\"id\", \"reference\"?, \"hypotheses\": [{\"text\", \"score\"?, \"system\"?}]}",
            Required = true,
        };
        var weight = new Option<double>("--weight") { Description = "λ in score + λ·PLL", DefaultValueFactory = _ => 1.0 };
        var lengthNorm = new Option<bool>("--length-norm") { Description = "Interpolate the PLL per token instead of the total" };
        var scoring = new ScoringArguments();
        var json = new Option<bool>("--json") { Description = "Print JSON Lines, one object per utterance, then a summary line when there are references or systems" };
        var report = ScoringArguments.Report();
        var command = new Command("rescore",
            "Rescore n-best lists with PLL; WER before and after when references are given; rank systems by pseudo-perplexity without references")
        {
            nbest, weight, lengthNorm, json, report,
        };
        scoring.AddTo(command);
        command.SetAction(parse => io.GuardCancellable(ct =>
        {
            var options = new RescoreOptions
            {
                Pll = scoring.PllOptions(parse),
                Weight = parse.GetValue(weight),
                LengthNorm = parse.GetValue(lengthNorm),
                BadLines = scoring.Policy(parse),
            };
            if (!double.IsFinite(options.Weight)) throw new UnmaskException($"--weight must be a finite number, got {options.Weight}");
            var path = parse.GetValue(nbest)!;
            var issues = new List<InputIssue>();
            var lists = Rescorer.Load(path, options.BadLines, issues);
            using var mlm = scoring.LoadModel(parse);
            var result = ScoringArguments.WithProgress(io, "rescoring", p => Rescorer.Rescore(ScoringContext.From(mlm), lists, path, options, issues, p, ct));
            ScoringArguments.Warn(io, result.Issues);
            if (parse.GetValue(report) is { } reportPath) EvalReport.Write(reportPath, result);
            if (parse.GetValue(json)) WriteJson(io, result);
            else WriteTables(io, result);
            return 0;
        }));
        return command;
    }

    static void WriteJson(CliOutput io, RescoreResult result)
    {
        foreach (var u in result.Utterances)
            JsonLines.Write(io.Out, w =>
            {
                w.WriteString("id", u.Id);
                w.WriteString("text", u.Chosen.Text);
                w.WriteNumber("chosen", u.After);
                w.WriteNumber("first_best", u.Before);
                w.WriteStartArray("hypotheses");
                foreach (var h in u.Hypotheses)
                {
                    w.WriteStartObject();
                    w.WriteString("text", h.Text);
                    if (h.System is not null) w.WriteString("system", h.System);
                    w.WriteNumber("score", h.Score);
                    w.WriteNumber("pll", h.Pll);
                    w.WriteNumber("num_scored", h.NumScored);
                    w.WriteNumber("combined", h.Combined);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
            });
        if (result.Wer is null && result.Systems.Count == 0) return;
        io.Out.WriteLine(EvalReport.ToJsonLine(new { summary = new { result.Wer, result.Systems } }));
    }

    static void WriteTables(CliOutput io, RescoreResult result)
    {
        static string F(double v, string format = "F2") => v.ToString(format, CultureInfo.InvariantCulture);
        static string Percent(double v) => double.IsNaN(v) ? "-" : (100 * v).ToString("F2", CultureInfo.InvariantCulture);
        var chosen = new Table().Title($"rescored with score + {F(result.Weight, "G4")}·PLL{(result.LengthNorm ? "/token" : "")}")
            .AddColumns("id", "chosen hypothesis", "#", "first-best #", "score", "PLL", "combined");
        foreach (var u in result.Utterances)
            chosen.AddRow(Markup.Escape(u.Id), Markup.Escape(u.Chosen.Text), (u.After + 1).ToString(CultureInfo.InvariantCulture),
                (u.Before + 1).ToString(CultureInfo.InvariantCulture), F(u.Chosen.Score, "F3"), F(u.Chosen.Pll, "F3"), F(u.Chosen.Combined, "F3"));
        io.Console.Write(chosen);
        if (result.Wer is { } wer)
        {
            var table = new Table().Title($"WER over {wer.Utterances} utterances with references ({wer.ReferenceWords} words)").AddColumns("", "errors", "WER %");
            table.AddRow("first-best (own score)", wer.ErrorsBefore.ToString(CultureInfo.InvariantCulture), Percent(wer.Before));
            table.AddRow("rescored", wer.ErrorsAfter.ToString(CultureInfo.InvariantCulture), Percent(wer.After));
            table.AddRow("oracle", wer.ErrorsOracle.ToString(CultureInfo.InvariantCulture), Percent(wer.Oracle));
            io.Console.Write(table);
        }
        if (result.Systems.Count == 0) return;
        var systems = new Table().Title("systems by pseudo-perplexity (no reference needed; lower is more fluent to the model)")
            .AddColumns("rank", "system", "hypotheses", "PLL", "tokens", "PPPL/token", "PPPL/word", "chosen", "WER %");
        int rank = 1;
        foreach (var s in result.Systems)
            systems.AddRow((rank++).ToString(CultureInfo.InvariantCulture), Markup.Escape(s.System), s.Hypotheses.ToString(CultureInfo.InvariantCulture),
                F(s.TotalPll), s.Tokens.ToString(CultureInfo.InvariantCulture), F(s.TokenPseudoPerplexity), F(s.WordPseudoPerplexity),
                s.Chosen.ToString(CultureInfo.InvariantCulture), s.Wer is { } w ? Percent(w) : "-");
        io.Console.Write(systems);
    }
}
