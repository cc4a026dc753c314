using System.Collections.Concurrent;

namespace Unmask.Tokenization;

/// <summary>
/// A thread-safe cache from a word to what it tokenizes to, looked up by span; emptied whole when full, as a
/// corpus's vocabulary of words is heavy-tailed and the frequent words come back at once.
/// </summary>
internal sealed class WordCache<TValue>(int capacity)
{
    readonly ConcurrentDictionary<string, TValue> entries = new(StringComparer.Ordinal);
    int count;

    public bool TryGet(ReadOnlySpan<char> word, out TValue value) =>
        entries.GetAlternateLookup<ReadOnlySpan<char>>().TryGetValue(word, out value!);

    public void Add(string word, TValue value)
    {
        if (Interlocked.Increment(ref count) > capacity)
        {
            entries.Clear();
            Interlocked.Exchange(ref count, 0);
        }
        entries.TryAdd(word, value);
    }
}
