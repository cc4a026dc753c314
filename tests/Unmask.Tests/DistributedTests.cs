using System.Diagnostics;
using System.Text.Json;
using Unmask.Checkpoints;
using Unmask.Training;

namespace Unmask.Tests;

/// <summary>
/// `mpiexec -n 2 unmask …` against one process, through the real launcher (MPICH's mpiexec.mpich; `.ci/run` installs
/// it): data-parallel pretraining step by step, resuming with another number of ranks, sharded BLiMP scoring, and a
/// failing rank ending the job. The model is the tiny preset with no dropout, so one process and two ranks compute
/// the same sums (up to float rounding).
/// </summary>
[Collection(nameof(BertProcessWideTests))]
public sealed class DistributedTests : IDisposable
{
    readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("unmask-mpi");

    public void Dispose() => _dir.Delete(recursive: true);

    static string Cli => Path.Combine(AppContext.BaseDirectory, "unmask-cli.dll");

    static string Corpus => Path.Combine(SharedFixtures.Gutenberg, "extra", "alice_in_wonderland.txt.gz");

    static string[] Pretrain(string output, int steps, params string[] more) =>
        ["pretrain", "--corpus", Corpus, "--size", "tiny", "--vocab-size", "2000", "--max-seq-length", "64", "--batch-size", "8",
            "--steps", steps.ToString(System.Globalization.CultureInfo.InvariantCulture), "--logging-steps", "1", "--output", output, .. more];

    /// <summary>Runs `mpiexec.mpich -n ranks dotnet unmask-cli.dll args` (or one plain process), waiting at most two minutes.</summary>
    static (int Code, string Out, string Err) Run(int ranks, params string[] args) => Finish(Start(ranks, args));

