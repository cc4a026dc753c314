using System.Text.Json;
using TorchSharp;
using Unmask.Evaluation;
using Unmask.Inference;
using Unmask.Tokenization;
using static TorchSharp.torch;

namespace Unmask.Tests;

/// <summary>Pseudo-log-likelihood against the Hugging Face reference (pll/*.json) and the word-l2r variant.</summary>
public class PllScorerTests
{
    static readonly Dictionary<string, MaskedLanguageModel> Models = new();
    static readonly object Gate = new();

    internal static MaskedLanguageModel Model(string name)
    {
        lock (Gate)
        {
            if (!Models.TryGetValue(name, out var model))
                Models[name] = model = MaskedLanguageModel.Load(Path.Combine(SharedFixtures.HfReference, "models", name));
            return model;
        }
    }

    static JsonElement Reference(string name) =>
        JsonDocument.Parse(File.ReadAllBytes(Path.Combine(SharedFixtures.HfReference, "pll", name + ".json"))).RootElement;

    [Theory]
    [InlineData("bert-uncased", 8192)]
    [InlineData("bert-cased", 8192)]
    // A budget of 40 tokens puts copies of different sentences, and so padding, into most batches.
    [InlineData("bert-uncased", 40)]
    [InlineData("bert-cased", 40)]
    public void BatchedScoresMatchTransformers(string name, int tokenBudget)
    {
        var reference = Reference(name).GetProperty("sentences").EnumerateArray().ToList();
        var scorer = new PllScorer(ScoringContext.From(Model(name)), new PllOptions { TokenBudget = tokenBudget });
        var results = scorer.Score(reference.Select(s => s.GetProperty("sentence").GetString()!).ToList());

        double worstToken = 0, worstTotal = 0;
        for (int i = 0; i < reference.Count; i++)
        {
            var expected = reference[i];
            var actual = results[i];
            Assert.Null(actual.Problem);
            var perToken = expected.GetProperty("per_token").EnumerateArray().ToList();
            Assert.Equal(expected.GetProperty("num_scored").GetInt32(), actual.NumScored);
            for (int k = 0; k < perToken.Count; k++)
            {
                Assert.Equal(perToken[k].GetProperty("position").GetInt32(), actual.Tokens[k].Position);
                Assert.Equal(perToken[k].GetProperty("id").GetInt32(), actual.Tokens[k].Id);
                Assert.Equal(perToken[k].GetProperty("token").GetString(), actual.Tokens[k].Token);
                worstToken = Math.Max(worstToken, Math.Abs(perToken[k].GetProperty("log_prob").GetSingle() - actual.Tokens[k].LogProb));
            }
            worstTotal = Math.Max(worstTotal, Math.Abs(expected.GetProperty("pll").GetDouble() - actual.Pll));
            Assert.Equal(expected.GetProperty("pll_mean").GetDouble(), actual.PllMean, 1e-4);
        }
        Assert.True(worstToken <= 1e-4, $"max per-token difference {worstToken}");
        Assert.True(worstTotal <= 1e-3, $"max total difference {worstTotal}");
    }

    [Fact]
    public void ScoresGivenIdsWithoutTheTokenizer()
    {
        // The path for ids that come from elsewhere (another family's tokenizer, a reference file).
        var reference = Reference("bert-cased").GetProperty("sentences").EnumerateArray().ToList();
        var encodings = reference.Select(s =>
        {
            var ids = s.GetProperty("input_ids").EnumerateArray().Select(i => i.GetInt32()).ToArray();
            return new TokenizedText(ids, s.GetProperty("tokens").EnumerateArray().Select(t => t.GetString()!).ToArray(), new int[ids.Length],
                s.GetProperty("special_tokens_mask").EnumerateArray().Select(m => m.GetInt32() == 1).ToArray());
        }).ToList();
        var results = new PllScorer(ScoringContext.From(Model("bert-cased"))).ScoreEncoded(encodings);
        for (int i = 0; i < reference.Count; i++)
            Assert.Equal(reference[i].GetProperty("pll").GetDouble(), results[i].Pll, 1e-3);
    }

