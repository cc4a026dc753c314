using Unmask.Data;
using Unmask.Evaluation;
using Unmask.Inference;
using Unmask.Tokenization;

namespace Unmask.Tests;

/// <summary>The classification metrics and the labelled-data readers against hand-worked cases.</summary>
public sealed class ClassificationMetricsTests : IDisposable
{
    readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("unmask-metrics");

    public void Dispose() => _dir.Delete(recursive: true);

    string Write(string name, string content)
    {
        var path = Path.Combine(_dir.FullName, name);
        File.WriteAllText(path, content);
        return path;
    }

    [Fact]
    public void AccuracyMacroF1AndMccMatchHandWorkedValues()
    {
        // Per class: 0 has tp 1 of 2 gold and 2 predicted (F1 0.5); 1 tp 2 of 2 and 3 (0.8); 2 tp 0 of 1 and 0 (0).
        // MCC = (c·s − Σ p_k t_k) / √((s² − Σ p_k²)(s² − Σ t_k²)) = (15 − 10) / √(12 · 16).
        var scores = ClassificationMetrics.Classification([0, 0, 1, 1, 2], [0, 1, 1, 1, 0]);
        Assert.Equal(60.0, scores.Accuracy, 9);
        Assert.Equal(100 * 1.3 / 3, scores.MacroF1, 9);
        Assert.Equal(100 * 5 / Math.Sqrt(192), scores.Mcc, 9);

        // Binary: TP 1, FN 1, TN 2, FP 0 → (1·2 − 0·1) / √(1 · 2 · 2 · 3).
        Assert.Equal(100 * 2 / Math.Sqrt(12), ClassificationMetrics.Classification([1, 1, 0, 0], [1, 0, 0, 0]).Mcc, 9);
        // A constant prediction leaves MCC undefined; scikit-learn reports 0.
        Assert.Equal(0, ClassificationMetrics.Classification([1, 0, 1], [1, 1, 1]).Mcc);
    }

    [Fact]
    public void SpearmanAveragesTiedRanks()
    {
        Assert.Equal([1, 2.5, 2.5, 4], ClassificationMetrics.Ranks([1, 2, 2, 3]));
        Assert.Equal([2, 2, 2], ClassificationMetrics.Ranks([5, 5, 5]));
        // Ranks [1, 2.5, 2.5, 4] against [1, 3, 2, 4]: Σdxdy 4.5, Σdx² 4.5, Σdy² 5.
        var scores = ClassificationMetrics.Regression([1, 2, 2, 3], [1, 3, 2, 4]);
        Assert.Equal(100 * 4.5 / Math.Sqrt(22.5), scores.Spearman, 9);
        Assert.Equal(100 * ClassificationMetrics.Pearson([1, 2, 2, 3], [1, 3, 2, 4]), scores.Pearson, 9);
        Assert.Equal(100.0, ClassificationMetrics.Regression([1, 2, 3], [10, 200, 3000]).Spearman, 9);
    }

    [Fact]
    public void EntitiesFollowConllevalForIob1AndIob2()
    {
        // An I- tag after O (or after another type) starts an entity; B- always does.
        Assert.Equal([("PER", 0, 1), ("LOC", 3, 4), ("PER", 5, 5)],
            ClassificationMetrics.Entities(["I-PER", "I-PER", "O", "B-LOC", "I-LOC", "I-PER"]));
        // IOB1: B- separates two adjacent entities of one type.
        Assert.Equal([("PER", 0, 0), ("PER", 1, 2)], ClassificationMetrics.Entities(["I-PER", "B-PER", "I-PER"]));
        Assert.Equal([("LOC", 0, 0), ("PER", 1, 1)], ClassificationMetrics.Entities(["B-LOC", "I-PER"]));
        // IOB2 spelling of the same entities reads the same.
        Assert.Equal(ClassificationMetrics.Entities(["I-PER", "I-PER", "O"]), ClassificationMetrics.Entities(["B-PER", "I-PER", "O"]));
        // IOBES: E- ends, S- is alone.
        Assert.Equal([("X", 0, 1), ("X", 2, 2)], ClassificationMetrics.Entities(["B-X", "E-X", "S-X"]));
    }

