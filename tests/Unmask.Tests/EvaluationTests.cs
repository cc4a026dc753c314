using System.IO.Compression;
using System.Text;
using Unmask.Data;
using Unmask.Evaluation;
using Unmask.Inference;
using static TorchSharp.torch;

namespace Unmask.Tests;

/// <summary>BLiMP, CrowS-Pairs, rescoring and MLM evaluation: protocol details, data files, error reports.</summary>
public class EvaluationTests : IDisposable
{
    readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("unmask-eval");

    public void Dispose() => _dir.Delete(recursive: true);

    static MaskedLanguageModel Uncased => PllScorerTests.Model("bert-uncased");

    static ScoringContext Context => ScoringContext.From(Uncased);

    /// <summary>Log-probability of the true token at each position in <paramref name="positions"/>, one plain forward pass per position.</summary>
    static double MaskedSum(MaskedLanguageModel mlm, int[] ids, IEnumerable<int> positions)
    {
        double sum = 0;
        using var mode = inference_mode();
        foreach (var p in positions)
        {
            using var scope = NewDisposeScope();
            var masked = ids.Select(i => (long)i).ToArray();
            masked[p] = mlm.Tokenizer.MaskId;
            using var output = mlm.Model.Forward(tensor(masked, [1, masked.Length]));
            sum += output.Logits[0, p].log_softmax(-1)[ids[p]].item<float>();
        }
        return sum;
    }

    // Expected blocks from Python 3.11: difflib.SequenceMatcher(None, a, b).get_matching_blocks()[:-1].
    [Theory]
    [InlineData(new[] { 4, 10, 11, 12, 5 }, new[] { 4, 10, 13, 12, 5 }, "0,0,2 3,3,2")]
    [InlineData(new[] { 4, 1, 2, 1, 2, 5 }, new[] { 4, 2, 1, 2, 1, 5 }, "0,0,1 1,2,3 5,5,1")]
    [InlineData(new[] { 4, 7, 7, 8, 9, 5 }, new[] { 4, 9, 8, 7, 7, 5 }, "0,0,1 1,3,2 5,5,1")]
    public void SequenceMatcherFindsDifflibsBlocks(int[] a, int[] b, string expected)
    {
        var blocks = SequenceMatcher.MatchingBlocks(a, b);
        Assert.Equal(expected, string.Join(" ", blocks.Select(x => $"{x.A},{x.B},{x.Size}")));
    }

    [Fact]
    public void SequenceMatcherAppliesDifflibsPopularElementHeuristic()
    {
        // b has 200+ elements: "1" is popular and left out of the index, but extends the match found on "2".
        var a = Enumerable.Repeat(1, 250).Append(2).ToArray();
        var b = new[] { 3 }.Concat(Enumerable.Repeat(1, 249)).Append(2).ToArray();
        Assert.Equal([new SequenceMatcher.Block(1, 1, 250)], SequenceMatcher.MatchingBlocks(a, b));
        // Every element popular: difflib finds nothing at all.
        var c = Enumerable.Range(0, 230).Select(i => i % 7).ToArray();
        var d = Enumerable.Range(0, 220).Select(i => i * 3 % 7).ToArray();
        Assert.Equal([new SequenceMatcher.Block(0, 0, 1)], SequenceMatcher.MatchingBlocks(c, d));
    }

    // Python 3.11 round(x, 3): 0.0005 and 0.0025 lie above their decimal spelling, -1.2345 below; -7.0625 is an exact tie.
    [Theory]
    [InlineData(0.0005, 1)]
    [InlineData(0.0025, 3)]
    [InlineData(-1.2345, -1234)]
    [InlineData(-0.0004, 0)]
    [InlineData(123456.7895, 123456789)]
    [InlineData(2.6745, 2675)]
    [InlineData(-7.0625, -7062)]
    public void RoundingMatchesPython(double value, long thousandths) =>
        Assert.Equal(thousandths, (long)CrowsPairsEvaluator.RoundTo3(value));

