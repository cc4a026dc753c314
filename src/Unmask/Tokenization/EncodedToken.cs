namespace Unmask.Tokenization;

/// <summary>A token of an encoding, with where it came from (HF <c>Encoding</c> fields of one position).</summary>
internal readonly record struct EncodedToken(
    int Id, string Token, int Start, int End, int? WordId, int? SequenceId, int TypeId, bool AddedBySpecial);
