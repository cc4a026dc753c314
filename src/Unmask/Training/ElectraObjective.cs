using Unmask.Checkpoints;
using Unmask.Masking;
using Unmask.Modeling;

namespace Unmask.Training;

/// <summary>
/// ELECTRA's replaced-token detection (Clark et al. 2020). A small generator is trained as a masked LM on the positions
/// the masking strategy selects; a replacement for each of them is sampled from its output distribution (no gradient
/// flows through the sample), and the discriminator learns, at every non-special position of the result, whether the
/// token is the original. Loss = generator cross-entropy + λ · discriminator binary cross-entropy. A sampled token
/// that happens to equal the original counts as original, as in the paper.
/// </summary>
public sealed class ElectraObjective(ElectraForMaskedLM generator, ElectraForPreTraining discriminator, IMaskingStrategy masking,
    MaskingVocabulary vocab, double discriminatorWeight) : IObjective
{
    const int ValidationSeed = 0xe1ec;

    /// <summary>Ids the generator may not sample, found once rather than on every step.</summary>
    readonly long[] specialIds = Enumerable.Range(0, vocab.VocabSize).Where(i => i < vocab.IsSpecial.Length && vocab.IsSpecial[i]).Select(i => (long)i).ToArray();

    /// <summary>
    /// The official implementation's corruption: 15% of tokens selected, 85% of those masked and 15% kept, none
    /// replaced at random (the generator supplies the replacements). Used when no masking option is given.
    /// </summary>
    public static MaskingOptions DefaultMasking { get; } = new(Rate: 0.15, MaskFraction: 0.85, RandomFraction: 0, KeepFraction: 0.15);

    public ObjectiveLoss Loss(long[] inputIds, int batchSize, int seqLength, Random rng, double progress, (int Start, int End)? rows = null)
    {
        var masked = masking.Apply(inputIds, batchSize, seqLength, rng, progress);
        double generatorShare = 1, discriminatorShare = 1;
        if (rows is { } r)
        {
            // Each mean becomes the rows' share of the whole batch's: selected positions for the generator, non-special
            // tokens for the discriminator. Replacements are sampled per rank, so ranks match one process in distribution.
            var part = masked.Rows(r.Start, r.End);
            var partIds = inputIds[(r.Start * seqLength)..(r.End * seqLength)];
            generatorShare = (double)part.SelectedCount / Math.Max(masked.SelectedCount, 1);
            discriminatorShare = (double)partIds.Count(id => !IsSpecial(id)) / Math.Max(inputIds.Count(id => !IsSpecial(id)), 1);
            if (part.SelectedCount == 0) part = part.WithPlaceholderLabel();
            (inputIds, masked) = (partIds, part);
        }
        var step = Forward(inputIds, masked, sampling: null);
        var generatorLoss = step.GeneratorLoss * generatorShare;
        var discriminatorLoss = step.DiscriminatorLoss * discriminatorShare;
        return new ObjectiveLoss(generatorLoss + discriminatorWeight * discriminatorLoss, masked.SelectedCount)
        {
            Parts = new Dictionary<string, Tensor> { ["generator_loss"] = generatorLoss, ["discriminator_loss"] = discriminatorLoss },
        };
    }

    /// <summary>
    /// Replaced-token detection on the validation batches, masked and sampled from fixed seeds so the corruption is a
    /// function of the generator alone: the discriminator's accuracy over non-special positions, the accuracy of
    /// calling every token original, the share of replaced tokens it finds, and its binary cross-entropy.
    /// </summary>
    public IReadOnlyDictionary<string, double> ValidationMetrics(IReadOnlyList<long[]> batches, int seqLength)
    {
        var rng = new Random(ValidationSeed);
        using var sampling = new Generator(ValidationSeed, device: generator.Device);
        long positions = 0, correct = 0, original = 0, replaced = 0, found = 0;
        double lossSum = 0;
        foreach (var ids in batches)
        {
            using var scope = NewDisposeScope();
            var masked = masking.Apply(ids, ids.Length / seqLength, seqLength, rng, progress: 0);
            var step = Forward(ids, masked, sampling);
            var predicted = step.DiscriminatorLogits.gt(0); // [m]
            var truth = step.DiscriminatorTargets.eq(1); // [m]
            long m = truth.shape[0];
            positions += m;
            correct += predicted.eq(truth).sum().item<long>();
            long r = truth.sum().item<long>();
            replaced += r;
            original += m - r;
            found += predicted.logical_and(truth).sum().item<long>();
            lossSum += step.DiscriminatorLoss.item<float>() * m;
        }
        return new Dictionary<string, double>
        {
            ["rtd_accuracy"] = (double)correct / Math.Max(positions, 1),
            ["rtd_baseline_accuracy"] = (double)original / Math.Max(positions, 1),
            ["rtd_replaced_recall"] = (double)found / Math.Max(replaced, 1),
            ["rtd_replaced_fraction"] = (double)replaced / Math.Max(positions, 1),
            ["rtd_loss"] = lossSum / Math.Max(positions, 1),
        };
    }

    /// <param name="GeneratorLoss">Mean cross-entropy at the selected positions.</param>
    /// <param name="DiscriminatorLoss">Mean binary cross-entropy over the non-special positions.</param>
    /// <param name="DiscriminatorLogits">[m] replaced logits at the non-special positions, row-major.</param>
    /// <param name="DiscriminatorTargets">[m] 1 where the token was replaced, 0 where it is the original.</param>
    sealed record Step(Tensor GeneratorLoss, Tensor DiscriminatorLoss, Tensor DiscriminatorLogits, Tensor DiscriminatorTargets);

    /// <param name="sampling">Draws the replacements; null: torch's global generator, which the trainer seeds per step.</param>
    Step Forward(long[] originalIds, MaskedBatch masked, Generator? sampling)
    {
        var shape = new long[] { masked.BatchSize, masked.SeqLength };
        var device = generator.Device;
        var labels = tensor(masked.Labels, shape, device: device); // [batch, seq]
        var generated = generator.Forward(tensor(masked.InputIds, shape, device: device), labels: labels, positions: labels.ne(-100)); // logits [n, vocab]
        long[] samples;
        using (no_grad()) samples = Sample(generated.Logits, sampling).cpu().data<long>().ToArray();

        var corrupted = (long[])originalIds.Clone();
        for (int i = 0, k = 0; i < masked.Labels.Length; i++)
            if (masked.Labels[i] != MaskedBatch.Ignore) corrupted[i] = samples[k++];
        var targets = new long[originalIds.Length];
        for (int i = 0; i < targets.Length; i++)
            targets[i] = IsSpecial(originalIds[i]) ? MaskedBatch.Ignore : corrupted[i] != originalIds[i] ? 1 : 0;

        var targetTensor = tensor(targets, shape, device: device); // [batch, seq]
        var detected = discriminator.Forward(tensor(corrupted, shape, device: device), labels: targetTensor, positions: targetTensor.ne(-100)); // logits [m]
        var flat = targetTensor.reshape(-1); // [batch * seq]
        return new Step(generated.Loss!, detected.Loss!, detected.Logits, flat.masked_select(flat.ne(MaskedBatch.Ignore)));
    }

    /// <summary>One token per row from softmax(logits), special tokens (the mask token among them) excluded: a special
    /// token in the discriminator's input would be a giveaway, and the packed sequences never hold one there.</summary>
    /// <param name="logits">[n, vocab]</param>
    /// <returns>[n] token ids.</returns>
    Tensor Sample(Tensor logits, Generator? sampling)
    {
        var allowed = specialIds.Length == 0 ? logits : logits.index_fill(1, tensor(specialIds, device: logits.device), double.NegativeInfinity); // [n, vocab]
        return multinomial(F.softmax(allowed.to(ScalarType.Float32), 1), 1, generator: sampling).squeeze(1); // [n]
    }

    bool IsSpecial(long id) => id < vocab.IsSpecial.Length && vocab.IsSpecial[id];
}