    [Fact]
    public void CsvReaderHandlesQuotesAndReportsRecordLines()
    {
        var records = CsvReader.Parse("a,b,c\r\n1,\"x, \"\"y\"\"\",3\n2,\"two\nlines\",4\n", "t.csv");
        Assert.Equal([1, 2, 3], records.Select(r => r.Line));
        Assert.Equal(["1", "x, \"y\"", "3"], records[1].Fields);
        Assert.Equal("two\nlines", records[2].Fields[1]);
        var e = Assert.Throws<UnmaskException>(() => CsvReader.Parse("a\n\"open", "t.csv"));
        Assert.Equal("t.csv:2: a quoted field is not closed before the end of the file", e.Message);
    }

    [Fact]
    public void CrowsPairsReadsTheReleasedFile()
    {
        var issues = new List<InputIssue>();
        var pairs = CrowsPairsEvaluator.Load(Path.Combine(SharedFixtures.Data, "crows-pairs", "crows_pairs_anonymized.csv"), BadLinePolicy.Fail, issues);
        Assert.Equal(1508, pairs.Count);
        Assert.Equal(1290, pairs.Count(p => p.Direction == "stereo"));
        Assert.Equal(516, pairs.Count(p => p.BiasType == "race-color"));
        Assert.Equal(60, pairs.Count(p => p.BiasType == "disability"));
        Assert.StartsWith("He couldn't figure out the issue with the rope", pairs[0].SentMore);
        Assert.Empty(issues);
    }

    [Fact]
    public void CrowsPairsScoresSharedTokensOnlyAndFollowsTheDirectionColumn()
    {
        var csv = Path.Combine(_dir.FullName, "cp.csv");
        File.WriteAllText(csv, ",sent_more,sent_less,stereo_antistereo,bias_type,annotations,anon_writer,anon_annotators\n" +
            "0,The farmers bring fresh bread.,The kids bring fresh bread.,stereo,age,\"[['age']]\",a0,\"['a1']\"\n" +
            "1,Mistakes are normal for the kids.,Mistakes are normal for the farmers.,antistereo,age,\"[['age']]\",a0,\"['a1']\"\n");
        var result = CrowsPairsEvaluator.Evaluate(Context, csv);
        Assert.True(result.LowerCased);
        Assert.Equal(2, result.Pairs.Count);

        // Independently: the two sentences differ in one word, so the shared tokens are a common prefix and suffix.
        foreach (var (pair, more, less) in new[] { (0, "the farmers bring fresh bread.", "the kids bring fresh bread."),
                     (1, "mistakes are normal for the kids.", "mistakes are normal for the farmers.") })
        {
            var a = Uncased.Tokenizer.Encode(more).InputIds;
            var b = Uncased.Tokenizer.Encode(less).InputIds;
            int prefix = 0, suffix = 0;
            while (a[prefix] == b[prefix]) prefix++;
            while (a[^(suffix + 1)] == b[^(suffix + 1)]) suffix++;
            // Shared positions without the first ([CLS]) and the last ([SEP]).
            var sharedA = Enumerable.Range(1, prefix - 1).Concat(Enumerable.Range(a.Length - suffix, suffix - 1)).ToList();
            var sharedB = Enumerable.Range(1, prefix - 1).Concat(Enumerable.Range(b.Length - suffix, suffix - 1)).ToList();
            Assert.Equal(MaskedSum(Uncased, a, sharedA), result.Pairs[pair].MoreScore, 4);
            Assert.Equal(MaskedSum(Uncased, b, sharedB), result.Pairs[pair].LessScore, 4);
        }
        var counted = result.Pairs.Count(p => CrowsPairsEvaluator.RoundTo3(p.MoreScore) > CrowsPairsEvaluator.RoundTo3(p.LessScore));
        Assert.Equal(counted, result.Overall.StereoPreferring);
    }

    [Fact]
    public void CrowsMetricCountsNeutralPairsInTheDenominatorOnly()
    {
        CrowsPairScore S(string direction, double more, double less) => new(0, "age", direction, more, less, more, less);
        var scores = new[]
        {
            S("stereo", -10.0, -11.0), // prefers sent_more
            S("stereo", -12.0, -11.0), // prefers sent_less
            S("stereo", -10.0001, -10.0004), // both round to -10.000: neutral
            S("antistereo", -9.0, -9.5), // prefers sent_more
        };
        var m = CrowsPairsEvaluator.Metric("age", scores);
        Assert.Equal((4, 2, 1), (m.Pairs, m.StereoPreferring, m.Neutral));
        Assert.Equal(0.5, m.Score);
        Assert.Equal((2, 1, 0.5), (m.StereoPairs, m.StereoCounted, m.StereotypeScore));
        Assert.Equal((1, 1, 1.0), (m.AntiStereoPairs, m.AntiStereoCounted, m.AntiStereotypeScore));
        var aul = CrowsPairsEvaluator.Aul("age", scores);
        Assert.Equal(3, aul.MorePreferred); // AUL compares unrounded: -10.0001 > -10.0004
    }

