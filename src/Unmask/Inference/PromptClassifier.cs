using System.Text.Json;
using Unmask.Data;
using Unmask.Tokenization;

namespace Unmask.Inference;

/// <summary>Label words per label ("It's All in The [MASK]": positive → great, good).</summary>
public sealed record Verbalizer(IReadOnlyList<string> Labels, IReadOnlyDictionary<string, IReadOnlyList<string>> Words)
{
    /// <summary>
    /// Reads a verbalizer: JSON (an object of label → word or list of words) or lines "label&lt;TAB&gt;word[,word...]"
    /// (blank lines and lines starting with # skipped). Bad input names the file and line.
    /// </summary>
    public static Verbalizer Load(string path) => Load(path, property: null);

    /// <param name="property">Read the verbalizer object from this property of a JSON file (prompt.json's "verbalizer").</param>
    public static Verbalizer Load(string path, string? property)
    {
        if (!File.Exists(path)) throw new UnmaskException($"{path}: verbalizer file not found");
        var labels = new List<string>();
        var words = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        void Add(string label, IEnumerable<string> list, string where)
        {
            var cleaned = list.Select(w => w.Trim()).Where(w => w.Length > 0).ToList();
            if (label.Trim().Length == 0) throw new UnmaskException($"{where}: empty label name");
            if (cleaned.Count == 0) throw new UnmaskException($"{where}: label '{label}' has no words");
            if (!words.TryAdd(label, cleaned)) throw new UnmaskException($"{where}: label '{label}' is given twice");
            labels.Add(label);
        }
        var text = File.ReadAllText(path);
        if (property is not null || path.EndsWith(".json", StringComparison.OrdinalIgnoreCase) || text.TrimStart().StartsWith('{'))
        {
            JsonDocument document;
            try
            {
                document = JsonDocument.Parse(text);
            }
            catch (JsonException e)
            {
                throw new UnmaskException($"{path}:{(e.LineNumber ?? 0) + 1}: not valid JSON: {e.Message}");
            }
            using (document)
            {
                var root = document.RootElement;
                if (property is not null && (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty(property, out root)))
                    throw new UnmaskException($"{path}: no \"{property}\" object of label → words");
                if (root.ValueKind != JsonValueKind.Object) throw new UnmaskException($"{path}: expected a JSON object of label → words");
                foreach (var entry in root.EnumerateObject())
                {
                    var value = entry.Value;
                    IEnumerable<string> list = value.ValueKind switch
                    {
                        JsonValueKind.String => [value.GetString()!],
                        JsonValueKind.Array when value.EnumerateArray().All(e => e.ValueKind == JsonValueKind.String) => value.EnumerateArray().Select(e => e.GetString()!),
                        _ => throw new UnmaskException($"{path}: label '{entry.Name}' must map to a word or a list of words"),
                    };
                    Add(entry.Name, list, path);
                }
            }
        }
        else
        {
            int line = 0;
            foreach (var raw in text.Split('\n'))
            {
                line++;
                var entry = raw.TrimEnd('\r');
                if (entry.Trim().Length == 0 || entry.TrimStart().StartsWith('#')) continue;
                var tab = entry.IndexOf('\t');
                if (tab < 0) throw new UnmaskException($"{path}:{line}: expected 'label<TAB>word[,word...]'");
                Add(entry[..tab], entry[(tab + 1)..].Split(','), $"{path}:{line}");
            }
        }
        if (labels.Count < 2) throw new UnmaskException($"{path}: a verbalizer needs at least two labels");
        return new Verbalizer(labels, words);
    }
}

/// <summary>A prompt prediction: the best label, each label's probability (normalised over the labels, calibrated when
/// asked) and each label's log-score (log-sum-exp over its words of the words' log-probabilities at the mask).</summary>
public sealed record PromptPrediction(string Text, string Label, double Score, IReadOnlyDictionary<string, double> Probabilities,
    IReadOnlyDictionary<string, double> LogScores);

/// <summary>
/// Zero-shot classification through the masked-LM head ("It's All in The [MASK]", PET's pattern-verbalizer pairs):
/// the template with the text in it, one mask where the label word goes, and each label scored by its words'
/// log-probabilities there. A word of several pieces gets one mask per piece and is scored as a pseudo-log-likelihood
/// (each piece predicted with the others in place). <see cref="Calibrate"/> divides by the label distribution the
/// template gives content-free inputs ("N/A" and the empty text; Zhao et al. 2021, contextual calibration, whose third input, the mask itself, would put a second mask in the pattern).
/// </summary>
public sealed class PromptClassifier
{
    static readonly string[] ContentFree = ["N/A", ""];

