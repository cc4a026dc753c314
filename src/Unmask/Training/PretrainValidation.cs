using Unmask.Data;
using Unmask.Evaluation;
using Unmask.Masking;
using static TorchSharp.torch;

namespace Unmask.Training;

/// <summary>
/// Pretraining's validation: a fixed masked copy of the validation split scored by <see cref="MaskedTokenEvaluation"/>
/// (the routine <c>eval mlm</c> uses), plus the objective's own metrics on the uncorrupted batches.
/// </summary>
internal sealed class PretrainValidation
{
    /// <summary>The seed <c>eval mlm</c> masks with by default too, so its validation split reads as pretraining's.</summary>
    const int Seed = 0x5eed;

    readonly IReadOnlyList<long[]> ids;
    readonly IReadOnlyList<MaskedBatch> batches;
    readonly long baselineId;

    PretrainValidation(IReadOnlyList<long[]> ids, IReadOnlyList<MaskedBatch> batches, long baselineId) =>
        (this.ids, this.batches, this.baselineId) = (ids, batches, baselineId);

    /// <summary>
    /// Keeps BERT's random masking at the start rate and split asked for, whatever the strategy or the objective's own
    /// corruption (ELECTRA's 85/0/15), so runs stay comparable; the baseline predicts the training split's most frequent token.
    /// </summary>
    public static PretrainValidation Prepare(TokenizedCorpus data, PretrainOptions options, MaskingVocabulary vocab)
    {
        var masking = new RandomMasking(options.Masking with { Strategy = MaskingStrategies.Random, Schedule = new() }, vocab);
        var copy = MaskedTokenEvaluation.MaskedCopy([data.Pack(DataSplit.Validation, options.MaxSeqLength)], options.ValidationSequences,
            options.BatchSize, options.MaxSeqLength, masking, Seed).ToList();
        return new PretrainValidation(copy.Select(c => c.Ids).ToList(), copy.Select(c => c.Masked).ToList(),
            MostFrequentToken(data.Store(DataSplit.Train), vocab));
    }

    public ValidationResult Run(TrainedModels models, IObjective objective, MetricsLog metrics, long step, long tokens,
        IProgress<PretrainProgress>? progress, TimeSpan elapsed)
    {
        progress?.Report(new PretrainProgress("validating", step, tokens, 0, null, 0, elapsed, null));
        bool wasTraining = models.Training;
        models.SetTraining(false);
        MaskedTokenScore score;
        IReadOnlyDictionary<string, double> own;
        try
        {
            score = MaskedTokenEvaluation.Score(new MaskedLmScoringModel(models.MaskedLm), batches, baselineId);
            using (inference_mode()) own = objective.ValidationMetrics(ids, batches[0].SeqLength);
        }
        finally
        {
            if (wasTraining) models.SetTraining(true);
        }
        // metrics.jsonl holds numbers only, so an empty selection reads as zeros rather than NaN.
        static double Finite(double x) => double.IsNaN(x) ? 0 : x;
        var v = new ValidationResult(Finite(score.Loss), Finite(score.Accuracy), Finite(score.BaselineAccuracy), score.Selected) { ObjectiveMetrics = own };
        var values = new Dictionary<string, double>
        {
            ["loss"] = v.Loss, ["masked_accuracy"] = v.MaskedAccuracy, ["baseline_accuracy"] = v.BaselineAccuracy,
            ["masked_tokens"] = v.MaskedTokens,
        };
        foreach (var (name, value) in own) values[name] = value;
        metrics.Write(new MetricsRecord("validation", step, tokens, values));
        return v;
    }

    static long MostFrequentToken(TokenStore store, MaskingVocabulary vocab)
    {
        var counts = new long[vocab.VocabSize];
        for (long d = 0; d < store.Documents; d++)
            foreach (var id in store.Document(d)) counts[id]++;
        long best = -1;
        for (int i = 0; i < counts.Length; i++)
            if (!vocab.IsSpecial[i] && (best < 0 || counts[i] > counts[best])) best = i;
        return best;
    }
}
