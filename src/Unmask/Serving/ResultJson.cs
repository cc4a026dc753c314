using System.Text.Json;
using Unmask.Evaluation;
using Unmask.Generation;
using Unmask.Inference;

namespace Unmask.Serving;

/// <summary>
/// The JSON object of each result record, written once for both skins: a line of the CLI's <c>--json</c> output and an
/// element of the server's response arrays are the same object. Floats are written at their shortest round-trip text.
/// </summary>
public static class ResultJson
{
    /// <summary>Non-ASCII text stays as it is; numbers at their shortest round-trip text.</summary>
    static readonly JsonWriterOptions Options = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>The compact JSON text of the one value <paramref name="write"/> writes.</summary>
    public static string Text(Action<Utf8JsonWriter> write)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, Options)) write(writer);
        return System.Text.Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
    }

    public static void Fill(Utf8JsonWriter w, FillResult r)
    {
        w.WriteStartObject();
        w.WriteString("text", r.Text);
        w.WriteStartArray("masks");
        foreach (var m in r.Masks)
        {
            w.WriteStartObject();
            w.WriteNumber("position", m.Position);
            w.WriteStartArray("candidates");
            foreach (var c in m.Candidates)
            {
                w.WriteStartObject();
                w.WriteString("token", c.Token);
                w.WriteNumber("id", c.Id);
                w.WriteNumber("probability", c.Probability);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }

    public static void Score(Utf8JsonWriter w, PllResult r, bool perToken)
    {
        w.WriteStartObject();
        w.WriteString("text", r.Text);
        w.WriteNumber("pll", r.Pll);
        w.WriteNumber("num_scored", r.NumScored);
        w.WriteNumber("pll_mean", r.PllMean);
        if (perToken)
        {
            w.WriteStartArray("tokens");
            foreach (var t in r.Tokens)
            {
                w.WriteStartObject();
                w.WriteNumber("position", t.Position);
                w.WriteString("token", t.Token);
                w.WriteNumber("id", t.Id);
                w.WriteNumber("log_prob", t.LogProb);
                w.WriteEndObject();
            }
            w.WriteEndArray();
        }
        w.WriteEndObject();
    }

    public static void Generated(Utf8JsonWriter w, GeneratedText r)
    {
        w.WriteStartObject();
        w.WriteString("text", r.Text);
        w.WriteString("output", r.Output);
        Array(w, "tokens", r.Tokens, w.WriteStringValue);
        Array(w, "ids", r.Ids, w.WriteNumberValue);
        Array(w, "generated_positions", r.GeneratedPositions, w.WriteNumberValue);
        w.WriteNumber("nfe", r.ForwardPasses);
        w.WriteNumber("seconds", Math.Round(r.Seconds, 4));
        if (r.Steps is not null) Array(w, "steps", r.Steps, step => Step(w, step));
        w.WriteEndObject();
    }

    public static void Step(Utf8JsonWriter w, TraceStep step)
    {
        w.WriteStartObject();
        w.WriteNumber("step", step.Step);
        w.WriteNumber("forward_pass", step.ForwardPass);
        Array(w, "positions", step.Positions, w.WriteNumberValue);
        Array(w, "ids", step.Ids, w.WriteNumberValue);
        Array(w, "remasked", step.Remasked, w.WriteNumberValue);
        w.WriteEndObject();
    }

    public static void Prompt(Utf8JsonWriter w, PromptPrediction p)
    {
        w.WriteStartObject();
        w.WriteString("text", p.Text);
        w.WriteString("label", p.Label);
        w.WriteNumber("score", p.Score);
        Map(w, "scores", p.Probabilities);
        Map(w, "log_scores", p.LogScores);
        w.WriteEndObject();
    }

    /// <summary>A sequence prediction as <c>predict --json</c> prints it: the fields of its problem type, nulls left out.</summary>
    public static void Prediction(Utf8JsonWriter w, TextPrediction p, string problemType)
    {
        w.WriteStartObject();
        w.WriteString("text", p.Text);
        if (p.Pair is not null) w.WriteString("text_pair", p.Pair);
        switch (problemType)
        {
            case "regression":
                if (p.Value is double value) w.WriteNumber("value", value);
                break;
            case "multi_label_classification":
                Array(w, "labels", p.Predicted ?? [], w.WriteStringValue);
                if (p.Scores is not null) Map(w, "scores", p.Scores);
                break;
            default:
                if (p.Label is not null) w.WriteString("label", p.Label);
                if (p.Score is double score) w.WriteNumber("score", score);
                if (p.Scores is not null) Map(w, "scores", p.Scores);
                break;
        }
        Array(w, "logits", p.Logits, w.WriteNumberValue);
        w.WriteEndObject();
    }

    public static void Entities(Utf8JsonWriter w, TokenPrediction p)
    {
        w.WriteStartObject();
        w.WriteString("text", p.Text);
        Array(w, "entities", p.Entities, e =>
        {
            w.WriteStartObject();
            w.WriteString("entity_group", e.EntityGroup);
            w.WriteNumber("score", e.Score);
            w.WriteString("word", e.Word);
            w.WriteNumber("start", e.Start);
            w.WriteNumber("end", e.End);
            w.WriteEndObject();
        });
        Array(w, "tokens", p.Tokens, w.WriteStringValue);
        Array(w, "tags", p.Tags, w.WriteStringValue);
        w.WriteEndObject();
    }

    public static void Embedding(Utf8JsonWriter w, string text, float[] vector)
    {
        w.WriteStartObject();
        w.WriteString("text", text);
        Array(w, "embedding", vector, w.WriteNumberValue);
        w.WriteEndObject();
    }

    public static void Sparse(Utf8JsonWriter w, string text, IReadOnlyList<SparseTerm> terms)
    {
        w.WriteStartObject();
        w.WriteString("text", text);
        Array(w, "sparse", terms, t =>
        {
            w.WriteStartObject();
            w.WriteString("token", t.Token);
            w.WriteNumber("id", t.Id);
            w.WriteNumber("weight", t.Weight);
            w.WriteEndObject();
        });
        w.WriteEndObject();
    }

    public static void Array<T>(Utf8JsonWriter w, string name, IEnumerable<T> values, Action<T> write)
    {
        w.WriteStartArray(name);
        foreach (var value in values) write(value);
        w.WriteEndArray();
    }

    static void Map(Utf8JsonWriter w, string name, IReadOnlyDictionary<string, double> values)
    {
        w.WriteStartObject(name);
        foreach (var (key, value) in values) w.WriteNumber(key, value);
        w.WriteEndObject();
    }
}
