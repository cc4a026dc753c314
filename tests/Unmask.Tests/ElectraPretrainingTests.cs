using TorchSharp;
using Unmask.Checkpoints;
using Unmask.Data;
using Unmask.Masking;
using Unmask.Modeling;
using Unmask.Tokenization;
using Unmask.Training;
using static TorchSharp.torch;

namespace Unmask.Tests;

/// <summary>ELECTRA's pieces: generator sizing, the shared embeddings, saving and reloading the pair, bf16, options.</summary>
public class ElectraPretrainingTests : IDisposable
{
    readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("unmask-electra");

    public void Dispose() => _dir.Delete(recursive: true);

    static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    static readonly ElectraConfig Discriminator = ElectraModels.DiscriminatorConfig(new BertConfig
    {
        VocabSize = 120, HiddenSize = 32, NumHiddenLayers = 2, NumAttentionHeads = 4, IntermediateSize = 64,
        MaxPositionEmbeddings = 24, HiddenDropoutProb = 0, AttentionProbsDropoutProb = 0,
    });

    static string[] EmbeddingNames { get; } =
    [
        "electra.embeddings.word_embeddings.weight", "electra.embeddings.position_embeddings.weight",
        "electra.embeddings.token_type_embeddings.weight", "electra.embeddings.LayerNorm.weight", "electra.embeddings.LayerNorm.bias",
    ];

    [Theory]
    // Preset (layers, hidden, heads), fraction → generator hidden and heads.
    [InlineData("tiny", 0.25, 32, 1)]
    [InlineData("mini", 0.25, 64, 1)]
    [InlineData("mini", 0.5, 128, 2)]
    [InlineData("base", 0.25, 192, 3)]
    [InlineData("base", 1.0, 768, 12)]
    public void GeneratorKeepsTheLayersAndScalesWidthAndHeads(string preset, double fraction, int hidden, int heads)
    {
        var discriminator = ElectraModels.DiscriminatorConfig(BertConfig.Preset(preset, 1000));
        var generator = ElectraModels.GeneratorConfig(discriminator, fraction);
        Assert.Equal(discriminator.HiddenSize, discriminator.EmbeddingSize);
        Assert.Equal((hidden, heads, 4 * hidden), (generator.HiddenSize, generator.NumAttentionHeads, generator.IntermediateSize));
        Assert.Equal(discriminator.NumHiddenLayers, generator.NumHiddenLayers);
        Assert.Equal(discriminator.EmbeddingSize, generator.EmbeddingSize);
        Assert.Equal([ElectraForMaskedLM.ArchitectureName], generator.Architectures);
        Assert.Equal([ElectraForPreTraining.ArchitectureName], discriminator.Architectures);
    }

    [Fact]
    public void GeneratorTrainsTheDiscriminatorsEmbeddingTensorsCountedOnce()
    {
        torch.manual_seed(3);
        var (generator, discriminator) = ElectraModels.Create(Discriminator, 0.5);
        using var trained = ElectraModels.AsTrained(generator, discriminator);
        var g = generator.state_dict();
        var d = discriminator.state_dict();
        Assert.Equal([16, 32], g["electra.embeddings_project.weight"].shape);
        Assert.False(d.ContainsKey("electra.embeddings_project.weight"), "the discriminator's embeddings are its hidden width");

        using (no_grad())
            foreach (var name in EmbeddingNames)
            {
                d[name].add_(0.5);
                Assert.True(Same(g[name], d[name]), $"{name}: changing the discriminator's tensor changes the generator's");
            }
        Assert.True(Same(g["generator_lm_head.weight"], d["electra.embeddings.word_embeddings.weight"]), "the generator's decoder is the shared word embedding matrix");

        var names = trained.Parameters.Select(p => p.Name).ToList();
        Assert.Equal(names.Count, names.Distinct().Count());
        Assert.DoesNotContain(names, n => n.StartsWith("generator.electra.embeddings.", StringComparison.Ordinal) || n == "generator.generator_lm_head.weight");
        long shared = EmbeddingNames.Sum(n => d[n].numel());
        long expected = d.Values.Sum(t => t.numel()) + generator.StateDictForSave().Values.Sum(t => t.numel()) - shared;
        Assert.Equal(expected, trained.Parameters.Sum(p => p.Parameter.numel()));

        // A step on the generator's loss alone moves the word embeddings the discriminator reads.
        var before = d["electra.embeddings.word_embeddings.weight"].clone();
        using var optimizer = new AdamW(AdamW.DecayGroups(trained.Parameters, 0.0));
        using (var scope = NewDisposeScope())
        {
            var ids = torch.randint(5, 120, [2, 12]); // [2, 12]
            using var output = generator.Forward(ids, labels: ids.clone());
            output.Loss!.backward();
            optimizer.StepWith(1e-2);
        }
        Assert.False(Same(d["electra.embeddings.word_embeddings.weight"], before));
        Assert.True(Same(g["electra.embeddings.word_embeddings.weight"], d["electra.embeddings.word_embeddings.weight"]));
        before.Dispose();
    }