/// <summary>Builds, sizes and reloads the generator/discriminator pair of an ELECTRA run.</summary>
public static class ElectraModels
{
    public const string DiscriminatorFolder = "discriminator";
    public const string GeneratorFolder = "generator";

    /// <summary>The discriminator of a BERT-sized encoder: ELECTRA's embeddings at the encoder's width, so no projection.</summary>
    public static ElectraConfig DiscriminatorConfig(BertConfig encoder) => new()
    {
        VocabSize = encoder.VocabSize,
        EmbeddingSize = encoder.HiddenSize,
        HiddenSize = encoder.HiddenSize,
        NumHiddenLayers = encoder.NumHiddenLayers,
        NumAttentionHeads = encoder.NumAttentionHeads,
        IntermediateSize = encoder.IntermediateSize,
        HiddenAct = encoder.HiddenAct,
        HiddenDropoutProb = encoder.HiddenDropoutProb,
        AttentionProbsDropoutProb = encoder.AttentionProbsDropoutProb,
        MaxPositionEmbeddings = encoder.MaxPositionEmbeddings,
        TypeVocabSize = encoder.TypeVocabSize,
        InitializerRange = encoder.InitializerRange,
        LayerNormEps = encoder.LayerNormEps,
        PadTokenId = encoder.PadTokenId,
        Architectures = [ElectraForPreTraining.ArchitectureName],
    };

