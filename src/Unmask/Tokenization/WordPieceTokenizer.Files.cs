using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Unmask.Tokenization;

public sealed partial class WordPieceTokenizer
{
    internal const string VocabFile = "vocab.txt";
    internal const string TokenizerJsonFile = "tokenizer.json";
    internal const string ConfigFile = "tokenizer_config.json";
    internal const string SpecialTokensMapFile = "special_tokens_map.json";
    internal const string AddedTokensFile = "added_tokens.json";

    /// <summary>
    /// Loads a BERT WordPiece tokenizer from a Hugging Face folder the way the slow BertTokenizer does: vocab.txt,
    /// with flags and special tokens from tokenizer_config.json and special_tokens_map.json where present. A
    /// tokenizer.json beside it is left to <see cref="TokenizerJson"/>.
    /// </summary>
    public static WordPieceTokenizer Load(string directory)
    {
        ArgumentNullException.ThrowIfNull(directory);
        if (!Directory.Exists(directory))
            throw new UnmaskException($"Tokenizer folder '{directory}' does not exist.");
        var config = HfTokenizerConfig.Read(directory);
        var tokenizer = LoadVocabTxt(directory, Path.Combine(directory, VocabFile), config);
        tokenizer.TokenizerClass = config.TokenizerClass ?? tokenizer.TokenizerClass;
        tokenizer.writesTokenizerJson = File.Exists(Path.Combine(directory, TokenizerJsonFile));
        tokenizer.ReturnsTokenTypeIds = config.ReturnsTokenTypeIds();
        tokenizer.PaddingSide = config.PaddingSide switch
        {
            null or "right" => PaddingSide.Right,
            "left" => PaddingSide.Left,
            var other => throw new UnmaskException($"{Path.Combine(directory, ConfigFile)}: padding_side '{other}' is not supported (left, right)."),
        };
        return tokenizer;
    }

    static WordPieceTokenizer LoadVocabTxt(string directory, string path, HfTokenizerConfig config)
    {
        if (!File.Exists(path)) throw new UnmaskException($"Vocabulary file '{path}' does not exist.");
        var lines = new List<string>();
        try
        {
            // Like Python's open(encoding="utf-8"): strict UTF-8, a byte order mark is kept as a character.
            using var reader = new StreamReader(path, new UTF8Encoding(false, true), detectEncodingFromByteOrderMarks: false);
            while (reader.ReadLine() is { } line) lines.Add(line);
        }
        catch (DecoderFallbackException e)
        {
            throw new UnmaskException($"'{path}' is not valid UTF-8 (line {lines.Count + 1}).", e);
        }
        var specials = config.SpecialTokens();
        var normalization = new BertNormalizationOptions(
            config.LowerCase ?? true, config.StripAccents, config.TokenizeChineseChars ?? true);
        var problem = CheckVocabulary(lines, specials);
        if (problem != null) throw new UnmaskException($"{path}: {problem}");
        var tokenizer = new WordPieceTokenizer(lines.ToArray(), normalization, specials, config.ModelMaxLength,
            config.CleanUp ?? true);
        tokenizer.CheckAddedTokensFile(Path.Combine(directory, AddedTokensFile));
        return tokenizer;
    }

    // HF writes the special tokens missing from vocab.txt to added_tokens.json; any other added token would change
    // the tokenization in ways this class does not implement.
    void CheckAddedTokensFile(string path)
    {
        if (!File.Exists(path)) return;
        using var doc = HfTokenizerConfig.ParseJson(path);
        if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new UnmaskException($"{path}: expected a JSON object.");
        foreach (var entry in doc.RootElement.EnumerateObject())
        {
            if (!addedIds.TryGetValue(entry.Name, out var expected))
                throw new UnmaskException(
                    $"{path}: added token '{entry.Name}' is not a special token missing from the vocabulary; other added tokens are not supported.");
            if (entry.Value.ValueKind != JsonValueKind.Number || !entry.Value.TryGetInt32(out var id) || id != expected)
                throw new UnmaskException($"{path}: added token '{entry.Name}' has id {entry.Value}, expected {expected}.");
        }
    }

