using System.Text.Json;

namespace Unmask.Tokenization;

/// <summary>Opens the tokenizer of a Hugging Face model folder.</summary>
public static class TokenizerLoader
{
    /// <summary>
    /// A BERT WordPiece tokenizer from vocab.txt (preferred, as the slow tokenizer reads it) or tokenizer.json.
    /// </summary>
    public static ITokenizer Load(string directory)
    {
        ArgumentNullException.ThrowIfNull(directory);
        if (!Directory.Exists(directory))
            throw new UnmaskException($"Tokenizer folder '{directory}' does not exist.");
        if (File.Exists(Path.Combine(directory, WordPieceTokenizer.VocabFile)))
            return WordPieceTokenizer.Load(directory, WordPieceSource.VocabTxt);
        var jsonPath = Path.Combine(directory, WordPieceTokenizer.TokenizerJsonFile);
        if (File.Exists(jsonPath))
        {
            var modelType = ReadModelType(jsonPath);
            if (modelType != "WordPiece")
                throw new UnmaskException($"{jsonPath}: tokenizer model type '{modelType}' is not supported (WordPiece only).");
            return WordPieceTokenizer.Load(directory, WordPieceSource.TokenizerJson);
        }
        throw new UnmaskException(
            $"No supported tokenizer in '{directory}': looked for {WordPieceTokenizer.VocabFile} and {WordPieceTokenizer.TokenizerJsonFile}.");
    }

    static string ReadModelType(string path)
    {
        using var doc = HfTokenizerConfig.ParseJson(path);
        return doc.RootElement.ValueKind == JsonValueKind.Object
            && doc.RootElement.TryGetProperty("model", out var model) && model.ValueKind == JsonValueKind.Object
            && model.TryGetProperty("type", out var type) && type.ValueKind == JsonValueKind.String
                ? type.GetString()!
                : "(none)";
    }
}
