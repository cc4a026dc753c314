using Unmask.Serving;

namespace Unmask.Tests;

/// <summary>The server's per-model queue: greedy batches across requests, the token budget, splitting, limits, cancellation.</summary>
public sealed class InferenceQueueTests
{
    static QueuedInput<string>[] Inputs(string prefix, int count, int length = 4) =>
        [.. Enumerable.Range(0, count).Select(i => new QueuedInput<string>($"{prefix}{i}", 1, length))];

    /// <summary>A queue whose first batch waits for <c>release</c>, so later requests pile up behind it.</summary>
    sealed class Blocked : IDisposable
    {
        public readonly InferenceQueue Queue;
        public readonly List<string[]> Batches = [];
        public readonly ManualResetEventSlim Started = new();
        public readonly ManualResetEventSlim Release = new();

        public Blocked(int maxBatchTokens = 1000, int maxPerRequest = 100, int maxRequests = 100)
        {
            Queue = new InferenceQueue("test", maxBatchTokens, maxPerRequest, maxRequests);
            First = Queue.Submit("k", Inputs("first", 1), Run);
            Assert.True(Started.Wait(TimeSpan.FromSeconds(10)));
        }

        public Task<string[]> First { get; }

        public IReadOnlyList<string> Run(IReadOnlyList<string> batch)
        {
            lock (Batches) Batches.Add([.. batch]);
            Started.Set();
            Assert.True(Release.Wait(TimeSpan.FromSeconds(10)));
            return [.. batch.Select(s => s.ToUpperInvariant())];
        }

        public void Dispose() => Queue.Dispose();
    }

    [Fact]
    public async Task WaitingRequestsWithTheSameKeyShareOneBatchInArrivalOrder()
    {
        using var q = new Blocked();
        var b = q.Queue.Submit("k", Inputs("b", 3), q.Run);
        var other = q.Queue.Submit("other", Inputs("o", 1), q.Run);
        var c = q.Queue.Submit("k", Inputs("c", 2), q.Run);
        Assert.Equal(6, q.Queue.Waiting);
        q.Release.Set();
        Assert.Equal(["B0", "B1", "B2"], await b);
        Assert.Equal(["C0", "C1"], await c);
        Assert.Equal(["O0"], await other);
        Assert.Equal(["FIRST0"], await q.First);
        Assert.Equal([["first0"], ["b0", "b1", "b2", "c0", "c1"], ["o0"]], q.Batches);
    }

    [Fact]
    public async Task BatchesStayWithinTheTokenBudgetCountingPadding()
    {
        using var q = new Blocked(maxBatchTokens: 12);
        var shortOnes = q.Queue.Submit("k", Inputs("s", 3, length: 4), q.Run);
        var longOne = q.Queue.Submit("k", [new QueuedInput<string>("long", 1, 6)], q.Run);
        var pll = q.Queue.Submit("k", [new QueuedInput<string>("rows", 5, 2)], q.Run);
        q.Release.Set();
        await Task.WhenAll(shortOnes, longOne, pll);
        // 3 x 4 = 12 fits; adding the 6-token input would pad all four to 6 (24 > 12); 5 rows of 2 come alone after it.
        Assert.Equal([["first0"], ["s0", "s1", "s2"], ["long"], ["rows"]], q.Batches);
    }

    [Fact]
    public async Task ALargeRequestIsSplitOverBatchesNotRefused()
    {
        using var q = new Blocked(maxPerRequest: 2);
        var big = q.Queue.Submit("k", Inputs("x", 5), q.Run);
        q.Release.Set();
        Assert.Equal(["X0", "X1", "X2", "X3", "X4"], await big);
        Assert.Equal([2, 2, 1], q.Batches.Skip(1).Select(b => b.Length));
    }

    [Fact]
    public async Task RequestsBeyondTheLimitAreRefusedAndTheSlotComesBack()
    {
        using var q = new Blocked(maxRequests: 2);
        var second = q.Queue.Submit("k", Inputs("a", 1), q.Run);
        Assert.Throws<QueueFullException>(() => { _ = q.Queue.Submit("k", Inputs("b", 1), q.Run); });
        q.Release.Set();
        await second;
        Assert.Equal(["C0"], await q.Queue.Submit("k", Inputs("c", 1), q.Run));
    }

    [Fact]
    public async Task ACancelledRequestIsDroppedBeforeItRuns()
    {
        using var q = new Blocked();
        using var cts = new CancellationTokenSource();
        var dropped = q.Queue.Submit("k", Inputs("gone", 2), q.Run, cts.Token);
        var kept = q.Queue.Submit("k", Inputs("kept", 1), q.Run);
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => dropped);
        q.Release.Set();
        Assert.Equal(["KEPT0"], await kept);
        Assert.DoesNotContain(q.Batches.SelectMany(b => b), s => s.StartsWith("gone", StringComparison.Ordinal));
    }

    [Fact]
    public async Task ABadInputFailsOnlyItsOwnRequest()
    {
        using var queue = new InferenceQueue("test", 1000, 100, 100);
        using var gate = new ManualResetEventSlim();
        IReadOnlyList<string> Run(IReadOnlyList<string> batch)
        {
            gate.Wait(TimeSpan.FromSeconds(10));
            return batch.Contains("bad") ? throw new RequestException("bad input") : [.. batch.Select(s => s + "!")];
        }
        var first = queue.Submit("k", [new QueuedInput<string>("a", 1, 1)], Run);
        var bad = queue.Submit("k", [new QueuedInput<string>("bad", 1, 1)], Run);
        var good = queue.Submit("k", [new QueuedInput<string>("b", 1, 1)], Run);
        gate.Set();
        Assert.Equal(["a!"], await first);
        Assert.Equal("bad input", (await Assert.ThrowsAsync<RequestException>(() => bad)).Message);
        Assert.Equal(["b!"], await good);
    }

    [Fact]
    public async Task BatchRecordsCountInputsRequestsAndPaddedTokens()
    {
        var records = new List<BatchRecord>();
        using var q = new Blocked();
        q.Queue.BatchDone += r => { lock (records) records.Add(r); };
        var a = q.Queue.Submit("k", Inputs("a", 2, length: 3), q.Run);
        var b = q.Queue.Submit("k", [new QueuedInput<string>("b", 1, 7)], q.Run);
        q.Release.Set();
        await Task.WhenAll(a, b);
        q.Queue.Dispose();
        var merged = Assert.Single(records, r => r.Inputs > 1);
        Assert.Equal((3, 2, 21L), (merged.Inputs, merged.Requests, merged.PaddedTokens));
    }
}