    static string? CheckVocabulary(IReadOnlyList<string> vocab, BertSpecialTokens specials)
    {
        if (vocab.Count == 0) return "the vocabulary is empty.";
        for (int i = 0; i < vocab.Count; i++)
        {
            if (vocab[i] == null) return $"vocabulary entry {i} is null.";
            if (vocab[i].AsSpan().IndexOfAny('\n', '\r') >= 0) return $"vocabulary entry {i} contains a line break.";
        }
        foreach (var token in specials.All())
            if (string.IsNullOrEmpty(token)) return "a special token is empty.";
        if (!vocab.Contains(specials.Unk)) return $"the unknown token '{specials.Unk}' is not in the vocabulary.";
        return null;
    }

    /// <summary>
    /// Writes vocab.txt, tokenizer_config.json and special_tokens_map.json (and added_tokens.json when a special token
    /// is not in the vocabulary), each file atomically; also tokenizer.json, except for a tokenizer loaded from a folder
    /// that had none (transformers' slow tokenizer writes none, and a saved folder keeps the files it was loaded from).
    /// </summary>
    public void Save(string directory) => Save(directory, writesTokenizerJson);

    /// <summary>As <see cref="Save(string)"/>, choosing whether tokenizer.json (the fast tokenizer's file) is written.</summary>
    public void Save(string directory, bool writeTokenizerJson)
    {
        ArgumentNullException.ThrowIfNull(directory);
        Directory.CreateDirectory(directory);
        var vocabText = new StringBuilder();
        foreach (var token in vocab) vocabText.Append(token).Append('\n');
        WriteAtomically(Path.Combine(directory, VocabFile), Encoding.UTF8.GetBytes(vocabText.ToString()));
        WriteAtomically(Path.Combine(directory, ConfigFile), Json(WriteConfig));
        WriteAtomically(Path.Combine(directory, SpecialTokensMapFile), Json(WriteSpecialTokensMap));
        // A stale tokenizer.json would be read before vocab.txt, so one this tokenizer does not write is removed.
        var jsonPath = Path.Combine(directory, TokenizerJsonFile);
        if (writeTokenizerJson) WriteAtomically(jsonPath, Json(WriteTokenizerJson));
        else if (File.Exists(jsonPath)) File.Delete(jsonPath);
        var addedPath = Path.Combine(directory, AddedTokensFile);
        if (addedIds.Count > 0)
        {
            WriteAtomically(addedPath, Json(w =>
            {
                w.WriteStartObject();
                foreach (var (token, id) in addedIds.OrderBy(a => a.Value)) w.WriteNumber(token, id);
                w.WriteEndObject();
            }));
        }
        else if (File.Exists(addedPath)) File.Delete(addedPath);
    }

    void WriteConfig(Utf8JsonWriter w)
    {
        // Keys sorted, as transformers writes them.
        w.WriteStartObject();
        WriteAdditionalSpecialTokens(w);
        w.WriteBoolean("clean_up_tokenization_spaces", CleanUpTokenizationSpaces);
        w.WriteString("cls_token", SpecialTokens.Cls);
        w.WriteBoolean("do_basic_tokenize", true);
        w.WriteBoolean("do_lower_case", Normalization.LowerCase);
        w.WriteString("mask_token", SpecialTokens.Mask);
        if (ModelMaxLength is int max) w.WriteNumber("model_max_length", max);
        w.WriteNull("never_split");
        w.WriteString("pad_token", SpecialTokens.Pad);
        if (PaddingSide == PaddingSide.Left) w.WriteString("padding_side", "left");
        w.WriteString("sep_token", SpecialTokens.Sep);
        WriteNullableBool(w, "strip_accents", Normalization.StripAccents);
        w.WriteBoolean("tokenize_chinese_chars", Normalization.TokenizeChineseChars);
        w.WriteString("tokenizer_class", TokenizerClass);
        w.WriteString("unk_token", SpecialTokens.Unk);
        w.WriteEndObject();
    }

    void WriteSpecialTokensMap(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        WriteAdditionalSpecialTokens(w);
        w.WriteString("cls_token", SpecialTokens.Cls);
        w.WriteString("mask_token", SpecialTokens.Mask);
        w.WriteString("pad_token", SpecialTokens.Pad);
        w.WriteString("sep_token", SpecialTokens.Sep);
        w.WriteString("unk_token", SpecialTokens.Unk);
        w.WriteEndObject();
    }

    void WriteAdditionalSpecialTokens(Utf8JsonWriter w)
    {
        if (SpecialTokens.Additional is not { Count: > 0 } additional) return;
        w.WriteStartArray("additional_special_tokens");
        foreach (var token in additional) w.WriteStringValue(token);
        w.WriteEndArray();
    }