    readonly MaskedLanguageModel _mlm;
    readonly PromptTemplate _template;
    readonly List<(string Label, string Word, int[] Ids)> _words = [];
    double[]? _calibration;

    /// <param name="template">Holds {text} (and optionally {text_pair}) and exactly one [MASK] (or the model's own mask token).</param>
    public PromptClassifier(MaskedLanguageModel mlm, string template, Verbalizer verbalizer, string source = "--verbalizer")
    {
        _mlm = mlm;
        _template = PromptTemplate.Parse(template, mlm.Tokenizer.MaskToken);
        Verbalizer = verbalizer;
        foreach (var label in verbalizer.Labels)
            foreach (var word in verbalizer.Words[label])
                _words.Add((label, word, WordIds(mlm.Tokenizer, word, _template.MaskAfterSpace, source)));
    }

    /// <summary>The prompt a PET run saved beside its model (prompt.json), or null when the folder has none.</summary>
    public static PromptClassifier? FromFolder(MaskedLanguageModel mlm, string folder)
    {
        var path = Path.Combine(folder, PromptTemplate.FileName);
        if (!File.Exists(path)) return null;
        using var document = JsonDocument.Parse(File.ReadAllText(path));
        var template = document.RootElement.TryGetProperty("template", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString()!
            : throw new UnmaskException($"{path}: no \"template\" string.");
        return new PromptClassifier(mlm, template, Verbalizer.Load(path, "verbalizer"), path);
    }

    public Verbalizer Verbalizer { get; }
    public IReadOnlyList<string> Labels => Verbalizer.Labels;

    /// <summary>The label words of more than one piece, with their pieces: each is scored as a pseudo-log-likelihood.</summary>
    public IReadOnlyList<(string Word, IReadOnlyList<string> Pieces)> SplitWords =>
        [.. _words.Where(w => w.Ids.Length > 1).Select(w => (w.Word, (IReadOnlyList<string>)[.. w.Ids.Select(_mlm.Tokenizer.IdToToken)]))];

    /// <summary>Whether predictions divide by the content-free label distribution.</summary>
    public bool Calibrate { get; init; }

    /// <summary>Each word's pieces as the tokenizer splits it where the mask stands (after a space or not).</summary>
    public static int[] WordIds(ITokenizer tokenizer, string word, bool afterSpace, string source)
    {
        var encoded = tokenizer.Encode(afterSpace ? "a " + word : word, addSpecialTokens: false);
        // "a " carries the space for byte-level tokenizers (RoBERTa's Ġ); the pieces of "a" itself are dropped.
        var lead = afterSpace ? tokenizer.Encode("a", addSpecialTokens: false).InputIds.Length : 0;
        var ids = encoded.InputIds[lead..];
        var pieces = string.Join(" ", encoded.Tokens[lead..]);
        if (ids.Length == 0) throw new UnmaskException($"{source}: the word '{word}' tokenizes to nothing.");
        if (ids.Any(id => id == tokenizer.UnkId))
            throw new UnmaskException($"{source}: the word '{word}' is outside the vocabulary: it splits into [{pieces}], with the unknown token.");
        return ids;
    }

    /// <summary>Predictions in input order.</summary>
    public IReadOnlyList<PromptPrediction> Predict(IReadOnlyList<(string Text, string? Pair)> inputs, CancellationToken cancellationToken = default)
    {
        if (Calibrate && _calibration is null)
        {
            var free = ContentFree.Select(t => RawProbabilities(t, null)).ToList();
            _calibration = [.. Enumerable.Range(0, Labels.Count).Select(k => free.Average(p => p[k]))];
        }
        var predictions = new List<PromptPrediction>(inputs.Count);
        foreach (var (text, pair) in inputs)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (string.IsNullOrWhiteSpace(text)) throw new UnmaskException("an input text is empty.");
            var scores = LabelLogScores(text, pair);
            var probabilities = Probabilities(scores);
            if (_calibration is not null)
            {
                for (int k = 0; k < probabilities.Length; k++) probabilities[k] /= _calibration[k];
                var sum = probabilities.Sum();
                for (int k = 0; k < probabilities.Length; k++) probabilities[k] /= sum;
            }
            int best = Array.IndexOf(probabilities, probabilities.Max());
            predictions.Add(new PromptPrediction(text, Labels[best], probabilities[best],
                Labels.Select((l, k) => (l, k)).ToDictionary(p => p.l, p => probabilities[p.k]),
                Labels.Select((l, k) => (l, k)).ToDictionary(p => p.l, p => scores[p.k])));
        }
        return predictions;
    }

