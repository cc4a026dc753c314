using System.Collections.Concurrent;

namespace Unmask.Data;

/// <summary>How far a batcher has read: the epoch and the index within that epoch's shuffled order.</summary>
public sealed record BatcherPosition(long Epoch, long Index);

/// <summary>Sequences as one row-major [batch, seq] array of ids.</summary>
public sealed record Batch(long[] InputIds, int BatchSize, int SeqLength);

/// <summary>
/// Endless shuffled batches of packed sequences. Each epoch is a permutation seeded by (seed, epoch), so the
/// stream of batches depends only on the seed, and a batcher created at a saved <see cref="Position"/> continues it
/// exactly. A background thread prepares the next batches while the model trains.
/// </summary>
public sealed class Batcher : IDisposable
{
    readonly SequencePacker _sequences;
    readonly int _batchSize;
    readonly ulong _seed;
    readonly BlockingCollection<Batch> _queue = new(boundedCapacity: 4);
    readonly CancellationTokenSource _stop = new();
    readonly Thread _producer;
    long _consumed; // sequences handed out, counted from epoch 0
    long[]? _order;
    long _orderEpoch = -1;
    Exception? _failure;

    public Batcher(SequencePacker sequences, int batchSize, int seed, BatcherPosition? start = null)
    {
        if (sequences.Count == 0) throw new ArgumentException("no sequences to batch", nameof(sequences));
        (_sequences, _batchSize, _seed) = (sequences, batchSize, (ulong)(uint)seed);
        _consumed = start is null ? 0 : start.Epoch * sequences.Count + start.Index;
        long produceFrom = _consumed;
        _producer = new Thread(() => Produce(produceFrom)) { IsBackground = true, Name = "unmask-batcher" };
        _producer.Start();
    }

    /// <summary>Where the next batch starts.</summary>
    public BatcherPosition Position => new(_consumed / _sequences.Count, _consumed % _sequences.Count);

    public Batch Next(CancellationToken ct = default)
    {
        try
        {
            var batch = _queue.Take(ct);
            _consumed += _batchSize;
            return batch;
        }
        catch (InvalidOperationException) when (_failure is not null)
        {
            throw new InvalidOperationException("the batch producer failed", _failure);
        }
    }

    void Produce(long from)
    {
        try
        {
            for (long next = from; !_stop.IsCancellationRequested; next += _batchSize)
                _queue.Add(Build(next), _stop.Token);
        }
        catch (OperationCanceledException)
        {
        }
        catch (Exception e)
        {
            _failure = e;
            _queue.CompleteAdding();
        }
    }

    Batch Build(long first)
    {
        int length = _sequences.Length;
        var ids = new long[_batchSize * length];
        for (int i = 0; i < _batchSize; i++)
        {
            long global = first + i;
            _sequences.CopySequence(SequenceAt(global / _sequences.Count, global % _sequences.Count), ids.AsSpan(i * length, length));
        }
        return new Batch(ids, _batchSize, length);
    }

    long SequenceAt(long epoch, long index)
    {
        if (_orderEpoch != epoch)
        {
            _order = Shuffle(_sequences.Count, _seed, epoch);
            _orderEpoch = epoch;
        }
        return _order![index];
    }

    /// <summary>Fisher–Yates with SplitMix64, so the order is the same on every .NET version and machine.</summary>
    public static long[] Shuffle(long count, ulong seed, long epoch)
    {
        var order = new long[count];
        for (long i = 0; i < count; i++) order[i] = i;
        ulong state = seed * 0x9E3779B97F4A7C15UL ^ (ulong)epoch * 0xD1B54A32D192ED03UL;
        for (long i = count - 1; i > 0; i--)
        {
            long j = (long)(SplitMix64(ref state) % (ulong)(i + 1));
            (order[i], order[j]) = (order[j], order[i]);
        }
        return order;
    }

    static ulong SplitMix64(ref ulong state)
    {
        ulong z = state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    public void Dispose()
    {
        _stop.Cancel();
        _producer.Join();
        _queue.Dispose();
        _stop.Dispose();
    }
}
