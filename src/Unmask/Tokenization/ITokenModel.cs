namespace Unmask.Tokenization;

/// <summary>One token a model produced for a word: its id and the UTF-16 range [Start, End) of the word it covers.</summary>
internal readonly record struct ModelToken(int Id, string Token, int Start, int End);

/// <summary>A tokenizer.json <c>model</c> (BPE, WordPiece, Unigram): turns one pre-tokenised word into tokens.</summary>
internal interface ITokenModel
{
    /// <summary>One past the largest id of the model's vocabulary.</summary>
    int Size { get; }

    int? TokenToId(string token);

    string? IdToToken(int id);

    void Tokenize(string word, List<ModelToken> output);
}
