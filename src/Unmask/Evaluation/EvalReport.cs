using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using Unmask.Checkpoints;

namespace Unmask.Evaluation;

/// <summary>Writes an evaluation result as an indented JSON report, atomically (a reader never sees half a file).</summary>
public static class EvalReport
{
    public static JsonSerializerOptions JsonOptions { get; } = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.KebabCaseLower) },
    };

    static readonly JsonSerializerOptions LineOptions = new(JsonOptions) { WriteIndented = false };

    public static string ToJson<T>(T result) => JsonSerializer.Serialize(result, JsonOptions);

    /// <summary>The same JSON on one line, for JSON Lines output.</summary>
    public static string ToJsonLine<T>(T result) => JsonSerializer.Serialize(result, LineOptions);

    public static void Write<T>(string path, T result)
    {
        try
        {
            AtomicFile.WriteAllText(path, ToJson(result) + "\n");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UnmaskException($"{path}: cannot write the report ({e.Message})", e);
        }
    }
}
