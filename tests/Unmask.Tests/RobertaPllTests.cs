using System.Text.Json;
using Unmask.Checkpoints;
using Unmask.Evaluation;
using Unmask.Tokenization;

namespace Unmask.Tests;

/// <summary>
/// PLL of pll/roberta.json through the batched scorer with RoBERTa's own byte-level BPE tokenizer: the texts must
/// encode to the fixture's ids, and RoBERTa's position ids start after the padding index, so right padding must
/// leave the real tokens' results alone.
/// </summary>
public class RobertaPllTests
{
    [Fact]
    public void RobertaPllMatchesTransformersThroughTheBatchedPath()
    {
        var folder = Path.Combine(SharedFixtures.HfReference, "models", "roberta");
        using var model = ModelLoader.Load(folder);
        model.eval();
        Assert.Equal("RobertaForMaskedLM", model.Architecture);
        var context = new ScoringContext(TokenizerLoader.Load(folder), new MaskedLmScoringModel(model));

        using var reference = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(SharedFixtures.HfReference, "pll", "roberta.json")));
        var sentences = reference.RootElement.GetProperty("sentences").EnumerateArray().ToList();
        var texts = sentences.Select(s => s.GetProperty("sentence").GetString()!).ToList();
        foreach (var (sentence, text) in sentences.Zip(texts))
            Assert.Equal(sentence.GetProperty("input_ids").EnumerateArray().Select(i => i.GetInt32()), context.Tokenizer.Encode(text).InputIds);
        // A small budget mixes sentences of different lengths, and so right padding, into the batches.
        var results = new PllScorer(context, new PllOptions { TokenBudget = 64 }).Score(texts);

        double worstToken = 0, worstTotal = 0;
        for (int i = 0; i < sentences.Count; i++)
        {
            var expected = sentences[i].GetProperty("per_token").EnumerateArray().ToList();
            Assert.Equal(expected.Select(t => t.GetProperty("position").GetInt32()), results[i].Tokens.Select(t => t.Position));
            for (int k = 0; k < expected.Count; k++)
                worstToken = Math.Max(worstToken, Math.Abs(expected[k].GetProperty("log_prob").GetSingle() - results[i].Tokens[k].LogProb));
            worstTotal = Math.Max(worstTotal, Math.Abs(sentences[i].GetProperty("pll").GetDouble() - results[i].Pll));
        }
        Assert.True(worstToken <= 1e-4, $"max per-token difference {worstToken}");
        Assert.True(worstTotal <= 1e-3, $"max total difference {worstTotal}");
    }
}