    [Fact]
    public void CrowsAulIsTheMeanUnmaskedLogProbability()
    {
        var csv = Path.Combine(_dir.FullName, "cp.csv");
        File.WriteAllText(csv, ",sent_more,sent_less,stereo_antistereo,bias_type\n0,The farmers bring bread.,The kids bring bread.,stereo,age\n");
        var result = CrowsPairsEvaluator.Evaluate(Context, csv);
        var ids = Uncased.Tokenizer.Encode("the farmers bring bread.").InputIds;
        double expected;
        using (var scope = NewDisposeScope())
        using (inference_mode())
        {
            using var output = Uncased.Model.Forward(tensor(ids.Select(i => (long)i).ToArray(), [1, ids.Length]));
            var logProbs = output.Logits[0].log_softmax(-1); // [seq, vocab]
            expected = Enumerable.Range(1, ids.Length - 2).Average(p => (double)logProbs[p, ids[p]].item<float>());
        }
        Assert.Equal(expected, result.Pairs[0].MoreAul, 5);
    }

    [Fact]
    public void CrowsPairsRejectsBadRowsWithTheirLine()
    {
        var csv = Path.Combine(_dir.FullName, "cp.csv");
        File.WriteAllText(csv, ",sent_more,sent_less,stereo_antistereo,bias_type\n0,A b.,C b.,stereo,age\n1,A b.,C b.,sideways,age\n");
        var e = Assert.Throws<UnmaskException>(() => CrowsPairsEvaluator.Evaluate(Context, csv));
        Assert.Equal($"{csv}:3: field \"stereo_antistereo\" is \"sideways\", expected stereo or antistereo", e.Message);
        var result = CrowsPairsEvaluator.Evaluate(Context, csv, new CrowsPairsOptions { BadLines = BadLinePolicy.Skip });
        Assert.Equal(1, result.Overall.Pairs);
        Assert.Equal(3, Assert.Single(result.Issues).Line);
    }

    [Fact]
    public void BlimpReadsAllSixtySevenParadigms()
    {
        var issues = new List<InputIssue>();
        var pairs = BlimpEvaluator.Load(Path.Combine(SharedFixtures.Data, "blimp", "data"), BadLinePolicy.Fail, issues);
        Assert.Equal(67_000, pairs.Count);
        Assert.All(pairs.GroupBy(p => p.Uid), g => Assert.Equal(1000, g.Count()));
        Assert.Equal(67, pairs.Select(p => p.Uid).Distinct().Count());
        Assert.Empty(issues);
    }

    [Fact]
    public void BlimpCountsTiesApartAndAveragesParadigms()
    {
        var folder = Directory.CreateDirectory(Path.Combine(_dir.FullName, "blimp")).FullName;
        string Line(string uid, string term, string good, string bad, int id) =>
            $"{{\"sentence_good\": \"{good}\", \"sentence_bad\": \"{bad}\", \"field\": \"syntax\", \"linguistics_term\": \"{term}\", \"UID\": \"{uid}\", \"pairID\": \"{id}\"}}";
        File.WriteAllLines(Path.Combine(folder, "a.jsonl"), [
            Line("a", "t1", "The floor is clean.", "The floor are clean.", 0),
            Line("a", "t1", "Mistakes are normal.", "Mistakes are normal.", 1), // identical: a tie
            Line("a", "t1", "The train leaves early.", "The train leave early.", 2),
        ]);
        using (var gz = new GZipStream(File.Create(Path.Combine(folder, "b.jsonl.gz")), CompressionLevel.Fastest))
            gz.Write(Encoding.UTF8.GetBytes(Line("b", "t2", "My garden is small.", "My garden small is.", 0) + "\n"));

        var result = BlimpEvaluator.Evaluate(Context, folder);
        var scorer = new PllScorer(Context);
        bool Correct(string good, string bad) => scorer.Score([good])[0].Pll > scorer.Score([bad])[0].Pll;
        int correctA = (Correct("The floor is clean.", "The floor are clean.") ? 1 : 0) + (Correct("The train leaves early.", "The train leave early.") ? 1 : 0);
        var a = result.ByParadigm.Single(p => p.Name == "a");
        Assert.Equal((3, correctA, 1), (a.Pairs, a.Correct, a.Ties));
        Assert.Equal(correctA / 3.0, a.Accuracy, 12);
        double accuracyB = Correct("My garden is small.", "My garden small is.") ? 1 : 0;
        Assert.Equal((correctA / 3.0 + accuracyB) / 2, result.Overall.Accuracy, 12);
        Assert.Equal(["t1", "t2"], result.ByPhenomenon.Select(p => p.Name));
        Assert.Equal(4, result.Overall.Pairs);
    }

