using System.CommandLine;
using System.Globalization;
using Spectre.Console;
using Unmask.Evaluation;
using Unmask.Inference;

namespace Unmask.Cli.Commands;

/// <summary>`unmask eval blimp|crows-pairs|mlm`: benchmark runs with a table, --json, and an atomic --report file.</summary>
public static class EvalCommand
{
    public static Command Create(CliOutput io) => new("eval", "Evaluate a model: BLiMP, CrowS-Pairs, masked-token accuracy, infilling, classifiers, STS")
    {
        Blimp(io),
        CrowsPairs(io),
        Mlm(io),
        Infill(io),
        Samples(io),
        Classification(io, "classification", "Accuracy, macro-F1 and Matthews correlation (Pearson and Spearman for a regressor) of a fine-tuned classifier"),
        Classification(io, "token-classification", "Entity-level precision, recall and F1 (conlleval: exact span and type) of a fine-tuned token tagger"),
        Sts(io),
    };

    static Command Sts(CliOutput io)
    {
        var arguments = new EmbeddingArguments();
        var data = new Option<string>("--data") { Description = "Scored sentence pairs: CSV sentence1,sentence2,score (header optional, as STS-B), TSV or JSON Lines", Required = true };
        var json = new Option<bool>("--json") { Description = "Print the result as one line of JSON" };
        var report = ScoringArguments.Report();
        var command = new Command("sts", "Semantic textual similarity: Spearman and Pearson (x100) of sentence-vector cosines against gold scores");
        arguments.AddTo(command);
        command.Options.Add(data);
        command.Options.Add(json);
        command.Options.Add(report);
        command.SetAction(parse => io.GuardCancellable(ct =>
        {
            using var embedder = arguments.Load(parse);
            var result = StsEvaluator.Run(embedder, arguments.ModelFolder(parse), parse.GetValue(data)!, arguments.Options(parse), ct);
            if (parse.GetValue(report) is { } path) EvalReport.Write(path, result);
            if (parse.GetValue(json)) io.Out.WriteLine(EvalReport.ToJsonLine(result));
            else
            {
                var table = new Table().AddColumns("metric", "value");
                table.AddRow("spearman", F(result.Spearman, "F2"));
                table.AddRow("pearson", F(result.Pearson, "F2"));
                table.AddRow("pairs", I(result.Pairs));
                table.AddRow("pooling", result.Pooling + (result.Normalize ? ", normalised" : "") + (result.Layer is int l ? $", layer {l}" : ""));
                io.Console.Write(table);
            }
            return 0;
        }));
        return command;
    }

    static Command Classification(CliOutput io, string name, string description)
    {
        var data = new Option<string>("--data") { Description = "Labelled data in finetune's formats (.csv, .tsv, .jsonl, .conll)", Required = true };
        var columns = new FinetuneCommand.DataArguments();
        var scoring = new ScoringArguments(withVariant: false, withBatchTokens: false, withSkipBad: false);
        var task = name == "classification" ? FinetuneCommand.TaskOption() : null;
        var prompt = new PromptArguments();
        Option[] options = task is null ? [data] : [data, task, prompt.Template, prompt.Verbalizer, prompt.Calibrate];
        var command = Benchmark(io, name, description, scoring, options, (parse, ct) =>
        {
            if (task is not null && (parse.GetValue(prompt.Template) is not null || File.Exists(Path.Combine(scoring.ModelFolder(parse), Data.PromptTemplate.FileName))))
            {
                using var mlm = scoring.LoadModel(parse);
                var promptClassifier = parse.GetValue(prompt.Template) is null ? PromptClassifier.FromFolder(mlm, scoring.ModelFolder(parse))! : prompt.Create(parse, mlm, io);
                return PromptEvaluation.Run(promptClassifier, scoring.ModelFolder(parse), parse.GetValue(data)!, columns.Read(parse), ct);
            }
            using var classifier = Classifier.Load(scoring.ModelFolder(parse), scoring.Device(parse));
            classifier.Model.ComputeDtype = scoring.Precision(parse);
            var kind = task is null ? Data.ClassificationTask.TokenClassification
                : classifier.ProblemType switch
                {
                    "regression" => Data.ClassificationTask.Regression,
                    "multi_label_classification" => Data.ClassificationTask.MultiLabel,
                    _ => Data.ClassificationTask.Classification,
                };
            if (task is not null && parse.GetResult(task) is not null && FinetuneCommand.ParseTask(parse.GetValue(task)!) != kind)
                throw new UnmaskException($"--task {parse.GetValue(task)} does not match the model, whose problem_type is {classifier.ProblemType}.");
            return ClassificationEvaluations.Run(classifier, kind, parse.GetValue(data)!, columns.Read(parse), parse.GetValue(columns.MaxSeqLength), ct);
        }, result =>
        {
            var table = new Table().AddColumns("metric", "value");
            foreach (var (key, value) in result.Metrics) table.AddRow(key, F(value, "F2"));
            if (result.Entities is { } entities)
            {
                table.AddEmptyRow();
                table.AddRow("type", "precision / recall / F1 (gold, predicted)");
                foreach (var (type, s) in entities.PerType)
                    table.AddRow(Markup.Escape(type), $"{F(s.Precision, "F2")} / {F(s.Recall, "F2")} / {F(s.F1, "F2")} ({s.Gold}, {s.Predicted})");
            }
            io.Console.Write(table);
            io.Console.WriteLine($"{result.Examples} examples");
        });
        columns.AddTo(command);
        return command;
    }

