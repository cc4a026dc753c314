using Spectre.Console;

namespace Unmask.Cli;

/// <summary>Where a command writes: plain writers for JSON Lines and errors, a Spectre console for tables.</summary>
public sealed class CliOutput(TextWriter output, TextWriter error)
{
    public TextWriter Out { get; } = output;
    public TextWriter Error { get; } = error;

    // A redirected stdout gets plain tables: colour codes would end up in the file or the next program's input.
    public IAnsiConsole Console { get; } = ReferenceEquals(output, System.Console.Out) && !System.Console.IsOutputRedirected
        ? AnsiConsole.Console
        : PlainConsole(output);

    // Without a terminal there is no width to detect, and Spectre's default of 80 columns wraps long names in tables.
    static IAnsiConsole PlainConsole(TextWriter output)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(output), Ansi = AnsiSupport.No, ColorSystem = ColorSystemSupport.NoColors, Interactive = InteractionSupport.No });
        console.Profile.Width = 160;
        return console;
    }

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