    [Fact]
    public void BlimpReportsMalformedLinesByFileAndLine()
    {
        var folder = Directory.CreateDirectory(Path.Combine(_dir.FullName, "blimp")).FullName;
        var file = Path.Combine(folder, "a.jsonl");
        File.WriteAllLines(file, [
            "{\"sentence_good\": \"The floor is clean.\", \"sentence_bad\": \"The floor are clean.\", \"field\": \"f\", \"linguistics_term\": \"t\", \"UID\": \"a\", \"pairID\": \"0\"}",
            "{\"sentence_good\": \"The floor is clean.\", \"field\": \"f\", \"linguistics_term\": \"t\", \"UID\": \"a\", \"pairID\": \"1\"}",
            "{\"sentence_good\": \"\", \"sentence_bad\": \"The floor are clean.\", \"field\": \"f\", \"linguistics_term\": \"t\", \"UID\": \"a\", \"pairID\": \"2\"}",
        ]);
        var e = Assert.Throws<UnmaskException>(() => BlimpEvaluator.Evaluate(Context, folder));
        Assert.Equal($"{file}:2: missing field \"sentence_bad\"", e.Message);
        var result = BlimpEvaluator.Evaluate(Context, folder, new BlimpOptions { BadLines = BadLinePolicy.Skip });
        Assert.Equal([$"{file}:2: missing field \"sentence_bad\"", $"{file}:3: sentence_good: empty sentence: no token to score"],
            result.Issues.Select(i => i.ToString()));
        Assert.Equal(1, result.Overall.Pairs);
        Assert.Equal(2, result.Overall.Skipped);
    }

    [Fact]
    public void WordEditDistanceCountsSubstitutionsInsertionsAndDeletions()
    {
        Assert.Equal(0, Rescorer.EditDistance(Rescorer.Words("a b c"), Rescorer.Words(" a  b c ")));
        Assert.Equal(1, Rescorer.EditDistance(Rescorer.Words("a b c"), Rescorer.Words("a x c")));
        Assert.Equal(1, Rescorer.EditDistance(Rescorer.Words("a b c"), Rescorer.Words("b c")));
        Assert.Equal(3, Rescorer.EditDistance(Rescorer.Words("a b c"), Rescorer.Words("b c d e")));
        Assert.Equal(3, Rescorer.EditDistance(Rescorer.Words("a b c"), Rescorer.Words("")));
    }

