using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;
using Unmask.Evaluation;
using Unmask.Inference;
using Unmask.Serving;

/// <summary>
/// `unmask serve` under a bounded load on 127.0.0.1 (the server runs in this process; client and server share the
/// cores): /score and /embed with one sentence per request at concurrency 1, 8 and 64, each for a fixed number of
/// requests or a time limit, against the library's offline batched rate on the same sentences. Then a burst of requests
/// far beyond --max-concurrent-requests, which must get only 200s and fast 429s, with resident memory sampled throughout.
/// </summary>
static class ServeBench
{
    public static void Run(Dictionary<string, string> settings)
    {
        var model = settings.GetValueOrDefault("model", Path.Combine("runs", "mlm-mini"));
        var data = settings.GetValueOrDefault("data", Path.Combine("..", "shared", "data", "stsb", "dev.csv"));
        int embedRequests = int.Parse(settings.GetValueOrDefault("embed-requests", "1500"));
        int scoreRequests = int.Parse(settings.GetValueOrDefault("score-requests", "600"));
        int burst = int.Parse(settings.GetValueOrDefault("burst", "10000"));
        var limit = TimeSpan.FromSeconds(double.Parse(settings.GetValueOrDefault("seconds", "60"), System.Globalization.CultureInfo.InvariantCulture));
        if (!Directory.Exists(model)) throw new DirectoryNotFoundException($"{model}: model folder not found (pass model=DIR, a masked-LM folder)");
        var sentences = StsEvaluator.ReadPairs(data, requireScores: false).SelectMany(p => new[] { p.Sentence1, p.Sentence2 }).Distinct().ToArray();
        Console.WriteLine($"model {model}; {sentences.Length} distinct sentences from {data}; {Environment.ProcessorCount} cores; limit {limit.TotalSeconds:F0} s per cell");

        RunAsync(model, sentences, embedRequests, scoreRequests, burst, limit).GetAwaiter().GetResult();
    }