    [Fact]
    public void WordL2RMasksTheLaterPiecesOfAWordAndNothingElse()
    {
        var mlm = Model("bert-uncased");
        var context = ScoringContext.From(mlm);
        const string text = "The small robot walked.";
        var original = new PllScorer(context).Score([text])[0];
        var l2r = new PllScorer(context, new PllOptions { Variant = PllVariant.WordL2R }).Score([text])[0];

        // "robot" is r ##o ##b ##o ##t and "walked" is w ##al ##k ##ed in this small vocabulary.
        Assert.Equal(["the", "small", "r", "##o", "##b", "##o", "##t", "w", "##al", "##k", "##ed", "."], original.Tokens.Select(t => t.Token));
        var multiPieceNotLast = new HashSet<int> { 3, 4, 5, 6, 8, 9, 10 };
        for (int k = 0; k < original.NumScored; k++)
        {
            int position = original.Tokens[k].Position;
            if (multiPieceNotLast.Contains(position)) Assert.NotEqual(original.Tokens[k].LogProb, l2r.Tokens[k].LogProb, 3);
            else Assert.Equal(original.Tokens[k].LogProb, l2r.Tokens[k].LogProb, 5);
        }

        // By hand: scoring "##o" at position 4 masks positions 4..7 (the rest of "robot"), and only those.
        var encoding = mlm.Tokenizer.Encode(text);
        var ids = encoding.InputIds.Select(i => (long)i).ToArray();
        for (int p = 4; p <= 7; p++) ids[p] = mlm.Tokenizer.MaskId;
        float expected;
        using (var scope = NewDisposeScope())
        using (inference_mode())
        {
            using var output = mlm.Model.Forward(tensor(ids, [1, ids.Length]));
            expected = output.Logits[0, 4].log_softmax(-1)[encoding.InputIds[4]].item<float>();
        }
        Assert.Equal(expected, l2r.Tokens.Single(t => t.Position == 4).LogProb, 4);
        Assert.Equal(l2r.Tokens.Sum(t => (double)t.LogProb), l2r.Pll, 9);
        Assert.Equal(original.NumWords, l2r.NumWords);
        Assert.Equal(5, original.NumWords);
    }

    [Fact]
    public void EmptyAndOverlongSentencesAreReportedNotTruncated()
    {
        var scorer = new PllScorer(ScoringContext.From(Model("bert-uncased")));
        var longText = string.Join(" ", Enumerable.Repeat("the", 70));
        var results = scorer.Score(["", "   ", longText, "the floor."]);
        Assert.Equal("empty sentence: no token to score", results[0].Problem);
        Assert.Equal("empty sentence: no token to score", results[1].Problem);
        Assert.Equal("72 tokens, longer than the model's maximum of 64 (not truncated)", results[2].Problem);
        Assert.True(double.IsNaN(results[2].Pll));
        Assert.Null(results[3].Problem);
        Assert.Equal(3, results[3].NumScored);
    }

    [Fact]
    public void PseudoPerplexityNormalisesByTokensAndByWords()
    {
        TokenScore T(string token, float lp) => new(0, token, 0, lp);
        var a = new PllResult("a", [T("r", -1f), T("##o", -2f)], -3, 1);
        var b = new PllResult("b", [T("x", -3f)], -3, 1);
        var skipped = new PllResult("c", [], double.NaN, 0, "empty sentence: no token to score");
        var pppl = PseudoPerplexity.From([a, b, skipped]);
        Assert.Equal(2, pppl.Sentences);
        Assert.Equal(Math.Exp(6.0 / 3), pppl.TokenLevel, 12);
        Assert.Equal(Math.Exp(6.0 / 2), pppl.WordLevel, 12);
    }
}
