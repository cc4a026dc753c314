using System.Text.Json;
using Unmask.Checkpoints;
using Unmask.Evaluation;
using Unmask.Tokenization;

namespace Unmask.Tests;

/// <summary>
/// PLL of pll/roberta.json through the batched scorer, with the fixture's own ids (RoBERTa's byte-level BPE tokenizer
/// is not needed for that): RoBERTa's position ids start after the padding index, so right padding must leave the
/// real tokens' results alone.
/// </summary>
public class RobertaPllTests
{
    /// <summary>The fixture's own ids need no tokenizer; scoring only asks for the pad and mask ids.</summary>
    sealed class IdsOnlyTokenizer(int padId, int maskId) : ITokenizer
    {
        public int VocabSize => throw new NotSupportedException();
        public int ClsId => throw new NotSupportedException();
        public int SepId => throw new NotSupportedException();
        public int PadId => padId;
        public int MaskId => maskId;
        public int UnkId => throw new NotSupportedException();
        public string MaskToken => "<mask>";
        public string Fingerprint => throw new NotSupportedException();
        public int? TokenToId(string token) => throw new NotSupportedException();
        public string IdToToken(int id) => throw new NotSupportedException();
        public IReadOnlyList<string> Tokenize(string text) => throw new NotSupportedException();
        public TokenizedText Encode(string text, string? pair = null, bool addSpecialTokens = true, int? maxLength = null) => throw new NotSupportedException();
        public string Decode(IReadOnlyList<int> ids, bool skipSpecialTokens = false) => throw new NotSupportedException();
        public bool IsSpecial(int id) => throw new NotSupportedException();
        public bool IsContinuation(int id) => false;
        public void Save(string directory) => throw new NotSupportedException();
    }

    [Fact]
    public void RobertaPllMatchesTransformersThroughTheBatchedPath()
    {
        var folder = Path.Combine(SharedFixtures.HfReference, "models", "roberta");
        using var vocab = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "vocab.json")));
        using var model = ModelLoader.Load(folder);
        model.Module.eval();
        Assert.Equal("RobertaForMaskedLM", model.Architecture);
        var context = new ScoringContext(new IdsOnlyTokenizer(1, vocab.RootElement.GetProperty("<mask>").GetInt32()), new MaskedLmScoringModel(model));

        using var reference = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(SharedFixtures.HfReference, "pll", "roberta.json")));
        var sentences = reference.RootElement.GetProperty("sentences").EnumerateArray().ToList();
        var encodings = sentences.Select(s =>
        {
            var ids = s.GetProperty("input_ids").EnumerateArray().Select(i => i.GetInt32()).ToArray();
            return new TokenizedText(ids, s.GetProperty("tokens").EnumerateArray().Select(t => t.GetString()!).ToArray(), new int[ids.Length],
                s.GetProperty("special_tokens_mask").EnumerateArray().Select(m => m.GetInt32() == 1).ToArray());
        }).ToList();
        // A small budget mixes sentences of different lengths, and so right padding, into the batches.
        var results = new PllScorer(context, new PllOptions { TokenBudget = 64 }).ScoreEncoded(encodings);

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
