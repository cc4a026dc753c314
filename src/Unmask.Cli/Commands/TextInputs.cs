using System.CommandLine;
using System.Text;
using System.Text.Json;

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
            foreach (var (text, pair) in ReadJsonLines(path))
            {
                texts.Add(text);
                pairs.Add(pair);
            }
        if (texts.Count == 0) throw new UnmaskException("no input text: give texts as arguments or --input FILE");
        return (texts, pairs.Any(p => p is not null) ? pairs : null);
    }

    IEnumerable<(string Text, string? Pair)> ReadJsonLines(string path)
    {
        if (!File.Exists(path)) throw new UnmaskException($"{path}: input file not found");
        var utf8 = new UTF8Encoding(false, throwOnInvalidBytes: true);
        string[] lines;
        try
        {
            lines = File.ReadAllLines(path, utf8);
        }
        catch (DecoderFallbackException e)
        {
            throw new UnmaskException($"{path}: not valid UTF-8 ({e.Message})", e);
        }
        var texts = new List<(string, string?)>();
        for (int i = 0; i < lines.Length; i++)
        {
            if (string.IsNullOrWhiteSpace(lines[i])) continue;
            try
            {
                using var doc = JsonDocument.Parse(lines[i]);
                if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty("text", out var text) ||
                    text.ValueKind != JsonValueKind.String)
                    throw new UnmaskException($"{path}:{i + 1}: expected an object with a string \"text\" field");
                string? pair = null;
                if (withPairs && doc.RootElement.TryGetProperty("text_pair", out var pairElement) && pairElement.ValueKind != JsonValueKind.Null)
                    pair = pairElement.ValueKind == JsonValueKind.String
                        ? pairElement.GetString()
                        : throw new UnmaskException($"{path}:{i + 1}: \"text_pair\" must be a string or null");
                texts.Add((text.GetString()!, pair));
            }
            catch (JsonException e)
            {
                throw new UnmaskException($"{path}:{i + 1}: not valid JSON ({e.Message})", e);
            }
        }
        return texts;
    }
}
