using System.Diagnostics;

namespace Unmask.Serving;

/// <summary>The queue is full: the caller answers 429.</summary>
public sealed class QueueFullException(string message) : Exception(message);

/// <summary>The queue has stopped taking work (the server is draining): the caller answers 503.</summary>
public sealed class QueueStoppedException(string message) : Exception(message);

/// <summary>One input of a request, with what it costs a model batch: <see cref="Rows"/> model rows of
/// <see cref="Length"/> tokens each (one row for most work; PLL scoring makes a row per scored token).</summary>
public readonly record struct QueuedInput<T>(T Input, int Rows, int Length);

/// <summary>What a model batch cost, for metrics.</summary>
public sealed record BatchRecord(string Key, int Inputs, int Requests, long PaddedTokens, TimeSpan Duration);

/// <summary>
/// One model's queue and the one worker thread that runs its batches, as text-embeddings-inference does it: requests
/// are split into inputs, and the worker takes the oldest waiting input and then, in arrival order, every other waiting
/// input with the same batch key (same work, same options) while the padded batch stays within the token budget,
/// across clients and requests. A request is answered when all its inputs are. Inference never runs on a request
/// thread, and the model sees one batch at a time.
/// </summary>
public sealed class InferenceQueue : IDisposable
{
    readonly object _gate = new();
    readonly LinkedList<Part> _waiting = new();
    readonly Thread _worker;
    readonly int _maxBatchTokens;
    readonly int _maxInputsPerRequest;
    readonly int _maxRequests;
    int _requests;
    bool _stopping;

    /// <param name="maxBatchTokens">Most padded tokens (rows × longest length) in one batch; one input always fits.</param>
    /// <param name="maxInputsPerRequest">Most inputs of one request in one batch: larger requests are split over batches.</param>
    /// <param name="maxRequests">Most requests waiting or running; beyond it <see cref="Submit{TIn,TOut}"/> throws <see cref="QueueFullException"/>.</param>
    public InferenceQueue(string name, int maxBatchTokens, int maxInputsPerRequest, int maxRequests)
    {
        if (maxBatchTokens < 1) throw new UnmaskException($"--max-batch-tokens must be positive, got {maxBatchTokens}.");
        if (maxInputsPerRequest < 1) throw new UnmaskException($"--max-client-batch-size must be positive, got {maxInputsPerRequest}.");
        if (maxRequests < 1) throw new UnmaskException($"--max-concurrent-requests must be positive, got {maxRequests}.");
        _maxBatchTokens = maxBatchTokens;
        _maxInputsPerRequest = maxInputsPerRequest;
        _maxRequests = maxRequests;
        _worker = new Thread(Work) { IsBackground = true, Name = $"unmask-queue-{name}" };
        _worker.Start();
    }

    /// <summary>Called on the worker thread after every batch.</summary>
    public event Action<BatchRecord>? BatchDone;

    /// <summary>Called when an input leaves the queue for a batch, with how long it waited.</summary>
    public event Action<TimeSpan>? Dequeued;

    /// <summary>Whether a new request would be refused now.</summary>
    public bool IsFull
    {
        get { lock (_gate) return _requests >= _maxRequests; }
    }

    /// <summary>Inputs waiting for a batch.</summary>
    public int Waiting
    {
        get { lock (_gate) return _waiting.Count; }
    }

    /// <summary>
    /// Queues the inputs and completes with one output per input, in input order. <paramref name="run"/> takes the
    /// inputs of one batch (perhaps from several requests with the same <paramref name="key"/>) and returns their outputs
    /// in order. Cancelling drops the request's inputs that have not started.
    /// </summary>
    public Task<TOut[]> Submit<TIn, TOut>(string key, IReadOnlyList<QueuedInput<TIn>> inputs, Func<IReadOnlyList<TIn>, IReadOnlyList<TOut>> run,
        CancellationToken cancellationToken = default)
    {
        if (inputs.Count == 0) return Task.FromResult(System.Array.Empty<TOut>());
        var request = new Request(inputs.Count, cancellationToken);
        object?[] Run(IReadOnlyList<object?> batch) => [.. run(batch.Select(i => (TIn)i!).ToList()).Select(o => (object?)o)];
        lock (_gate)
        {
            if (_stopping) throw new QueueStoppedException("the server is shutting down");
            if (_requests >= _maxRequests) throw new QueueFullException($"{_maxRequests} requests are already queued or running (--max-concurrent-requests)");
            _requests++;
            var now = Stopwatch.GetTimestamp();
            for (int i = 0; i < inputs.Count; i++)
                _waiting.AddLast(new Part(request, i, key, inputs[i].Input, Math.Max(1, inputs[i].Rows), Math.Max(1, inputs[i].Length), Run, now));
            Monitor.Pulse(_gate);
        }
        if (cancellationToken.CanBeCanceled)
            request.Registration = cancellationToken.Register(() => Cancel(request));
        return Outputs<TOut>(request);
    }