    static async Task RunAsync(string model, string[] sentences, int embedRequests, int scoreRequests, int burst, TimeSpan limit)
    {
        var limits = new ServingLimits();
        await using (var server = await UnmaskServer.StartAsync(new ServerOptions { Models = [("m", model)], Port = 0, Limits = limits }))
        {
            await server.Ready;
            using var client = Client(server.Address, 64);
            var served = server.Models["m"];
            var embedOptions = new EmbeddingOptions(Normalize: true);

            // The offline rate is the best of three passes over all the sentences in one library call.
            static double Best(int count, Action work) => Enumerable.Range(0, 3).Max(_ =>
            {
                var clock = Stopwatch.StartNew();
                work();
                return count / clock.Elapsed.TotalSeconds;
            });
            var embedSentences = sentences.Take(embedRequests).ToArray();
            served.Embedder.Embed(embedSentences.Take(64).ToArray(), embedOptions);
            double embedOffline = Best(embedSentences.Length, () => served.Embedder.Embed(embedSentences, embedOptions with { TokenBudget = limits.MaxBatchTokens }));

            var scoreSentences = sentences.Take(scoreRequests).ToArray();
            var scorer = new PllScorer(ScoringContext.From(served.Mlm!));
            scorer.Score(scoreSentences.Take(8).ToList());
            double scoreOffline = Best(scoreSentences.Length, () => scorer.Score(scoreSentences));

            Console.WriteLine();
            Console.WriteLine("| route | concurrency | requests | requests/s | sentences/s | p50 ms | p99 ms | offline sentences/s | server / offline |");
            Console.WriteLine("|---|---|---|---|---|---|---|---|---|");
            foreach (var (route, work, offline) in new[] { ("/embed", embedSentences, embedOffline), ("/score", scoreSentences, scoreOffline) })
                foreach (int concurrency in new[] { 1, 8, 64 })
                {
                    var (done, seconds, latencies, failures) = await Load(client, route, work, concurrency, limit);
                    double rate = done / seconds;
                    Console.WriteLine($"| {route} | {concurrency} | {done} | {rate:F1} | {rate:F1} | {Percentile(latencies, 0.5):F1} | {Percentile(latencies, 0.99):F1} | {offline:F1} | {100 * rate / offline:F0}% |");
                    if (failures > 0) Console.WriteLine($"  {failures} requests failed");
                }
        }

        // The burst: a server that admits 64 requests at a time, and 1,000 clients sending `burst` requests between them.
        await using var small = await UnmaskServer.StartAsync(new ServerOptions { Models = [("m", model)], Port = 0, Limits = new ServingLimits { MaxConcurrentRequests = 64 } });
        await small.Ready;
        using var burstClient = Client(small.Address, 1000);
        long before = Environment.WorkingSet;
        long peak = before;
        using var sampler = new Timer(_ => { long now = Process.GetCurrentProcess().WorkingSet64; if (now > Interlocked.Read(ref peak)) Interlocked.Exchange(ref peak, now); }, null, 0, 50);
        var statuses = new System.Collections.Concurrent.ConcurrentBag<(HttpStatusCode Status, double Ms)>();
        int next = -1;
        var total = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, 1000).Select(async _ =>
        {
            while (Interlocked.Increment(ref next) < burst)
            {
                var watch = Stopwatch.StartNew();
                try
                {
                    using var response = await burstClient.PostAsync("/embed", Body(new { inputs = sentences[next % sentences.Length] }));
                    await response.Content.ReadAsByteArrayAsync();
                    statuses.Add((response.StatusCode, watch.Elapsed.TotalMilliseconds));
                }
                catch (HttpRequestException)
                {
                    statuses.Add((0, watch.Elapsed.TotalMilliseconds));
                }
            }
        }));
        double burstSeconds = total.Elapsed.TotalSeconds;
        GC.Collect();
        long after = Process.GetCurrentProcess().WorkingSet64;
        var rejected = statuses.Where(s => s.Status == HttpStatusCode.TooManyRequests).Select(s => s.Ms).ToList();
        int ok = statuses.Count(s => s.Status == HttpStatusCode.OK);
        int other = statuses.Count - ok - rejected.Count;
        Console.WriteLine();
        Console.WriteLine($"burst: {statuses.Count} /embed requests from 1000 clients against --max-concurrent-requests 64 in {burstSeconds:F1} s");
        Console.WriteLine($"  200: {ok}   429: {rejected.Count} (p50 {Percentile(rejected, 0.5):F1} ms, p99 {Percentile(rejected, 0.99):F1} ms)   any other outcome: {other}");
        Console.WriteLine($"  resident memory: {before / 1048576} MiB before, {peak / 1048576} MiB peak, {after / 1048576} MiB after");
    }

    static HttpClient Client(Uri address, int connections) =>
        new(new SocketsHttpHandler { MaxConnectionsPerServer = connections, PooledConnectionLifetime = TimeSpan.FromMinutes(10) })
        {
            BaseAddress = address,
            Timeout = TimeSpan.FromMinutes(5),
        };

    static StringContent Body(object value) => new(JsonSerializer.Serialize(value), Encoding.UTF8, "application/json");

    /// <summary>Every sentence once, one per request, from <paramref name="concurrency"/> clients, until done or out of time.</summary>
    static async Task<(int Done, double Seconds, List<double> LatenciesMs, int Failures)> Load(HttpClient client, string route, string[] sentences, int concurrency, TimeSpan limit)
    {
        using var warm = await client.PostAsync(route, Body(new { inputs = sentences[0] }));
        var latencies = new System.Collections.Concurrent.ConcurrentBag<double>();
        int next = -1, failures = 0;
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, concurrency).Select(async _ =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < sentences.Length && clock.Elapsed < limit)
            {
                var watch = Stopwatch.StartNew();
                using var response = await client.PostAsync(route, Body(new { inputs = sentences[i] }));
                await response.Content.ReadAsByteArrayAsync();
                if (response.IsSuccessStatusCode) latencies.Add(watch.Elapsed.TotalMilliseconds);
                else Interlocked.Increment(ref failures);
            }
        }));
        return (latencies.Count, clock.Elapsed.TotalSeconds, [.. latencies], failures);
    }

    static double Percentile(IReadOnlyCollection<double> values, double p)
    {
        if (values.Count == 0) return double.NaN;
        var sorted = values.Order().ToArray();
        return sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p * sorted.Length) - 1)];
    }
}