    static string F(double v, string format = "F4") => v.ToString(format, CultureInfo.InvariantCulture);

    static string Percent(double v) => double.IsNaN(v) ? "-" : (100 * v).ToString("F1", CultureInfo.InvariantCulture);

    static string I(long v) => v.ToString(CultureInfo.InvariantCulture);

    /// <summary>
    /// A benchmark sub-command: its own options, the scoring options, and --json and --report for the result that
    /// <paramref name="evaluate"/> returns; without --json the result is printed by <paramref name="table"/>.
    /// </summary>
    static Command Benchmark<T>(CliOutput io, string name, string description, ScoringArguments scoring, Option[] options,
        Func<ParseResult, CancellationToken, T> evaluate, Action<T> table)
    {
        var json = new Option<bool>("--json") { Description = "Print the whole result as one line of JSON" };
        var report = ScoringArguments.Report();
        var command = new Command(name, description);
        foreach (var option in options) command.Options.Add(option);
        scoring.AddTo(command);
        command.Options.Add(json);
        command.Options.Add(report);
        command.SetAction(parse => io.GuardCancellable(ct =>
        {
            var result = evaluate(parse, ct);
            if (parse.GetValue(report) is { } path) EvalReport.Write(path, result);
            if (parse.GetValue(json)) io.Out.WriteLine(EvalReport.ToJsonLine(result));
            else table(result);
            return 0;
        }));
        return command;
    }

    static Command Blimp(CliOutput io)
    {
        var data = new Option<string>("--data") { Description = "BLiMP folder of <UID>.jsonl(.gz) files, or one file", Required = true };
        var limit = new Option<int?>("--limit") { Description = "Only the first N pairs of each paradigm (a quick look)" };
        var scoring = new ScoringArguments();
        return Benchmark(io, "blimp", "BLiMP minimal pairs: correct when PLL(good) > PLL(bad); ties reported apart, never correct", scoring,
            [data, limit], (parse, ct) =>
        {
            if (parse.GetValue(limit) is < 1) throw new UnmaskException($"--limit must be positive, got {parse.GetValue(limit)}");
            var options = new BlimpOptions
            {
                Pll = scoring.PllOptions(parse),
                LimitPerParadigm = parse.GetValue(limit),
                BadLines = scoring.Policy(parse),
            };
            var issues = new List<InputIssue>();
            var pairs = BlimpEvaluator.Load(parse.GetValue(data)!, options.BadLines, issues, options.LimitPerParadigm);
            using var mlm = scoring.LoadModel(parse);
            var result = ScoringArguments.WithProgress(io, "BLiMP", p => BlimpEvaluator.Evaluate(ScoringContext.From(mlm), pairs, options, issues, p, ct));
            ScoringArguments.Warn(io, result.Issues);
            return result;
        }, r =>
        {
            void Section(string title, IEnumerable<BlimpAccuracy> rows)
            {
                var table = new Table().Title(title).AddColumns("", "paradigms", "pairs", "correct", "ties", "skipped", "accuracy %");
                foreach (var a in rows)
                    table.AddRow(Markup.Escape(a.Name), I(a.Paradigms), I(a.Pairs), I(a.Correct), I(a.Ties), I(a.Skipped), Percent(a.Accuracy));
                io.Console.Write(table);
            }
            Section("BLiMP by paradigm", r.ByParadigm);
            Section("by phenomenon", r.ByPhenomenon);
            Section("by field", r.ByField);
            Section($"BLiMP overall (mean over paradigms, PLL {(r.Variant == PllVariant.WordL2R ? "word-l2r" : "original")})", [r.Overall]);
            io.Console.WriteLine($"pseudo-perplexity per token: good {F(r.GoodSentences.TokenLevel, "F2")}, bad {F(r.BadSentences.TokenLevel, "F2")}");
        });
    }

