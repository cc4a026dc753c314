namespace Unmask.Tokenization;

/// <summary>The stages and settings of a <see cref="PipelineTokenizer"/>, as the file loaders assemble them.</summary>
internal sealed record PipelineSettings
{
    public INormalizer? Normalizer { get; init; }
    public IPreTokenizer? PreTokenizer { get; init; }
    public required ITokenModel Model { get; init; }
    public PostProcessor PostProcessor { get; init; } = PostProcessor.None;
    public IDecoder? Decoder { get; init; }
    public IReadOnlyList<AddedToken> AddedTokens { get; init; } = [];

    /// <summary>
    /// transformers' slow (Python) tokenizer semantics instead of the tokenizers library's: added tokens split off
    /// the raw text with Python whitespace stripping, one-at-a-time "longest_first" truncation, zero type ids without
    /// special tokens, and decoding that keeps <see cref="DecodedApart"/> tokens apart, joined by spaces.
    /// </summary>
    public bool Slow { get; init; }

    /// <summary>Slow byte-level BPE's <c>add_prefix_space</c>: a space before the whole text, before added tokens are split off.</summary>
    public bool SlowPrefixSpace { get; init; }

    /// <summary>Tokens the slow decoder emits as they are, between spaces (transformers' added tokens of that version).</summary>
    public IReadOnlySet<string> DecodedApart { get; init; } = new HashSet<string>();

    /// <summary>Joins a run of tokens into text for the slow decoder; the fast path uses <see cref="Decoder"/>.</summary>
    public Func<List<string>, string>? SlowJoin { get; init; }

    public required SpecialTokenSet Specials { get; init; }
    public int? ModelMaxLength { get; init; }
    public PaddingSide PaddingSide { get; init; } = PaddingSide.Right;
    public bool CleanUpTokenizationSpaces { get; init; }
    public bool ReturnsTokenTypeIds { get; init; } = true;
    public required Func<string, bool> IsContinuationToken { get; init; }
    public required string Fingerprint { get; init; }

    /// <summary>The files <see cref="PipelineTokenizer.Save"/> writes back, by name.</summary>
    public IReadOnlyDictionary<string, byte[]> Files { get; init; } = new Dictionary<string, byte[]>();
}