    [Fact]
    public void CheckpointFoldersLoadAsTheirArchitecturesWithTheSameLogits()
    {
        torch.manual_seed(4);
        var (generator, discriminator) = ElectraModels.Create(Discriminator, 0.25);
        using var trained = ElectraModels.AsTrained(generator, discriminator);
        // Move every weight off its initial value so that a parameter left unloaded would show.
        using (no_grad()) foreach (var (_, p) in trained.Parameters) p.add_(torch.randn_like(p) * 0.05);
        trained.SetTraining(false);
        var tokenizer = WordPieceTrainer.Train(["the cat sat on the mat", "a dog ran"], new WordPieceTrainerOptions(VocabSize: 60, MinFrequency: 1));
        using var optimizer = new AdamW(AdamW.DecayGroups(trained.Parameters, 0.01));
        var state = new TrainerState(new PretrainOptions { Output = _dir.FullName, Objective = ObjectiveKind.Electra }, 3, 300, TimeSpan.FromSeconds(2), new BatcherPosition(0, 3));
        var folder = CheckpointWriter.SaveCheckpoint(_dir.FullName, trained.Folders, tokenizer, state, optimizer);
        Assert.Equal(Path.Combine(_dir.FullName, "checkpoint-3"), folder);

        Assert.True(File.Exists(Path.Combine(folder, TrainerState.FileName)));
        Assert.True(File.Exists(Path.Combine(folder, TrainerState.OptimizerFileName)));
        Assert.Equal(ObjectiveKind.Electra, TrainerState.Load(folder).Options.Objective);

        using var scope = NewDisposeScope();
        var ids = torch.randint(5, 120, [3, 16]); // [3, 16]
        var mask = torch.ones(3, 16, dtype: ScalarType.Int64);
        mask[2, 12..] = torch.tensor(0L);
        Tensor Logits(PretrainedModel model)
        {
            using var noGrad = no_grad();
            using var output = model.Forward(ids, attentionMask: mask);
            return output.Logits.clone();
        }

        var dir = Path.Combine(folder, ElectraModels.DiscriminatorFolder);
        Assert.Equal((ElectraForPreTraining.ArchitectureName, "electra"), ModelLoader.Identify(Path.Combine(dir, ModelFolder.ConfigFileName)));
        using (var loaded = ModelLoader.Load(dir))
        {
            Assert.IsType<ElectraForPreTraining>(loaded);
            Assert.Equal(HeadKind.ReplacedToken, loaded.Head);
            Assert.True(Same(Logits(loaded), Logits(discriminator)));
        }
        dir = Path.Combine(folder, ElectraModels.GeneratorFolder);
        Assert.Equal((ElectraForMaskedLM.ArchitectureName, "electra"), ModelLoader.Identify(Path.Combine(dir, ModelFolder.ConfigFileName)));
        Assert.Equal(tokenizer.VocabSize, TokenizerLoader.Load(dir).VocabSize);
        using (var loaded = ModelLoader.Load(dir))
        {
            Assert.IsType<ElectraForMaskedLM>(loaded);
            Assert.True(Same(Logits(loaded), Logits(generator)));
        }

        // Resuming reads the pair back with its embeddings shared again.
        var (g2, d2) = ElectraModels.Load(folder);
        using var reloaded = ElectraModels.AsTrained(g2, d2);
        reloaded.SetTraining(false);
        Assert.True(Same(Logits(g2), Logits(generator)));
        Assert.True(Same(Logits(d2), Logits(discriminator)));
        using (no_grad()) d2.state_dict()["electra.embeddings.word_embeddings.weight"].mul_(2);
        Assert.True(Same(g2.state_dict()["electra.embeddings.word_embeddings.weight"], d2.state_dict()["electra.embeddings.word_embeddings.weight"]));
    }

