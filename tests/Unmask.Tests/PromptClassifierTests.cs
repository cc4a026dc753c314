using Unmask.Inference;
using static TorchSharp.torch;
using static Unmask.Tests.BertReferenceFixtures;

namespace Unmask.Tests;

/// <summary>Prompt classification through the masked-LM head: scores recomputed from the model's own logits,
/// multi-piece words as PLL, contextual calibration, and the errors for bad templates and verbalizers.</summary>
public sealed class PromptClassifierTests : IDisposable
{
    readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("unmask-prompt");
    readonly MaskedLanguageModel _mlm = MaskedLanguageModel.Load(ModelDir("bert-uncased"));

    public void Dispose()
    {
        _mlm.Dispose();
        _dir.Delete(recursive: true);
    }

    Verbalizer Write(string name, string content)
    {
        var path = Path.Combine(_dir.FullName, name);
        File.WriteAllText(path, content);
        return Verbalizer.Load(path);
    }

    /// <summary>log p(token | text) at the one mask of <paramref name="text"/>, read off a plain forward pass.</summary>
    double LogProbabilityAtMask(string text, int tokenId, int maskOccurrence = 0)
    {
        var result = _mlm.Forward([text])[0];
        var position = Enumerable.Range(0, result.InputIds.Count).Where(t => result.InputIds[t] == _mlm.Tokenizer.MaskId).ElementAt(maskOccurrence);
        using var logits = tensor(result.Logits[position]);
        return logits.to(ScalarType.Float64).log_softmax(0)[tokenId].item<double>();
    }

    [Fact]
    public void LabelScoresAreLogSumExpOfTheWordsLogProbabilitiesAtTheMask()
    {
        var verbalizer = Write("v.json", "{\"hot\": [\"warm\", \"sun\"], \"chill\": \"cold\"}");
        var prompt = new PromptClassifier(_mlm, "{text} it was [MASK] .", verbalizer);
        var prediction = prompt.Predict([("the coffee in the morning", null)])[0];

        var text = "the coffee in the morning it was [MASK] .";
        double Word(string w) => LogProbabilityAtMask(text, _mlm.Tokenizer.TokenToId(w)!.Value);
        var hot = Math.Log(Math.Exp(Word("warm")) + Math.Exp(Word("sun")));
        var chill = Word("cold");
        Assert.Equal(hot, prediction.LogScores["hot"], 4);
        Assert.Equal(chill, prediction.LogScores["chill"], 4);
        var pHot = 1 / (1 + Math.Exp(chill - hot));
        Assert.Equal(pHot, prediction.Probabilities["hot"], 4);
        Assert.Equal(pHot > 0.5 ? "hot" : "chill", prediction.Label);
    }

    [Fact]
    public void AWordOfSeveralPiecesIsScoredAsAPseudoLogLikelihood()
    {
        var verbalizer = Write("v.tsv", "# label words\nyes\tcoffees\nno\tcold\n");
        var prompt = new PromptClassifier(_mlm, "{text} it was [MASK] .", verbalizer);
        var (word, pieces) = Assert.Single(prompt.SplitWords);
        Assert.Equal("coffees", word);
        Assert.Equal(["coffee", "##s"], pieces);
        var score = prompt.Predict([("a cat", null)])[0].LogScores["yes"];

        int coffee = _mlm.Tokenizer.TokenToId("coffee")!.Value, s = _mlm.Tokenizer.TokenToId("##s")!.Value;
        var ids = _mlm.Tokenizer.Encode("a cat it was [MASK][MASK] .").InputIds;
        var slots = Enumerable.Range(0, ids.Length).Where(t => ids[t] == _mlm.Tokenizer.MaskId).ToArray();
        Assert.Equal(2, slots.Length);
        double Piece(int masked, int other, int otherId, int target)
        {
            var row = ids.Select(i => (long)i).ToArray();
            row[other] = otherId;
            using var scope = NewDisposeScope();
            using var mode = inference_mode();
            using var output = _mlm.Model.Forward(tensor(row, [1, row.Length]));
            return output.Logits[0, masked].to(ScalarType.Float64).log_softmax(0)[target].item<double>();
        }
        var expected = Piece(slots[0], slots[1], s, coffee) + Piece(slots[1], slots[0], coffee, s);
        Assert.Equal(expected, score, 4);
    }

    [Fact]
    public void CalibrationDividesByTheContentFreeDistribution()
    {
        var verbalizer = Write("v.json", "{\"a\": \"warm\", \"b\": \"cold\"}");
        var plain = new PromptClassifier(_mlm, "{text} it was [MASK] .", verbalizer);
        var calibrated = new PromptClassifier(_mlm, "{text} it was [MASK] .", verbalizer) { Calibrate = true };
        var p = plain.Predict([("the river", null)]);
        var (na, empty) = (plain.RawProbabilities("N/A", null), plain.RawProbabilities("", null));
        Assert.Equal(plain.Predict([("N/A", null)])[0].Probabilities["a"], na[0], 12);
        var free = new[] { (na[0] + empty[0]) / 2, (na[1] + empty[1]) / 2 };
        var raw = new[] { p[0].Probabilities["a"] / free[0], p[0].Probabilities["b"] / free[1] };
        var c = calibrated.Predict([("the river", null)])[0];
        Assert.Equal(raw[0] / raw.Sum(), c.Probabilities["a"], 9);
        Assert.NotEqual(p[0].Probabilities["a"], c.Probabilities["a"], 6);
    }

    [Fact]
    public void BadTemplatesAndVerbalizersAreRefused()
    {
        var verbalizer = Write("v.json", "{\"a\": \"warm\", \"b\": \"cold\"}");
        Assert.Contains("{text}", Assert.Throws<UnmaskException>(() => new PromptClassifier(_mlm, "it was [MASK] .", verbalizer)).Message);
        Assert.Contains("holds 0", Assert.Throws<UnmaskException>(() => new PromptClassifier(_mlm, "{text} it was good .", verbalizer)).Message);
        Assert.Contains("holds 2", Assert.Throws<UnmaskException>(() => new PromptClassifier(_mlm, "{text} [MASK] was [MASK] .", verbalizer)).Message);
        var unknown = Write("u.json", "{\"a\": \"warm\", \"b\": \"\u2603\u2603\"}");
        var error = Assert.Throws<UnmaskException>(() => new PromptClassifier(_mlm, "{text} it was [MASK] .", unknown, "u.json"));
        Assert.Contains("u.json", error.Message);
        Assert.Contains("[UNK]", error.Message);

        var path = Path.Combine(_dir.FullName, "bad.tsv");
        File.WriteAllText(path, "a\twarm\nb cold\n");
        Assert.Contains("bad.tsv:2", Assert.Throws<UnmaskException>(() => Verbalizer.Load(path)).Message);
        File.WriteAllText(path, "a\twarm\n");
        Assert.Contains("two labels", Assert.Throws<UnmaskException>(() => Verbalizer.Load(path)).Message);
    }
}
