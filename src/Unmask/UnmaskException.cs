namespace Unmask;

/// <summary>An error in user input (a file, a field, an argument) that the CLI reports in one line.</summary>
public sealed class UnmaskException(string message, Exception? inner = null) : Exception(message, inner);
