using System.CommandLine;
using Unmask.Data;

namespace Unmask.Cli.Commands;

/// <summary>
/// Texts from positional arguments or from a JSON Lines file with a "text" field, in input order; with pairs enabled,
/// also their second segments: --pair once per positional text, or a "text_pair" field per line.
/// </summary>
public sealed class TextInputs(bool withPairs = false)
{
    public Argument<string[]> Texts { get; } = new("text") { Arity = ArgumentArity.ZeroOrMore, Description = "Input texts" };
    public Option<string?> Input { get; } = new("--input")
    {
        Description = withPairs
            ? "JSON Lines file, one object per line with a \"text\" field (and optionally \"text_pair\")"
            : "JSON Lines file, one object per line with a \"text\" field",
    };
    public Option<string[]> Pairs { get; } = new("--pair")
    {
        Description = "Second segment of a text pair, once per text argument, in order",
        AllowMultipleArgumentsPerToken = false,
    };

    public void AddTo(Command command)
    {
        command.Arguments.Add(Texts);
        command.Options.Add(Input);
        if (withPairs) command.Options.Add(Pairs);
    }

    public IReadOnlyList<string> Read(ParseResult parse) => ReadWithPairs(parse).Texts;

    /// <summary>The texts and, when any text has a pair, one pair per text (null where a text has none).</summary>
    public (IReadOnlyList<string> Texts, IReadOnlyList<string?>? Pairs) ReadWithPairs(ParseResult parse)
    {
        var texts = new List<string>(parse.GetValue(Texts) ?? []);
        var pairs = new List<string?>();
        if (withPairs && parse.GetValue(Pairs) is { Length: > 0 } given)
        {
            if (given.Length != texts.Count)
                throw new UnmaskException($"--pair given {given.Length} time(s) for {texts.Count} text argument(s); give one per text");
            pairs.AddRange(given);
        }
        else pairs.AddRange(texts.Select(_ => (string?)null));
        if (parse.GetValue(Input) is { } path)
            foreach (var (_, (text, pair)) in JsonLinesReader.Read(path,
                         o => (JsonLinesReader.String(o, "text"), withPairs ? JsonLinesReader.OptionalString(o, "text_pair") : null)))
            {
                texts.Add(text);
                pairs.Add(pair);
            }
        if (texts.Count == 0) throw new UnmaskException("no input text: give texts as arguments or --input FILE");
        return (texts, pairs.Any(p => p is not null) ? pairs : null);
    }
}
