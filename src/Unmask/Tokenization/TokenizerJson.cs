using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Unmask.Tokenization;

/// <summary>
/// Reads tokenizer.json (the Hugging Face tokenizers library's format) into a <see cref="PipelineTokenizer"/> with
/// the fast tokenizer's semantics; special-token roles, model_max_length and padding side come from
/// tokenizer_config.json / special_tokens_map.json, as in transformers.
/// </summary>
public static class TokenizerJson
{
    public const string FileName = "tokenizer.json";

    public static PipelineTokenizer Load(string directory)
    {
        ArgumentNullException.ThrowIfNull(directory);
        var path = Path.Combine(directory, FileName);
        if (!File.Exists(path)) throw new UnmaskException($"Tokenizer file '{path}' does not exist.");
        var files = new Dictionary<string, byte[]>();
        foreach (var name in new[] { FileName, WordPieceTokenizer.ConfigFile, WordPieceTokenizer.SpecialTokensMapFile })
        {
            var p = Path.Combine(directory, name);
            if (File.Exists(p)) files[name] = File.ReadAllBytes(p);
        }
        var config = HfTokenizerConfig.Read(directory);
        using var doc = HfTokenizerConfig.ParseJson(path);
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object) throw new UnmaskException($"{path}: expected a JSON object.");
        var reader = new Reader(path);

        var added = new List<AddedToken>();
        if (root.TryGetProperty("added_tokens", out var addedArray) && addedArray.ValueKind == JsonValueKind.Array)
        {
            foreach (var e in addedArray.EnumerateArray())
            {
                var content = reader.String(e, "content", "added_tokens[].") ?? throw reader.Error("added_tokens[].content", "is missing");
                added.Add(new AddedToken(content, reader.Int(e, "id", "added_tokens[].") ?? throw reader.Error("added_tokens[].id", "is missing"),
                    reader.Bool(e, "special") ?? false, reader.Bool(e, "lstrip") ?? false, reader.Bool(e, "rstrip") ?? false,
                    reader.Bool(e, "single_word") ?? false, reader.Bool(e, "normalized") ?? false));
            }
        }

        var modelElement = reader.Object(root, "model") ?? throw reader.Error("model", "is missing");
        var (model, continuation) = reader.Model(modelElement);
        var normalizer = reader.Normalizer(root.TryGetProperty("normalizer", out var n) ? n : default, "normalizer");
        var preTokenizer = reader.PreTokenizer(root.TryGetProperty("pre_tokenizer", out var pt) ? pt : default, "pre_tokenizer");
        // As the BERT and RoBERTa/GPT-2 fast tokenizer classes do, flags in tokenizer_config.json win over the file's.
        var family = (config.TokenizerClass ?? "").Replace("Fast", "", StringComparison.Ordinal);
        if (family is "BertTokenizer" or "DistilBertTokenizer" or "ElectraTokenizer" && n.ValueKind == JsonValueKind.Object
            && reader.String(n, "type") == "BertNormalizer")
        {
            normalizer = new BertNormalizer(reader.Bool(n, "clean_text") ?? true,
                config.TokenizeChineseChars ?? reader.Bool(n, "handle_chinese_chars") ?? true,
                config.StripAccentsGiven ? config.StripAccents : reader.Bool(n, "strip_accents"),
                config.LowerCase ?? reader.Bool(n, "lowercase") ?? true);
        }
        if (family is "RobertaTokenizer" or "GPT2Tokenizer" && config.AddPrefixSpace is bool prefixSpace
            && pt.ValueKind == JsonValueKind.Object && reader.String(pt, "type") == "ByteLevel")
            preTokenizer = new ByteLevelPreTokenizer(prefixSpace, reader.Bool(pt, "use_regex") ?? true);
        var decoder = reader.Decoder(root.TryGetProperty("decoder", out var d) ? d : default, "decoder");
        continuation ??= reader.WordStartMarker(root.TryGetProperty("pre_tokenizer", out var pt2) ? pt2 : default) is char marker
            ? t => !t.StartsWith(marker)
            : _ => false;

