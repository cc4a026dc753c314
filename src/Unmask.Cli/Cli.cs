using System.CommandLine;
using Unmask.Cli.Commands;

namespace Unmask.Cli;

/// <summary>The `unmask` command line: a thin layer that parses arguments, calls the library and formats results.</summary>
public static class Cli
{
    /// <param name="ct">Cancels a long command (pretrain, ablate, score, rescore, eval) as Ctrl+C does.</param>
    /// <param name="progress">False: no progress lines or bars (the ranks other than 0 under mpiexec).</param>
    public static int Run(string[] args, TextWriter output, TextWriter error, CancellationToken ct = default, bool progress = true)
    {
        var io = new CliOutput(output, error, ct) { ShowProgress = progress };
        var root = new RootCommand("Unmask: masked language models in .NET")
        {
            PretrainCommand.Create(io),
            FillCommand.Create(io),
            GenerateCommand.Create(io),
            FinetuneCommand.Create(io),
            PredictCommand.Create(io),
            ClassifyCommand.Create(io),
            EmbedCommand.Create(io),
            EmbedCommand.Similarity(io),
            ImportCommand.Create(io),
            TrainEmbeddingsCommand.Create(io),
            TokenizeCommand.Create(io),
            ForwardCommand.Create(io),
            MaskCommand.Create(io),
            ScoreCommand.Create(io),
            RescoreCommand.Create(io),
            EvalCommand.Create(io),
            AblateCommand.Create(io),
            ServeCommand.Create(io),
        };
        var parse = root.Parse(args);
        var config = new InvocationConfiguration { Output = output, Error = error };
        return parse.Invoke(config);
    }
}
