using TorchSharp;
using System.Diagnostics;
using Unmask.Checkpoints;
using Unmask.Generation;
using Unmask.Modeling;

/// <summary>
/// Each sampler on the same model and the same masked rows: forward passes (NFE), wall time, generated tokens/s.
/// A randomly initialised BERT-mini unless model=DIR names a folder; rows of 2 + length tokens, all but the ends masked.
/// </summary>
static class GenerationBench
{
    public static void Run(Dictionary<string, string> settings)
    {
        int batch = int.Parse(settings.GetValueOrDefault("batch", "4"));
        int length = int.Parse(settings.GetValueOrDefault("length", "128"));
        torch.manual_seed(0);
        using var model = settings.TryGetValue("model", out var dir) ? ModelLoader.Load(dir) : BertForMaskedLM.Create(BertConfig.Preset("mini", 16384));
        model.eval();
        var logits = new ModelLogits(model);
        const long mask = 4, cls = 2, sep = 3, pad = 0;
        var row = new[] { cls }.Concat(Enumerable.Repeat(mask, length)).Append(sep).ToArray();
        var input = new GenerationInput(Enumerable.Repeat(row, batch).ToList(), mask, pad, [pad, 1, cls, sep, mask]);
        Console.WriteLine($"{model.Architecture}, {batch} rows x {length} masked positions, threads {torch.get_num_threads()}");
        Console.WriteLine($"{"sampler",-28} {"steps",6} {"NFE",6} {"seconds",8} {"tokens/s",9}");
        var runs = new (string Name, SamplingOptions Options)[]
        {
            ("ancestral (cached)", new() { Sampler = SamplerKind.Ancestral, Steps = 1000, Seed = 1 }),
            ("ancestral (cached)", new() { Sampler = SamplerKind.Ancestral, Steps = 128, Seed = 1 }),
            ("ancestral remask eta=0.02", new() { Sampler = SamplerKind.Ancestral, Steps = 128, RemaskEta = 0.02, Seed = 1 }),
            ("confidence", new() { Sampler = SamplerKind.Confidence, Steps = 128, Seed = 1 }),
            ("confidence", new() { Sampler = SamplerKind.Confidence, Steps = 32, Seed = 1 }),
            ("confidence B=32", new() { Sampler = SamplerKind.Confidence, Steps = 8, BlockLength = 32, Seed = 1 }),
            ("dilated B=32", new() { Sampler = SamplerKind.Dilated, BlockLength = 32, Seed = 1 }),
            ("mask-predict", new() { Sampler = SamplerKind.MaskPredict, Steps = 10, Seed = 1 }),
        };
        // One untimed pass warms libtorch's kernels.
        Sampler.Generate(logits, input, runs[3].Options with { Steps = 2 });
        foreach (var (name, options) in runs)
        {
            var clock = Stopwatch.StartNew();
            var result = Sampler.Generate(logits, input, options);
            double seconds = clock.Elapsed.TotalSeconds;
            Console.WriteLine($"{name,-28} {(options.Sampler == SamplerKind.Dilated ? "-" : options.Steps.ToString()),6} {result.ForwardPasses,6} {seconds,8:F2} {batch * length / seconds,9:N0}");
        }
    }
}
