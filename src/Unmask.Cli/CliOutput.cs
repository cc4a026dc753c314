using Spectre.Console;

namespace Unmask.Cli;

/// <summary>Where a command writes: plain writers for JSON Lines and errors, a Spectre console for tables.</summary>
public sealed class CliOutput(TextWriter output, TextWriter error)
{
    public TextWriter Out { get; } = output;
    public TextWriter Error { get; } = error;

    public IAnsiConsole Console { get; } = ReferenceEquals(output, System.Console.Out)
        ? AnsiConsole.Console
        : AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(output), Ansi = AnsiSupport.No, ColorSystem = ColorSystemSupport.NoColors, Interactive = InteractionSupport.No });

    /// <summary>Runs a command body; a user error becomes one line on stderr and exit code 1.</summary>
    public int Guard(Func<int> body)
    {
        try
        {
            return body();
        }
        catch (UnmaskException e)
        {
            Error.WriteLine($"error: {e.Message}");
            return 1;
        }
        catch (OperationCanceledException)
        {
            Error.WriteLine("cancelled");
            return 130;
        }
    }
}