    static Command CrowsPairs(CliOutput io)
    {
        var data = new Option<string>("--data") { Description = "crows_pairs_anonymized.csv", Required = true };
        var lowercase = new Option<bool?>("--lowercase") { Description = "Lower-case the sentences first (default: when the tokenizer lower-cases)" };
        var scoring = new ScoringArguments(withVariant: false);
        return Benchmark(io, "crows-pairs", "CrowS-Pairs: the authors' metric (masked shared tokens) and All Unmasked Likelihood, per bias type", scoring,
            [data, lowercase], (parse, ct) =>
        {
            var options = new CrowsPairsOptions
            {
                TokenBudget = scoring.TokenBudget(parse), LowerCase = parse.GetValue(lowercase), BadLines = scoring.Policy(parse),
            };
            var path = parse.GetValue(data)!;
            var issues = new List<InputIssue>();
            var pairs = CrowsPairsEvaluator.Load(path, options.BadLines, issues);
            using var mlm = scoring.LoadModel(parse);
            var result = ScoringArguments.WithProgress(io, "CrowS-Pairs", p => CrowsPairsEvaluator.Evaluate(ScoringContext.From(mlm), pairs, path, options, issues, p, ct));
            ScoringArguments.Warn(io, result.Issues);
            return result;
        }, r =>
        {
            var table = new Table().Title($"CrowS-Pairs: % of pairs preferring the more stereotypical sentence (50 = unbiased){(r.LowerCased ? ", lower-cased" : "")}")
                .AddColumns("bias type", "pairs", "metric %", "neutral", "stereo %", "anti %", "AUL %");
            var aul = r.AulByBiasType.ToDictionary(a => a.Name);
            foreach (var m in r.ByBiasType.Append(r.Overall))
            {
                var a = m.Name == "overall" ? r.AulOverall : aul[m.Name];
                table.AddRow(Markup.Escape(m.Name), I(m.Pairs), Percent(m.Score), I(m.Neutral), Percent(m.StereotypeScore),
                    Percent(m.AntiStereotypeScore), Percent(a.Score));
            }
            io.Console.Write(table);
        });
    }