        int? IdOf(string token) => added.FirstOrDefault(a => a.Content == token)?.Id ?? model.TokenToId(token);
        var (post, postCls, postSep) = reader.PostProcessor(root.TryGetProperty("post_processor", out var pp) ? pp : default,
            "post_processor", IdOf);

        string? Guess(string role, params string[] candidates) =>
            config.Role(role) ?? candidates.FirstOrDefault(c => c != null && IdOf(c) != null);
        var unk = Guess("unk_token", reader.String(modelElement, "unk_token", "model.") ?? "", "[UNK]", "<unk>");
        var cls = Guess("cls_token", postCls ?? "", "[CLS]", "<s>");
        var sep = Guess("sep_token", postSep ?? "", "[SEP]", "</s>");
        var specialTexts = new[] { unk, cls, sep, Guess("pad_token", "[PAD]", "<pad>"), Guess("mask_token", "[MASK]", "<mask>"),
            config.Role("bos_token"), config.Role("eos_token") };
        var additional = config.Additional ?? [];
        var allIds = specialTexts.Concat(additional).Where(t => t != null).Select(t => IdOf(t!)).Where(i => i != null)
            .Select(i => i!.Value).Concat(added.Where(a => a.Special).Select(a => a.Id)).Distinct().ToArray();
        var specials = new SpecialTokenSet(specialTexts[0], specialTexts[1], specialTexts[2], specialTexts[3], specialTexts[4],
            specialTexts[5], specialTexts[6], additional, allIds);

