using Spectre.Console;

namespace SharpInfer.Cli;

/// <summary>
/// Progress of a long step (loading a model, a benchmark) on stderr. On a terminal a Spectre.Console bar redraws in
/// place; anywhere else (a pipe, a file, a test's writer) the caller prints plain lines, so logs stay readable and
/// free of escape codes. stdout is never touched: it carries the command's output.
/// </summary>
internal static class ProgressDisplay
{
    /// <summary>Whether <paramref name="stderr"/> is the process's standard error and that is a terminal that can
    /// redraw (not redirected, TERM not "dumb", NO_COLOR does not matter: the bar needs no colour).</summary>
    public static bool IsTerminal(TextWriter stderr) =>
        ReferenceEquals(stderr, Console.Error) && !Console.IsErrorRedirected
        && Environment.GetEnvironmentVariable("TERM") != "dumb";

    /// <summary>A Spectre console writing to standard error (Spectre's default is stdout).</summary>
    public static IAnsiConsole StandardError() =>
        AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });

    /// <summary>Runs <paramref name="work"/> under one progress bar on <paramref name="console"/>. The work reports
    /// (description, fraction done) from any thread; the bar completes when it returns and the exception, if any,
    /// propagates unchanged. <paramref name="clearWhenDone"/> removes the bar afterwards (a step among table rows).</summary>
    public static T Run<T>(IAnsiConsole console, string description, Func<Action<string, double>, T> work, bool clearWhenDone = false)
    {
        T result = default!;
        console.Progress()
            .AutoClear(clearWhenDone)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask(Markup.Escape(description), maxValue: 1.0);
                result = work((text, fraction) =>
                {
                    task.Description = Markup.Escape(text);
                    task.Value = Math.Clamp(fraction, 0, 1);
                });
                task.Value = task.MaxValue;
            });
        return result;
    }
}
