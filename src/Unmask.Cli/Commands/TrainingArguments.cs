using System.CommandLine;
using Unmask.Masking;
using Unmask.Training;

namespace Unmask.Cli.Commands;

/// <summary>
/// The corpus, model and optimizer options of a training run, shared by `pretrain` and `ablate`; the budget, the
/// objective and the masking strategy are each command's own (`ablate` sets them per variant).
/// </summary>
public sealed class TrainingArguments
{
    readonly Option<string?> _corpus = new("--corpus") { Description = "Corpus file or folder (.txt, .txt.gz, .jsonl, .jsonl.gz); default: the .NET SDK's API documentation" };
    readonly Option<string> _encoding = new Option<string>("--encoding") { DefaultValueFactory = _ => "utf-8", Description = "utf-8 (reject other bytes) or auto (files that are not UTF-8 are read as Latin-1)" }
        .AcceptOnlyFromAmong("utf-8", "auto");
    readonly Option<string> _size = new("--size") { Description = "tiny, mini, small, medium or base", DefaultValueFactory = _ => "mini" };
    readonly Option<string?> _config = new("--config") { Description = "A Hugging Face config.json instead of a size preset" };
    readonly Option<string?> _initFrom = new("--init-from") { Description = "Continue pretraining a Hugging Face BERT/RoBERTa model folder, with its own tokenizer and config" };
    readonly Option<int> _batch = new("--batch-size") { DefaultValueFactory = _ => 16, Description = "Sequences per micro-batch" };
    readonly Option<int> _accumulation = new("--gradient-accumulation") { DefaultValueFactory = _ => 1 };
    readonly Option<int> _seqLength = new("--max-seq-length") { DefaultValueFactory = _ => 128 };
    readonly Option<double> _lr = new("--lr") { DefaultValueFactory = _ => 5e-4, Description = "Peak learning rate" };
    readonly Option<double> _warmup = new("--warmup") { DefaultValueFactory = _ => 0.05, Description = "Warm-up as a fraction of the budget" };
    readonly Option<DecayKind> _decay = new("--decay") { DefaultValueFactory = _ => DecayKind.Linear, Description = "linear, cosine or constant" };
    readonly Option<double> _weightDecay = new("--weight-decay") { DefaultValueFactory = _ => 0.01 };
    readonly Option<double> _clip = new("--max-grad-norm") { DefaultValueFactory = _ => 1.0 };
    readonly Option<int> _vocab = new("--vocab-size") { DefaultValueFactory = _ => 16384 };
    readonly Option<double> _dropout = new("--dropout") { DefaultValueFactory = _ => 0.0, Description = "Dropout of a size preset (a --config keeps its own)" };
    readonly Option<bool> _cased = new("--cased") { Description = "Keep case (default: lower-case as bert-base-uncased)" };
    readonly Option<Precision> _precision = new("--precision") { DefaultValueFactory = _ => Precision.Auto, Description = "auto, bf16 or fp32 matrix products" };
    readonly Option<int> _seed = new("--seed") { DefaultValueFactory = _ => 42 };
    readonly Option<string> _device = ModelOptions.DeviceOption();
    readonly Option<AttentionInit> _attentionInit = new("--attention-init") { DefaultValueFactory = _ => AttentionInit.Local, Description = "local (default: sinusoid positions and identity query/key projections, so attention starts near each token) or random (HF's initialisation)" };
    readonly Option<double> _generatorSize = new("--generator-size") { DefaultValueFactory = _ => 0.25, Description = "electra: generator hidden size and heads as a fraction of the discriminator's" };
    readonly Option<double> _discWeight = new("--disc-weight") { DefaultValueFactory = _ => 50, Description = "electra: weight of the discriminator's loss beside the generator's" };

    public void AddTo(Command command)
    {
        foreach (var option in new Option[] { _corpus, _encoding, _size, _config, _initFrom, _batch, _accumulation, _seqLength, _lr, _warmup, _decay, _weightDecay, _clip, _vocab, _dropout, _cased, _precision, _seed, _device, _attentionInit, _generatorSize, _discWeight })
            command.Options.Add(option);
    }

    /// <summary>Where the run trains; also read on --resume, where the checkpoint supplies everything else.</summary>
    public TorchSharp.torch.Device Device(ParseResult parse) => ModelOptions.ReadDevice(parse, _device);

    /// <summary>The options the command line describes, with no budget set.</summary>
    public PretrainOptions Read(ParseResult parse, string output, MaskingOptions masking) => new()
    {
        Corpus = parse.GetValue(_corpus),
        Device = Device(parse),
        CorpusLatin1Fallback = parse.GetValue(_encoding) == "auto",
        Output = output,
        Size = parse.GetValue(_size)!,
        ConfigPath = parse.GetValue(_config),
        InitFrom = parse.GetValue(_initFrom) is { } init ? Path.GetFullPath(init) : null,
        BatchSize = parse.GetValue(_batch),
        GradientAccumulationSteps = parse.GetValue(_accumulation),
        MaxSeqLength = parse.GetValue(_seqLength),
        LearningRate = parse.GetValue(_lr),
        WarmupRatio = parse.GetValue(_warmup),
        Decay = parse.GetValue(_decay),
        WeightDecay = parse.GetValue(_weightDecay),
        MaxGradNorm = parse.GetValue(_clip),
        AttentionInit = parse.GetValue(_attentionInit),
        GeneratorSize = parse.GetValue(_generatorSize),
        DiscriminatorWeight = parse.GetValue(_discWeight),
        Masking = masking,
        VocabSize = parse.GetValue(_vocab),
        PresetDropout = parse.GetValue(_dropout),
        LowerCase = !parse.GetValue(_cased),
        Precision = parse.GetValue(_precision),
        Seed = parse.GetValue(_seed),
    };
}
