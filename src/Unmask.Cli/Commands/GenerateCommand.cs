using System.CommandLine;
using Spectre.Console;
using Unmask.Generation;
using Unmask.Inference;
using Unmask.Serving;

namespace Unmask.Cli.Commands;

/// <summary>`unmask generate`: fill [MASK] positions, append --length masked positions, or sample unconditionally.</summary>
public static class GenerateCommand
{
    public static Command Create(CliOutput io)
    {
        var model = ModelOptions.Model();
        var device = ModelOptions.DeviceOption();
        var length = new Option<int>("--length") { Description = "Masked positions appended after each text (no text: an unconditional sample)", DefaultValueFactory = _ => 0 };
        var samples = new Option<int>("--num-samples") { Description = "Samples per text", DefaultValueFactory = _ => 1 };
        var trace = new Option<bool>("--trace") { Description = "With --json: what each forward pass committed, to replay the generation" };
        var json = ModelOptions.Json();
        var sampling = new SamplingArguments();
        var inputs = new TextInputs();
        var command = new Command("generate", "Generate text with a masked LM: fill masks, continue a text, or sample from nothing") { model, device, length, samples, trace, json };
        sampling.AddTo(command);
        inputs.AddTo(command);
        command.SetAction(parse => io.GuardCancellable(ct =>
        {
            var settings = sampling.Settings(parse, parse.GetValue(trace));
            if (settings.Count != 1) throw new UnmaskException("generate takes one --sampler and one --steps (eval infill compares several)");
            IReadOnlyList<string> texts = parse.GetValue(inputs.Texts) is { Length: > 0 } || parse.GetValue(inputs.Input) is not null ? inputs.Read(parse) : [];
            using var mlm = MaskedLanguageModel.Load(ModelOptions.ExistingFolder(parse.GetValue(model)!), ModelOptions.ReadDevice(parse, device));
            var request = new GenerateRequest { Texts = texts, Length = parse.GetValue(length), NumSamples = parse.GetValue(samples), Sampling = settings[0] };
            // Everything is generated before anything is printed, so an error leaves no half-written output.
            var results = TextGeneration.Generate(mlm, request, null, ct);
            foreach (var r in results)
            {
                if (parse.GetValue(json)) WriteJson(io, r);
                else WriteTable(io, r);
            }
            return 0;
        }));
        return command;
    }

    static void WriteJson(CliOutput io, GeneratedText r) => JsonLines.WriteValue(io.Out, w => ResultJson.Generated(w, r));

    static void WriteTable(CliOutput io, GeneratedText r)
    {
        var generated = r.GeneratedPositions.ToHashSet();
        var marked = string.Join(" ", r.Tokens.Select((t, i) => generated.Contains(i) ? $"[green]{Markup.Escape(t)}[/]" : Markup.Escape(t)));
        var table = new Table().AddColumns("", "").HideHeaders();
        if (r.Text.Length > 0) table.AddRow("text", Markup.Escape(r.Text));
        table.AddRow("output", Markup.Escape(r.Output));
        table.AddRow("tokens", marked);
        table.AddRow("forward passes", $"{r.ForwardPasses} in {r.Seconds:F2} s");
        io.Console.Write(table);
    }
}