    /// <summary>The labels' probabilities for a filled template, before calibration; any text, the empty one included.</summary>
    internal double[] RawProbabilities(string text, string? pair) => Probabilities(LabelLogScores(text, pair));

    static double[] Probabilities(double[] logScores)
    {
        var max = logScores.Max();
        var exp = logScores.Select(s => Math.Exp(s - max)).ToArray();
        var sum = exp.Sum();
        return [.. exp.Select(e => e / sum)];
    }

    /// <summary>Per label, log Σ over its words of exp(word log-score).</summary>
    double[] LabelLogScores(string text, string? pair)
    {
        var wordScores = WordLogScores(text, pair);
        return [.. Labels.Select(label =>
        {
            var own = _words.Select((w, i) => (w, i)).Where(p => p.w.Label == label).Select(p => wordScores[p.i]).ToList();
            var max = own.Max();
            return max + Math.Log(own.Sum(s => Math.Exp(s - max)));
        })];
    }

    /// <summary>Each word's log-score in the filled template: rows with the word's pieces in place of the mask, one
    /// piece masked per row, all in one batch.</summary>
    double[] WordLogScores(string text, string? pair)
    {
        var tokenizer = _mlm.Tokenizer;
        var maskToken = tokenizer.MaskToken;
        var rows = new List<(int[] Ids, int[] Types, int Position, int Target, int Word)>();
        var encodings = new Dictionary<int, TokenizedText>();
        for (int w = 0; w < _words.Count; w++)
        {
            var ids = _words[w].Ids;
            if (!encodings.TryGetValue(ids.Length, out var encoding))
            {
                encoding = tokenizer.Encode(_template.Fill(text, pair, maskToken, ids.Length), maxLength: _mlm.Model.MaxSequenceLength);
                encodings[ids.Length] = encoding;
            }
            var slots = Enumerable.Range(0, encoding.InputIds.Length).Where(t => encoding.InputIds[t] == tokenizer.MaskId).ToArray();
            if (slots.Length != ids.Length)
                throw new UnmaskException($"the filled template is too long for the model: the mask was cut off ({_mlm.Model.MaxSequenceLength} tokens at most).");
            for (int piece = 0; piece < ids.Length; piece++)
            {
                var row = (int[])encoding.InputIds.Clone();
                for (int other = 0; other < ids.Length; other++)
                    if (other != piece) row[slots[other]] = ids[other];
                rows.Add((row, encoding.TokenTypeIds, slots[piece], ids[piece], w));
            }
        }

        var scores = new double[_words.Count];
        using var mode = inference_mode();
        using var scope = NewDisposeScope();
        int length = rows.Max(r => r.Ids.Length);
        var idData = new long[rows.Count * length];
        var maskData = new long[idData.Length];
        var typeData = new long[idData.Length];
        var positionData = new bool[idData.Length];
        Array.Fill(idData, tokenizer.PadId);
        for (int r = 0; r < rows.Count; r++)
        {
            for (int t = 0; t < rows[r].Ids.Length; t++)
            {
                idData[r * length + t] = rows[r].Ids[t];
                maskData[r * length + t] = 1;
                typeData[r * length + t] = rows[r].Types.Length > t ? rows[r].Types[t] : 0;
            }
            positionData[r * length + rows[r].Position] = true;
        }
        long[] shape = [rows.Count, length];
        var device = _mlm.Model.Device;
        using var output = _mlm.Model.Forward(tensor(idData, shape, device: device), tensor(maskData, shape, device: device),
            tensor(typeData, shape, device: device), positions: tensor(positionData, shape, device: device));
        var logProbs = output.Logits.log_softmax(-1); // [rows, vocab]
        var targets = tensor(rows.Select(r => (long)r.Target).ToArray(), device: device).unsqueeze(1); // [rows, 1]
        var picked = logProbs.gather(1, targets).squeeze(1).to(ScalarType.Float64).cpu().data<double>().ToArray(); // [rows]
        for (int r = 0; r < rows.Count; r++) scores[rows[r].Word] += picked[r];
        return scores;
    }
}
