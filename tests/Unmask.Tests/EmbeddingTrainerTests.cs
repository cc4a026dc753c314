using System.Text.Json.Nodes;
using Unmask.Checkpoints;
using Unmask.Inference;
using Unmask.Training;

namespace Unmask.Tests;

/// <summary>Mirror-BERT and pairs training on the tiny reference BERT: the loss falls, the output is a
/// sentence-transformers folder the embedder reads with its pooling, and bad input is refused.</summary>
[Collection(nameof(BertProcessWideTests))]
public sealed class EmbeddingTrainerTests : IDisposable
{
    readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("unmask-train-embed");

    public void Dispose() => _dir.Delete(recursive: true);

    static readonly string Model = Path.Combine(SharedFixtures.HfReference, "models", "bert-uncased");

    static readonly string[] Animals = ["cat", "dog", "horse", "bird", "fish", "goat", "sheep", "mouse"];
    static readonly string[] Places = ["in the garden", "near the river", "on the hill", "under the bridge"];

    string Write(string name, IEnumerable<string> lines)
    {
        var path = Path.Combine(_dir.FullName, name);
        File.WriteAllLines(path, lines);
        return path;
    }

    [Fact]
    public void MirrorTrainingLowersTheLossAndWritesASentenceTransformersFolder()
    {
        var sentences = Animals.SelectMany(a => Places.Select(p => $"the {a} sleeps quietly {p} today.")).ToList();
        var train = Write("corpus.txt", sentences);
        var validation = Write("sts.csv", Animals.Take(6).Select((a, i) => $"the {a} sleeps.,a {a} is asleep.,{i % 3 + 2}"));
        var output = Path.Combine(_dir.FullName, "mirror");
        var result = EmbeddingTrainer.Run(new EmbeddingTrainingOptions
        {
            ModelDir = Model, TrainPath = train, OutputDir = output, ValidationPath = validation,
            Epochs = 4, BatchSize = 16, LearningRate = 1e-3, Temperature = 0.05, SpanMask = 2, Seed = 3,
        });
        int held = Data.Corpus.Load(train).Train.Count; // the corpus keeps one line in a hundred for validation
        Assert.Equal(held, result.Examples);
        Assert.Equal(4 * ((held + 15) / 16), result.Steps);
        Assert.Equal(5, result.Validation.Count);
        Assert.Equal(0, result.Validation[0].Step);

        var losses = MetricsLog.Read(Path.Combine(output, "metrics.jsonl")).Where(r => r.Split == "train").Select(r => r.Values["loss"]).ToList();
        Assert.True(losses.Skip(6).Average() < losses.Take(2).Average(), $"losses {string.Join(", ", losses)}");
        Assert.True(File.Exists(Path.Combine(output, "training.png")));

        Assert.Equal(new SentenceTransformersConfig(Pooling.Mean, true, 64, 32), SentenceTransformersFolder.Read(output));
        Assert.Equal("BertModel", (string)JsonNode.Parse(File.ReadAllText(Path.Combine(output, "config.json")))!["architectures"]![0]!);
        using var trained = SentenceEmbedder.Load(output);
        using var original = SentenceEmbedder.Load(Model);
        var after = trained.Embed(["the cat sleeps quietly on the hill today."])[0];
        var before = original.Embed(["the cat sleeps quietly on the hill today."], new EmbeddingOptions(Pooling.Mean, Normalize: true))[0];
        Assert.Equal(1.0, Math.Sqrt(after.Sum(v => (double)v * v)), 5);
        Assert.NotEqual(before, after);
    }

    [Fact]
    public void PairsTakeTheScoredPairsAboveTheThresholdAndRefuseBadInput()
    {
        var scored = Write("stsb.csv", Animals.Select((a, i) => $"\"a {a}, resting\",the {a} rests,{i * 0.7:F1}"));
        var output = Path.Combine(_dir.FullName, "pairs");
        var options = new EmbeddingTrainingOptions
        {
            ModelDir = Model, TrainPath = scored, OutputDir = output, Objective = EmbeddingObjective.Pairs, MinScore = 2.0,
            BatchSize = 4, LearningRate = 1e-3,
        };
        var result = EmbeddingTrainer.Run(options);
        Assert.Equal(Enumerable.Range(0, Animals.Length).Count(i => i * 0.7 >= 2.0), result.Examples);

        var rows = Write("rows.csv", ["anchor,positive,negative", "a cat,the cat,a stone", "a dog,the dog", "a bird"]);
        var error = Assert.Throws<UnmaskException>(() => EmbeddingTrainer.Run(options with { TrainPath = rows, MinScore = null }));
        Assert.Equal($"{rows}:4: 1 field(s); expected anchor, positive and optionally negative.", error.Message);
        Assert.Contains("--batch-size must be at least 2", Assert.Throws<UnmaskException>(() => EmbeddingTrainer.Run(options with { BatchSize = 1 })).Message);
        var tooFew = Write("few.csv", ["a cat,the cat"]);
        Assert.Contains("1 example(s)", Assert.Throws<UnmaskException>(() => EmbeddingTrainer.Run(options with { TrainPath = tooFew, MinScore = null })).Message);
    }
}
