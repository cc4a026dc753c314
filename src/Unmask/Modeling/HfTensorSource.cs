
namespace Unmask.Modeling;

/// <summary>
/// HF-named tensors whose shapes are known up front and whose data is copied into a destination on request, so that
/// loading a model needs no second, complete copy of the weights.
/// </summary>
public interface IHfTensorSource : IDisposable
{
    IReadOnlyCollection<string> Names { get; }

    bool Contains(string name);

    long[] Shape(string name);

    bool IsFloatingPoint(string name);

    /// <summary>Copies the tensor's values into <paramref name="destination"/> (same shape; converted to its element type).</summary>
    void CopyTo(string name, Tensor destination);
}

/// <summary>Tensors already in memory; disposes them with the source only when it owns them.</summary>
public sealed class TensorDictionarySource(IReadOnlyDictionary<string, Tensor> tensors, bool owned = false) : IHfTensorSource
{
    public IReadOnlyCollection<string> Names { get; } = tensors.Keys.ToList();

    public bool Contains(string name) => tensors.ContainsKey(name);

    public long[] Shape(string name) => tensors[name].shape;

    public bool IsFloatingPoint(string name) => tensors[name].is_floating_point();

    public void CopyTo(string name, Tensor destination) => destination.copy_(tensors[name]);

    public void Dispose()
    {
        if (owned) foreach (var tensor in tensors.Values) tensor.Dispose();
    }
}

/// <summary>Another source under other names: <paramref name="sourceName"/> maps each new name to the inner one.</summary>
internal sealed class RenamedTensorSource(IHfTensorSource inner, IReadOnlyDictionary<string, string> sourceName) : IHfTensorSource
{
    public IReadOnlyCollection<string> Names { get; } = sourceName.Keys.ToList();

    public bool Contains(string name) => sourceName.ContainsKey(name);

    public long[] Shape(string name) => inner.Shape(sourceName[name]);

    public bool IsFloatingPoint(string name) => inner.IsFloatingPoint(sourceName[name]);

    public void CopyTo(string name, Tensor destination) => inner.CopyTo(sourceName[name], destination);

    public void Dispose() => inner.Dispose();
}
