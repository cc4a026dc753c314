namespace Unmask.Tokenization;

/// <summary>A tokenizer of a masked language model, with Hugging Face's semantics for the same files.</summary>
public interface ITokenizer
{
    /// <summary>Number of ids, added tokens included (HF <c>len(tokenizer)</c>).</summary>
    int VocabSize { get; }
    int ClsId { get; }
    int SepId { get; }
    int PadId { get; }
    int MaskId { get; }
    int UnkId { get; }
    string MaskToken { get; }

    int? TokenToId(string token);

    /// <summary>The token of an id; throws <see cref="ArgumentOutOfRangeException"/> outside [0, VocabSize).</summary>
    string IdToToken(int id);

    /// <summary>HF <c>tokenize(text)</c>.</summary>
    IReadOnlyList<string> Tokenize(string text);

    /// <summary>
    /// HF <c>tokenizer(text, text_pair)</c>; with <paramref name="maxLength"/>, truncation "longest_first" from the
    /// right. <paramref name="maxLength"/> must leave room for one token besides the special tokens of a single text.
    /// </summary>
    TokenizedText Encode(string text, string? pair = null, bool addSpecialTokens = true, int? maxLength = null);

    /// <summary>HF <c>decode(ids, skip_special_tokens)</c> with the tokenizer's <c>clean_up_tokenization_spaces</c>.</summary>
    string Decode(IReadOnlyList<int> ids, bool skipSpecialTokens = false);

    /// <summary>Whether the id is one of the special tokens (HF <c>all_special_ids</c>).</summary>
    bool IsSpecial(int id);

    /// <summary>Whether the id is a WordPiece continuation piece ("##..."), i.e. not the start of a word.</summary>
    bool IsContinuation(int id);

    /// <summary>A stable hash of the vocabulary, special tokens and normalisation flags.</summary>
    string Fingerprint { get; }

    /// <summary>Writes the Hugging Face tokenizer files into <paramref name="directory"/> (created if needed).</summary>
    void Save(string directory);
}

/// <summary>
/// One encoded input. <see cref="SpecialTokensMask"/> marks the tokens the tokenizer added (HF
/// <c>return_special_tokens_mask</c>); a special token written in the text itself is not marked.
/// </summary>
public sealed record TokenizedText(int[] InputIds, string[] Tokens, int[] TokenTypeIds, bool[] SpecialTokensMask);

/// <summary>
/// BERT text normalisation flags (HF <c>do_lower_case</c>, <c>strip_accents</c>, <c>tokenize_chinese_chars</c>).
/// <see cref="StripAccents"/> null means: strip accents exactly when lowercasing.
/// </summary>
public sealed record BertNormalizationOptions(bool LowerCase = true, bool? StripAccents = null, bool TokenizeChineseChars = true);

/// <summary>The special tokens of a BERT tokenizer, by their text; <see cref="Additional"/> are extra special tokens.</summary>
public sealed record BertSpecialTokens(
    string Unk = "[UNK]", string Sep = "[SEP]", string Pad = "[PAD]", string Cls = "[CLS]", string Mask = "[MASK]",
    IReadOnlyList<string>? Additional = null)
{
    /// <summary>HF <c>all_special_tokens</c> order: unk, sep, pad, cls, mask, additional; duplicates removed.</summary>
    internal IReadOnlyList<string> All() =>
        new[] { Unk, Sep, Pad, Cls, Mask }.Concat(Additional ?? []).Distinct(StringComparer.Ordinal).ToArray();
}
