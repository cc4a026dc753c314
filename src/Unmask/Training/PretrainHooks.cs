namespace Unmask.Training;

/// <summary>Seams tests use to steer a run from inside; a normal run takes the defaults.</summary>
internal sealed record PretrainHooks
{
    public static readonly PretrainHooks None = new();

    /// <summary>Whether bf16 computes faster than fp32 on this machine, asked only by <see cref="Precision.Auto"/>.</summary>
    public Func<int, int, bool> Bf16IsFaster { get; init; } = MatmulBenchmark.Bf16IsFaster;

    /// <summary>Called before each rename or deletion that publishes a checkpoint; see <see cref="CheckpointWriter"/>.</summary>
    public Action<string>? BeforeCheckpointMove { get; init; }
}