    /// <summary>Waits at most two minutes for the job and returns its exit code and output.</summary>
    static (int Code, string Out, string Err) Finish(Process started)
    {
        using var process = started;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(2)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{string.Join(' ', process.StartInfo.ArgumentList)} did not finish in two minutes");
        }
        return (process.ExitCode, stdout.Result, stderr.Result);
    }

    static Process Start(int ranks, params string[] args)
    {
        var start = new ProcessStartInfo(ranks == 1 ? "dotnet" : Mpiexec) { RedirectStandardOutput = true, RedirectStandardError = true };
        if (ranks > 1) foreach (var a in new[] { "-n", ranks.ToString(System.Globalization.CultureInfo.InvariantCulture), "dotnet" }) start.ArgumentList.Add(a);
        start.ArgumentList.Add(Cli);
        foreach (var a in args) start.ArgumentList.Add(a);
        return Process.Start(start)!;
    }

    static string Mpiexec => File.Exists("/usr/bin/mpiexec.mpich") ? "/usr/bin/mpiexec.mpich"
        : throw new InvalidOperationException("MPICH's mpiexec.mpich is not installed (apt-get install mpich; .ci/run does it)");

    static List<(long Step, double Loss, double WorldSize)> Losses(string run) =>
        [.. MetricsLog.Read(Path.Combine(run, "metrics.jsonl")).Where(r => r.Split == "train").Select(r => (r.Step, r.Values["loss"], r.Values["world_size"]))];

    [Fact]
    public void TwoRanksTrainLikeOneProcessWithTheWholeBatch()
    {
        string one = Path.Combine(_dir.FullName, "one"), two = Path.Combine(_dir.FullName, "two");
        var single = Run(1, Pretrain(one, 20));
        Assert.True(single.Code == 0, single.Err);
        var pair = Run(2, Pretrain(two, 20));
        Assert.True(pair.Code == 0, pair.Err);
        // Rank 0 alone prints: one summary table, not two.
        Assert.Equal(1, pair.Out.Split("validation masked accuracy").Length - 1);

        var (a, b) = (Losses(one), Losses(two));
        Assert.Equal(Enumerable.Range(1, 20).Select(s => (long)s), b.Select(l => l.Step));
        Assert.All(a, l => Assert.Equal(1, l.WorldSize));
        Assert.All(b, l => Assert.Equal(2, l.WorldSize));
        for (int i = 0; i < 20; i++) Assert.True(Math.Abs(a[i].Loss - b[i].Loss) < 1e-5, $"step {i + 1}: {a[i].Loss} against {b[i].Loss}");
        Assert.True(b.Select(l => l.Loss).Distinct().Count() > 10);

        var left = SafeTensors.Load(Path.Combine(one, "model.safetensors"));
        var right = SafeTensors.Load(Path.Combine(two, "model.safetensors"));
        Assert.Equal(left.Keys.Order(), right.Keys.Order());
        foreach (var (name, tensor) in left)
        {
            double difference = (tensor - right[name]).abs().max().item<float>();
            Assert.True(difference < 1e-5, $"{name}: max difference {difference}");
        }
        Assert.False(Directory.Exists(Path.Combine(two, ".tokenizer-from-rank-0")));
    }

    [Fact]
    public void TwoRanksFineTuneLikeOneProcess()
    {
        var train = Path.Combine(_dir.FullName, "drinks.tsv");
        var random = new Random(1);
        File.WriteAllLines(train, ["sentence\tlabel", .. Enumerable.Range(0, 90).Select(_ =>
        {
            bool hot = random.Next(2) == 1;
            return $"{(random.Next(2) == 0 ? "she" : "they")} like {(hot ? "coffee" : "cheese")} {(random.Next(2) == 0 ? "outside" : "near the river")}\t{(hot ? "hot" : "cold")}";
        })]);
        var model = Path.Combine(SharedFixtures.HfReference, "models", "bert-uncased");
        string[] Finetune(string output) => ["finetune", "--model", model, "--train", train, "--validation", train, "--output", output,
            "--epochs", "2", "--lr", "3e-3", "--batch-size", "16", "--dropout", "0"];
        string one = Path.Combine(_dir.FullName, "ft-one"), two = Path.Combine(_dir.FullName, "ft-two");
        var single = Run(1, Finetune(one));
        Assert.True(single.Code == 0, single.Err);
        var pair = Run(2, Finetune(two));
        Assert.True(pair.Code == 0, pair.Err);
        // 90 rows in batches of 16: the last batch of 10 splits 5 and 5; every step's loss is one process's.
        var (a, b) = (MetricsLog.Read(Path.Combine(one, "metrics.jsonl")), MetricsLog.Read(Path.Combine(two, "metrics.jsonl")));
        Assert.Equal(a.Select(r => (r.Split, r.Step)), b.Select(r => (r.Split, r.Step)));
        foreach (var (x, y) in a.Zip(b).Where(p => p.First.Split == "train"))
        {
            Assert.True(Math.Abs(x.Values["loss"] - y.Values["loss"]) < 1e-5, $"step {x.Step}: {x.Values["loss"]} against {y.Values["loss"]}");
            Assert.Equal((1.0, 2.0), (x.Values["world_size"], y.Values["world_size"]));
        }
        var left = SafeTensors.Load(Path.Combine(one, "model.safetensors"));
        var right = SafeTensors.Load(Path.Combine(two, "model.safetensors"));
        // Attention key biases are left out: softmax ignores a constant per query, so their gradient is zero up to
        // rounding, and AdamW scales that rounding noise to full-size steps in one process as in two.
        foreach (var (name, tensor) in left.Where(p => !p.Key.EndsWith("key.bias", StringComparison.Ordinal)))
        {
            double difference = (tensor - right[name]).abs().max().item<float>();
            Assert.True(difference < 1e-5, $"{name}: max difference {difference}");
        }

    }

    [Fact]
    public void TwoRanksTrainEmbeddingsLikeOneProcess()
    {
        var model = Path.Combine(SharedFixtures.HfReference, "models", "bert-uncased");
        string[] Mirror(string output) => ["train-embeddings", "--model", model, "--train", Corpus, "--max-examples", "96", "--batch-size", "16",
            "--lr", "1e-4", "--dropout", "0", "--output", output];
        string one = Path.Combine(_dir.FullName, "emb-one"), two = Path.Combine(_dir.FullName, "emb-two");
        var single = Run(1, Mirror(one));
        Assert.True(single.Code == 0, single.Err);
        var pair = Run(2, Mirror(two));
        Assert.True(pair.Code == 0, pair.Err);
        var (a, b) = (MetricsLog.Read(Path.Combine(one, "metrics.jsonl")), MetricsLog.Read(Path.Combine(two, "metrics.jsonl")));
        Assert.Equal(6, b.Count(r => r.Split == "train"));
        Assert.Equal(a.Select(r => (r.Split, r.Step)), b.Select(r => (r.Split, r.Step)));
        foreach (var (x, y) in a.Zip(b).Where(p => p.First.Split == "train"))
        {
            Assert.True(Math.Abs(x.Values["loss"] - y.Values["loss"]) < 1e-5, $"step {x.Step}: {x.Values["loss"]} against {y.Values["loss"]}");
            Assert.Equal((1.0, 2.0), (x.Values["world_size"], y.Values["world_size"]));
        }
        Assert.True(File.Exists(Path.Combine(two, "modules.json")));
    }

    [Theory]
    [InlineData(2, 1)]
    [InlineData(1, 2)]
    public void AKilledRunResumesWithAnotherNumberOfRanks(int before, int after)
    {
        string whole = Path.Combine(_dir.FullName, "whole"), split = Path.Combine(_dir.FullName, "split");
        var uninterrupted = Run(1, Pretrain(whole, 16, "--save-steps", "8"));
        Assert.True(uninterrupted.Code == 0, uninterrupted.Err);

        // The run stops for good at the first checkpoint; anything it did after is lost, as in a crash.
        using (var process = Start(before, Pretrain(split, 16, "--save-steps", "8")))
        {
            var checkpoint = Path.Combine(split, "checkpoint-8");
            var clock = Stopwatch.StartNew();
            while (!Directory.Exists(checkpoint) && !process.HasExited && clock.Elapsed < TimeSpan.FromMinutes(2)) Thread.Sleep(20);
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
            Assert.True(Directory.Exists(checkpoint), "no checkpoint-8 was written");
        }
        Assert.False(File.Exists(Path.Combine(split, "model.safetensors")), "the run finished before it was killed");

        var resumed = Run(after, "pretrain", "--resume", split);
        Assert.True(resumed.Code == 0, resumed.Err);
        var (expected, actual) = (Losses(whole), Losses(split));
        Assert.Equal(expected.Select(l => l.Step), actual.Select(l => l.Step));
        for (int i = 0; i < expected.Count; i++) Assert.True(Math.Abs(expected[i].Loss - actual[i].Loss) < 1e-5, $"step {i + 1}: {expected[i].Loss} against {actual[i].Loss}");
        Assert.Equal(after, actual[^1].WorldSize);
        Assert.Equal(before, actual[0].WorldSize);
    }

    [Fact]
    public void ShardedBlimpScoringPrintsExactlyWhatOneProcessPrints()
    {
        var model = Path.Combine(SharedFixtures.HfReference, "models", "bert-uncased");
        var data = Path.Combine(SharedFixtures.Data, "blimp", "data");
        string report1 = Path.Combine(_dir.FullName, "one.json"), report2 = Path.Combine(_dir.FullName, "two.json");
        var one = Run(1, "eval", "blimp", "--model", model, "--data", data, "--limit", "20", "--skip-bad", "--json", "--report", report1);
        Assert.True(one.Code == 0, one.Err);
        var two = Run(2, "eval", "blimp", "--model", model, "--data", data, "--limit", "20", "--skip-bad", "--json", "--report", report2);
        Assert.True(two.Code == 0, two.Err);
        Assert.Equal(File.ReadAllBytes(report1), File.ReadAllBytes(report2));
        Assert.Equal(one.Out, two.Out);
        Assert.True(JsonDocument.Parse(File.ReadAllText(report1)).RootElement.GetProperty("overall").GetProperty("pairs").GetInt32() > 500);
    }

    [Fact]
    public void ShardedScoreEvalMlmAndEmbedPrintWhatOneProcessPrints()
    {
        var model = Path.Combine(SharedFixtures.HfReference, "models", "bert-uncased");
        string[][] commands =
        [
            ["eval", "mlm", "--model", model, "--corpus", Corpus, "--max-seq-length", "64", "--max-sequences", "300", "--json"],
            ["score", "--model", model, "--json", "--per-token", "the cat sat on the mat.", "a dog ran home.", "what is this", "alice was tired."],
            ["embed", "--model", model, "--json", "--normalize", "a cat", "the dog runs", "hello there", "x y z", "down the rabbit hole"],
        ];
        foreach (var command in commands)
        {
            var one = Run(1, command);
            Assert.True(one.Code == 0, one.Err);
            var two = Run(2, command);
            Assert.True(two.Code == 0, two.Err);
            Assert.False(string.IsNullOrWhiteSpace(one.Out));
            Assert.Equal(one.Out, two.Out);
        }
    }

    [Fact]
    public void AFailingRankStopsTheJobWithItsErrorAndTheLastCheckpointLoads()
    {
        // Rank 1 learns at another rate (MPMD launch), so the ranks' parameters differ after the first step; the check
        // every 6 steps stops the job, after the checkpoint of step 4.
        var output = Path.Combine(_dir.FullName, "drift");
        var common = Pretrain(output, 40, "--save-steps", "4", "--drift-check-steps", "6");
        var clock = Stopwatch.StartNew();
        var (code, _, stderr) = RunMpmd([[.. common, "--lr", "1e-3"], [.. common, "--lr", "3e-3"]]);
        Assert.NotEqual(0, code);
        Assert.Contains("drifted apart at step 6", stderr);
        Assert.True(clock.Elapsed < TimeSpan.FromMinutes(1), $"the job took {clock.Elapsed} to stop");
        Assert.False(File.Exists(Path.Combine(output, "model.safetensors")));
        var state = TrainerState.Load(Path.Combine(output, "checkpoint-4"));
        Assert.Equal(4, state.Step);
        using var loaded = Inference.MaskedLanguageModel.Load(Path.Combine(output, "checkpoint-4"));
        Assert.NotEmpty(loaded.Fill(["alice was [MASK]."]));

        // A rank that fails at once (here: an option only it was given) ends the others within seconds too.
        var (badCode, _, badErr) = RunMpmd([Pretrain(Path.Combine(_dir.FullName, "bad"), 5), [.. Pretrain(Path.Combine(_dir.FullName, "bad"), 5), "--no-such-option"]]);
        Assert.NotEqual(0, badCode);
        Assert.Contains("rank 1:", badErr);
        Assert.Contains("--no-such-option", badErr);
    }

    /// <summary>One rank per argument list: `mpiexec -n 1 dotnet cli A : -n 1 dotnet cli B`.</summary>
    static (int Code, string Out, string Err) RunMpmd(string[][] ranks)
    {
        var start = new ProcessStartInfo(Mpiexec) { RedirectStandardOutput = true, RedirectStandardError = true };
        for (int r = 0; r < ranks.Length; r++)
        {
            if (r > 0) start.ArgumentList.Add(":");
            foreach (var a in new[] { "-n", "1", "dotnet", Cli }.Concat(ranks[r])) start.ArgumentList.Add(a);
        }
        return Finish(Process.Start(start)!);
    }
}
