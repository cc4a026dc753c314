using System.Text;
using System.Text.Json;

namespace Unmask.Tokenization;

/// <summary>
/// transformers' slow byte-level BPE tokenizers (<c>RobertaTokenizer</c>, <c>GPT2Tokenizer</c>) from vocab.json and
/// merges.txt: GPT-2 split, byte-level alphabet, ranked merges; <c>add_prefix_space</c> puts one space before the
/// whole text (before special tokens are split off); RoBERTa's <c>&lt;s&gt; A &lt;/s&gt;&lt;/s&gt; B &lt;/s&gt;</c>.
/// </summary>
public static class ByteLevelBpeTokenizer
{
    public const string VocabFile = "vocab.json";
    public const string MergesFile = "merges.txt";

    public static PipelineTokenizer Load(string directory)
    {
        ArgumentNullException.ThrowIfNull(directory);
        var vocabPath = Path.Combine(directory, VocabFile);
        var mergesPath = Path.Combine(directory, MergesFile);
        var vocab = ReadVocab(vocabPath);
        var merges = ReadMerges(mergesPath);
        var configPath = Path.Combine(directory, WordPieceTokenizer.ConfigFile);
        var config = HfTokenizerConfig.Read(directory);
        bool gpt2 = (config.TokenizerClass ?? "").StartsWith("GPT2", StringComparison.Ordinal);
        var defaults = gpt2
            ? new Dictionary<string, string> { ["unk_token"] = "<|endoftext|>", ["bos_token"] = "<|endoftext|>", ["eos_token"] = "<|endoftext|>" }
            : new Dictionary<string, string>
            {
                ["unk_token"] = "<unk>", ["bos_token"] = "<s>", ["eos_token"] = "</s>", ["sep_token"] = "</s>",
                ["cls_token"] = "<s>", ["pad_token"] = "<pad>", ["mask_token"] = "<mask>",
            };
        var files = SlowTokenizerFiles.Read(directory, t => vocab[t], vocab.Size, defaults,
            gpt2 ? new HashSet<string>() : new HashSet<string> { config.Role("mask_token") ?? "<mask>" },
            [VocabFile, MergesFile]);

        var specials = files.Specials;
        int IdOf(string? token, string role) => token != null && (vocab[token] ?? files.AddedTokens.FirstOrDefault(t => t.Content == token)?.Id) is int id
            ? id : throw new UnmaskException($"{configPath}: the {role} '{token}' has no id.");
        bool prefixSpace = files.Config.AddPrefixSpace ?? false;
        // Offsets as RoBERTa's fast tokenizer reports them (trim_offsets): without the spaces a token starts with.
        var post = (gpt2
            ? PostProcessor.None
            : PostProcessor.Roberta(specials.Cls!, IdOf(specials.Cls, "cls_token"), specials.Sep!, IdOf(specials.Sep, "sep_token")))
            .WithTrimming(true, prefixSpace);
        return new PipelineTokenizer(new PipelineSettings
        {
            PreTokenizer = new ByteLevelPreTokenizer(addPrefixSpace: false, useRegex: true),
            Model = new BpeModel(vocab, merges, unkToken: null),
            PostProcessor = post,
            Decoder = ByteLevelDecoder.Instance,
            AddedTokens = files.AddedTokens,
            Slow = true,
            SlowPrefixSpace = prefixSpace,
            DecodedApart = files.DecodedApart,
            Specials = specials,
            ModelMaxLength = files.Config.ModelMaxLength,
            PaddingSide = files.PaddingSide(configPath),
            CleanUpTokenizationSpaces = files.Config.CleanUp ?? true,
            ReturnsTokenTypeIds = files.Config.ReturnsTokenTypeIds(),
            IsContinuationToken = t => !t.StartsWith('Ġ'),
            Fingerprint = files.Fingerprint("byte-level-bpe-v1"),
            Files = files.Files,
        });
    }

    internal static Vocabulary ReadVocab(string path)
    {
        if (!File.Exists(path)) throw new UnmaskException($"Vocabulary file '{path}' does not exist.");
        using var doc = HfTokenizerConfig.ParseJson(path);
        if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new UnmaskException($"{path}: expected a JSON object of token to id.");
        return ReadVocabObject(doc.RootElement, path, "");
    }

    internal static Vocabulary ReadVocabObject(JsonElement vocab, string path, string field)
    {
        var entries = new List<KeyValuePair<string, int>>();
        foreach (var entry in vocab.EnumerateObject())
        {
            if (entry.Value.ValueKind != JsonValueKind.Number || !entry.Value.TryGetInt32(out var id) || id < 0)
                throw new UnmaskException($"{path}: {field}'{entry.Name}' must map to a non-negative integer id.");
            entries.Add(new(entry.Name, id));
        }
        return new Vocabulary(entries);
    }

    // As GPT2Tokenizer reads it: the first line (the "#version" header) and the text after the last newline are
    // skipped; a line that is not two space-separated symbols keeps its rank but can never match.
    internal static List<(string, string)> ReadMerges(string path)
    {
        if (!File.Exists(path)) throw new UnmaskException($"Merges file '{path}' does not exist.");
        string text;
        try
        {
            text = File.ReadAllText(path, new UTF8Encoding(false, true));
        }
        catch (DecoderFallbackException e)
        {
            throw new UnmaskException($"'{path}' is not valid UTF-8.", e);
        }
        var lines = text.Split('\n');
        var merges = new List<(string, string)>(Math.Max(0, lines.Length - 2));
        for (int i = 1; i < lines.Length - 1; i++)
        {
            var parts = lines[i].Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            merges.Add(parts.Length == 2 ? (parts[0], parts[1]) : ("\0", "\0" + i));
        }
        return merges;
    }
}
