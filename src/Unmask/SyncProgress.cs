namespace Unmask;

/// <summary>Reports on the calling thread, in order (Progress&lt;T&gt; posts to the thread pool and may reorder).</summary>
public sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}
