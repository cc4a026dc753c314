namespace Unmask.Tokenization;

/// <summary>A tokenizer of a masked language model, with Hugging Face's semantics for the same files.</summary>
public interface ITokenizer
{
    /// <summary>Number of ids, added tokens included (HF <c>len(tokenizer)</c>).</summary>
    int VocabSize { get; }

    /// <summary>
    /// Ids of the special tokens by role; -1 where the tokenizer has no such token (see <see cref="Specials"/>).
    /// </summary>
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

    /// <summary>
    /// Whether the token of this id, wherever it occurs, continues a word rather than starting one: WordPiece "##"
    /// pieces; byte-level BPE tokens without the 'Ġ' space marker; SentencePiece pieces without '▁'. Special tokens
    /// never continue. Exact per encoding: <see cref="TokenizedText.WordIds"/>.
    /// </summary>
    bool IsContinuation(int id);

    /// <summary>The special tokens by role, their texts and ids (HF <c>cls_token</c>, ..., <c>all_special_ids</c>).</summary>
    SpecialTokenSet Specials { get; }

    /// <summary>HF <c>model_max_length</c> (tokenizer_config.json); null when unbounded. Pass it as maxLength to truncate.</summary>
    int? ModelMaxLength { get; }

    /// <summary>HF <c>padding_side</c> from tokenizer_config.json ("right" unless the files say otherwise).</summary>
    PaddingSide PaddingSide => PaddingSide.Right;

    /// <summary>Whether HF returns token_type_ids for this tokenizer (BERT, ELECTRA: yes; RoBERTa, DistilBERT, ModernBERT: no).</summary>
    bool ReturnsTokenTypeIds => true;

    /// <summary>
    /// HF <c>tokenizer(texts, text_pair=pairs, padding="longest", truncation=maxLength != null)</c>: each row encoded
    /// as <see cref="Encode"/> does, then padded with the pad token to the longest row on <paramref name="side"/>
    /// (default <see cref="PaddingSide"/>). Padding positions have attention mask 0, type id 0, no word.
    /// </summary>
    BatchEncoding EncodeBatch(IReadOnlyList<string> texts, IReadOnlyList<string>? pairs = null, bool addSpecialTokens = true,
        int? maxLength = null, bool pad = true, PaddingSide? side = null) =>
        BatchEncoding.Encode(this, texts, pairs, addSpecialTokens, maxLength, pad, side);

    /// <summary>A stable hash of the vocabulary, special tokens and normalisation flags.</summary>
    string Fingerprint { get; }

    /// <summary>Writes the Hugging Face tokenizer files into <paramref name="directory"/> (created if needed).</summary>
    void Save(string directory);
}

/// <summary>
/// One encoded input. <see cref="SpecialTokensMask"/> marks the tokens the tokenizer added (HF
/// <c>return_special_tokens_mask</c>); a special token written in the text itself is not marked.
/// </summary>
public sealed record TokenizedText(int[] InputIds, string[] Tokens, int[] TokenTypeIds, bool[] SpecialTokensMask)
{
    int[]? attentionMask;

    /// <summary>1 for real tokens, 0 for padding (all ones unless the row was padded).</summary>
    public int[] AttentionMask
    {
        get => attentionMask ??= Enumerable.Repeat(1, InputIds.Length).ToArray();
        init => attentionMask = value;
    }

    /// <summary>
    /// HF <c>word_ids()</c>: per token, the index of the word (pre-tokenizer split; an added token in the text is a
    /// word of its own) it belongs to, counted per sequence; null for tokens the tokenizer added and for padding.
    /// </summary>
    public int?[] WordIds { get; init; } = [];

    /// <summary>HF <c>sequence_ids()</c>: 0 or 1 for tokens of the text or the pair, null for added tokens and padding.</summary>
    public int?[] SequenceIds { get; init; } = [];

    /// <summary>
    /// HF <c>offset_mapping</c>: per token, the [Start, End) UTF-16 range of its own sequence's original text; (0, 0)
    /// for added tokens and padding. Every tokenizer here sets them; null only for an encoding built without them.
    /// </summary>
    public TokenOffset[]? Offsets { get; init; }
}

/// <summary>A token's span [Start, End) in the original text, in UTF-16 units.</summary>
public readonly record struct TokenOffset(int Start, int End);

public enum PaddingSide { Right, Left }

/// <summary>The special tokens of a tokenizer by role; null where it has none. <see cref="AllIds"/> is HF <c>all_special_ids</c>.</summary>
public sealed record SpecialTokenSet(
    string? Unk, string? Cls, string? Sep, string? Pad, string? Mask, string? Bos, string? Eos,
    IReadOnlyList<string> Additional, IReadOnlyList<int> AllIds);

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
