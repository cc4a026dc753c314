using System.Text;
using Unmask.Checkpoints;
using Unmask.Data;
using Unmask.Evaluation;
using Unmask.Inference;
using Unmask.Modeling;
using Unmask.Training;
using static Unmask.Tests.BertReferenceFixtures;

namespace Unmask.Tests;

/// <summary>
/// Fine-tuning the tiny BERT fixture on synthetic tasks whose rule is a keyword: each task is learnt, the saved
/// folder predicts what evaluation measured, a killed run resumes to the same metrics, and bad input is refused.
/// </summary>
[Collection(nameof(BertProcessWideTests))]
public sealed class FineTuningTests : IDisposable
{
    readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("unmask-finetune");

    public void Dispose() => _dir.Delete(recursive: true);

    static readonly string[] Subjects = ["the cat", "the dog", "my friends", "the farmers", "she", "they", "the children", "people"];
    static readonly string[] Places = ["in the kitchen", "near the river", "at the market", "by the coast", "in the garden", "outside"];

    /// <summary>Sentences whose label is the drink they name: coffee → 1, honey or cheese → 0.</summary>
    string SentimentFile(string name, int count, int seed)
    {
        var random = new Random(seed);
        var text = new StringBuilder("sentence\tlabel\n");
        for (int i = 0; i < count; i++)
        {
            bool positive = random.Next(2) == 1;
            var thing = positive ? "coffee" : random.Next(2) == 0 ? "honey" : "cheese";
            text.Append($"{Subjects[random.Next(Subjects.Length)]} like {thing} {Places[random.Next(Places.Length)]}\t{(positive ? 1 : 0)}\n");
        }
        var path = Path.Combine(_dir.FullName, name);
        File.WriteAllText(path, text.ToString());
        return path;
    }

    /// <summary>Sentences tagged B-food/I-food on food words ("creme brulee" is two words of one entity).</summary>
    string NerFile(string name, int count, int seed)
    {
        var random = new Random(seed);
        string[][] foods = [["bread"], ["cheese"], ["honey"], ["apples"], ["creme", "brulee"], ["beans"]];
        var text = new StringBuilder();
        for (int i = 0; i < count; i++)
        {
            foreach (var word in Subjects[random.Next(Subjects.Length)].Split(' ')) text.Append($"{word}\tO\n");
            text.Append("like\tO\n");
            var food = foods[random.Next(foods.Length)];
            for (int w = 0; w < food.Length; w++) text.Append($"{food[w]}\t{(w == 0 ? "B-food" : "I-food")}\n");
            foreach (var word in Places[random.Next(Places.Length)].Split(' ')) text.Append($"{word}\tO\n");
            text.Append('\n');
        }
        var path = Path.Combine(_dir.FullName, name);
        File.WriteAllText(path, text.ToString());
        return path;
    }

    FineTuneOptions Options(string output, string train, string validation, ClassificationTask task = ClassificationTask.Classification) => new()
    {
        ModelDir = ModelDir("bert-uncased"),
        TrainPath = train,
        ValidationPath = validation,
        OutputDir = Path.Combine(_dir.FullName, output),
        Task = task,
        Epochs = 4,
        LearningRate = 3e-3,
        BatchSize = 16,
        Seed = 5,
    };

    [Fact]
    public void ASequenceClassifierLearnsTheKeywordRuleAndItsFolderPredictsWhatEvaluationMeasured()
    {
        var options = Options("sst", SentimentFile("train.tsv", 160, 1), SentimentFile("dev.tsv", 60, 2));
        var result = FineTuner.Run(options);
        Assert.NotNull(result.Best);
        Assert.True(result.Best!.Metrics["accuracy"] >= 90, $"accuracy {result.Best.Metrics["accuracy"]}");
        Assert.Equal(["0", "1"], result.Labels);
        Assert.Empty(Directory.GetDirectories(result.OutputDir));
        Assert.True(File.Exists(Path.Combine(result.OutputDir, "training.png")));
        Assert.Contains(MetricsLog.Read(Path.Combine(result.OutputDir, "metrics.jsonl")), r => r.Split == "validation" && r.Values.ContainsKey("mcc"));

        using var classifier = Classifier.Load(result.OutputDir);
        Assert.Equal("BertForSequenceClassification", classifier.Model.Architecture);
        var report = ClassificationEvaluations.Run(classifier, ClassificationTask.Classification, options.ValidationPath!, new DataColumns(), 128);
        Assert.Equal(result.Best.Metrics["accuracy"], report.Accuracy!.Value, 9);
        var predictions = classifier.Predict([("the dog like coffee at the market", null), ("she like honey outside", null)]);
        Assert.Equal(["1", "0"], predictions.Select(p => p.Label));
        Assert.All(predictions, p => Assert.Equal(1.0, p.Scores!.Values.Sum(), 5));
    }

