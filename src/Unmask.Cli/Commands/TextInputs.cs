using System.CommandLine;
using System.Text;
using System.Text.Json;

namespace Unmask.Cli.Commands;

/// <summary>Texts from positional arguments or from a JSON Lines file with a "text" field, in input order.</summary>
public sealed class TextInputs
{
    public Argument<string[]> Texts { get; } = new("text") { Arity = ArgumentArity.ZeroOrMore, Description = "Input texts" };
    public Option<string?> Input { get; } = new("--input") { Description = "JSON Lines file, one object per line with a \"text\" field" };

    public void AddTo(Command command)
    {
        command.Arguments.Add(Texts);
        command.Options.Add(Input);
    }

    public IReadOnlyList<string> Read(ParseResult parse)
    {
        var texts = new List<string>(parse.GetValue(Texts) ?? []);
        if (parse.GetValue(Input) is { } path) texts.AddRange(ReadJsonLines(path));
        if (texts.Count == 0) throw new UnmaskException("no input text: give texts as arguments or --input FILE");
        return texts;
    }

    static IEnumerable<string> ReadJsonLines(string path)
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
        var texts = new List<string>();
        for (int i = 0; i < lines.Length; i++)
        {
            if (string.IsNullOrWhiteSpace(lines[i])) continue;
            try
            {
                using var doc = JsonDocument.Parse(lines[i]);
                if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty("text", out var text) ||
                    text.ValueKind != JsonValueKind.String)
                    throw new UnmaskException($"{path}:{i + 1}: expected an object with a string \"text\" field");
                texts.Add(text.GetString()!);
            }
            catch (JsonException e)
            {
                throw new UnmaskException($"{path}:{i + 1}: not valid JSON ({e.Message})", e);
            }
        }
        return texts;
    }
}
