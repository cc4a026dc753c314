using System.Text;
using System.Text.Json;

namespace Unmask.Tests;

/// <summary>`finetune`, `predict`, `eval classification|token-classification` and `classify` through the command line.</summary>
public sealed class ClassificationCliTests : IDisposable
{
    readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("unmask-classify-cli");

    public void Dispose() => _dir.Delete(recursive: true);

    static string Model(string name) => Path.Combine(SharedFixtures.HfReference, "models", name);

    string Write(string name, string content)
    {
        var path = Path.Combine(_dir.FullName, name);
        File.WriteAllText(path, content);
        return path;
    }

    string Drinks(string name, int count, int seed)
    {
        var random = new Random(seed);
        var text = new StringBuilder("sentence\tlabel\n");
        for (int i = 0; i < count; i++)
        {
            bool hot = random.Next(2) == 1;
            text.Append($"{(random.Next(2) == 0 ? "she" : "they")} like {(hot ? "coffee" : "cheese")} {(random.Next(2) == 0 ? "outside" : "near the river")}\t{(hot ? "hot" : "cold")}\n");
        }
        return Write(name, text.ToString());
    }

    [Fact]
    public void FinetunePredictAndEvalAgree()
    {
        var output = Path.Combine(_dir.FullName, "run");
        var dev = Drinks("dev.tsv", 30, 2);
        var (code, stdout, stderr) = CliTests.Run("finetune", "--model", Model("bert-uncased"), "--train", Drinks("train.tsv", 96, 1),
            "--validation", dev, "--output", output, "--epochs", "8", "--lr", "3e-3", "--batch-size", "16", "--json");
        Assert.True(code == 0, stderr);
        var run = JsonDocument.Parse(stdout).RootElement.GetProperty("runs")[0];
        var accuracy = run.GetProperty("best").GetProperty("accuracy").GetDouble();
        Assert.True(accuracy >= 90, $"accuracy {accuracy}");

        var (evalCode, evalOut, evalErr) = CliTests.Run("eval", "classification", "--model", output, "--data", dev, "--json");
        Assert.True(evalCode == 0, evalErr);
        var report = JsonDocument.Parse(evalOut).RootElement;
        Assert.Equal(accuracy, report.GetProperty("accuracy").GetDouble(), 9);
        Assert.True(report.TryGetProperty("mcc", out _));
        Assert.False(report.TryGetProperty("spearman", out _));

        var (predictCode, predictOut, predictErr) = CliTests.Run("predict", "--model", output, "--json", "they like coffee outside", "she like cheese outside");
        Assert.True(predictCode == 0, predictErr);
        var lines = predictOut.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(["hot", "cold"], lines.Select(l => l.GetProperty("label").GetString()));
        Assert.All(lines, l => Assert.Equal(2, l.GetProperty("logits").GetArrayLength()));
        Assert.All(lines, l => Assert.Equal(l.GetProperty("score").GetDouble(), l.GetProperty("scores").GetProperty(l.GetProperty("label").GetString()!).GetDouble()));
    }

    [Fact]
    public void TokenEvalReportsEntityScoresPerType()
    {
        var train = Write("train.conll", string.Concat(Enumerable.Repeat("she\tO\nlike\tO\ncheese\tB-food\noutside\tO\n\nthey\tO\nlike\tO\ncreme\tB-food\nbrulee\tI-food\n\n", 30)));
        var output = Path.Combine(_dir.FullName, "ner");
        var (code, _, stderr) = CliTests.Run("finetune", "--task", "token-classification", "--model", Model("bert-uncased"), "--train", train,
            "--validation", train, "--output", output, "--epochs", "6", "--lr", "3e-3", "--batch-size", "8");
        Assert.True(code == 0, stderr);
        var (evalCode, evalOut, evalErr) = CliTests.Run("eval", "token-classification", "--model", output, "--data", train, "--json");
        Assert.True(evalCode == 0, evalErr);
        var report = JsonDocument.Parse(evalOut).RootElement;
        Assert.Equal(100.0, report.GetProperty("f1").GetDouble(), 6);
        Assert.Equal(60, report.GetProperty("per_type").GetProperty("food").GetProperty("gold").GetInt32());

        var (predictCode, predictOut, predictErr) = CliTests.Run("predict", "--model", output, "--json", "they like creme brulee");
        Assert.True(predictCode == 0, predictErr);
        var entity = JsonDocument.Parse(predictOut).RootElement.GetProperty("entities")[0];
        Assert.Equal(("food", "creme brulee", 10, 22), (entity.GetProperty("entity_group").GetString(), entity.GetProperty("word").GetString(),
            entity.GetProperty("start").GetInt32(), entity.GetProperty("end").GetInt32()));
    }