    /// <summary>
    /// The paper's generator for a discriminator: as many layers, hidden size and heads scaled by
    /// <paramref name="fraction"/> (at least one head; the hidden size rounded to a multiple of the head count, so the
    /// head width stays near the discriminator's), intermediate size 4 × hidden, the discriminator's embedding width.
    /// </summary>
    public static ElectraConfig GeneratorConfig(ElectraConfig discriminator, double fraction)
    {
        if (fraction is <= 0 or > 1) throw new ArgumentOutOfRangeException(nameof(fraction), fraction, "the generator size is a fraction in (0, 1]");
        int heads = Math.Max(1, (int)Math.Round(discriminator.NumAttentionHeads * fraction));
        int headSize = Math.Max(1, (int)Math.Round(discriminator.HiddenSize * fraction / heads));
        return discriminator with
        {
            HiddenSize = heads * headSize,
            NumAttentionHeads = heads,
            IntermediateSize = 4 * heads * headSize,
            Architectures = [ElectraForMaskedLM.ArchitectureName],
        };
    }

    /// <summary>A new pair sharing its embeddings, in training mode.</summary>
    public static (ElectraForMaskedLM Generator, ElectraForPreTraining Discriminator) Create(ElectraConfig discriminator, double generatorFraction)
    {
        var generatorConfig = GeneratorConfig(discriminator, generatorFraction);
        var d = ElectraForPreTraining.Create(discriminator);
        return (ElectraForMaskedLM.CreateSharingEmbeddings(generatorConfig, d), d);
    }

    /// <summary>The pair saved in <paramref name="folder"/>'s generator/ and discriminator/ subfolders, sharing its
    /// embeddings again, in training mode.</summary>
    public static (ElectraForMaskedLM Generator, ElectraForPreTraining Discriminator) Load(string folder)
    {
        var (generatorDir, discriminatorDir) = (Path.Combine(folder, GeneratorFolder), Path.Combine(folder, DiscriminatorFolder));
        foreach (var dir in new[] { generatorDir, discriminatorDir })
            if (!File.Exists(Path.Combine(dir, ModelFolder.ConfigFileName)))
                throw new UnmaskException($"{folder}: an ELECTRA checkpoint needs {Path.GetFileName(dir)}/{ModelFolder.ConfigFileName}");
        // Every parameter is about to be overwritten, so random initialisation would be wasted time.
        using var skip = Parameters.SkipInitialisation();
        var d = ElectraForPreTraining.Create(ElectraConfig.Load(Path.Combine(discriminatorDir, ModelFolder.ConfigFileName)));
        ElectraForMaskedLM? g = null;
        try
        {
            g = ElectraForMaskedLM.CreateSharingEmbeddings(ElectraConfig.Load(Path.Combine(generatorDir, ModelFolder.ConfigFileName)), d);
            // Both files hold the shared embeddings; they were saved from the same tensors, so loading twice writes equal values.
            foreach (var (dir, model) in new (string, PretrainedModel)[] { (discriminatorDir, d), (generatorDir, g) })
            {
                var (path, source) = HfWeightFiles.Open(dir);
                using (source)
                {
                    try
                    {
                        model.LoadHfWeights(source);
                    }
                    catch (UnmaskException ex)
                    {
                        throw new UnmaskException($"{path}: {ex.Message}", ex);
                    }
                }
            }
            return (g, d);
        }
        catch
        {
            g?.Dispose();
            d.Dispose();
            throw;
        }
    }

    /// <summary>Both models for the trainer: the generator is the masked LM it validates; parameters are the
    /// discriminator's under discriminator.*, then the generator's own under generator.* (the shared embeddings once).</summary>
    public static TrainedModels AsTrained(ElectraForMaskedLM generator, ElectraForPreTraining discriminator) => new(generator,
        [(DiscriminatorFolder, discriminator), (GeneratorFolder, generator)],
        discriminator.named_parameters().Select(p => ("discriminator." + p.name, (Tensor)p.parameter))
            .Concat(generator.named_parameters().Select(p => ("generator." + p.name, (Tensor)p.parameter))));
}
