namespace Unmask.Evaluation;

/// <summary>Accuracy, macro-F1 and Matthews correlation of predicted against gold class ids.</summary>
public sealed record ClassificationScores(double Accuracy, double MacroF1, double Mcc, int Examples);

/// <summary>Pearson and Spearman correlation (×100, as GLUE reports them) of predictions against gold values.</summary>
public sealed record RegressionScores(double Pearson, double Spearman, int Examples);

/// <summary>Precision, recall and F1 (in %) of one entity type, or of all (micro), with the counts behind them.</summary>
public sealed record EntityScores(double Precision, double Recall, double F1, int Predicted, int Gold, int Correct);

/// <summary>conlleval's entity-level scores: micro over all types, then one row per type.</summary>
public sealed record EntityReport(EntityScores Overall, IReadOnlyDictionary<string, EntityScores> PerType, double TokenAccuracy);

/// <summary>The metric functions of the classification evaluations, each checked against hand-worked cases.</summary>
public static class ClassificationMetrics
{
    /// <summary>Accuracy, macro-F1 over the classes present in gold or predictions (scikit-learn's default), and the
    /// multi-class Matthews correlation (Gorodkin's R_K, scikit-learn's matthews_corrcoef; 0 when undefined).</summary>
    public static ClassificationScores Classification(IReadOnlyList<int> gold, IReadOnlyList<int> predicted)
    {
        Check(gold.Count, predicted.Count);
        var classes = gold.Concat(predicted).Distinct().Order().ToList();
        var index = classes.Select((c, i) => (c, i)).ToDictionary(p => p.c, p => p.i);
        int k = classes.Count, n = gold.Count;
        var confusion = new long[k, k];
        for (int i = 0; i < n; i++) confusion[index[gold[i]], index[predicted[i]]]++;

        long correct = 0;
        double f1Sum = 0;
        var goldTotals = new long[k];
        var predictedTotals = new long[k];
        for (int c = 0; c < k; c++)
        {
            correct += confusion[c, c];
            for (int j = 0; j < k; j++)
            {
                goldTotals[c] += confusion[c, j];
                predictedTotals[c] += confusion[j, c];
            }
            double tp = confusion[c, c];
            double denominator = goldTotals[c] + predictedTotals[c];
            f1Sum += denominator == 0 ? 0 : 2 * tp / denominator;
        }

        double covariance = (double)correct * n - goldTotals.Zip(predictedTotals, (g, p) => (double)g * p).Sum();
        double goldSpread = (double)n * n - goldTotals.Sum(g => (double)g * g);
        double predictedSpread = (double)n * n - predictedTotals.Sum(p => (double)p * p);
        double mcc = goldSpread == 0 || predictedSpread == 0 ? 0 : covariance / Math.Sqrt(goldSpread * predictedSpread);
        return new ClassificationScores(100.0 * correct / n, 100.0 * f1Sum / k, 100.0 * mcc, n);
    }

    public static RegressionScores Regression(IReadOnlyList<double> gold, IReadOnlyList<double> predicted)
    {
        Check(gold.Count, predicted.Count);
        return new RegressionScores(100 * Pearson(gold, predicted), 100 * Pearson(Ranks(gold), Ranks(predicted)), gold.Count);
    }

    /// <summary>Pearson's r; 0 when either side is constant (SciPy returns NaN there).</summary>
    public static double Pearson(IReadOnlyList<double> x, IReadOnlyList<double> y)
    {
        Check(x.Count, y.Count);
        double mx = x.Average(), my = y.Average();
        double sxy = 0, sxx = 0, syy = 0;
        for (int i = 0; i < x.Count; i++)
        {
            sxy += (x[i] - mx) * (y[i] - my);
            sxx += (x[i] - mx) * (x[i] - mx);
            syy += (y[i] - my) * (y[i] - my);
        }
        return sxx == 0 || syy == 0 ? 0 : sxy / Math.Sqrt(sxx * syy);
    }

    /// <summary>1-based ranks with ties given their average rank (SciPy's rankdata "average"), as Spearman needs.</summary>
    public static double[] Ranks(IReadOnlyList<double> values)
    {
        var order = Enumerable.Range(0, values.Count).OrderBy(i => values[i]).ToArray();
        var ranks = new double[values.Count];
        for (int start = 0; start < order.Length;)
        {
            int end = start;
            while (end + 1 < order.Length && values[order[end + 1]] == values[order[start]]) end++;
            double average = (start + end) / 2.0 + 1;
            for (int i = start; i <= end; i++) ranks[order[i]] = average;
            start = end + 1;
        }
        return ranks;
    }

