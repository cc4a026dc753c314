using Spectre.Console;

namespace Unmask.Cli;

/// <summary>One progress report as a long command shows it.</summary>
/// <param name="Label">Beside the bar on a terminal.</param>
/// <param name="Fraction">How far the work is, 0 to 1; null leaves the bar where it is.</param>
/// <param name="Line">Written to stderr when there is no terminal.</param>
/// <param name="Phase">
/// A report in a new phase is written at once, so a log shows every step of the work; null for work without phases,
/// whose first line then waits like the others.
/// </param>
public readonly record struct ProgressView(string Label, double? Fraction, string Line, string? Phase = null);

/// <summary>
/// Progress of the long commands: a bar on stderr when both stdout and stderr are a terminal; otherwise lines on
/// stderr, at most one every 15 seconds within a phase, so logs of long runs stay short. Stdout is left to the result.
/// </summary>
public static class ProgressDisplay
{
    static readonly TimeSpan LineInterval = TimeSpan.FromSeconds(15);

    public static T Run<TProgress, T>(CliOutput io, string label, Func<TProgress, ProgressView> view, Func<IProgress<TProgress>, T> work)
    {
        if (!io.ShowProgress) return work(new SyncProgress<TProgress>(_ => { }));
        if (!io.Console.Profile.Capabilities.Interactive || Console.IsErrorRedirected) return RunWithLines(io, view, work);
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        T result = default!;
        console.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask(Markup.Escape(label), maxValue: 1.0);
                result = work(new SyncProgress<TProgress>(p =>
                {
                    var shown = view(p);
                    task.Description = Markup.Escape(shown.Label);
                    if (shown.Fraction is { } fraction) task.Value = fraction;
                }));
                task.Value = 1.0;
            });
        return result;
    }

    static T RunWithLines<TProgress, T>(CliOutput io, Func<TProgress, ProgressView> view, Func<IProgress<TProgress>, T> work)
    {
        var last = DateTime.UtcNow;
        string? lastPhase = null;
        return work(new SyncProgress<TProgress>(p =>
        {
            var shown = view(p);
            if (shown.Phase == lastPhase && DateTime.UtcNow - last < LineInterval) return;
            (last, lastPhase) = (DateTime.UtcNow, shown.Phase);
            io.Error.WriteLine(shown.Line);
        }));
    }
}