    [Fact]
    public void Bf16ComputeStaysCloseToFloat32()
    {
        torch.manual_seed(5);
        var (generator, discriminator) = ElectraModels.Create(Discriminator, 0.5);
        using var trained = ElectraModels.AsTrained(generator, discriminator);
        trained.SetTraining(false);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var ids = torch.randint(5, 120, [2, 20]); // [2, 20]
        var mask = torch.ones(2, 20, dtype: ScalarType.Int64);
        mask[1, 15..] = torch.tensor(0L);
        foreach (PretrainedModel model in new PretrainedModel[] { generator, discriminator })
        {
            var fp32 = model.Forward(ids, attentionMask: mask).Logits;
            (generator.ComputeDtype, discriminator.ComputeDtype) = (ComputeDtype.BFloat16, ComputeDtype.BFloat16);
            var bf16 = model.Forward(ids, attentionMask: mask).Logits;
            (generator.ComputeDtype, discriminator.ComputeDtype) = (ComputeDtype.Float32, ComputeDtype.Float32);
            Assert.Equal(ScalarType.Float32, bf16.dtype);
            Assert.False(bf16.isnan().any().item<bool>(), $"{model.Architecture}: NaN under bf16 with padding");
            double scale = fp32.abs().max().item<float>();
            double error = (bf16 - fp32).abs().max().item<float>();
            Assert.True(error < 0.05 * scale, $"{model.Architecture}: bf16 differs by {error} at logit scale {scale}");
            Assert.True(error > 0, $"{model.Architecture}: bf16 must actually change the arithmetic");
        }
    }

    [Fact]
    public void OptionsCheckTheElectraSettingsAndPickItsMaskingDefault()
    {
        var options = new PretrainOptions { Output = "unused", Objective = ObjectiveKind.Electra };
        options.Validate();
        Assert.Equal(ElectraObjective.DefaultMasking, options.EffectiveMasking);
        Assert.Equal((0.15, 0.85, 0.0, 0.15), (options.EffectiveMasking.Rate, options.EffectiveMasking.MaskFraction,
            options.EffectiveMasking.RandomFraction, options.EffectiveMasking.KeepFraction));
        var explicitMasking = new MaskingOptions(Rate: 0.25);
        Assert.Equal(explicitMasking, (options with { Masking = explicitMasking }).EffectiveMasking);
        Assert.Equal(new MaskingOptions(), (options with { Objective = ObjectiveKind.Mlm }).EffectiveMasking);

        Assert.Contains("--generator-size", Assert.Throws<UnmaskException>((options with { GeneratorSize = 0 }).Validate).Message);
        Assert.Contains("--generator-size", Assert.Throws<UnmaskException>((options with { GeneratorSize = 1.5 }).Validate).Message);
        Assert.Contains("--disc-weight", Assert.Throws<UnmaskException>((options with { DiscriminatorWeight = 0 }).Validate).Message);
        Assert.Contains("--init-from", Assert.Throws<UnmaskException>((options with { InitFrom = _dir.FullName }).Validate).Message);
    }