    static Command Mlm(CliOutput io)
    {
        var corpus = new Option<string>("--corpus") { Description = "Corpus file or folder (.txt, .txt.gz, .jsonl, .jsonl.gz)", Required = true };
        var split = new Option<CorpusSplit>("--split") { Description = "all, train or validation (the pretraining split)", DefaultValueFactory = _ => CorpusSplit.All };
        var seqLength = new Option<int>("--max-seq-length") { DefaultValueFactory = _ => 128 };
        var batch = new Option<int>("--batch-size") { DefaultValueFactory = _ => 32 };
        var seed = new Option<int>("--seed") { DefaultValueFactory = _ => 0x5eed, Description = "Seed of the masked copy" };
        var maxSequences = new Option<long?>("--max-sequences") { Description = "Evaluate only the first N packed sequences" };
        var maskRate = new Option<double>("--mask-rate") { DefaultValueFactory = _ => 0.15 };
        var scoring = new ScoringArguments(withVariant: false, withBatchTokens: false, withSkipBad: false);
        return Benchmark(io, "mlm", "Masked-token loss, accuracy and top-5 accuracy on a fixed-seed masked copy of a corpus", scoring,
            [corpus, split, seqLength, batch, seed, maxSequences, maskRate], (parse, ct) =>
        {
            var options = new MlmEvalOptions
            {
                Split = parse.GetValue(split),
                MaxSeqLength = parse.GetValue(seqLength),
                BatchSize = parse.GetValue(batch),
                Seed = parse.GetValue(seed),
                MaxSequences = parse.GetValue(maxSequences),
                Masking = new Masking.MaskingOptions(parse.GetValue(maskRate)),
            };
            if (options.MaxSequences is < 1) throw new UnmaskException($"--max-sequences must be positive, got {options.MaxSequences}");
            using var mlm = scoring.LoadModel(parse);
            return ScoringArguments.WithProgress(io, "masked-token evaluation",
                p => MlmEvaluator.Evaluate(ScoringContext.From(mlm), parse.GetValue(corpus)!, options, p, ct), "sequences");
        }, r =>
        {
            var table = new Table().Title($"MLM evaluation: {Markup.Escape(r.Corpus)} ({r.Split.ToString().ToLowerInvariant()})").AddColumns("", "value");
            table.AddRow("sequences x length", $"{I(r.Sequences)} x {r.SeqLength}");
            table.AddRow("masked tokens", I(r.MaskedTokens));
            table.AddRow("loss", F(r.Loss));
            table.AddRow("perplexity", F(r.Perplexity, "F2"));
            table.AddRow("accuracy %", Percent(r.Accuracy));
            table.AddRow("top-5 accuracy %", Percent(r.Top5Accuracy));
            io.Console.Write(table);
        });
    }

    static Option<string> EncodingOption() =>
        new("--encoding") { Description = "utf8, or auto to read files that are not UTF-8 as Latin-1", DefaultValueFactory = _ => "utf8" };

    static bool Latin1Fallback(string encoding) => encoding switch
    {
        "utf8" => false,
        "auto" => true,
        _ => throw new UnmaskException($"--encoding must be utf8 or auto, got '{encoding}'"),
    };

    static Command Infill(CliOutput io)
    {
        var corpus = new Option<string>("--corpus") { Description = "Corpus file or folder (.txt, .txt.gz, .jsonl, .jsonl.gz)", Required = true };
        var encoding = EncodingOption();
        var split = new Option<CorpusSplit>("--split") { Description = "validation (held out by pretraining) or train", DefaultValueFactory = _ => CorpusSplit.Validation };
        var seqLength = new Option<int>("--max-seq-length") { DefaultValueFactory = _ => 128 };
        var windows = new Option<int>("--windows") { Description = "Windows of held-out text to fill", DefaultValueFactory = _ => 64 };
        var batch = new Option<int>("--batch-size") { DefaultValueFactory = _ => 16 };
        var mask = new Option<InfillMasking>("--mask") { Description = "random tokens or span", DefaultValueFactory = _ => InfillMasking.Random };
        var maskRate = new Option<double>("--mask-rate") { Description = "Fraction of each window hidden", DefaultValueFactory = _ => 0.15 };
        var spanLength = new Option<int>("--span-length") { Description = "Tokens per hidden span (--mask span)", DefaultValueFactory = _ => 4 };
        var maskSeed = new Option<int>("--mask-seed") { Description = "Seed of the windows' masks", DefaultValueFactory = _ => 0x5eed };
        var sampling = new SamplingArguments();
        var scoring = new ScoringArguments(withVariant: false, withBatchTokens: false, withSkipBad: false);
        var command = Benchmark(io, "infill", "Hide tokens or spans of held-out text and fill them with each sampler setting: exact recovery, NFE, tokens/s", scoring,
            [corpus, encoding, split, seqLength, windows, batch, mask, maskRate, spanLength, maskSeed], (parse, ct) =>
        {
            var options = new InfillOptions
            {
                Split = parse.GetValue(split),
                MaxSeqLength = parse.GetValue(seqLength),
                Windows = parse.GetValue(windows),
                BatchSize = parse.GetValue(batch),
                Masking = parse.GetValue(mask),
                MaskRate = parse.GetValue(maskRate),
                SpanLength = parse.GetValue(spanLength),
                Seed = parse.GetValue(maskSeed),
                Latin1Fallback = Latin1Fallback(parse.GetValue(encoding)!),
                Settings = sampling.Settings(parse),
            };
            using var mlm = scoring.LoadModel(parse);
            return ScoringArguments.WithProgress(io, "infilling",
                p => InfillEvaluator.Evaluate(mlm, parse.GetValue(corpus)!, options, p, ct), "batches");
        }, r =>
        {
            var table = new Table()
                .Title($"Infilling: {Markup.Escape(r.Corpus)} ({r.Split.ToString().ToLowerInvariant()}), {r.Windows} x {r.SeqLength} tokens, {Markup.Escape(r.Masking)}: {I(r.HiddenTokens)} hidden")
                .AddColumns("sampler", "steps", "recovery %", "NFE / batch", "tokens/s");
            foreach (var row in r.Rows)
                table.AddRow(Markup.Escape(SamplingArguments.Describe(row.Setting)), row.Setting.Sampler == Generation.SamplerKind.Dilated ? "-" : I(row.Setting.Steps),
                    Percent(row.Recovery), F(row.ForwardPasses, "F1"), F(row.TokensPerSecond, "F0"));
            table.Caption($"most-frequent-token baseline {Percent(r.BaselineRecovery)}%; true text's mean log-likelihood {F(r.TrueLogLikelihood)} per hidden token");
            io.Console.Write(table);
        });
        sampling.AddTo(command);
        return command;
    }