    [Fact]
    public void EntityScoresCountOnlyExactSpanAndType()
    {
        // Gold PER(0,1), LOC(3,3); predicted PER(0,0) (wrong span), LOC(3,3) (right): P = R = 50.
        var report = ClassificationMetrics.Entities([["B-PER", "I-PER", "O", "B-LOC"]], [["B-PER", "O", "O", "B-LOC"]]);
        Assert.Equal(50.0, report.Overall.Precision, 9);
        Assert.Equal(50.0, report.Overall.Recall, 9);
        Assert.Equal(50.0, report.Overall.F1, 9);
        Assert.Equal(0.0, report.PerType["PER"].F1);
        Assert.Equal(100.0, report.PerType["LOC"].F1);
        Assert.Equal(75.0, report.TokenAccuracy, 9);
        // A right span with the wrong type counts for neither.
        var typed = ClassificationMetrics.Entities([["B-PER", "I-PER"]], [["B-LOC", "I-LOC"]]);
        Assert.Equal(0.0, typed.Overall.F1);
        Assert.Equal(1, typed.PerType["LOC"].Predicted);
    }

    [Fact]
    public void PredictedTokensGroupIntoEntitiesAsThePipelineDoes()
    {
        var text = "Ada Lovelace met Paris";
        TokenOffset[] spans = [new(0, 3), new(4, 8), new(8, 12), new(13, 16), new(17, 22)];
        var entities = Classifier.GroupEntities(text, ["B-PER", "I-PER", "I-PER", "O", "B-LOC"], [0.9, 0.8, 0.7, 0.99, 0.6], spans);
        Assert.Equal(2, entities.Count);
        Assert.Equal(new EntitySpan("PER", 0.8, "Ada Lovelace", 0, 12), entities[0] with { Score = Math.Round(entities[0].Score, 9) });
        Assert.Equal(("LOC", "Paris", 17, 22), (entities[1].EntityGroup, entities[1].Word, entities[1].Start, entities[1].End));
        // A new B- of the same type starts a second entity.
        Assert.Equal(2, Classifier.GroupEntities(text, ["B-PER", "B-PER", "O", "O", "O"], [1, 1, 1, 1, 1], spans).Count);
    }

    [Fact]
    public void TablesWithAndWithoutHeaderRead()
    {
        var tsv = Write("a.tsv", "sentence\tlabel\nit is fine \t1\nnot good\t0\n");
        var rows = LabelledData.ReadTexts(tsv, new DataColumns());
        Assert.Equal(2, rows.Count);
        Assert.Equal(("it is fine ", "1"), (rows[0].Text, rows[0].Label));
        Assert.EndsWith("a.tsv:3", rows[1].Source);

        var csv = Write("b.csv", "A man,\"He said, \"\"hi\"\"\",3.8\n");
        var pairs = LabelledData.ReadTexts(csv, new DataColumns(Columns: ["sentence1", "sentence2", "score"]));
        Assert.Equal(("A man", "He said, \"hi\"", "3.8"), (pairs[0].Text, pairs[0].Pair, pairs[0].Label));
        // Without --columns a headerless file is refused rather than losing its first row.
        Assert.Contains("--columns", Assert.Throws<UnmaskException>(() => LabelledData.ReadTexts(csv, new DataColumns())).Message);

        var jsonl = Write("c.jsonl", "{\"text\": \"one\", \"label\": 1}\n{\"text\": \"two\", \"label\": [\"a\", \"b\"]}\n");
        var json = LabelledData.ReadTexts(jsonl, new DataColumns());
        Assert.Equal(["1", "a;b"], json.Select(e => e.Label));
    }

