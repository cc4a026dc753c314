using System.Diagnostics;
using TorchSharp;
using Unmask.Checkpoints;
using Unmask.Modeling;

/// <summary>
/// Times ModelLoader.Load on a randomly initialised BERT-base saved by the library, with the process's resident memory
/// before and after the load and its peak (VmHWM). Without dir= the folder is written to a temporary folder in the same
/// process, so the peak also covers building and saving that model; with dir= a folder written by an earlier run is
/// only loaded, and the peak is the load's own.
/// </summary>
static class LoadBench
{
    public static void Run(Dictionary<string, string> settings)
    {
        var given = settings.GetValueOrDefault("dir");
        var dir = given ?? Path.Combine(Path.GetTempPath(), "unmask-load-bench-" + Guid.NewGuid().ToString("N"));
        try
        {
            if (!File.Exists(Path.Combine(dir, ModelFolder.ConfigFileName)))
            {
                torch.manual_seed(0);
                using (var model = BertForMaskedLM.Create(BertConfig.Preset("base", 30522)))
                    ModelFolder.Save(dir, model);
                Console.WriteLine($"wrote a random BERT-base to {dir} ({new FileInfo(Path.Combine(dir, ModelFolder.WeightsFileName)).Length / 1e6:F0} MB of weights)");
                if (given is not null)
                {
                    Console.WriteLine("run again with the same dir= to time the load in a process that built no model");
                    return;
                }
            }
            // libtorch loads on first use; that one-off cost (and its memory) belongs to the process, not to the load.
            torch.zeros(1).Dispose();
            GC.Collect();
            var before = Memory();
            var cpuAtStart = Process.GetCurrentProcess().TotalProcessorTime;
            var clock = Stopwatch.StartNew();
            using var loaded = ModelLoader.Load(dir);
            var seconds = clock.Elapsed.TotalSeconds;
            // CPU time stays meaningful when other processes share the cores and wall time does not.
            var cpuSeconds = (Process.GetCurrentProcess().TotalProcessorTime - cpuAtStart).TotalSeconds;
            var after = Memory();
            long parameters = loaded.parameters().Sum(p => p.numel());
            Console.WriteLine($"ModelLoader.Load: {loaded.Architecture}, {parameters:N0} parameters ({parameters * 4 / 1e6:F0} MB float32), {seconds:F2} s wall, {cpuSeconds:F2} s CPU");
            Console.WriteLine($"RSS before {before.Rss / 1024.0:F0} MiB, after {after.Rss / 1024.0:F0} MiB (+{(after.Rss - before.Rss) / 1024.0:F0} MiB); " +
                $"peak (VmHWM) before {before.Hwm / 1024.0:F0} MiB, after {after.Hwm / 1024.0:F0} MiB");
        }
        finally
        {
            if (given is null && Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }

    // Kibibytes, as /proc/self/status reports them.
    static (long Rss, long Hwm) Memory()
    {
        long Field(string[] lines, string name) =>
            long.Parse(lines.First(l => l.StartsWith(name + ":", StringComparison.Ordinal))[(name.Length + 1)..].Trim().Split(' ')[0]);
        var status = File.ReadAllLines("/proc/self/status");
        return (Field(status, "VmRSS"), Field(status, "VmHWM"));
    }
}
