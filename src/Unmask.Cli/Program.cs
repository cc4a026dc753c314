using Unmask;
using Unmask.Cli;

// Only the command-line process tunes glibc for libtorch; the library leaves its host's allocator alone.
NativeAllocator.Configure();
return Cli.Run(args, Console.Out, Console.Error);
