namespace Unmask.Training;

/// <summary>Seams tests use to steer a run from inside; a normal run takes the defaults.</summary>
internal sealed record PretrainHooks
{
    public static readonly PretrainHooks None = new();

    /// <summary>Whether bf16 computes faster than fp32 on the training device, asked only by <see cref="Precision.Auto"/>;
    /// null: measure it (<see cref="MatmulBenchmark"/>).</summary>
    public Func<int, int, bool>? Bf16IsFaster { get; init; }

    /// <summary>Called before each rename or deletion that publishes a checkpoint; see <see cref="CheckpointWriter"/>.</summary>
    public Action<string>? BeforeCheckpointMove { get; init; }
}
