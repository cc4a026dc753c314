using System.Text.RegularExpressions;
using Unmask.Checkpoints;
using Unmask.Modeling;
using Unmask.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Unmask.Tests;

/// <summary>
/// --device and tensor placement. This machine has no GPU and the CPU-only libtorch, so placement is checked three
/// ways without one: device names resolve as a CUDA machine would resolve them, models build and load on libtorch's
/// meta device (which has no data, so any parameter, buffer or tie left on the CPU shows), and every tensor the
/// library creates names its device in the source.
/// </summary>
public class DeviceTests
{
    static readonly Device Meta = new(DeviceType.META);

    static string Model(string name) => Path.Combine(SharedFixtures.HfReference, "models", name);

    [Theory]
    [InlineData("cpu", 4, 1, "cpu")]
    [InlineData(null, 0, 0, "cpu")]
    [InlineData("auto", 0, 3, "cpu")]
    [InlineData("auto", 2, 3, "cuda:1")]
    [InlineData("cuda", 4, 2, "cuda:2")]
    [InlineData("cuda", 2, 5, "cuda:1")]
    [InlineData("CUDA:1", 2, 0, "cuda:1")]
    [InlineData(" cuda:0 ", 1, 7, "cuda:0")]
    public void NamesResolveToThisRanksDevice(string? spec, int gpus, int localRank, string expected)
    {
        var device = ComputeDevice.Resolve(spec, gpus, localRank);
        Assert.Equal(expected, device.type == DeviceType.CPU ? "cpu" : $"cuda:{device.index}");
    }

    [Theory]
    [InlineData("gpu", 2, "expected auto, cpu, cuda or cuda:N")]
    [InlineData("cuda:x", 2, "expected auto, cpu, cuda or cuda:N")]
    [InlineData("cuda:", 2, "expected auto, cpu, cuda or cuda:N")]
    [InlineData("cuda:2", 2, "2 CUDA device(s), cuda:0 to cuda:1")]
    [InlineData("cuda", 0, "TorchSharp-cpu")]
    [InlineData("cuda:0", 0, "TorchSharp-cpu")]
    public void BadNamesAndMissingGpusAreNamedErrors(string spec, int gpus, string expected)
    {
        var error = Assert.Throws<UnmaskException>(() => ComputeDevice.Resolve(spec, gpus, 0));
        Assert.Contains("--device", error.Message);
        Assert.Contains(expected, error.Message);
    }

    [Fact]
    public void ThisBuildHasNoCudaAndAutoIsTheCpu()
    {
        Assert.Equal(DeviceType.CPU, ComputeDevice.Default.type);
        Assert.Throws<UnmaskException>(() => ComputeDevice.Resolve("cuda"));
    }

    [Theory]
    [InlineData("bert-uncased")]
    [InlineData("roberta")]
    [InlineData("distilbert")]
    [InlineData("electra-generator")]
    [InlineData("electra-discriminator")]
    [InlineData("modernbert")]
    public void EveryFamilyLoadsOnTheAskedDeviceWithItsTiesKept(string name)
    {
        using var host = ModelLoader.Load(Model(name), ComputeDevice.Cpu);
        using var meta = ModelLoader.Load(Model(name), Meta);
        Assert.All(meta.parameters(), p => Assert.Equal(DeviceType.META, p.device_type));
        Assert.All(meta.buffers(), b => Assert.Equal(DeviceType.META, b.device_type));
        Assert.Equal(DeviceType.META, meta.Device.type);
        // A decoder tied to the word embeddings is one parameter on either device: moving a built model would untie it.
        static int Distinct(PretrainedModel m) => m.parameters().Distinct(ReferenceEqualityComparer.Instance).Count();
        Assert.Equal(Distinct(host), Distinct(meta));
        Assert.Equal(host.NamedParametersOnce().Select(p => p.Name), meta.NamedParametersOnce().Select(p => p.Name));
    }

    [Fact]
    public void NewModelsAndTheElectraPairAreBuiltOnTheScopedDevice()
    {
        var config = BertConfig.Preset("tiny", 300);
        using (Parameters.On(Meta))
        {
            using var bert = ModelFamilies.CreateMaskedLm(config);
            var (generator, discriminator) = ElectraModels.Create(ElectraModels.DiscriminatorConfig(config), 0.25);
            using (generator)
            using (discriminator)
            {
                foreach (var model in new PretrainedModel[] { bert, generator, discriminator })
                    Assert.All(model.parameters(), p => Assert.Equal(DeviceType.META, p.device_type));
                // The pair shares its embeddings across the two models.
                Assert.Same(generator.Encoder.WordEmbeddingWeight, discriminator.Encoder.WordEmbeddingWeight);
            }
        }
        // The scope ends with its using: parameters made afterwards are the CPU's again.
        using var after = ModelFamilies.CreateMaskedLm(config);
        Assert.All(after.parameters(), p => Assert.Equal(DeviceType.CPU, p.device_type));
    }