        var configPath = Path.Combine(directory, WordPieceTokenizer.ConfigFile);
        return new PipelineTokenizer(new PipelineSettings
        {
            Normalizer = normalizer,
            PreTokenizer = preTokenizer,
            Model = model,
            PostProcessor = post,
            Decoder = decoder,
            AddedTokens = added,
            Specials = specials,
            ModelMaxLength = config.ModelMaxLength,
            PaddingSide = config.PaddingSide switch
            {
                null or "right" => PaddingSide.Right,
                "left" => PaddingSide.Left,
                var other => throw new UnmaskException($"{configPath}: padding_side '{other}' is not supported (left, right)."),
            },
            CleanUpTokenizationSpaces = config.CleanUp ?? true,
            ReturnsTokenTypeIds = config.ReturnsTokenTypeIds(),
            IsContinuationToken = continuation,
            Fingerprint = PipelineTokenizer.Hash(new[] { "tokenizer-json-v1" }.Concat(files.OrderBy(f => f.Key, StringComparer.Ordinal)
                .Select(f => f.Key + "=" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(f.Value))))),
            Files = files,
        });
    }

    /// <summary>model.type of a tokenizer.json ("(none)" when absent).</summary>
    public static string ReadModelType(string path)
    {
        using var doc = HfTokenizerConfig.ParseJson(path);
        return doc.RootElement.ValueKind == JsonValueKind.Object
            && doc.RootElement.TryGetProperty("model", out var model) && model.ValueKind == JsonValueKind.Object
                ? Reader.ModelType(model) : "(none)";
    }

    sealed class Reader(string path)
    {
        public UnmaskException Error(string field, string problem) => new($"{path}: {field} {problem}.");

        UnmaskException Unsupported(string field, string type, string supported) =>
            new($"{path}: {field}.type '{type}' is not supported (supported: {supported}).");

        public JsonElement? Object(JsonElement parent, string name) =>
            parent.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Object ? v : null;

        public string? String(JsonElement e, string name, string prefix = "")
        {
            if (!e.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return null;
            return v.ValueKind == JsonValueKind.String ? v.GetString() : throw Error(prefix + name, "must be a string");
        }

        public bool? Bool(JsonElement e, string name, string prefix = "")
        {
            if (!e.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return null;
            return v.ValueKind switch
            {
                JsonValueKind.True => true,
                JsonValueKind.False => false,
                _ => throw Error(prefix + name, "must be true or false"),
            };
        }

        public int? Int(JsonElement e, string name, string prefix = "")
        {
            if (!e.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return null;
            return v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var i) ? i : throw Error(prefix + name, "must be an integer");
        }

        static string Type(JsonElement e) =>
            e.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString()! : "(none)";

        public static string ModelType(JsonElement model)
        {
            var type = Type(model);
            if (type != "(none)") return type;
            // Old files omit the type: BPE has merges, Unigram a list vocabulary, WordPiece an object one.
            if (model.TryGetProperty("merges", out _)) return "BPE";
            if (model.TryGetProperty("vocab", out var v)) return v.ValueKind == JsonValueKind.Array ? "Unigram" : "WordPiece";
            return type;
        }

        IEnumerable<JsonElement> Array(JsonElement e, string name, string field)
        {
            if (!e.TryGetProperty(name, out var v) || v.ValueKind != JsonValueKind.Array) throw Error(field + "." + name, "must be a list");
            return v.EnumerateArray();
        }

        Regex Pattern(JsonElement e, string field)
        {
            if (!e.TryGetProperty("pattern", out var p) || p.ValueKind != JsonValueKind.Object) throw Error(field + ".pattern", "is missing");
            if (p.TryGetProperty("String", out var s) && s.ValueKind == JsonValueKind.String) return new Regex(Regex.Escape(s.GetString()!));
            if (p.TryGetProperty("Regex", out var r) && r.ValueKind == JsonValueKind.String)
            {
                try
                {
                    return new Regex(r.GetString()!);
                }
                catch (ArgumentException ex)
                {
                    throw Error(field + ".pattern.Regex", $"is not a regex .NET accepts ({ex.Message})");
                }
            }
            throw Error(field + ".pattern", "must hold a String or a Regex");
        }

        public (ITokenModel Model, Func<string, bool>? Continuation) Model(JsonElement m)
        {
            var type = ModelType(m);
            switch (type)
            {
                case "BPE":
                {
                    if (m.TryGetProperty("dropout", out var dropout) && dropout.ValueKind == JsonValueKind.Number && dropout.GetDouble() > 0)
                        throw Error("model.dropout", "is not supported (BPE dropout is for training)");
                    var vocab = ByteLevelBpeTokenizer.ReadVocabObject(Object(m, "vocab") ?? throw Error("model.vocab", "is missing"), path, "model.vocab ");
                    var merges = new List<(string, string)>();
                    foreach (var merge in Array(m, "merges", "model"))
                    {
                        if (merge.ValueKind == JsonValueKind.String)
                        {
                            var s = merge.GetString()!;
                            int space = s.IndexOf(' ', 1);
                            if (space < 0) throw Error("model.merges", $"entry '{s}' is not two symbols separated by a space");
                            merges.Add((s[..space], s[(space + 1)..]));
                        }
                        else if (merge.ValueKind == JsonValueKind.Array && merge.GetArrayLength() == 2)
                            merges.Add((merge[0].GetString() ?? "", merge[1].GetString() ?? ""));
                        else throw Error("model.merges", "entries must be \"a b\" strings or [a, b] pairs");
                    }
                    var prefix = String(m, "continuing_subword_prefix", "model.");
                    var model = new BpeModel(vocab, merges, String(m, "unk_token", "model."), prefix,
                        String(m, "end_of_word_suffix", "model."), Bool(m, "fuse_unk", "model.") ?? false,
                        Bool(m, "byte_fallback", "model.") ?? false, Bool(m, "ignore_merges", "model.") ?? false);
                    return (model, string.IsNullOrEmpty(prefix) ? null : t => t.StartsWith(prefix, StringComparison.Ordinal));
                }
                case "WordPiece":
                {
                    var vocab = ByteLevelBpeTokenizer.ReadVocabObject(Object(m, "vocab") ?? throw Error("model.vocab", "is missing"), path, "model.vocab ");
                    var prefix = String(m, "continuing_subword_prefix", "model.") ?? "##";
                    var model = new WordPieceModel(vocab, String(m, "unk_token", "model.") ?? "[UNK]", prefix,
                        Int(m, "max_input_chars_per_word", "model.") ?? 100);
                    return (model, t => t.Length > prefix.Length && t.StartsWith(prefix, StringComparison.Ordinal));
                }
                case "Unigram":
                {
                    var pieces = new List<(string, double)>();
                    foreach (var entry in Array(m, "vocab", "model"))
                    {
                        if (entry.ValueKind != JsonValueKind.Array || entry.GetArrayLength() != 2
                            || entry[0].ValueKind != JsonValueKind.String || entry[1].ValueKind != JsonValueKind.Number)
                            throw Error("model.vocab", "entries must be [piece, score]");
                        pieces.Add((entry[0].GetString()!, entry[1].GetDouble()));
                    }
                    return (new UnigramModel(pieces, Int(m, "unk_id", "model."), Bool(m, "byte_fallback", "model.") ?? false), null);
                }
                default:
                    throw Unsupported("model", type, "BPE, WordPiece, Unigram");
            }
        }

        public INormalizer? Normalizer(JsonElement e, string field)
        {
            if (e.ValueKind is JsonValueKind.Undefined or JsonValueKind.Null) return null;
            var type = Type(e);
            return type switch
            {
                "BertNormalizer" => new BertNormalizer(Bool(e, "clean_text") ?? true, Bool(e, "handle_chinese_chars") ?? true,
                    Bool(e, "strip_accents"), Bool(e, "lowercase") ?? true),
                "NFC" => new UnicodeNormalizer(NormalizationForm.FormC),
                "NFD" => new UnicodeNormalizer(NormalizationForm.FormD),
                "NFKC" => new UnicodeNormalizer(NormalizationForm.FormKC),
                "NFKD" => new UnicodeNormalizer(NormalizationForm.FormKD),
                "Lowercase" => LowercaseNormalizer.Instance,
                "StripAccents" => StripAccentsNormalizer.Instance,
                "Replace" => new ReplaceNormalizer(Pattern(e, field), String(e, "content") ?? ""),
                "Prepend" => new PrependNormalizer(String(e, "prepend") ?? ""),
                "Strip" => new StripNormalizer(Bool(e, "strip_left") ?? true, Bool(e, "strip_right") ?? true),
                "Precompiled" => PrecompiledNormalizer.FromBase64(String(e, "precompiled_charsmap") ?? "", $"{path}: {field}.precompiled_charsmap"),
                "Sequence" => new NormalizerSequence(Array(e, "normalizers", field)
                    .Select((x, i) => Normalizer(x, $"{field}.normalizers[{i}]")).OfType<INormalizer>().ToArray()),
                _ => throw Unsupported(field, type,
                    "BertNormalizer, NFC, NFD, NFKC, NFKD, Lowercase, StripAccents, Replace, Prepend, Strip, Precompiled, Sequence"),
            };
        }

        public IPreTokenizer? PreTokenizer(JsonElement e, string field)
        {
            if (e.ValueKind is JsonValueKind.Undefined or JsonValueKind.Null) return null;
            var type = Type(e);
            return type switch
            {
                "BertPreTokenizer" => new BertPreTokenizer(),
                "ByteLevel" => new ByteLevelPreTokenizer(Bool(e, "add_prefix_space") ?? true, Bool(e, "use_regex") ?? true),
                "Metaspace" => new MetaspacePreTokenizer(Replacement(e, field), PrependScheme(e), Bool(e, "split") ?? true),
                "Whitespace" => new WhitespacePreTokenizer(),
                "WhitespaceSplit" => new CharDelimiterPreTokenizer(Splitting.IsWhitespace),
                "CharDelimiterSplit" => new CharDelimiterPreTokenizer(Delimiter(e, field)),
                "Split" => new PatternPreTokenizer(Pattern(e, field), Splitting.ParseBehavior(String(e, "behavior"), path),
                    Bool(e, "invert") ?? false),
                "Punctuation" => new CharClassPreTokenizer(Splitting.IsPunctuation,
                    Splitting.ParseBehavior(String(e, "behavior") ?? "Isolated", path)),
                "Digits" => new CharClassPreTokenizer(Splitting.IsNumeric,
                    Bool(e, "individual_digits") == true ? SplitBehavior.Isolated : SplitBehavior.Contiguous),
                "Sequence" => new PreTokenizerSequence(Array(e, "pretokenizers", field)
                    .Select((x, i) => PreTokenizer(x, $"{field}.pretokenizers[{i}]")).OfType<IPreTokenizer>().ToArray()),
                _ => throw Unsupported(field, type,
                    "BertPreTokenizer, ByteLevel, Metaspace, Whitespace, WhitespaceSplit, CharDelimiterSplit, Split, Punctuation, Digits, Sequence"),
            };
        }

        Func<int, bool> Delimiter(JsonElement e, string field)
        {
            var d = String(e, "delimiter") ?? throw Error(field + ".delimiter", "is missing");
            int cp = PythonUnicode.CodePointAt(d, 0, out _);
            return c => c == cp;
        }

        char Replacement(JsonElement e, string field)
        {
            var r = String(e, "replacement") ?? "\u2581";
            return r.Length == 1 ? r[0] : throw Error(field + ".replacement", "must be one character");
        }

        // Older files have add_prefix_space; newer ones prepend_scheme ("always", "first", "never").
        string PrependScheme(JsonElement e) =>
            String(e, "prepend_scheme") ?? ((Bool(e, "add_prefix_space") ?? true) ? "always" : "never");

        /// <summary>The character that marks a word start in tokens: 'Ġ' after ByteLevel, the Metaspace replacement.</summary>
        public char? WordStartMarker(JsonElement e)
        {
            if (e.ValueKind != JsonValueKind.Object) return null;
            switch (Type(e))
            {
                case "ByteLevel": return ByteLevel.ByteToChar[' '];
                case "Metaspace": return (String(e, "replacement") ?? "\u2581")[0];
                case "Sequence":
                    if (e.TryGetProperty("pretokenizers", out var list) && list.ValueKind == JsonValueKind.Array)
                        foreach (var p in list.EnumerateArray())
                            if (WordStartMarker(p) is char c) return c;
                    return null;
                default: return null;
            }
        }

        public (PostProcessor, string? Cls, string? Sep) PostProcessor(JsonElement e, string field, Func<string, int?> idOf)
        {
            if (e.ValueKind is JsonValueKind.Undefined or JsonValueKind.Null) return (Tokenization.PostProcessor.None, null, null);
            var type = Type(e);
            switch (type)
            {
                case "BertProcessing":
                case "RobertaProcessing":
                {
                    var (sep, sepId) = TokenAndId(e, "sep", field);
                    var (cls, clsId) = TokenAndId(e, "cls", field);
                    var post = type == "BertProcessing"
                        ? Tokenization.PostProcessor.Bert(cls, clsId, sep, sepId)
                        : Tokenization.PostProcessor.Roberta(cls, clsId, sep, sepId)
                            .WithTrimming(Bool(e, "trim_offsets") ?? true, Bool(e, "add_prefix_space") ?? true);
                    return (post, cls, sep);
                }
                case "TemplateProcessing":
                {
                    var specials = new Dictionary<string, (int, string)[]>(StringComparer.Ordinal);
                    if (e.TryGetProperty("special_tokens", out var st) && st.ValueKind == JsonValueKind.Object)
                    {
                        foreach (var s in st.EnumerateObject())
                        {
                            var ids = Array(s.Value, "ids", $"{field}.special_tokens.{s.Name}").Select(x => x.GetInt32()).ToArray();
                            var tokens = Array(s.Value, "tokens", $"{field}.special_tokens.{s.Name}").Select(x => x.GetString() ?? "").ToArray();
                            if (ids.Length != tokens.Length) throw Error($"{field}.special_tokens.{s.Name}", "has as many ids as tokens");
                            specials[s.Name] = ids.Zip(tokens).ToArray();
                        }
                    }
                    var single = Template(e, "single", field, specials, idOf);
                    var pair = Template(e, "pair", field, specials, idOf);
                    var named = single.Where(p => p.SpecialToken != null).Select(p => p.SpecialToken!).ToArray();
                    return (new PostProcessor(single, pair, specials), named.FirstOrDefault(), named.Length > 1 ? named[^1] : null);
                }
                case "ByteLevel":
                    return (Tokenization.PostProcessor.None.WithTrimming(Bool(e, "trim_offsets") ?? true, Bool(e, "add_prefix_space") ?? true),
                        null, null);
                case "Sequence":
                {
                    var result = (Tokenization.PostProcessor.None, (string?)null, (string?)null);
                    bool trim = false, prefix = false, adds = false;
                    int i = 0;
                    foreach (var p in Array(e, "processors", field))
                    {
                        var r = PostProcessor(p, $"{field}.processors[{i++}]", idOf);
                        trim |= r.Item1.TrimOffsets;
                        prefix |= r.Item1.AddedPrefixSpace;
                        if (r.Item1.AddedTokens(true) > 0)
                        {
                            if (adds) throw Error(field, "has more than one processor that adds special tokens");
                            adds = true;
                            result = r;
                        }
                    }
                    return (result.Item1.WithTrimming(trim, prefix), result.Item2, result.Item3);
                }
                default:
                    throw Unsupported(field, type, "BertProcessing, RobertaProcessing, TemplateProcessing, ByteLevel, Sequence");
            }
        }

        (string, int) TokenAndId(JsonElement e, string name, string field)
        {
            if (!e.TryGetProperty(name, out var v) || v.ValueKind != JsonValueKind.Array || v.GetArrayLength() != 2
                || v[0].ValueKind != JsonValueKind.String || !v[1].TryGetInt32(out var id))
                throw Error($"{field}.{name}", "must be [token, id]");
            return (v[0].GetString()!, id);
        }

        List<TemplatePiece> Template(JsonElement e, string name, string field, Dictionary<string, (int, string)[]> specials,
            Func<string, int?> idOf)
        {
            var pieces = new List<TemplatePiece>();
            foreach (var item in Array(e, name, field))
            {
                if (item.TryGetProperty("SpecialToken", out var s))
                {
                    var id = String(s, "id") ?? throw Error($"{field}.{name}[].SpecialToken.id", "is missing");
                    if (!specials.ContainsKey(id))
                        specials[id] = [(idOf(id) ?? throw Error($"{field}.{name}", $"uses special token '{id}' that has no id"), id)];
                    pieces.Add(new TemplatePiece(id, 0, Int(s, "type_id") ?? 0));
                }
                else if (item.TryGetProperty("Sequence", out var q))
                {
                    var id = String(q, "id") ?? "A";
                    pieces.Add(new TemplatePiece(null, id == "B" ? 1 : id == "A" ? 0 : throw Error($"{field}.{name}", $"names sequence '{id}' (A or B)"),
                        Int(q, "type_id") ?? 0));
                }
                else throw Error($"{field}.{name}", "entries must be SpecialToken or Sequence");
            }
            return pieces;
        }

        public IDecoder? Decoder(JsonElement e, string field)
        {
            if (e.ValueKind is JsonValueKind.Undefined or JsonValueKind.Null) return null;
            var type = Type(e);
            return type switch
            {
                "WordPiece" => new WordPieceDecoder(String(e, "prefix") ?? "##", Bool(e, "cleanup") ?? true),
                "ByteLevel" => ByteLevelDecoder.Instance,
                "Metaspace" => new MetaspaceDecoder(Replacement(e, field), PrependScheme(e) != "never"),
                "BPEDecoder" => new BpeSuffixDecoder(String(e, "suffix") ?? "</w>"),
                "Replace" => new ReplaceDecoder(Pattern(e, field), String(e, "content") ?? ""),
                "Strip" => new StripDecoder((String(e, "content") ?? " ") is { Length: 1 } c ? c[0] : throw Error(field + ".content", "must be one character"),
                    Int(e, "start") ?? 0, Int(e, "stop") ?? 0),
                "Fuse" => new FuseDecoder(),
                "ByteFallback" => new ByteFallbackDecoder(),
                "Sequence" => new DecoderSequence(Array(e, "decoders", field)
                    .Select((x, i) => Decoder(x, $"{field}.decoders[{i}]")).OfType<IDecoder>().ToArray()),
                _ => throw Unsupported(field, type, "WordPiece, ByteLevel, Metaspace, BPEDecoder, Replace, Strip, Fuse, ByteFallback, Sequence"),
            };
        }
    }
}
