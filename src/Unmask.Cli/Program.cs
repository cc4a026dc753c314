using Unmask;
using Unmask.Cli;
using Unmask.Distributed;

// Only the command-line process tunes glibc for libtorch; the library leaves its host's allocator alone.
NativeAllocator.Configure();
using var world = MpiWorld.Initialize(int.TryParse(Environment.GetEnvironmentVariable("UNMASK_THREADS"), out int threads) && threads > 0 ? threads : null);
if (world.Size == 1) return Cli.Run(args, Console.Out, Console.Error);

// Under mpiexec rank 0 speaks for the job; the other ranks stay silent unless they fail. A rank that fails ends the
// whole job at once, so no rank is left waiting in a collective for it.
var errors = world.IsRoot ? Console.Error : new StringWriter();
int code;
try
{
    code = Cli.Run(args, world.IsRoot ? Console.Out : TextWriter.Null, errors, progress: world.IsRoot);
}
catch (Exception e)
{
    errors.WriteLine($"error: {e}");
    code = 1;
}
if (code != 0)
{
    // A failing rank prints what it wrote to stderr, then gives mpiexec a moment to forward it: MPI_Abort tears down
    // the output channels of every rank at once.
    if (!world.IsRoot)
        foreach (var line in errors.ToString()!.Split('\n', StringSplitOptions.RemoveEmptyEntries)) Console.Error.WriteLine($"rank {world.Rank}: {line}");
    Console.Error.Flush();
    Thread.Sleep(500);
    world.Abort(code);
}
return code;