    void WriteTokenizerJson(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteString("version", "1.0");
        w.WriteNull("truncation");
        w.WriteNull("padding");
        w.WriteStartArray("added_tokens");
        foreach (var token in SpecialTokens.All().OrderBy(t => Id(t)))
        {
            w.WriteStartObject();
            w.WriteNumber("id", Id(token));
            w.WriteString("content", token);
            w.WriteBoolean("single_word", false);
            w.WriteBoolean("lstrip", false);
            w.WriteBoolean("rstrip", false);
            w.WriteBoolean("normalized", false);
            w.WriteBoolean("special", true);
            w.WriteEndObject();
        }
        w.WriteEndArray();

        w.WriteStartObject("normalizer");
        w.WriteString("type", "BertNormalizer");
        w.WriteBoolean("clean_text", true);
        w.WriteBoolean("handle_chinese_chars", Normalization.TokenizeChineseChars);
        WriteNullableBool(w, "strip_accents", Normalization.StripAccents);
        w.WriteBoolean("lowercase", Normalization.LowerCase);
        w.WriteEndObject();

        w.WriteStartObject("pre_tokenizer");
        w.WriteString("type", "BertPreTokenizer");
        w.WriteEndObject();

        w.WriteStartObject("post_processor");
        w.WriteString("type", "TemplateProcessing");
        w.WriteStartArray("single");
        WriteTemplatePiece(w, "SpecialToken", SpecialTokens.Cls, 0);
        WriteTemplatePiece(w, "Sequence", "A", 0);
        WriteTemplatePiece(w, "SpecialToken", SpecialTokens.Sep, 0);
        w.WriteEndArray();
        w.WriteStartArray("pair");
        WriteTemplatePiece(w, "SpecialToken", SpecialTokens.Cls, 0);
        WriteTemplatePiece(w, "Sequence", "A", 0);
        WriteTemplatePiece(w, "SpecialToken", SpecialTokens.Sep, 0);
        WriteTemplatePiece(w, "Sequence", "B", 1);
        WriteTemplatePiece(w, "SpecialToken", SpecialTokens.Sep, 1);
        w.WriteEndArray();
        w.WriteStartObject("special_tokens");
        foreach (var token in new[] { SpecialTokens.Cls, SpecialTokens.Sep }.Distinct(StringComparer.Ordinal))
        {
            w.WriteStartObject(token);
            w.WriteString("id", token);
            w.WriteStartArray("ids");
            w.WriteNumberValue(Id(token));
            w.WriteEndArray();
            w.WriteStartArray("tokens");
            w.WriteStringValue(token);
            w.WriteEndArray();
            w.WriteEndObject();
        }
        w.WriteEndObject();
        w.WriteEndObject();

        w.WriteStartObject("decoder");
        w.WriteString("type", "WordPiece");
        w.WriteString("prefix", ContinuationPrefix);
        w.WriteBoolean("cleanup", CleanUpTokenizationSpaces);
        w.WriteEndObject();

        w.WriteStartObject("model");
        w.WriteString("type", "WordPiece");
        w.WriteString("unk_token", SpecialTokens.Unk);
        w.WriteString("continuing_subword_prefix", ContinuationPrefix);
        w.WriteNumber("max_input_chars_per_word", MaxInputCharsPerWord);
        w.WriteStartObject("vocab");
        for (int id = 0; id < vocab.Length; id++)
        {
            // A JSON object holds each token once: the id HF's vocabulary keeps for it.
            if (Id(vocab[id]) == id) w.WriteNumber(vocab[id], id);
        }
        w.WriteEndObject();
        w.WriteEndObject();
        w.WriteEndObject();
    }

    static void WriteTemplatePiece(Utf8JsonWriter w, string kind, string id, int typeId)
    {
        w.WriteStartObject();
        w.WriteStartObject(kind);
        w.WriteString("id", id);
        w.WriteNumber("type_id", typeId);
        w.WriteEndObject();
        w.WriteEndObject();
    }

    static void WriteNullableBool(Utf8JsonWriter w, string name, bool? value)
    {
        if (value is bool b) w.WriteBoolean(name, b);
        else w.WriteNull(name);
    }

    static byte[] Json(Action<Utf8JsonWriter> write)
    {
        using var stream = new MemoryStream();
        using (var writer = new Utf8JsonWriter(stream,
            new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            write(writer);
        }
        stream.WriteByte((byte)'\n');
        return stream.ToArray();
    }

    static void WriteAtomically(string path, byte[] content) => AtomicFile.WriteAllBytes(path, content);
}