    [Fact]
    public void ClassifyPrintsPerLabelScores()
    {
        var verbalizer = Write("v.json", "{\"hot\": [\"warm\", \"sun\"], \"cold\": \"cold\"}");
        var (code, stdout, stderr) = CliTests.Run("classify", "--model", Model("bert-uncased"), "--template", "{text} it was [MASK] .",
            "--verbalizer", verbalizer, "--json", "the coffee", "the river");
        Assert.True(code == 0, stderr);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(2, lines.Count);
        Assert.All(lines, l => Assert.Equal(1.0, l.GetProperty("scores").GetProperty("hot").GetDouble() + l.GetProperty("scores").GetProperty("cold").GetDouble(), 9));
    }

    [Theory]
    [InlineData("no label column", "--label-column", "gold")]
    [InlineData("is not one of the model's labels", "--validation", "UNKNOWN")]
    [InlineData("not empty", "--output", "EXISTING")]
    [InlineData("--epochs must be positive", "--epochs", "0")]
    public void BadFinetuneInputFailsWithAClearErrorAndWritesNoModel(string message, params string[] extra)
    {
        var train = Drinks("train.tsv", 16, 3);
        var unknown = Write("unknown.tsv", "sentence\tlabel\nthey like coffee\twarm\n");
        var existing = Path.Combine(_dir.FullName, "existing");
        Directory.CreateDirectory(existing);
        File.WriteAllText(Path.Combine(existing, "notes.txt"), "keep");
        var output = Path.Combine(_dir.FullName, "out");
        var args = new List<string> { "finetune", "--model", Model("bert-uncased"), "--train", train, "--output", output };
        for (int i = 1; i < extra.Length; i += 2)
        {
            var value = extra[i] switch { "UNKNOWN" => unknown, "EXISTING" => existing, var v => v };
            var at = args.IndexOf(extra[i - 1]);
            if (at >= 0) args[at + 1] = value;
            else args.AddRange([extra[i - 1], value]);
        }
        var (code, stdout, stderr) = CliTests.Run([.. args]);
        Assert.Equal(1, code);
        Assert.Contains(message, stderr);
        Assert.Equal("", stdout);
        Assert.False(File.Exists(Path.Combine(output, "model.safetensors")));
        Assert.Equal("keep", File.ReadAllText(Path.Combine(existing, "notes.txt")));
    }

    [Fact]
    public void PredictRefusesAMaskedLmAndAnEmptyText()
    {
        var (code, stdout, stderr) = CliTests.Run("predict", "--model", Model("bert-uncased"), "some text");
        Assert.Equal(1, code);
        Assert.Contains("not a classifier", stderr);
        Assert.Equal("", stdout);
        var (promptCode, _, promptErr) = CliTests.Run("classify", "--model", Model("bert-uncased"), "--template", "{text} it was good .",
            "--verbalizer", Write("v.json", "{\"a\": \"warm\", \"b\": \"cold\"}"), "x");
        Assert.Equal(1, promptCode);
        Assert.Contains("[MASK]", promptErr);
    }
}
