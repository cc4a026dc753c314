using System.Globalization;
using System.Text.Json;

namespace Unmask.Data;

/// <summary>A labelled text (or text pair); <see cref="Label"/> is the label cell as written (a number for
/// regression, names separated by ';' or '|' for multi-label). <see cref="Source"/> is "FILE:LINE".</summary>
public sealed record TextExample(string Text, string? Pair, string Label, string Source);

/// <summary>A sentence of words with one tag per word (CoNLL), <see cref="Source"/> "FILE:LINE" of its first word.</summary>
public sealed record WordExample(IReadOnlyList<string> Words, IReadOnlyList<string> Tags, string Source);

/// <summary>Which columns (CSV/TSV) or fields (JSON Lines) hold the text, the pair and the label; null guesses.</summary>
/// <param name="Columns">Names for the columns of a file without a header row, in order.</param>
public sealed record DataColumns(string? Text = null, string? TextPair = null, string? Label = null, IReadOnlyList<string>? Columns = null);

/// <summary>
/// Reads fine-tuning data: CSV (comma, RFC 4180 quoting), TSV (tab, no quoting, as GLUE ships it), JSON Lines, and
/// CoNLL (word TAB tag; a blank line ends a sentence) for token tasks. The format follows the extension (.csv, .tsv,
/// .jsonl/.json, .conll/.bio/.iob; .txt reads as TSV for texts and CoNLL for tokens). Bad input stops with "FILE:LINE: problem".
/// </summary>
public static class LabelledData
{
    static readonly string[] TextGuesses = ["text", "sentence", "sentence1", "question", "premise", "content", "review"];
    static readonly string[] PairGuesses = ["text_pair", "sentence2", "question2", "hypothesis"];
    static readonly string[] LabelGuesses = ["label", "labels", "score", "target", "class", "y", "similarity"];

    /// <summary>Separators of several labels in one multi-label cell.</summary>
    public static readonly char[] LabelSeparators = [';', '|'];

    public static IReadOnlyList<TextExample> ReadTexts(string path, DataColumns columns)
    {
        if (!File.Exists(path)) throw new UnmaskException($"{path}: file not found");
        var extension = Extension(path);
        var examples = extension is ".jsonl" or ".json" ? ReadJsonLines(path, columns) : ReadTable(path, columns, extension == ".csv" ? ',' : '\t');
        if (examples.Count == 0) throw new UnmaskException($"{path}: no examples");
        return examples;
    }

    /// <summary>CoNLL sentences (extra columns between word and tag are ignored: the tag is the last column), or JSON
    /// Lines with "tokens" and "tags" (or "ner_tags") string arrays.</summary>
    public static IReadOnlyList<WordExample> ReadWords(string path)
    {
        if (!File.Exists(path)) throw new UnmaskException($"{path}: file not found");
        var sentences = Extension(path) is ".jsonl" or ".json" ? ReadWordJsonLines(path) : ReadConll(path);
        if (sentences.Count == 0) throw new UnmaskException($"{path}: no sentences");
        return sentences;
    }