    [Fact]
    public void InputsOnAnotherDeviceThanTheModelAreRefusedByName()
    {
        using var model = ModelLoader.Load(Model("bert-uncased"), Meta);
        using var ids = tensor(new long[] { 101, 102 }, [1, 2]);
        var error = Assert.Throws<ArgumentException>(() => model.Forward(ids));
        Assert.Contains("input_ids is on cpu but the model is on meta", error.Message);
    }

    [Fact]
    public void TheCliTakesDeviceOnEveryModelCommandAndRefusesAGpuItCannotUse()
    {
        var text = "the capital of france is [MASK] .";
        var (code, byDefault, error) = CliTests.Run("fill", "--model", Model("bert-uncased"), "--json", text);
        Assert.True(code == 0, error);
        var (cpuCode, onCpu, _) = CliTests.Run("fill", "--model", Model("bert-uncased"), "--json", "--device", "cpu", text);
        Assert.Equal(0, cpuCode);
        Assert.Equal(byDefault, onCpu);

        foreach (var args in new[]
        {
            new[] { "fill", "--model", Model("bert-uncased"), "--device", "cuda", text },
            ["score", "--model", Model("bert-uncased"), "--device", "cuda:1", "a sentence ."],
            ["embed", "--model", Model("bert-uncased"), "--device", "cuda", "a sentence ."],
            ["pretrain", "--output", Path.Combine(Path.GetTempPath(), "unmask-device-never-written"), "--steps", "1", "--device", "cuda"],
            ["generate", "--model", Model("bert-uncased"), "--device", "tpu", text],
        })
        {
            var (failed, stdout, stderr) = CliTests.Run(args);
            Assert.NotEqual(0, failed);
            Assert.Equal("", stdout);
            Assert.Contains("--device", stderr);
        }
        Assert.False(Directory.Exists(Path.Combine(Path.GetTempPath(), "unmask-device-never-written")));
    }

    /// <summary>The library's tensor factories, and torch.Generator: what creates memory somewhere.</summary>
    static readonly Regex Factory = new(
        @"(?:(?<=torch\.)|(?<![\w.]))(tensor|zeros|ones|empty|full|arange|eye|linspace|logspace|rand|randn|randint|randperm|from_array|as_tensor|scalar_tensor)\s*\(|new\s+Generator\s*\(",
        RegexOptions.Compiled);

    [Fact]
    public void EveryTensorTheLibraryCreatesNamesItsDevice()
    {
        var src = Path.Combine(RepositoryRoot(), "src", "Unmask");
        var unplaced = new List<string>();
        int checkedCalls = 0;
        foreach (var file in Directory.EnumerateFiles(src, "*.cs", SearchOption.AllDirectories).Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}")))
        {
            var code = WithoutCommentsAndStrings(File.ReadAllText(file));
            foreach (Match match in Factory.Matches(code))
            {
                checkedCalls++;
                var arguments = Arguments(code, match.Index + match.Length);
                if (!arguments.Contains("device:", StringComparison.Ordinal))
                {
                    int line = code[..match.Index].Count(c => c == '\n') + 1;
                    unplaced.Add($"{Path.GetRelativePath(src, file)}:{line}: {match.Value}{arguments})");
                }
            }
        }
        Assert.True(checkedCalls > 40, $"only {checkedCalls} factory calls found: the scan is broken");
        Assert.True(unplaced.Count == 0, "tensors created without a device:\n" + string.Join("\n", unplaced));
    }

    /// <summary>The text between an opening parenthesis (just before <paramref name="start"/>) and its match.</summary>
    static string Arguments(string code, int start)
    {
        int depth = 1, i = start;
        for (; i < code.Length && depth > 0; i++)
            depth += code[i] switch { '(' => 1, ')' => -1, _ => 0 };
        return code[start..(i - 1)];
    }

    /// <summary>The source with comments and string literals blanked (newlines kept for line numbers), so prose such
    /// as "tensor(s)" is not taken for a call.</summary>
    static string WithoutCommentsAndStrings(string code)
    {
        var text = Regex.Replace(code, @"//[^\n]*", "");
        return Regex.Replace(text, "\"(?:\\\\.|[^\"\\\\\\n])*\"", "\"\"");
    }

    static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "src", "Unmask", "Unmask.csproj"))) return dir.FullName;
        throw new DirectoryNotFoundException("the repository root (src/Unmask/Unmask.csproj) was not found above the test output");
    }
}