    [Fact]
    public void ValidationCorruptionIsFixedAndLabelsOnlyReplacedTokens()
    {
        torch.manual_seed(6);
        var (generator, discriminator) = ElectraModels.Create(Discriminator, 0.5);
        using var trained = ElectraModels.AsTrained(generator, discriminator);
        trained.SetTraining(false);
        var special = Enumerable.Range(0, 120).Select(i => i < 5).ToArray();
        var vocab = new MaskingVocabulary(120, 4, special);
        var objective = new ElectraObjective(generator, discriminator, new RandomMasking(ElectraObjective.DefaultMasking, vocab), vocab, 50);
        var rng = new Random(1);
        var batches = Enumerable.Range(0, 3).Select(_ =>
            Enumerable.Range(0, 4 * 16).Select(i => i % 16 == 0 ? 2L : i % 16 == 15 ? 3L : rng.Next(5, 120)).ToArray()).ToList();

        IReadOnlyDictionary<string, double> first, second;
        using (inference_mode())
        {
            first = objective.ValidationMetrics(batches, 16);
            second = objective.ValidationMetrics(batches, 16);
        }
        Assert.Equal(first, second);
        Assert.Equal(1.0, first["rtd_baseline_accuracy"] + first["rtd_replaced_fraction"], 9);
        // An untrained generator samples almost uniformly from 115 tokens: nearly every selected token is replaced.
        Assert.InRange(first["rtd_replaced_fraction"], 0.08, 0.2);

        // A vocabulary with a single ordinary token leaves the generator nothing else to sample: nothing is replaced.
        var one = new MaskingVocabulary(120, 4, Enumerable.Range(0, 120).Select(i => i != 7).ToArray());
        var constant = new ElectraObjective(generator, discriminator, new RandomMasking(ElectraObjective.DefaultMasking, one), one, 50);
        var sevens = Enumerable.Range(0, 4 * 16).Select(i => i % 16 == 0 ? 2L : i % 16 == 15 ? 3L : 7L).ToArray();
        IReadOnlyDictionary<string, double> none;
        using (inference_mode()) none = constant.ValidationMetrics([sevens], 16);
        Assert.Equal(0.0, none["rtd_replaced_fraction"]);
        Assert.Equal(1.0, none["rtd_baseline_accuracy"]);

        // The training loss is the generator's plus λ times the discriminator's.
        using var scope = NewDisposeScope();
        trained.SetTraining(true);
        var loss = objective.Loss(batches[0], 4, 16, new Random(2), 0);
        Assert.Equal(loss.Parts["generator_loss"].item<float>() + 50 * loss.Parts["discriminator_loss"].item<float>(), loss.Loss.item<float>(), 3);
        Assert.True(loss.PredictedTokens > 0);
    }
}

public class ElectraDiscriminatorLearningTests
{
    [Fact]
    public void DiscriminatorLearnsAReplacementRuleFromItsLoss()
    {
        torch.manual_seed(9);
        var config = ElectraModels.DiscriminatorConfig(new BertConfig
        {
            VocabSize = 60, HiddenSize = 32, NumHiddenLayers = 2, NumAttentionHeads = 2, IntermediateSize = 64,
            MaxPositionEmbeddings = 32, HiddenDropoutProb = 0, AttentionProbsDropoutProb = 0,
        });
        var (generator, discriminator) = ElectraModels.Create(config, 0.5);
        using var trained = ElectraModels.AsTrained(generator, discriminator);
        using var optimizer = new AdamW(AdamW.DecayGroups(trained.Parameters, 0.0));
        var rng = new Random(3);
        double Accuracy(int step)
        {
            using var scope = NewDisposeScope();
            var ids = torch.tensor(Enumerable.Range(0, 16 * 24).Select(_ => (long)rng.Next(5, 60)).ToArray(), [16, 24]); // [16, 24]
            // Odd ids count as replaced: learnable from the token alone.
            var labels = ids.remainder(2); // [16, 24]
            using var output = discriminator.Forward(ids, labels: labels);
            double accuracy = output.Logits.gt(0).eq(labels.eq(1)).to(ScalarType.Float32).mean().item<float>();
            output.Loss!.backward();
            optimizer.StepWith(2e-3);
            trained.ZeroGrad();
            return accuracy;
        }
        var accuracies = Enumerable.Range(0, 150).Select(Accuracy).ToList();
        Assert.True(accuracies.TakeLast(10).Average() > 0.95, $"accuracy {accuracies.Take(10).Average():F3} → {accuracies.TakeLast(10).Average():F3}");
    }
}

