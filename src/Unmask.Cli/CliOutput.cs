using Spectre.Console;

namespace Unmask.Cli;

/// <summary>
/// Where a command writes (plain writers for JSON Lines and errors, a Spectre console for tables) and how its body
/// runs: user errors and cancellation become an exit code.
/// </summary>
/// <param name="cancellation">Cancels the long commands as Ctrl+C does; from the caller of <see cref="Cli.Run"/>.</param>
public sealed class CliOutput(TextWriter output, TextWriter error, CancellationToken cancellation = default)
{
    public TextWriter Out { get; } = output;
    public TextWriter Error { get; } = error;

    /// <summary>Whether long commands report progress at all.</summary>
    public bool ShowProgress { get; init; } = true;

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

    /// <summary>
    /// <see cref="Guard"/> for long work: the body's token is cancelled by Ctrl+C (every press, so none kills the
    /// process and pretraining always gets to save its checkpoint) or by the token given to <see cref="Cli.Run"/>.
    /// </summary>
    public int GuardCancellable(Func<CancellationToken, int> body) => Guard(() =>
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        ConsoleCancelEventHandler onCancel = (_, e) =>
        {
            e.Cancel = true;
            cts.Cancel();
        };
        System.Console.CancelKeyPress += onCancel;
        try
        {
            return body(cts.Token);
        }
        finally
        {
            System.Console.CancelKeyPress -= onCancel;
        }
    });
}
