using System.Text.RegularExpressions;
using Unmask.Distributed;

namespace Unmask.Modeling;

/// <summary>
/// Where models run: <c>cpu</c>, <c>cuda</c>, <c>cuda:N</c>, or <c>auto</c> (the default: this rank's local GPU when
/// libtorch has CUDA, else the CPU). A model's parameters are created on its device, and every tensor the library
/// makes for it is created there too; results come back to the host only where they are read.
/// </summary>
public static partial class ComputeDevice
{
    public const string Auto = "auto";

    // Asked once: on a CPU-only build each question retries loading libtorch's CUDA backend (0.7 ms here).
    static readonly Lazy<int> CudaDevices = new(() => torch.cuda.is_available() ? torch.cuda.device_count() : 0);

    public const string Help = "Where models run: auto (this rank's GPU when CUDA is present, else the CPU), cpu, cuda (this rank's local GPU) or cuda:N";

    /// <summary>Auto for this process: its local GPU when libtorch has CUDA, else the CPU. What a null device means
    /// throughout the library.</summary>
    public static Device Default => Resolve(null);

    /// <summary>The host, where data is read and written.</summary>
    public static Device Cpu { get; } = torch.CPU;

    /// <summary>The device <paramref name="spec"/> names for this process: under MPI, <c>cuda</c> and <c>auto</c>
    /// give each rank on a machine its own GPU (local rank modulo the GPUs there).</summary>
    /// <exception cref="UnmaskException">An unknown name, or a CUDA device that this build or machine lacks.</exception>
    public static Device Resolve(string? spec) =>
        Resolve(spec, CudaDevices.Value, MpiWorld.Current.LocalRank);

    /// <summary>As <see cref="Resolve(string?)"/>, given the number of usable CUDA devices and the local rank.</summary>
    public static Device Resolve(string? spec, int cudaDevices, int localRank)
    {
        var name = string.IsNullOrWhiteSpace(spec) ? Auto : spec.Trim().ToLowerInvariant();
        if (name == "cpu") return Cpu;
        if (name == Auto) return cudaDevices > 0 ? new Device(DeviceType.CUDA, localRank % cudaDevices) : Cpu;
        var match = CudaName().Match(name);
        if (!match.Success)
            throw new UnmaskException($"--device '{spec}': expected auto, cpu, cuda or cuda:N");
        if (cudaDevices == 0)
            throw new UnmaskException($"--device {name}: no CUDA device is usable. This build carries the CPU-only libtorch (package TorchSharp-cpu), "
                + "or the machine has no GPU; the README's \"GPUs\" section says how to build with TorchSharp-cuda-linux.");
        if (!match.Groups[1].Success) return new Device(DeviceType.CUDA, localRank % cudaDevices);
        if (!int.TryParse(match.Groups[1].Value, out int index) || index >= cudaDevices)
            throw new UnmaskException($"--device {name}: this machine has {cudaDevices} CUDA device(s), cuda:0 to cuda:{cudaDevices - 1}");
        return new Device(DeviceType.CUDA, index);
    }

    /// <summary>Whether two devices are one (a device without an index is the current one of its type).</summary>
    public static bool Same(Device a, Device b) => a.type == b.type && (a.index < 0 || b.index < 0 || a.index == b.index);

    /// <summary>Seeds the global generators of the host and, when present, of every GPU (dropout draws on the device
    /// the model runs on).</summary>
    public static void Seed(long seed)
    {
        torch.manual_seed(seed);
        if (CudaDevices.Value > 0) torch.cuda.manual_seed_all(seed);
    }

    /// <summary>Waits for the device's queued work, so that a clock read afterwards measures it.</summary>
    public static void Synchronize(Device device)
    {
        if (device.type == DeviceType.CUDA) torch.cuda.synchronize(device);
    }

    [GeneratedRegex(@"^cuda(?::(\d+))?$")]
    private static partial Regex CudaName();
}