/// <summary>An ELECTRA run end to end. Trains, so it runs alone beside the other trainer tests.</summary>
[Collection(nameof(BertProcessWideTests))]
public class ElectraPretrainRunTests : IDisposable
{
    readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("unmask-electra-run");

    public void Dispose() => _dir.Delete(recursive: true);

    [Fact]
    public void ShortRunLowersBothLossesAndLeavesTwoHuggingFaceFolders()
    {
        var config = Path.Combine(_dir.FullName, "config.json");
        File.WriteAllText(config, """
            {"vocab_size": 1000, "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 128,
             "max_position_embeddings": 64, "model_type": "bert", "hidden_dropout_prob": 0, "attention_probs_dropout_prob": 0}
            """);
        var result = Pretrainer.Run(new PretrainOptions
        {
            Corpus = Path.Combine(SharedFixtures.Gutenberg, "extra", "alice_in_wonderland.txt.gz"),
            Output = Path.Combine(_dir.FullName, "run"),
            ConfigPath = config,
            Objective = ObjectiveKind.Electra,
            MaxSteps = 60,
            BatchSize = 8,
            MaxSeqLength = 32,
            VocabSize = 600,
            LearningRate = 2e-3,
            Precision = Precision.Fp32,
            LoggingSteps = 10,
            SaveSteps = 0,
            EvalFraction = 0.5,
            ValidationSequences = 16,
        });
        Assert.Equal(60, result.Steps);

        var records = MetricsLog.Read(Path.Combine(result.OutputDirectory, "metrics.jsonl"));
        var train = records.Where(r => r.Split == "train").OrderBy(r => r.Step).ToList();
        foreach (var name in new[] { "loss", "generator_loss", "discriminator_loss" })
            Assert.True(train[^1].Values[name] < train[0].Values[name], $"{name}: {train[0].Values[name]:F3} at step {train[0].Step} → {train[^1].Values[name]:F3}");
        Assert.Equal(train[^1].Values["generator_loss"] + 50 * train[^1].Values["discriminator_loss"], train[^1].Values["loss"], 3);

        var validation = records.Where(r => r.Split == "validation").OrderBy(r => r.Step).ToList();
        Assert.True(validation[^1].Values["loss"] < validation[0].Values["loss"], "the generator's masked-LM validation loss falls");
        foreach (var name in new[] { "rtd_accuracy", "rtd_baseline_accuracy", "rtd_replaced_recall", "rtd_loss" })
            Assert.Equal(validation[^1].Values[name], result.Validation.ObjectiveMetrics[name]);
        Assert.InRange(validation[^1].Values["rtd_baseline_accuracy"], 0.8, 0.95);

        using var discriminator = ModelLoader.Load(Path.Combine(result.OutputDirectory, ElectraModels.DiscriminatorFolder));
        Assert.IsType<ElectraForPreTraining>(discriminator);
        using var generator = ModelLoader.Load(Path.Combine(result.OutputDirectory, ElectraModels.GeneratorFolder));
        Assert.IsType<ElectraForMaskedLM>(generator);
        Assert.True(File.Exists(Path.Combine(result.OutputDirectory, TrainerState.FileName)));
        Assert.True(File.Exists(Path.Combine(result.OutputDirectory, "loss.png")));
    }
}
