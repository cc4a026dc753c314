using System.Text.Json;

namespace Unmask.Serving;

/// <summary>
/// A request's JSON object, read field by field. Every field must be one the route knows: a misspelt option is an
/// error naming it, not a silent default. Errors are <see cref="RequestException"/> (422) naming the field.
/// </summary>
public sealed class RequestBody
{
    readonly JsonElement _root;
    readonly HashSet<string> _known = new(StringComparer.Ordinal) { "model" };

    public RequestBody(JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object) throw new RequestException("the request body must be a JSON object");
        _root = root;
    }

    public string? Model => String("model");

    /// <summary>Fails on any field no reader asked for.</summary>
    public void RejectUnknown()
    {
        foreach (var property in _root.EnumerateObject())
            if (!_known.Contains(property.Name))
                throw new RequestException($"unknown field \"{property.Name}\"; this route takes {string.Join(", ", _known.Order(StringComparer.Ordinal).Select(k => $"\"{k}\""))}");
    }

    JsonElement? Field(string name)
    {
        _known.Add(name);
        return _root.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null ? value : null;
    }

    public bool Has(string name) => Field(name) is not null;

    /// <summary>A string or a non-empty array of strings.</summary>
    public IReadOnlyList<string> Texts(string name)
    {
        var value = Field(name) ?? throw new RequestException($"\"{name}\" is required: a string or an array of strings");
        if (value.ValueKind == JsonValueKind.String) return [value.GetString()!];
        if (value.ValueKind != JsonValueKind.Array) throw new RequestException($"\"{name}\" must be a string or an array of strings");
        var texts = value.EnumerateArray().Select((e, i) => e.ValueKind == JsonValueKind.String ? e.GetString()!
            : throw new RequestException($"\"{name}\"[{i}] must be a string")).ToList();
        return texts.Count > 0 ? texts : throw new RequestException($"\"{name}\" is empty");
    }

    /// <summary>Like <see cref="Texts"/>, but absent, null or "" is no text at all.</summary>
    public IReadOnlyList<string> TextsOrNone(string name) =>
        Field(name) is not { } value || value.ValueKind == JsonValueKind.String && value.GetString()!.Length == 0 ? [] : Texts(name);

    /// <summary>
    /// Texts or text pairs as text-embeddings-inference's /predict reads them: "a" is one text, ["a", "b"] one pair,
    /// and any other array a batch whose items are "a", ["a"] or ["a", "b"].
    /// </summary>
    public (IReadOnlyList<(string Text, string? Pair)> Inputs, bool Batched) Sequences(string name)
    {
        var value = Field(name) ?? throw new RequestException($"\"{name}\" is required");
        if (value.ValueKind == JsonValueKind.String) return ([(value.GetString()!, null)], false);
        if (value.ValueKind != JsonValueKind.Array) throw new RequestException($"\"{name}\" must be a string, a pair [a, b] or an array of them");
        var items = value.EnumerateArray().ToList();
        if (items.Count == 2 && items.All(i => i.ValueKind == JsonValueKind.String)) return ([(items[0].GetString()!, items[1].GetString())], false);
        if (items.Count == 0) throw new RequestException($"\"{name}\" is empty");
        var inputs = items.Select((item, i) => item.ValueKind switch
        {
            JsonValueKind.String => (item.GetString()!, (string?)null),
            JsonValueKind.Array when item.GetArrayLength() is 1 or 2 && item.EnumerateArray().All(e => e.ValueKind == JsonValueKind.String) =>
                (item[0].GetString()!, item.GetArrayLength() == 2 ? item[1].GetString() : null),
            _ => throw new RequestException($"\"{name}\"[{i}] must be a string, [text] or [text, pair]"),
        }).ToList();
        return (inputs, true);
    }

    public string? String(string name)
    {
        var value = Field(name);
        if (value is null) return null;
        return value.Value.ValueKind == JsonValueKind.String ? value.Value.GetString() : throw new RequestException($"\"{name}\" must be a string");
    }

    public bool Bool(string name, bool fallback) => Field(name) is { } value
        ? value.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw new RequestException($"\"{name}\" must be true or false"),
        }
        : fallback;

    public bool? Bool(string name) => Field(name) is null ? null : Bool(name, false);

    public int Int(string name, int fallback) => Int(name) ?? fallback;

    public int? Int(string name) => Field(name) is { } value
        ? value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out var n) ? n : throw new RequestException($"\"{name}\" must be a whole number")
        : null;

    public double Double(string name, double fallback) => Double(name) ?? fallback;

    public double? Double(string name) => Field(name) is { } value
        ? value.ValueKind == JsonValueKind.Number ? value.GetDouble() : throw new RequestException($"\"{name}\" must be a number")
        : null;

    /// <summary>Token ids: one array of ids, or an array of such arrays.</summary>
    public (IReadOnlyList<int[]> Rows, bool Batched) Ids(string name)
    {
        var value = Field(name) ?? throw new RequestException($"\"{name}\" is required: an array of token ids or an array of such arrays");
        if (value.ValueKind != JsonValueKind.Array) throw new RequestException($"\"{name}\" must be an array of token ids");
        int[] Row(JsonElement row, string where) => [.. row.EnumerateArray().Select((e, i) =>
            e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out var id) && id >= 0 ? id : throw new RequestException($"{where}[{i}] must be a token id"))];
        var items = value.EnumerateArray().ToList();
        if (items.Count > 0 && items.All(i => i.ValueKind == JsonValueKind.Array))
            return ([.. items.Select((row, i) => Row(row, $"\"{name}\"[{i}]"))], true);
        return ([Row(value, $"\"{name}\"")], false);
    }

    /// <summary>An object of label → word or list of words.</summary>
    public Inference.Verbalizer Verbalizer(string name)
    {
        var value = Field(name) ?? throw new RequestException($"\"{name}\" is required: an object of label → word or list of words");
        if (value.ValueKind != JsonValueKind.Object) throw new RequestException($"\"{name}\" must be an object of label → word or list of words");
        var labels = new List<string>();
        var words = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        foreach (var entry in value.EnumerateObject())
        {
            IReadOnlyList<string> list = entry.Value.ValueKind switch
            {
                JsonValueKind.String => [entry.Value.GetString()!],
                JsonValueKind.Array when entry.Value.EnumerateArray().All(e => e.ValueKind == JsonValueKind.String) =>
                    [.. entry.Value.EnumerateArray().Select(e => e.GetString()!.Trim()).Where(w => w.Length > 0)],
                _ => throw new RequestException($"\"{name}\".\"{entry.Name}\" must be a word or a list of words"),
            };
            if (list.Count == 0 || list.All(string.IsNullOrWhiteSpace)) throw new RequestException($"\"{name}\".\"{entry.Name}\" has no words");
            if (!words.TryAdd(entry.Name, list)) throw new RequestException($"\"{name}\": label \"{entry.Name}\" is given twice");
            labels.Add(entry.Name);
        }
        return labels.Count >= 2 ? new Inference.Verbalizer(labels, words) : throw new RequestException($"\"{name}\" needs at least two labels");
    }
}
