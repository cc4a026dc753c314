namespace Unmask.Tokenization;

/// <summary>An encoded text: ids, their token strings, segment ids and which positions are special tokens.</summary>
public sealed record TokenizedText(int[] InputIds, string[] Tokens, int[] TokenTypeIds, bool[] SpecialTokensMask);

/// <summary>What the rest of Unmask needs from a tokenizer; method names follow Hugging Face's.</summary>
public interface ITokenizer
{
    /// <summary>len(tokenizer): the vocabulary including added tokens.</summary>
    int VocabSize { get; }
    int ClsId { get; }
    int SepId { get; }
    int PadId { get; }
    int MaskId { get; }
    int UnkId { get; }
    string MaskToken { get; }

    int? TokenToId(string token);
    string IdToToken(int id);

    /// <summary>Hugging Face's tokenize(text): tokens without special tokens.</summary>
    IReadOnlyList<string> Tokenize(string text);

    /// <summary>Hugging Face's tok(text, text_pair, truncation="longest_first", max_length=…).</summary>
    TokenizedText Encode(string text, string? pair = null, bool addSpecialTokens = true, int? maxLength = null);

    string Decode(IReadOnlyList<int> ids, bool skipSpecialTokens = false);

    bool IsSpecial(int id);

    /// <summary>True for a piece that continues the previous token's word (WordPiece "##").</summary>
    bool IsContinuation(int id);

    /// <summary>A stable hash of everything that decides the ids a text gets.</summary>
    string Fingerprint { get; }

    /// <summary>Writes the Hugging Face tokenizer files into <paramref name="directory"/>, each atomically.</summary>
    void Save(string directory);
}