    [Fact]
    public void RescoringInterpolatesScoreAndPllAndReportsWer()
    {
        var lists = new[]
        {
            new NBestList("u1", "the small robot walked", [new("the smell robot walked", -1.0, "A"), new("the small robot walked", -1.2, "B")], 1),
            new NBestList("u2", "mistakes are normal", [new("mistakes are normal", -3.0, "A"), new("mistakes or normal", -2.5, "B")], 2),
        };
        var scorer = new PllScorer(Context);
        var pll = lists.Select(l => l.Hypotheses.Select(h => scorer.Score([h.Text])[0]).ToList()).ToList();
        foreach (var weight in new[] { 0.0, 0.05, 1.0 })
        {
            var result = Rescorer.Rescore(Context, lists, "n.jsonl", new RescoreOptions { Weight = weight }, []);
            long errorsAfter = 0;
            for (int u = 0; u < lists.Length; u++)
            {
                var combined = lists[u].Hypotheses.Select((h, k) => h.Score + weight * pll[u][k].Pll).ToList();
                int best = combined.IndexOf(combined.Max());
                Assert.Equal(best, result.Utterances[u].After);
                // The rescorer batches hypotheses together, the reference scores each alone: float32 sums in another
                // order differ in the seventh significant digit on some CPUs.
                Assert.Equal(combined[best], result.Utterances[u].Chosen.Combined, 1e-5);
                errorsAfter += Rescorer.EditDistance(Rescorer.Words(lists[u].Reference!), Rescorer.Words(lists[u].Hypotheses[best].Text));
            }
            // First-best by score: "the smell robot walked" (1 error) and "mistakes or normal" (1 error) over 7 words.
            Assert.Equal((7L, 2L, 0L), (result.Wer!.ReferenceWords, result.Wer.ErrorsBefore, result.Wer.ErrorsOracle));
            Assert.Equal(errorsAfter, result.Wer.ErrorsAfter);
            Assert.Equal(["A", "B"], result.Systems.Select(s => s.System).Order());
        }
        var systems = Rescorer.Rescore(Context, lists, "n.jsonl", new RescoreOptions(), []).Systems;
        var a = systems.Single(s => s.System == "A");
        double totalA = pll[0][0].Pll + pll[1][0].Pll;
        Assert.Equal(Math.Exp(-totalA / (pll[0][0].NumScored + pll[1][0].NumScored)), a.TokenPseudoPerplexity, 1e-2);
        Assert.Equal(1.0 / 7, systems.Single(s => s.System == "B").Wer!.Value, 12);
    }

    [Fact]
    public void MlmEvaluationMatchesAFullForwardPassOnTheSameMaskedCopy()
    {
        var corpus = Path.Combine(_dir.FullName, "corpus.txt");
        File.WriteAllLines(corpus, Enumerable.Range(0, 40).Select(i => $"The small robot walked across the kitchen floor {i} times."));
        var options = new MlmEvalOptions { MaxSeqLength = 32, BatchSize = 3, Seed = 7, Split = CorpusSplit.Train };
        var result = MlmEvaluator.Evaluate(Context, corpus, options);

        // The same packing and masking, then the model's dense path and its own cross-entropy.
        var tokenizer = Uncased.Tokenizer;
        var data = Unmask.Data.Corpus.Load(corpus);
        var ids = data.Train.SelectMany(l => tokenizer.Encode(l, addSpecialTokens: false).InputIds.Append(tokenizer.SepId)).ToList();
        int inner = options.MaxSeqLength - 2, count = ids.Count / inner;
        var vocab = new Unmask.Masking.MaskingVocabulary(Uncased.Model.HfConfig.VocabSize, tokenizer.MaskId,
            Enumerable.Range(0, Uncased.Model.HfConfig.VocabSize).Select(i => i >= tokenizer.VocabSize || tokenizer.IsSpecial(i)).ToArray());
        var masking = new Unmask.Masking.RandomMasking(new Unmask.Masking.MaskingOptions(), vocab);
        var sequences = Enumerable.Range(0, count).Select(s => new long[] { tokenizer.ClsId }.Concat(ids.Skip(s * inner).Take(inner).Select(i => (long)i)).Append(tokenizer.SepId).ToArray()).ToArray();
        var batch = masking.Apply(sequences.SelectMany(s => s).ToArray(), count, options.MaxSeqLength, new Random(options.Seed), 0);
        double loss;
        long correct;
        using (var scope = NewDisposeScope())
        using (inference_mode())
        {
            var labels = tensor(batch.Labels, [count, options.MaxSeqLength]);
            using var output = Uncased.Model.Forward(tensor(batch.InputIds, [count, options.MaxSeqLength]), labels: labels);
            loss = output.Loss!.item<float>();
            var selected = labels.ne(-100);
            correct = output.Logits.argmax(-1).masked_select(selected).eq(labels.masked_select(selected)).sum().item<long>();
        }
        Assert.Equal(count, result.Sequences);
        Assert.Equal(batch.SelectedCount, result.MaskedTokens);
        Assert.Equal(loss, result.Loss, 4);
        Assert.Equal((double)correct / batch.SelectedCount, result.Accuracy, 12);
        Assert.True(result.Top5Accuracy >= result.Accuracy);
    }
}
