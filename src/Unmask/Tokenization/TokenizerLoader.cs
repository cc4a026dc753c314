namespace Unmask.Tokenization;

/// <summary>Opens the tokenizer of a Hugging Face model folder, reading the files transformers would.</summary>
public static class TokenizerLoader
{
    /// <summary>
    /// tokenizer.json when present (what AutoTokenizer's fast tokenizer reads); a WordPiece tokenizer.json next to
    /// vocab.txt is read as BERT's slow tokenizer, which gives the same ids for the same vocabulary and is the
    /// reference of this project's BERT checks. Otherwise the legacy files: vocab.txt (BERT WordPiece),
    /// vocab.json + merges.txt (RoBERTa/GPT-2 byte-level BPE), a SentencePiece model (XLM-R's sentencepiece.bpe.model, DeBERTa-v2's spm.model).
    /// </summary>
    public static ITokenizer Load(string directory)
    {
        ArgumentNullException.ThrowIfNull(directory);
        if (!Directory.Exists(directory))
            throw new UnmaskException($"Tokenizer folder '{directory}' does not exist.");
        bool Has(string name) => File.Exists(Path.Combine(directory, name));
        if (Has(TokenizerJson.FileName))
        {
            if (Has(WordPieceTokenizer.VocabFile) && TokenizerJson.ReadModelType(Path.Combine(directory, TokenizerJson.FileName)) == "WordPiece")
                return WordPieceTokenizer.Load(directory);
            return TokenizerJson.Load(directory);
        }
        if (Has(WordPieceTokenizer.VocabFile)) return WordPieceTokenizer.Load(directory);
        if (Has(ByteLevelBpeTokenizer.VocabFile) && Has(ByteLevelBpeTokenizer.MergesFile)) return ByteLevelBpeTokenizer.Load(directory);
        foreach (var name in SentencePieceTokenizer.FileNames)
            if (Has(name)) return SentencePieceTokenizer.Load(directory, name);
        throw new UnmaskException(
            $"No supported tokenizer in '{directory}': looked for {TokenizerJson.FileName}, {WordPieceTokenizer.VocabFile}, " +
            $"{ByteLevelBpeTokenizer.VocabFile} + {ByteLevelBpeTokenizer.MergesFile}, {string.Join(", ", SentencePieceTokenizer.FileNames)}.");
    }
}
