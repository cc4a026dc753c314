using System.Diagnostics;
using TorchSharp;
using Unmask.Evaluation;
using Unmask.Modeling;
using Unmask.Tokenization;
using static TorchSharp.torch;

/// <summary>
/// Batched PLL scoring against the plain loop (one masked copy per forward pass, logits at every position) on the same
/// randomly initialised model and the same sentences: BLiMP's good sentences, bert-base-uncased's tokenizer.
/// </summary>
static class PllBench
{
    public static void Run(Dictionary<string, string> settings)
    {
        string shared = settings.GetValueOrDefault("shared") ?? FindShared();
        string size = settings.GetValueOrDefault("size", "mini");
        int count = int.Parse(settings.GetValueOrDefault("sentences", "200"));
        int loopCount = int.Parse(settings.GetValueOrDefault("loop-sentences", Math.Min(count, 40).ToString()));
        int[] budgets = settings.GetValueOrDefault("batch-tokens", new PllOptions().TokenBudget.ToString()).Split(',').Select(int.Parse).ToArray();
        var precisions = settings.GetValueOrDefault("precision", "fp32,bf16").Split(',')
            .Select(p => p == "bf16" ? ComputeDtype.BFloat16 : p == "fp32" ? ComputeDtype.Float32 : throw new ArgumentException($"precision {p}: fp32 or bf16")).ToArray();

        var tokenizer = TokenizerLoader.Load(Path.Combine(shared, "fixtures", "bert-base-uncased-tokenizer"));
        var issues = new List<InputIssue>();
        // One pair from each paradigm in turn, so the sentences cover BLiMP's range of lengths.
        var pairs = BlimpEvaluator.Load(Path.Combine(shared, "data", "blimp", "data"), BadLinePolicy.Fail, issues, (count + 66) / 67);
        var sentences = pairs.GroupBy(p => p.Uid).SelectMany(g => g.Select((p, i) => (p.Good, i))).OrderBy(x => x.i).Select(x => x.Good).Take(count).ToList();

        torch.manual_seed(0);
        using var model = BertForMaskedLM.Create(BertConfig.Preset(size, tokenizer.VocabSize));
        model.eval();
        var context = new ScoringContext(tokenizer, new MaskedLmScoringModel(model));
        int threads = torch.get_num_threads();
        Console.WriteLine($"PLL: BERT {size} (vocab {tokenizer.VocabSize}, {model.ParameterCount:N0} parameters), {threads} threads, BLiMP good sentences");

        var loopSentences = sentences.Take(loopCount).ToList();
        Loop(context, loopSentences.Take(2).ToList()); // warm-up
        var clock = Stopwatch.StartNew();
        var loop = Loop(context, loopSentences);
        double loopRate = loopSentences.Count / clock.Elapsed.TotalSeconds;
        Console.WriteLine($"loop (one copy per forward, logits at every position): {loopSentences.Count} sentences in {clock.Elapsed.TotalSeconds:F2} s = {loopRate:F2} sentences/s");

        foreach (var precision in precisions)
            foreach (var budget in budgets)
            {
                model.ComputeDtype = precision;
                var scorer = new PllScorer(context, new PllOptions { TokenBudget = budget });
                scorer.Score(sentences.Take(8).ToList()); // warm-up
                clock.Restart();
                var batched = scorer.Score(sentences);
                double seconds = clock.Elapsed.TotalSeconds;
                long copies = batched.Sum(r => (long)r.NumScored);
                double worst = 0;
                for (int i = 0; i < loop.Count; i++) worst = Math.Max(worst, Math.Abs(loop[i] - batched[i].Pll));
                double rate = sentences.Count / seconds;
                string name = precision == ComputeDtype.BFloat16 ? "bf16" : "fp32";
                Console.WriteLine($"batched {name}, budget {budget} tokens, head at masked positions only: {sentences.Count} sentences ({copies:N0} copies) in {seconds:F2} s = {rate:F2} sentences/s; speed-up {rate / loopRate:F1}x; max |PLL difference| vs fp32 loop {worst:E1}");
            }
        model.ComputeDtype = ComputeDtype.Float32;
    }

    /// <summary>The plain implementation: for each token, one forward pass of the whole masked copy.</summary>
    static List<double> Loop(ScoringContext context, IReadOnlyList<string> sentences)
    {
        var totals = new List<double>();
        using var mode = inference_mode();
        foreach (var sentence in sentences)
        {
            var encoding = context.Tokenizer.Encode(sentence);
            double total = 0;
            for (int p = 0; p < encoding.InputIds.Length; p++)
            {
                if (encoding.SpecialTokensMask[p]) continue;
                using var scope = NewDisposeScope();
                var ids = encoding.InputIds.Select(i => (long)i).ToArray();
                ids[p] = context.Tokenizer.MaskId;
                var input = tensor(ids, [1, ids.Length]); // [1, seq]
                var all = ones_like(input).to(ScalarType.Bool); // every position, as a plain forward pass computes
                var logits = context.Model.LogitsAt(input, ones_like(input), zeros_like(input), all); // [seq, vocab]
                total += logits[p].log_softmax(-1)[encoding.InputIds[p]].item<float>();
            }
            totals.Add(total);
        }
        return totals;
    }

    static string FindShared()
    {
        var env = Environment.GetEnvironmentVariable("UNMASK_SHARED");
        if (!string.IsNullOrEmpty(env)) return env;
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
            for (var dir = new DirectoryInfo(start); dir != null; dir = dir.Parent)
                if (Directory.Exists(Path.Combine(dir.FullName, "shared", "data", "blimp"))) return Path.Combine(dir.FullName, "shared");
        throw new DirectoryNotFoundException("shared data not found: pass shared=PATH or set UNMASK_SHARED");
    }
}