    [Fact]
    public void ATokenClassifierLearnsToTagEntitiesWordByWord()
    {
        var options = Options("ner", NerFile("train.conll", 120, 3), NerFile("dev.conll", 40, 4), ClassificationTask.TokenClassification) with { Epochs = 10 };
        var result = FineTuner.Run(options);
        Assert.True(result.Best!.Metrics["f1"] >= 90, $"entity F1 {result.Best.Metrics["f1"]}");
        Assert.Equal(["O", "B-food", "I-food"], result.Labels);

        using var classifier = Classifier.Load(result.OutputDir);
        Assert.Equal("BertForTokenClassification", classifier.Model.Architecture);
        var tagged = classifier.PredictTokens(["the cat like creme brulee near the river"])[0];
        var entity = Assert.Single(tagged.Entities);
        Assert.Equal(("food", "creme brulee"), (entity.EntityGroup, entity.Word));
        Assert.Equal("the cat like ".Length, entity.Start);
    }

    [Fact]
    public void ARegressorLearnsAScoreAndReportsCorrelations()
    {
        var random = new Random(9);
        string File(string name, int count)
        {
            var text = new StringBuilder("sentence,score\n");
            for (int i = 0; i < count; i++)
            {
                int cats = random.Next(4);
                text.Append($"{string.Join(" and ", Enumerable.Repeat("cat", cats).Append("dog"))} {Places[random.Next(Places.Length)]},{cats}.0\n");
            }
            var path = Path.Combine(_dir.FullName, name);
            System.IO.File.WriteAllText(path, text.ToString());
            return path;
        }
        var result = FineTuner.Run(Options("reg", File("train.csv", 160), File("dev.csv", 60), ClassificationTask.Regression) with { Epochs = 12 });
        Assert.True(result.Best!.Metrics["spearman"] >= 80, $"spearman {result.Best.Metrics["spearman"]}");
        using var classifier = Classifier.Load(result.OutputDir);
        Assert.Equal("regression", classifier.ProblemType);
        var values = classifier.Predict([("dog outside", null), ("cat and cat and cat and dog outside", null)]).Select(p => p.Value!.Value).ToList();
        Assert.True(values[1] > values[0], $"predicted {values[0]} and {values[1]}");
    }

    [Fact]
    public void AKilledRunResumesToTheUninterruptedMetrics()
    {
        var train = SentimentFile("train.tsv", 96, 11);
        var dev = SentimentFile("dev.tsv", 40, 12);
        var baseOptions = Options("whole", train, dev) with { Epochs = 2, EvalEvery = 4, LearningRate = 1e-3 };
        var whole = FineTuner.Run(baseOptions);

        var interrupted = baseOptions with { OutputDir = Path.Combine(_dir.FullName, "interrupted") };
        using var cancel = new CancellationTokenSource();
        var progress = new SyncProgress<FineTuneProgress>(p =>
        {
            if (p.Phase == "evaluated" && p.Step == 4) cancel.Cancel();
        });
        Assert.Throws<OperationCanceledException>(() => FineTuner.Run(interrupted, progress, cancel.Token));
        Assert.Single(Directory.GetDirectories(interrupted.OutputDir, "checkpoint-*"));
        var resumed = FineTuner.Resume(interrupted.OutputDir);

        Assert.Equal(whole.History.Select(h => (h.Step, h.Metrics["accuracy"])), resumed.History.Select(h => (h.Step, h.Metrics["accuracy"])));
        Assert.Equal(whole.Best!.Step, resumed.Best!.Step);
        Assert.Equal(File.ReadAllLines(Path.Combine(whole.OutputDir, "metrics.jsonl")), File.ReadAllLines(Path.Combine(resumed.OutputDir, "metrics.jsonl")));
        var a = SafeTensors.Load(Path.Combine(whole.OutputDir, ModelFolder.WeightsFileName));
        var b = SafeTensors.Load(Path.Combine(resumed.OutputDir, ModelFolder.WeightsFileName));
        Assert.All(a, p => Assert.Equal(p.Value.data<float>().ToArray(), b[p.Key].data<float>().ToArray()));
    }