    /// <summary>
    /// Entities as conlleval finds them: a chunk starts at B-X, or at I-X after O or after another type, and ends where
    /// the next tag does not continue it. So IOB2 (every entity starts with B-) and IOB1 (B- only between two adjacent
    /// entities of one type) read alike; E-/S- (IOBES) end and make single-word chunks. Each entity is (type, first
    /// word, last word), words counted within the sentence.
    /// </summary>
    public static List<(string Type, int Start, int End)> Entities(IReadOnlyList<string> tags)
    {
        var entities = new List<(string, int, int)>();
        string? type = null;
        int start = 0;
        for (int i = 0; i <= tags.Count; i++)
        {
            var (prefix, tagType) = i < tags.Count ? Split(tags[i]) : ("O", "");
            bool continues = type is not null && prefix is "I" or "E" && tagType == type;
            if (type is not null && !continues)
            {
                entities.Add((type, start, i - 1));
                type = null;
            }
            if (prefix != "O" && !continues)
            {
                type = tagType;
                start = i;
            }
            if (type is not null && prefix is "E" or "S")
            {
                entities.Add((type, start, i));
                type = null;
            }
        }
        return entities;
    }

    /// <summary>A tag's prefix (B, I, E, S or O) and type; a bare type without a prefix reads as I-type.</summary>
    static (string Prefix, string Type) Split(string tag)
    {
        if (tag == "O" || tag.Length == 0) return ("O", "");
        var dash = tag.IndexOf('-');
        var prefix = dash < 0 ? "" : tag[..dash];
        return prefix is "B" or "I" or "E" or "S" ? (prefix, tag[(dash + 1)..]) : ("I", tag);
    }

    /// <summary>conlleval's micro precision/recall/F1 (in %) over sentences of gold and predicted tags; an entity
    /// counts only with its exact span and type. Also per type, and the token accuracy.</summary>
    public static EntityReport Entities(IReadOnlyList<IReadOnlyList<string>> gold, IReadOnlyList<IReadOnlyList<string>> predicted)
    {
        Check(gold.Count, predicted.Count);
        var counts = new Dictionary<string, (int Predicted, int Gold, int Correct)>(StringComparer.Ordinal);
        long tokens = 0, tokenCorrect = 0;
        for (int s = 0; s < gold.Count; s++)
        {
            if (gold[s].Count != predicted[s].Count)
                throw new ArgumentException($"sentence {s} has {gold[s].Count} gold tags but {predicted[s].Count} predicted ones");
            var goldEntities = Entities(gold[s]);
            var predictedEntities = Entities(predicted[s]);
            var goldSet = goldEntities.ToHashSet();
            foreach (var e in goldEntities) Bump(e.Type, gold: 1);
            foreach (var e in predictedEntities) Bump(e.Type, predicted: 1, correct: goldSet.Contains(e) ? 1 : 0);
            for (int i = 0; i < gold[s].Count; i++)
            {
                tokens++;
                if (gold[s][i] == predicted[s][i]) tokenCorrect++;
            }
        }
        void Bump(string type, int predicted = 0, int gold = 0, int correct = 0)
        {
            var c = counts.GetValueOrDefault(type);
            counts[type] = (c.Predicted + predicted, c.Gold + gold, c.Correct + correct);
        }
        static EntityScores Score(int p, int g, int c)
        {
            double precision = p == 0 ? 0 : 100.0 * c / p, recall = g == 0 ? 0 : 100.0 * c / g;
            double f1 = precision + recall == 0 ? 0 : 2 * precision * recall / (precision + recall);
            return new EntityScores(precision, recall, f1, p, g, c);
        }
        var overall = Score(counts.Values.Sum(c => c.Predicted), counts.Values.Sum(c => c.Gold), counts.Values.Sum(c => c.Correct));
        var perType = counts.OrderBy(p => p.Key, StringComparer.Ordinal).ToDictionary(p => p.Key, p => Score(p.Value.Predicted, p.Value.Gold, p.Value.Correct));
        return new EntityReport(overall, perType, tokens == 0 ? 0 : 100.0 * tokenCorrect / tokens);
    }

    static void Check(int gold, int predicted)
    {
        if (gold != predicted) throw new ArgumentException($"{gold} gold values but {predicted} predictions");
        if (gold == 0) throw new ArgumentException("no examples to score");
    }
}
