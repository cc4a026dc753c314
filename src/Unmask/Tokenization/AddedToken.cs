namespace Unmask.Tokenization;

/// <summary>
/// A token matched in the raw text before the pipeline (HF <c>AddedToken</c>): special tokens and tokens added to
/// the vocabulary. <see cref="LStrip"/>/<see cref="RStrip"/> absorb the whitespace on that side.
/// </summary>
public sealed record AddedToken(string Content, int Id, bool Special, bool LStrip = false, bool RStrip = false,
    bool SingleWord = false, bool Normalized = false);