    [Fact]
    public void PetTrainsTheMaskedLmHeadOnThePatternAndSavesIt()
    {
        var verbalizer = Path.Combine(_dir.FullName, "words.json");
        File.WriteAllText(verbalizer, "{\"0\": \"cold\", \"1\": \"warm\"}");
        var options = Options("pet", SentimentFile("train.tsv", 160, 41), SentimentFile("dev.tsv", 40, 42)) with
        {
            Task = ClassificationTask.Prompt,
            Template = "{text} it was [MASK] .",
            VerbalizerPath = verbalizer,
            Epochs = 6,
        };
        var result = FineTuner.Run(options);
        Assert.True(result.Best!.Metrics["accuracy"] >= 90, $"accuracy {result.Best.Metrics["accuracy"]}");
        Assert.True(File.Exists(Path.Combine(result.OutputDir, PromptTemplate.FileName)));

        // The saved folder is a masked LM whose prompt.json scores it as training evaluated it.
        using var mlm = MaskedLanguageModel.Load(result.OutputDir);
        var prompt = PromptClassifier.FromFolder(mlm, result.OutputDir)!;
        var report = PromptEvaluation.Run(prompt, result.OutputDir, options.ValidationPath!, new DataColumns());
        Assert.Equal(result.Best.Metrics["accuracy"], report.Accuracy!.Value, 9);

        File.WriteAllText(verbalizer, "{\"0\": \"cold\", \"1\": \"coffees\"}");
        var split = Assert.Throws<UnmaskException>(() => FineTuner.Run(options with { OutputDir = Path.Combine(_dir.FullName, "pet2") }));
        Assert.Contains("coffee ##s", split.Message);
    }

    [Fact]
    public void ALinearProbeTrainsOnlyTheHead()
    {
        var options = Options("probe", SentimentFile("train.tsv", 64, 21), SentimentFile("dev.tsv", 20, 22)) with { FreezeEncoder = true, Epochs = 1 };
        FineTuner.Run(options);
        var before = SafeTensors.Load(Path.Combine(ModelDir("bert-uncased"), ModelFolder.WeightsFileName));
        var after = SafeTensors.Load(Path.Combine(options.OutputDir, ModelFolder.WeightsFileName));
        Assert.All(after.Where(p => p.Key.StartsWith("bert.", StringComparison.Ordinal) && !p.Key.StartsWith("bert.pooler.", StringComparison.Ordinal)),
            p => Assert.Equal(before[p.Key].data<float>().ToArray(), p.Value.data<float>().ToArray()));
        using var fresh = ModelLoader.LoadWithReport(ModelDir("bert-uncased"), HeadKind.SequenceClassification).Model;
        Assert.NotEqual(fresh.state_dict()["classifier.weight"].data<float>().ToArray(), after["classifier.weight"].data<float>().ToArray());
    }

    [Fact]
    public void DropoutIsWrittenIntoTheFineTunedConfigAndChecked()
    {
        var train = SentimentFile("train.tsv", 32, 21);
        var dev = SentimentFile("dev.tsv", 16, 22);
        var result = FineTuner.Run(Options("dropout", train, dev) with { Epochs = 1, Dropout = 0.25 });
        var config = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(result.OutputDir, "config.json")))!;
        Assert.Equal(0.25, (double)config["hidden_dropout_prob"]!);
        Assert.Equal(0.25, (double)config["attention_probs_dropout_prob"]!);
        Assert.Contains("--dropout must be in [0, 1)", Assert.Throws<UnmaskException>(() => FineTuner.Run(Options("bad", train, dev) with { Dropout = 1.5 })).Message);
        Assert.Contains("--dropout is not supported for 'modernbert'",
            Assert.Throws<UnmaskException>(() => FineTuner.Run(Options("mb", train, dev) with { ModelDir = ModelDir("modernbert"), Dropout = 0.1 })).Message);
    }

    [Fact]
    public void BadLabelsAndContinuationsAreRefusedWithFileAndLine()
    {
        var train = SentimentFile("train.tsv", 32, 31);
        var dev = Path.Combine(_dir.FullName, "dev.tsv");
        File.WriteAllText(dev, "sentence\tlabel\nthe cat like coffee\t1\nthe dog like honey\t2\n");
        var unknown = Assert.Throws<UnmaskException>(() => FineTuner.Run(Options("unknown", train, dev) with { Epochs = 1 }));
        Assert.Contains("dev.tsv:3", unknown.Message);
        Assert.Contains("'2'", unknown.Message);

        // A two-label classifier cannot continue on three labels.
        var first = FineTuner.Run(Options("two", train, null!) with { Epochs = 1 });
        var three = Path.Combine(_dir.FullName, "three.tsv");
        File.WriteAllText(three, "sentence\tlabel\nthe cat like coffee\t1\nthe dog like honey\t0\nshe like cheese\t2\n");
        var more = Assert.Throws<UnmaskException>(() => FineTuner.Run(Options("more", three, null!) with { ModelDir = first.OutputDir, Epochs = 1 }));
        Assert.Contains("num_labels 2", more.Message);

        Assert.Throws<UnmaskException>(() => FineTuner.Run(Options("two", train, null!) with { Epochs = 1 }));
    }
}
