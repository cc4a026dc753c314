namespace Unmask.Tokenization;

/// <summary>
/// transformers' slow SentencePiece tokenizers: <c>XLMRobertaTokenizer</c> (sentencepiece.bpe.model; fairseq ids:
/// &lt;s&gt; 0, &lt;pad&gt; 1, &lt;/s&gt; 2, &lt;unk&gt; 3, piece i at i + 1, &lt;mask&gt; last) and
/// <c>DebertaV2Tokenizer</c> (spm.model; piece ids as they are, BERT's layout with token types). Each text segment
/// between added tokens is normalised and segmented on its own, as <c>sp_model.encode</c> does.
/// </summary>
public static class SentencePieceTokenizer
{
    public static readonly string[] FileNames = ["sentencepiece.bpe.model", "spm.model"];

    public static PipelineTokenizer Load(string directory, string fileName)
    {
        ArgumentNullException.ThrowIfNull(directory);
        var path = Path.Combine(directory, fileName);
        var spm = SentencePieceModel.Read(path);
        var configPath = Path.Combine(directory, WordPieceTokenizer.ConfigFile);
        var config = HfTokenizerConfig.Read(directory);
        var cls = (config.TokenizerClass ?? (fileName == "spm.model" ? "DebertaV2Tokenizer" : "XLMRobertaTokenizer"))
            .Replace("Fast", "", StringComparison.Ordinal);
        if (spm.ModelType is not (1 or 2))
            throw new UnmaskException($"{path}: trainer_spec.model_type {spm.ModelType} is not supported (1 unigram, 2 BPE).");
        int spmUnk = Enumerable.Range(0, spm.Pieces.Count).FirstOrDefault(i => spm.Pieces[i].Type == SentencePieceType.Unknown);
        ITokenModel pieces = spm.ModelType == 1
            ? new UnigramModel(spm.Pieces.Select(p => (p.Piece, (double)p.Score)).ToArray(), spmUnk, spm.ByteFallback,
                i => spm.Pieces[i].Type is SentencePieceType.Control or SentencePieceType.Unknown or SentencePieceType.Unused)
            : new ScoredBpeModel(spm.Pieces, spmUnk, spm.ByteFallback);
        var normalizer = new SentencePieceNormalizer(
            spm.PrecompiledCharsmap == null ? null : PrecompiledNormalizer.FromBytes(spm.PrecompiledCharsmap, $"{path}: normalizer_spec.precompiled_charsmap"),
            spm.AddDummyPrefix, spm.RemoveExtraWhitespaces, spm.EscapeWhitespaces);

        return cls switch
        {
            "XLMRobertaTokenizer" => XlmRoberta(directory, fileName, configPath, pieces, normalizer, spm),
            "DebertaV2Tokenizer" => DebertaV2(directory, fileName, configPath, config, pieces, normalizer),
            _ => throw new UnmaskException(
                $"{configPath}: tokenizer_class '{cls}' with {fileName} is not supported (supported: XLMRobertaTokenizer, DebertaV2Tokenizer)."),
        };
    }

    static PipelineTokenizer XlmRoberta(string directory, string fileName, string configPath, ITokenModel pieces,
        INormalizer normalizer, SentencePieceModel spm)
    {
        var fairseq = new Dictionary<string, int>(StringComparer.Ordinal) { ["<s>"] = 0, ["<pad>"] = 1, ["</s>"] = 2, ["<unk>"] = 3 };
        const int offset = 1;
        fairseq["<mask>"] = spm.Pieces.Count + offset;
        var fairseqTokens = fairseq.ToDictionary(kv => kv.Value, kv => kv.Key);
        var model = new IdMappedModel(pieces, spm.Pieces.Count + offset + 1,
            toId: id => id == 0 || pieces.IdToToken(id) is null ? 3 : id + offset,
            tokenToId: t => fairseq.TryGetValue(t, out var f) ? f : pieces.TokenToId(t) is int s and > 0 ? s + offset : null,
            idToToken: id => fairseqTokens.TryGetValue(id, out var t) ? t : pieces.IdToToken(id - offset));
        var files = SlowTokenizerFiles.Read(directory, model.TokenToId, model.Size,
            new Dictionary<string, string>
            {
                ["unk_token"] = "<unk>", ["bos_token"] = "<s>", ["eos_token"] = "</s>", ["sep_token"] = "</s>",
                ["cls_token"] = "<s>", ["pad_token"] = "<pad>", ["mask_token"] = "<mask>",
            },
            new HashSet<string> { "<mask>" }, [fileName]);
        var s = files.Specials;
        return Build(files, configPath, model, normalizer,
            PostProcessor.Roberta(s.Cls!, model.TokenToId(s.Cls!) ?? 0, s.Sep!, model.TokenToId(s.Sep!) ?? 2),
            run => string.Concat(run).Replace('\u2581', ' ').Trim(), "xlm-roberta-spm-v1");
    }

