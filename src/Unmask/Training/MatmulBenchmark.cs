using System.Diagnostics;
using Unmask.Modeling;

namespace Unmask.Training;

/// <summary>Times the model's feed-forward matrix product in bf16 and fp32 on the device the model runs on.</summary>
public static class MatmulBenchmark
{
    public sealed record Measurement(double Fp32GflopPerSecond, double Bf16GflopPerSecond);

    public static Measurement Measure(int hidden, int intermediate, Device device, int rows = 4096, int repeats = 5)
    {
        double Rate(ScalarType dtype)
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var a = randn(rows, hidden, device: device).to(dtype);          // [rows, hidden]
            var b = randn(hidden, intermediate, device: device).to(dtype);  // [hidden, intermediate]
            a.matmul(b);
            ComputeDevice.Synchronize(device);
            var clock = Stopwatch.StartNew();
            for (int i = 0; i < repeats; i++) a.matmul(b);
            ComputeDevice.Synchronize(device);
            return 2.0 * rows * hidden * intermediate * repeats / clock.Elapsed.TotalSeconds / 1e9;
        }
        return new Measurement(Rate(ScalarType.Float32), Rate(ScalarType.BFloat16));
    }

    /// <summary>bf16 is worth its rounding only when it is clearly faster (a margin against timing noise).</summary>
    public static bool Bf16IsFaster(int hidden, int intermediate, Device device)
    {
        var m = Measure(hidden, intermediate, device);
        return m.Bf16GflopPerSecond > 1.3 * m.Fp32GflopPerSecond;
    }
}
