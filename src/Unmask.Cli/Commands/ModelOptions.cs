using Unmask.Tokenization;
using System.CommandLine;
using Unmask.Inference;
using Unmask.Modeling;
using Device = TorchSharp.torch.Device;

namespace Unmask.Cli.Commands;

/// <summary>Options shared by the commands that use a model folder.</summary>
public static class ModelOptions
{
    public static Option<string> Model() => new("--model") { Description = "Model folder (Hugging Face layout)", Required = true };

    public static Option<string> DeviceOption() => new("--device") { Description = ComputeDevice.Help, DefaultValueFactory = _ => ComputeDevice.Auto };

    /// <summary>The device the option names for this process; an unknown name or a missing GPU is an error here, before
    /// any model loads.</summary>
    public static Device ReadDevice(ParseResult parse, Option<string> option) => ComputeDevice.Resolve(parse.GetValue(option));

    public static Option<bool> Json() => new("--json") { Description = "Print JSON Lines, one object per input text" };

    public static Option<PaddingSide?> PaddingSide(string description) => new("--padding-side") { Description = description };

    public static string ExistingFolder(string path) =>
        Directory.Exists(path) ? path : throw new UnmaskException($"{path}: model folder not found");
}