    static PipelineTokenizer DebertaV2(string directory, string fileName, string configPath, HfTokenizerConfig config,
        ITokenModel pieces, INormalizer normalizer)
    {
        if (config.TokenizerClass != null && File.Exists(configPath))
        {
            using var doc = HfTokenizerConfig.ParseJson(configPath);
            if (doc.RootElement.TryGetProperty("split_by_punct", out var sbp) && sbp.ValueKind == System.Text.Json.JsonValueKind.True)
                throw new UnmaskException($"{configPath}: split_by_punct true is not supported.");
        }
        var files = SlowTokenizerFiles.Read(directory, pieces.TokenToId, pieces.Size,
            new Dictionary<string, string>
            {
                ["unk_token"] = "[UNK]", ["bos_token"] = "[CLS]", ["eos_token"] = "[SEP]", ["sep_token"] = "[SEP]",
                ["cls_token"] = "[CLS]", ["pad_token"] = "[PAD]", ["mask_token"] = "[MASK]",
            },
            new HashSet<string>(), [fileName]);
        var s = files.Specials;
        int Id(string token) => pieces.TokenToId(token) ?? files.AddedTokens.First(a => a.Content == token).Id;
        INormalizer full = files.Config.LowerCase == true
            ? new NormalizerSequence([LowercaseNormalizer.Instance, normalizer])
            : normalizer;
        var specialTexts = new HashSet<string>(files.AddedTokens.Where(a => a.Special).Select(a => a.Content), StringComparer.Ordinal);
        // DeBERTa's SPMTokenizer.decode: special tokens stay as they are, with a space before a run of them.
        string Join(List<string> run)
        {
            var sb = new System.Text.StringBuilder();
            var current = new List<string>();
            bool previousSpecial = false;
            foreach (var token in run)
            {
                if (specialTexts.Contains(token))
                {
                    if (!previousSpecial) sb.Append(' ');
                    sb.Append(DecodePieces(current)).Append(token);
                    current.Clear();
                    previousSpecial = true;
                }
                else
                {
                    current.Add(token);
                    previousSpecial = false;
                }
            }
            sb.Append(DecodePieces(current));
            return sb.ToString().Trim();
        }
        return Build(files, configPath, pieces, full, PostProcessor.Bert(s.Cls!, Id(s.Cls!), s.Sep!, Id(s.Sep!)), Join, "deberta-v2-spm-v1");
    }

    // SentencePiece's DecodePieces: '▁' is a space, and the space the dummy prefix added to the first piece goes.
    static string DecodePieces(List<string> pieces)
    {
        var text = string.Concat(pieces).Replace('\u2581', ' ');
        return text.StartsWith(' ') ? text[1..] : text;
    }

    static PipelineTokenizer Build(SlowTokenizerFiles files, string configPath, ITokenModel model, INormalizer normalizer,
        PostProcessor post, Func<List<string>, string> join, string kind) => new(new PipelineSettings
    {
        Normalizer = normalizer,
        PreTokenizer = new MetaspacePreTokenizer('\u2581', "never", split: true),
        Model = model,
        PostProcessor = post,
        AddedTokens = files.AddedTokens,
        Slow = true,
        DecodedApart = files.DecodedApart,
        SlowJoin = join,
        Specials = files.Specials,
        ModelMaxLength = files.Config.ModelMaxLength,
        PaddingSide = files.PaddingSide(configPath),
        CleanUpTokenizationSpaces = files.Config.CleanUp ?? true,
        ReturnsTokenTypeIds = files.Config.ReturnsTokenTypeIds(),
        IsContinuationToken = t => !t.StartsWith('\u2581'),
        Fingerprint = files.Fingerprint(kind),
        Files = files.Files,
    });

    /// <summary>A SentencePiece model seen through a tokenizer's own ids (XLM-R's fairseq numbering).</summary>
    sealed class IdMappedModel(ITokenModel inner, int size, Func<int, int> toId, Func<string, int?> tokenToId,
        Func<int, string?> idToToken) : ITokenModel
    {
        public int Size => size;

        public int? TokenToId(string token) => tokenToId(token);

        public string? IdToToken(int id) => idToToken(id);

        public void Tokenize(string word, List<ModelToken> output)
        {
            int mark = output.Count;
            inner.Tokenize(word, output);
            for (int i = mark; i < output.Count; i++) output[i] = output[i] with { Id = toId(output[i].Id) };
        }
    }
}
