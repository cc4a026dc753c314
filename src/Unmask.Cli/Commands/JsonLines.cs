using System.Text.Json;

namespace Unmask.Cli.Commands;

/// <summary>Writes one compact JSON object per line; floats use the shortest text that parses back to the same value.</summary>
public static class JsonLines
{
    public static void Write(TextWriter output, Action<Utf8JsonWriter> body) => WriteValue(output, w =>
    {
        w.WriteStartObject();
        body(w);
        w.WriteEndObject();
    });

    /// <summary>One line holding the single JSON value <paramref name="value"/> writes.</summary>
    public static void WriteValue(TextWriter output, Action<Utf8JsonWriter> value) => output.WriteLine(Line(value));

    public static string Line(Action<Utf8JsonWriter> value) => Serving.ResultJson.Text(value);

    public static void WriteStrings(this Utf8JsonWriter w, string name, IEnumerable<string> values)
    {
        w.WriteStartArray(name);
        foreach (var v in values) w.WriteStringValue(v);
        w.WriteEndArray();
    }

    public static void WriteInts(this Utf8JsonWriter w, string name, IEnumerable<int> values)
    {
        w.WriteStartArray(name);
        foreach (var v in values) w.WriteNumberValue(v);
        w.WriteEndArray();
    }
}
