namespace Unmask.Evaluation;

/// <summary>What to do with an input line that cannot be used.</summary>
public enum BadLinePolicy
{
    /// <summary>Stop with an error naming the file and line.</summary>
    Fail,

    /// <summary>Leave the line out and record it as an <see cref="InputIssue"/>.</summary>
    Skip,
}

/// <summary>A line left out of an evaluation, with where it is and why.</summary>
public sealed record InputIssue(string File, int Line, string Message)
{
    public override string ToString() => $"{File}:{Line}: {Message}";

    /// <summary>
    /// The bad-line handler for <see cref="Data.JsonLinesReader.Read"/> under <paramref name="policy"/>: none under
    /// <see cref="BadLinePolicy.Fail"/>, so the read stops; under <see cref="BadLinePolicy.Skip"/> one that records the line.
    /// </summary>
    public static Action<int, string>? Recorder(string file, BadLinePolicy policy, ICollection<InputIssue> issues) =>
        policy == BadLinePolicy.Skip ? (line, message) => issues.Add(new InputIssue(file, line, message)) : null;
}