    [Fact]
    public void BadDataNamesFileLineAndField()
    {
        var missing = Write("m.tsv", "sentence\tlabel\nfine\t1\n");
        var column = Assert.Throws<UnmaskException>(() => LabelledData.ReadTexts(missing, new DataColumns(Label: "gold")));
        Assert.Contains("'gold'", column.Message);
        var empty = Write("e.tsv", "sentence\tlabel\nfine\t1\n \t0\n");
        Assert.Contains("e.tsv:3", Assert.Throws<UnmaskException>(() => LabelledData.ReadTexts(empty, new DataColumns())).Message);
        var ragged = Write("r.tsv", "sentence\tlabel\nfine\t1\textra\n");
        Assert.Contains("r.tsv:2", Assert.Throws<UnmaskException>(() => LabelledData.ReadTexts(ragged, new DataColumns())).Message);
        var conll = Write("t.conll", "Paris\tB-LOC\nis\tO\n\nnice\n");
        var tag = Assert.Throws<UnmaskException>(() => LabelledData.ReadWords(conll));
        Assert.Contains("t.conll:4", tag.Message);
        Assert.Contains("no tag", tag.Message);
        var regression = new TextExample("x", null, "high", "f.csv:7");
        Assert.Contains("f.csv:7", Assert.Throws<UnmaskException>(() => LabelledData.ParseTarget(regression)).Message);
    }

    [Fact]
    public void ConllSentencesSplitOnBlankLines()
    {
        var path = Write("s.conll", "-DOCSTART-\tO\n\n@user\tO\nParis\tB-location\n\nNew\tB-location\nYork\tI-location\n");
        var sentences = LabelledData.ReadWords(path);
        Assert.Equal(2, sentences.Count);
        Assert.Equal(["@user", "Paris"], sentences[0].Words);
        Assert.Equal(["B-location", "I-location"], sentences[1].Tags);
        Assert.EndsWith("s.conll:6", sentences[1].Source);
        Assert.Equal(["O", "B-location", "I-location"], ClassificationData.LabelsOf(ClassificationTask.TokenClassification, [], sentences));
    }

    [Fact]
    public void FirstPieceOfEachWordCarriesItsLabel()
    {
        var tokenizer = TokenizerLoader.Load(BertReferenceFixtures.ModelDir("bert-uncased"));
        var sentence = new WordExample(["cat", "coffees", "espresso"], ["O", "B-food", "I-food"], "t:1");
        string[] labels = ["O", "B-food", "I-food"];
        var first = ClassificationData.EncodeWords(tokenizer, [sentence], labels, 64, labelAllPieces: false)[0];
        var pieces = ClassificationData.EncodeWordsOnly(tokenizer, sentence.Words, 64);
        // Tokens: [CLS], the words' pieces, [SEP]; each word's first piece has its label, every other token -100.
        for (int t = 0; t < first.InputIds.Length; t++)
        {
            var word = pieces.WordOfToken[t];
            Assert.Equal(word >= 0 ? Array.IndexOf(labels, sentence.Tags[word]) : -100, first.TokenLabels![t]);
        }
        Assert.Equal([0, 1, 2], pieces.WordOfToken.Where(w => w >= 0));
        var all = ClassificationData.EncodeWords(tokenizer, [sentence], labels, 64, labelAllPieces: true)[0];
        for (int t = 0; t < all.InputIds.Length; t++)
        {
            var word = pieces.TokenWord[t];
            // Later pieces of a B- word take its I- label, as run_ner.py does.
            var expected = word < 0 ? -100 : pieces.WordOfToken[t] >= 0 ? Array.IndexOf(labels, sentence.Tags[word])
                : Array.IndexOf(labels, sentence.Tags[word].Replace("B-", "I-", StringComparison.Ordinal));
            Assert.Equal(expected, all.TokenLabels![t]);
        }
    }
}