    static async Task<TOut[]> Outputs<TOut>(Request request) => [.. (await request.Completion.Task).Select(o => (TOut)o!)];

    void Cancel(Request request)
    {
        lock (_gate)
        {
            for (var node = _waiting.First; node is not null;)
            {
                var next = node.Next;
                if (node.Value.Request == request) _waiting.Remove(node);
                node = next;
            }
        }
        Finish(request, r => r.Completion.TrySetCanceled(r.CancellationToken));
    }

    void Finish(Request request, Action<Request> complete)
    {
        if (Interlocked.Exchange(ref request.Finished, 1) != 0) return;
        request.Registration.Dispose();
        lock (_gate) _requests--;
        complete(request);
    }

    void Work()
    {
        while (true)
        {
            List<Part> batch;
            lock (_gate)
            {
                while (_waiting.Count == 0 && !_stopping) Monitor.Wait(_gate);
                if (_waiting.Count == 0) return;
                batch = Take();
            }
            var started = Stopwatch.GetTimestamp();
            foreach (var part in batch) Dequeued?.Invoke(Stopwatch.GetElapsedTime(part.Enqueued, started));
            Run(batch);
            int rows = batch.Sum(p => p.Rows);
            BatchDone?.Invoke(new BatchRecord(batch[0].Key, batch.Count, batch.Select(p => p.Request).Distinct().Count(),
                (long)rows * batch.Max(p => p.Length), Stopwatch.GetElapsedTime(started)));
        }
    }

    /// <summary>The oldest input, then later ones with its key while the padded batch fits. Caller holds the lock.</summary>
    List<Part> Take()
    {
        var first = _waiting.First!;
        var batch = new List<Part> { first.Value };
        var perRequest = new Dictionary<Request, int> { [first.Value.Request] = 1 };
        int rows = first.Value.Rows, longest = first.Value.Length;
        _waiting.Remove(first);
        for (var node = _waiting.First; node is not null;)
        {
            var next = node.Next;
            var part = node.Value;
            int taken = perRequest.GetValueOrDefault(part.Request);
            if (part.Key == batch[0].Key && taken < _maxInputsPerRequest)
            {
                int newLongest = Math.Max(longest, part.Length);
                if ((long)(rows + part.Rows) * newLongest > _maxBatchTokens) break;
                batch.Add(part);
                perRequest[part.Request] = taken + 1;
                rows += part.Rows;
                longest = newLongest;
                _waiting.Remove(node);
            }
            node = next;
        }
        return batch;
    }

    void Run(List<Part> batch)
    {
        var live = batch.Where(p => p.Request.Finished == 0).ToList();
        if (live.Count == 0) return;
        try
        {
            var outputs = live[0].Run([.. live.Select(p => p.Input)]);
            if (outputs.Length != live.Count) throw new InvalidOperationException($"a batch of {live.Count} inputs gave {outputs.Length} outputs");
            for (int i = 0; i < live.Count; i++) Deliver(live[i], outputs[i]);
        }
        catch (Exception) when (live.Select(p => p.Request).Distinct().Count() > 1)
        {
            // One request's input must not fail the others it shared a batch with: run each request alone.
            foreach (var group in live.GroupBy(p => p.Request)) Run([.. group]);
        }
        catch (Exception e)
        {
            Finish(live[0].Request, r => r.Completion.TrySetException(e));
        }
    }

    void Deliver(Part part, object? output)
    {
        part.Request.Outputs[part.Index] = output;
        if (Interlocked.Decrement(ref part.Request.Remaining) == 0) Finish(part.Request, r => r.Completion.TrySetResult(r.Outputs));
    }

    /// <summary>Stops taking requests, answers every waiting one, and returns when the worker is idle.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            _stopping = true;
            Monitor.PulseAll(_gate);
        }
        _worker.Join();
    }

    sealed class Request
    {
        public Request(int count, CancellationToken ct)
        {
            Outputs = new object?[count];
            Remaining = count;
            CancellationToken = ct;
        }

        public readonly object?[] Outputs;
        public readonly CancellationToken CancellationToken;
        public readonly TaskCompletionSource<object?[]> Completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public int Remaining;
        public int Finished;
        public CancellationTokenRegistration Registration;
    }

    sealed record Part(Request Request, int Index, string Key, object? Input, int Rows, int Length, Func<IReadOnlyList<object?>, object?[]> Run, long Enqueued);
}