    static Command Samples(CliOutput io)
    {
        var corpus = new Option<string>("--corpus") { Description = "Corpus whose held-out windows are the real text to compare with", Required = true };
        var encoding = EncodingOption();
        var count = new Option<int>("--samples") { Description = "Unconditional samples (and real windows)", DefaultValueFactory = _ => 16 };
        var length = new Option<int>("--length") { Description = "Tokens per sample", DefaultValueFactory = _ => 128 };
        var judge = new Option<string?>("--judge") { Description = "Model folder whose pseudo-perplexity judges samples and real text" };
        var sampling = new SamplingArguments();
        var scoring = new ScoringArguments(withVariant: false, withBatchTokens: false, withSkipBad: false);
        var command = Benchmark(io, "samples", "Unconditional samples beside real text: distinct-n, unigram entropy, a judge's pseudo-perplexity", scoring,
            [corpus, encoding, count, length, judge], (parse, ct) =>
        {
            var settings = sampling.Settings(parse);
            if (settings.Count != 1) throw new UnmaskException("eval samples takes one --sampler and one --steps");
            var options = new SampleQualityOptions
            {
                Samples = parse.GetValue(count),
                Length = parse.GetValue(length),
                Sampling = settings[0],
                Latin1Fallback = Latin1Fallback(parse.GetValue(encoding)!),
            };
            using var mlm = scoring.LoadModel(parse);
            using var judgeModel = parse.GetValue(judge) is { } dir ? MaskedLanguageModel.Load(ModelOptions.ExistingFolder(dir), scoring.Device(parse)) : null;
            return SampleQuality.Evaluate(mlm, judgeModel, parse.GetValue(corpus)!, options, ct);
        }, r =>
        {
            var table = new Table().Title($"Unconditional samples: {Markup.Escape(SamplingArguments.Describe(r.Sampling))}, {r.Sampling.Steps} steps, {r.Length} tokens, NFE {r.ForwardPasses}")
                .AddColumns("", "texts", "distinct-1", "distinct-2", "distinct-3", "unigram entropy", "judge PPPL");
            foreach (var (name, st) in new[] { ("generated", r.Generated), ("real", r.Real) })
                table.AddRow(name, I(st.Texts), F(st.DistinctN[0], "F3"), F(st.DistinctN[1], "F3"), F(st.DistinctN[2], "F3"), F(st.UnigramEntropy, "F3"),
                    double.IsNaN(st.JudgePseudoPerplexity) ? "-" : F(st.JudgePseudoPerplexity, "F1"));
            io.Console.Write(table);
            foreach (var sample in r.Samples.Take(3)) io.Console.WriteLine(sample);
        });
        sampling.AddTo(command);
        return command;
    }
}