    static string Extension(string path)
    {
        var name = path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase) ? path[..^3] : path;
        return Path.GetExtension(name).ToLowerInvariant();
    }

    static List<TextExample> ReadTable(string path, DataColumns columns, char delimiter)
    {
        List<(int Line, string[] Fields)> rows;
        if (delimiter == ',')
            rows = CsvReader.Parse(string.Join('\n', JsonLinesReader.ReadLines(path).Select(l => l.Text)), path);
        else
            rows = [.. JsonLinesReader.ReadLines(path).Where(l => l.Text.Length > 0).Select(l => (l.Line, l.Text.Split('\t')))];
        if (rows.Count == 0) throw new UnmaskException($"{path}: the file is empty");

        IReadOnlyList<string> names;
        int first;
        if (columns.Columns is { Count: > 0 } given)
        {
            names = given;
            first = 0;
        }
        else
        {
            names = [.. rows[0].Fields.Select(f => f.Trim())];
            first = 1;
            if (!names.Any(n => TextGuesses.Concat(PairGuesses).Concat(LabelGuesses).Contains(n, StringComparer.OrdinalIgnoreCase))
                && columns.Text is null && columns.Label is null)
                throw new UnmaskException($"{path}:{rows[0].Line}: no header row recognised (expected a column such as 'sentence' and 'label'); "
                    + "for a file without a header pass --columns (e.g. --columns sentence1,sentence2,score).");
        }
        var (text, pair, label) = Resolve(path, names, columns);
        var examples = new List<TextExample>();
        foreach (var (line, fields) in rows.Skip(first))
        {
            if (fields.Length == 1 && fields[0].Length == 0) continue;
            if (fields.Length != names.Count)
                throw new UnmaskException($"{path}:{line}: {fields.Length} column(s), expected {names.Count} ({string.Join(", ", names)}).");
            examples.Add(Example(path, line, fields[text], pair is int p ? fields[p] : null, fields[label], names[text], names[label]));
        }
        return examples;
    }

    /// <summary>The indices of the text, pair and label columns: as named, else guessed from common names, else by
    /// position (two columns: text, label; three: text, pair, label).</summary>
    static (int Text, int? Pair, int Label) Resolve(string path, IReadOnlyList<string> names, DataColumns columns)
    {
        int Find(string name, string role)
        {
            var index = names.ToList().FindIndex(n => string.Equals(n, name, StringComparison.OrdinalIgnoreCase));
            return index >= 0 ? index : throw new UnmaskException($"{path}: no {role} column '{name}'; the columns are {string.Join(", ", names)}.");
        }
        int? Guess(string[] guesses) => guesses.Select(g => names.ToList().FindIndex(n => string.Equals(n, g, StringComparison.OrdinalIgnoreCase)))
            .Where(i => i >= 0).Select(i => (int?)i).FirstOrDefault();

        int? text = columns.Text is { } t ? Find(t, "text") : Guess(TextGuesses);
        int? label = columns.Label is { } l ? Find(l, "label") : Guess(LabelGuesses);
        int? pair = columns.TextPair is { } tp ? Find(tp, "text pair") : Guess(PairGuesses);
        if (text is null && label is null && names.Count is 2 or 3) (text, pair, label) = (0, names.Count == 3 ? 1 : null, names.Count - 1);
        if (text is null) throw new UnmaskException($"{path}: no text column among {string.Join(", ", names)}; name it with --text-column.");
        if (label is null) throw new UnmaskException($"{path}: no label column among {string.Join(", ", names)}; name it with --label-column.");
        return (text.Value, pair, label.Value);
    }

    static TextExample Example(string path, int line, string text, string? pair, string label, string textName, string labelName)
    {
        if (string.IsNullOrWhiteSpace(text)) throw new UnmaskException($"{path}:{line}: the text ('{textName}') is empty.");
        if (pair is not null && string.IsNullOrWhiteSpace(pair)) throw new UnmaskException($"{path}:{line}: the text pair is empty.");
        return new TextExample(text, pair, label.Trim(), $"{path}:{line}");
    }

    static List<TextExample> ReadJsonLines(string path, DataColumns columns)
    {
        var examples = new List<TextExample>();
        foreach (var (line, example) in JsonLinesReader.Read(path, obj => obj.Clone()))
        {
            var names = example.EnumerateObject().Select(p => p.Name).ToList();
            var (text, pair, label) = Resolve($"{path}:{line}", names, columns);
            string Cell(int index, bool isLabel)
            {
                var value = example.GetProperty(names[index]);
                return value.ValueKind switch
                {
                    JsonValueKind.String => value.GetString()!,
                    JsonValueKind.Number when isLabel => value.GetRawText(),
                    JsonValueKind.True or JsonValueKind.False when isLabel => value.GetBoolean() ? "1" : "0",
                    JsonValueKind.Array when isLabel => string.Join(';', value.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.String ? e.GetString() : e.GetRawText())),
                    _ => throw new UnmaskException($"{path}:{line}: field \"{names[index]}\" must be a string{(isLabel ? ", number or array" : "")}."),
                };
            }
            examples.Add(Example(path, line, Cell(text, false), pair is int p ? Cell(p, false) : null, Cell(label, true), names[text], names[label]));
        }
        return examples;
    }

    static List<WordExample> ReadConll(string path)
    {
        var sentences = new List<WordExample>();
        var words = new List<string>();
        var tags = new List<string>();
        int start = 0;
        void End()
        {
            if (words.Count > 0) sentences.Add(new WordExample([.. words], [.. tags], $"{path}:{start}"));
            words.Clear();
            tags.Clear();
        }
        foreach (var (line, text) in JsonLinesReader.ReadLines(path))
        {
            if (string.IsNullOrWhiteSpace(text) || text.StartsWith("-DOCSTART-", StringComparison.Ordinal))
            {
                End();
                continue;
            }
            var fields = text.Split('\t');
            if (fields.Length == 1) fields = text.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length < 2 || fields[^1].Trim().Length == 0)
                throw new UnmaskException($"{path}:{line}: expected 'word<TAB>tag', found no tag in '{text}'.");
            if (words.Count == 0) start = line;
            words.Add(fields[0]);
            tags.Add(fields[^1].Trim());
        }
        End();
        return sentences;
    }

    static List<WordExample> ReadWordJsonLines(string path)
    {
        var sentences = new List<WordExample>();
        foreach (var (line, obj) in JsonLinesReader.Read(path, o => o.Clone()))
        {
            string[] Strings(string field)
            {
                if (!obj.TryGetProperty(field, out var value) || value.ValueKind != JsonValueKind.Array)
                    throw new UnmaskException($"{path}:{line}: field \"{field}\" must be an array of strings.");
                return [.. value.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.String ? e.GetString()!
                    : throw new UnmaskException($"{path}:{line}: field \"{field}\" must be an array of strings."))];
            }
            var words = Strings("tokens");
            var tags = Strings(obj.TryGetProperty("tags", out _) ? "tags" : "ner_tags");
            if (words.Length != tags.Length)
                throw new UnmaskException($"{path}:{line}: {words.Length} tokens but {tags.Length} tags.");
            if (words.Length > 0) sentences.Add(new WordExample(words, tags, $"{path}:{line}"));
        }
        return sentences;
    }

    /// <summary>Parses a regression target, naming the example's file and line when it is not a number.</summary>
    public static float ParseTarget(TextExample example) =>
        float.TryParse(example.Label, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && float.IsFinite(value)
            ? value
            : throw new UnmaskException($"{example.Source}: label '{example.Label}' is not a number (regression needs one).");

    /// <summary>The names in a multi-label cell (none when it is empty).</summary>
    public static IEnumerable<string> SplitLabels(string cell) =>
        cell.Split(LabelSeparators, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
}
