using TorchSharp;
using Unmask.Checkpoints;
using Unmask.Data;
using Unmask.Masking;
using Unmask.Modeling;
using Unmask.Tokenization;

namespace Unmask.Training;

/// <summary>
/// What a run trains and how: the tokenizer, the networks (new, continued from --init-from, or read back from a
/// checkpoint), the objective over them, and the precision they compute in. Model construction lives here alone.
/// </summary>
internal sealed class TrainingSetup : IDisposable
{
    TrainingSetup(TrainedModels models, IObjective objective, IHfConfig config, Precision precision, MaskingVocabulary vocab)
    {
        (Models, Objective, Config, Precision, Vocab) = (models, objective, config, precision, vocab);
    }

    public TrainedModels Models { get; }
    public IObjective Objective { get; }
    /// <summary>The config the run was sized from (for ELECTRA the BERT config of its discriminator).</summary>
    public IHfConfig Config { get; }
    /// <summary>Bf16 or Fp32, never Auto: what auto chose.</summary>
    public Precision Precision { get; }
    public MaskingVocabulary Vocab { get; }

    public string PrecisionName => Precision == Precision.Bf16 ? "bf16" : "fp32";

    /// <summary>A checkpoint's or --init-from model's own tokenizer, or a WordPiece vocabulary trained on the corpus.</summary>
    public static ITokenizer Tokenizer(PretrainOptions options, string? modelFolder, Corpus corpus, Action<string> phase, CancellationToken ct)
    {
        if (modelFolder is not null)
            return TokenizerLoader.Load(options.Objective == ObjectiveKind.Electra ? Path.Combine(modelFolder, ElectraModels.DiscriminatorFolder) : modelFolder);
        phase("training tokenizer");
        return WordPieceTrainer.Train(corpus.Train, new WordPieceTrainerOptions(VocabSize: options.VocabSize, LowerCase: options.LowerCase), null, ct);
    }

    /// <param name="modelFolder">A checkpoint to resume or a model to continue; null for new models.</param>
    public static TrainingSetup Create(PretrainOptions options, string? modelFolder, ITokenizer tokenizer, TokenizedCorpus data,
        Func<int, int, bool> bf16IsFaster, Action<string> phase, CancellationToken ct)
    {
        bool electra = options.Objective == ObjectiveKind.Electra;
        // ELECTRA sizes its discriminator from this config; a resumed pair is then read back from its own folders.
        var config = modelFolder is not null && !electra ? ModelFamilies.LoadConfig(ConfigPath(modelFolder))
            : options.ConfigPath is { } cp
            ? ModelFamilies.LoadConfig(cp).WithVocabulary(tokenizer.VocabSize, tokenizer.PadId)
            : BertConfig.Preset(options.Size, tokenizer.VocabSize) with
            {
                HiddenDropoutProb = options.PresetDropout, AttentionProbsDropoutProb = options.PresetDropout,
            };
        if (electra && modelFolder is null && config is not BertConfig)
            throw new UnmaskException($"{options.ConfigPath}: ELECTRA pretraining sizes its discriminator from a BERT config (model_type 'bert'), not a '{config.ModelType}' one");
        if (config.MaxSequenceLength < options.MaxSeqLength)
            throw new UnmaskException($"max sequence length {options.MaxSeqLength} exceeds the model's {config.MaxSequenceLength} positions");
        if (tokenizer.VocabSize > config.VocabSize)
            throw new UnmaskException($"the tokenizer has {tokenizer.VocabSize} tokens but the model's vocab_size is {config.VocabSize}");

        // The benchmark draws random matrices, so it runs before seeding the weights' initialisation.
        var precision = options.Precision switch
        {
            Precision.Auto => bf16IsFaster(config.HiddenSize, config.IntermediateSize) ? Precision.Bf16 : Precision.Fp32,
            var chosen => chosen,
        };
        ComputeDevice.Seed(options.Seed);
        var computeDtype = precision == Precision.Bf16 ? ComputeDtype.BFloat16 : ComputeDtype.Float32;
        var vocab = MaskingVocabulary.FromTokenizer(tokenizer, config.VocabSize);
        IObjective objective;
        TrainedModels models;
        if (electra)
        {
            var (generator, discriminator) = modelFolder is not null ? ElectraModels.Load(modelFolder)
                : ElectraModels.Create(ElectraModels.DiscriminatorConfig((BertConfig)config), options.GeneratorSize);
            if (modelFolder is null && options.AttentionInit == AttentionInit.Local)
            {
                discriminator.InitialiseLocalAttention();
                generator.InitialiseLocalAttention();
            }
            (discriminator.ComputeDtype, generator.ComputeDtype) = (computeDtype, computeDtype);
            models = ElectraModels.AsTrained(generator, discriminator);
            objective = new ElectraObjective(generator, discriminator,
                CreateMasking(options.EffectiveMasking, vocab, tokenizer, data, phase, ct), vocab, options.DiscriminatorWeight);
        }
        else
        {
            // A folder of another head's class (a classifier, ELECTRA's discriminator) continues with its encoder under a new masked-LM head.
            var model = modelFolder is not null ? ModelLoader.LoadWithReport(modelFolder, HeadKind.MaskedLm).Model : ModelFamilies.CreateMaskedLm(config);
            if (modelFolder is null && options.AttentionInit == AttentionInit.Local) model.InitialiseLocalAttention();
            model.ComputeDtype = computeDtype;
            models = TrainedModels.Single(model);
            objective = options.Objective == ObjectiveKind.Mdlm ? new MdlmObjective(model, vocab)
                : new MlmObjective(model, CreateMasking(options.Masking, vocab, tokenizer, data, phase, ct));
        }
        return new TrainingSetup(models, objective, config, precision, vocab);
    }

    static string ConfigPath(string folder)
    {
        var path = Path.Combine(folder, ModelFolder.ConfigFileName);
        if (!File.Exists(path)) throw new UnmaskException($"{folder}: no {ModelFolder.ConfigFileName}; is it a Hugging Face model folder?");
        return path;
    }

    /// <summary>The configured strategy; corpus statistics, when it needs them, are cached beside the token store.</summary>
    static IMaskingStrategy CreateMasking(MaskingOptions options, MaskingVocabulary vocab, ITokenizer tokenizer, TokenizedCorpus data,
        Action<string> phase, CancellationToken ct)
    {
        var boundaries = WordBoundaries.FromTokenizer(tokenizer, vocab);
        CorpusStatistics? statistics = null;
        if (MaskingStrategies.NeedsStatistics(options.Strategy))
        {
            phase("counting corpus statistics for masking");
            var pmi = MaskingStrategies.CollocationOptions(options);
            var file = pmi is null ? "masking-stats-tokens.json" : $"masking-stats-pmi-{pmi.MaxWords}-{pmi.MinCount}-{pmi.Collocations}.json";
            var store = data.Store(DataSplit.Train);
            statistics = CorpusStatistics.LoadOrCompute(Path.Combine(data.CacheDirectory, file),
                () => CorpusStatistics.Compute(Documents(store), boundaries, pmi, ct));
        }
        return MaskingStrategies.Create(options, vocab, boundaries, statistics);
    }

    static IEnumerable<int[]> Documents(TokenStore store)
    {
        for (long d = 0; d < store.Documents; d++) yield return store.Document(d).ToArray();
    }

    public void Dispose() => Models.Dispose();
}
