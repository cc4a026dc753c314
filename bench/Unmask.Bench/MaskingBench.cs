using System.Diagnostics;
using TorchSharp;
using Unmask.Data;
using Unmask.Masking;
using Unmask.Modeling;
using Unmask.Tokenization;
using Unmask.Training;
using static TorchSharp.torch;

/// <summary>
/// The cost of every masking strategy on one training batch of the default corpus, against the time of one mini bf16
/// training step on the same batch shape: the share of step time the trainer spends masking.
/// </summary>
static class MaskingBench
{
    public static void Run(Dictionary<string, string> settings)
    {
        int batch = int.Parse(settings.GetValueOrDefault("batch", "16"));
        int seq = int.Parse(settings.GetValueOrDefault("seq", "128"));
        int batches = int.Parse(settings.GetValueOrDefault("batches", "200"));
        int steps = int.Parse(settings.GetValueOrDefault("steps", "8"));
        string size = settings.GetValueOrDefault("size", "mini");

        var corpus = Corpus.Load(settings.GetValueOrDefault("corpus"), default, latin1Fallback: true);
        var tokenizer = WordPieceTrainer.Train(corpus.Train, new WordPieceTrainerOptions());
        var documents = corpus.Train.AsParallel().AsOrdered().Select(l => tokenizer.Encode(l, addSpecialTokens: false).InputIds).ToList();
        var vocab = MaskingVocabulary.FromTokenizer(tokenizer, tokenizer.VocabSize);
        var boundaries = WordBoundaries.FromTokenizer(tokenizer, vocab);
        var sample = Pack(documents, batch, seq, batches, tokenizer.ClsId, tokenizer.SepId);
        Console.WriteLine($"corpus {corpus.Name}: {documents.Sum(d => (long)d.Length):N0} tokens; {sample.Count} batches of {batch} x {seq}");

        double stepMs = StepMilliseconds(size, vocab, batch, seq, steps, sample[0]);
        Console.WriteLine($"one {size} bf16 training step: {stepMs:F0} ms ({torch.get_num_threads()} threads)");
        Console.WriteLine();
        Console.WriteLine($"{"strategy",-11} {"ms/batch",9} {"% of step",10} {"selected",9}");

        var tokenStatistics = CorpusStatistics.Compute(documents, boundaries, null);
        foreach (var name in MaskingStrategies.Names)
        {
            var options = new MaskingOptions { Strategy = name };
            var statistics = name == MaskingStrategies.Pmi ? CorpusStatistics.Compute(documents, boundaries, options.Pmi)
                : name == MaskingStrategies.Weighted ? tokenStatistics : null;
            var strategy = MaskingStrategies.Create(options, vocab, boundaries, statistics);
            var rng = new Random(1);
            long selected = 0, tokens = 0;
            foreach (var ids in sample.Take(10)) strategy.Apply(ids, batch, seq, rng, 0.5); // warm-up
            var clock = Stopwatch.StartNew();
            foreach (var ids in sample)
            {
                selected += strategy.Apply(ids, batch, seq, rng, 0.5).SelectedCount;
                tokens += ids.Length;
            }
            double ms = clock.Elapsed.TotalMilliseconds / sample.Count;
            Console.WriteLine($"{name,-11} {ms,9:F3} {ms / stepMs,10:P2} {(double)selected / tokens,9:P1}");
        }
    }

    /// <summary>Documents concatenated into [CLS] … [SEP] rows of <paramref name="seq"/> tokens, as the trainer packs them.</summary>
    static List<long[]> Pack(List<int[]> documents, int batch, int seq, int batches, int cls, int sep)
    {
        var result = new List<long[]>();
        var current = new long[batch * seq];
        int filled = 0;
        foreach (var token in documents.SelectMany(d => d))
        {
            int column = filled % seq;
            if (column == 0) current[filled++] = cls;
            current[filled++] = token;
            if (filled % seq == seq - 1) current[filled++] = sep;
            if (filled < current.Length) continue;
            result.Add(current);
            if (result.Count == batches) break;
            current = new long[batch * seq];
            filled = 0;
        }
        return result;
    }

    static double StepMilliseconds(string size, MaskingVocabulary vocab, int batch, int seq, int steps, long[] ids)
    {
        torch.manual_seed(0);
        using var model = BertForMaskedLM.Create(BertConfig.Preset(size, vocab.VocabSize), ComputeDtype.BFloat16);
        model.train();
        var named = model.named_parameters().Select(p => (p.name, (Tensor)p.parameter)).ToList();
        using var optimizer = new AdamW(AdamW.DecayGroups(named, 0.01));
        var masked = new RandomMasking(new MaskingOptions(), vocab).Apply(ids, batch, seq, new Random(1), 0);
        var clock = new Stopwatch();
        for (int step = 0; step < steps + 2; step++)
        {
            if (step == 2) clock.Start();
            using var scope = NewDisposeScope();
            var input = tensor(masked.InputIds, new long[] { batch, seq }); // [batch, seq]
            var labels = tensor(masked.Labels, new long[] { batch, seq }); // [batch, seq]
            using var output = model.Forward(input, labels: labels, positions: labels.ne(-100));
            output.Loss!.backward();
            nn.utils.clip_grad_norm_(model.parameters(), 1.0);
            optimizer.StepWith(1e-4);
            model.zero_grad();
        }
        return clock.Elapsed.TotalMilliseconds / steps;
    }
}
