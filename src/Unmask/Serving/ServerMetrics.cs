using System.Collections.Concurrent;
using System.Globalization;
using System.Text;

namespace Unmask.Serving;

/// <summary>
/// The server's counters and histograms, written in Prometheus' text exposition format (version 0.0.4): requests by
/// route and status, request, queue and inference durations, batch sizes in padded tokens and inputs, queue length.
/// </summary>
public sealed class ServerMetrics
{
    static readonly double[] SecondsBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
    static readonly double[] TokenBuckets = [16, 64, 256, 1024, 2048, 4096, 8192, 16384, 32768, 65536];
    static readonly double[] InputBuckets = [1, 2, 4, 8, 16, 32, 64, 128, 256];

    readonly ConcurrentDictionary<(string Route, int Status), long> _requests = new();
    readonly Histogram _requestSeconds = new("unmask_request_duration_seconds", "Time from a request's arrival to its answer", SecondsBuckets);
    readonly Histogram _queueSeconds = new("unmask_queue_duration_seconds", "Time an input waited for a batch", SecondsBuckets);
    readonly Histogram _inferenceSeconds = new("unmask_inference_duration_seconds", "Time a model batch took", SecondsBuckets);
    readonly Histogram _batchTokens = new("unmask_batch_tokens", "Padded tokens (rows x longest length) per model batch", TokenBuckets);
    readonly Histogram _batchInputs = new("unmask_batch_inputs", "Inputs per model batch", InputBuckets);
    readonly ConcurrentDictionary<string, Func<int>> _queues = new();

    public void Request(string route, int status, TimeSpan duration)
    {
        _requests.AddOrUpdate((route, status), 1, (_, n) => n + 1);
        _requestSeconds.Observe(route, duration.TotalSeconds);
    }

    /// <summary>Reports the queue's batches and waits under the model's name.</summary>
    public void Watch(string model, InferenceQueue queue)
    {
        _queues[model] = () => queue.Waiting;
        queue.Dequeued += wait => _queueSeconds.Observe(model, wait.TotalSeconds);
        queue.BatchDone += batch =>
        {
            _inferenceSeconds.Observe(model, batch.Duration.TotalSeconds);
            _batchTokens.Observe(model, batch.PaddedTokens);
            _batchInputs.Observe(model, batch.Inputs);
        };
    }

    public long RequestCount(string route, int status) => _requests.GetValueOrDefault((route, status));

    public string Render()
    {
        var text = new StringBuilder();
        text.Append("# HELP unmask_requests_total Requests answered, by route and HTTP status\n# TYPE unmask_requests_total counter\n");
        foreach (var ((route, status), count) in _requests.OrderBy(r => r.Key.Route, StringComparer.Ordinal).ThenBy(r => r.Key.Status))
            text.Append(CultureInfo.InvariantCulture, $"unmask_requests_total{{route=\"{route}\",status=\"{status}\"}} {count}\n");
        _requestSeconds.Render(text, "route");
        _queueSeconds.Render(text, "model");
        _inferenceSeconds.Render(text, "model");
        _batchTokens.Render(text, "model");
        _batchInputs.Render(text, "model");
        text.Append("# HELP unmask_queue_size Inputs waiting for a batch\n# TYPE unmask_queue_size gauge\n");
        foreach (var (model, size) in _queues.OrderBy(q => q.Key, StringComparer.Ordinal))
            text.Append(CultureInfo.InvariantCulture, $"unmask_queue_size{{model=\"{model}\"}} {size()}\n");
        return text.ToString();
    }

    sealed class Histogram(string name, string help, double[] bounds)
    {
        readonly Dictionary<string, (long[] Counts, double Sum, long Count)> _series = new(StringComparer.Ordinal);

        public void Observe(string label, double value)
        {
            lock (_series)
            {
                var (counts, sum, count) = _series.TryGetValue(label, out var s) ? s : (new long[bounds.Length], 0.0, 0L);
                for (int i = 0; i < bounds.Length; i++)
                    if (value <= bounds[i]) counts[i]++;
                _series[label] = (counts, sum + value, count + 1);
            }
        }

        public void Render(StringBuilder text, string labelName)
        {
            text.Append(CultureInfo.InvariantCulture, $"# HELP {name} {help}\n# TYPE {name} histogram\n");
            lock (_series)
                foreach (var (label, (counts, sum, count)) in _series.OrderBy(s => s.Key, StringComparer.Ordinal))
                {
                    for (int i = 0; i < bounds.Length; i++)
                        text.Append(CultureInfo.InvariantCulture, $"{name}_bucket{{{labelName}=\"{label}\",le=\"{bounds[i]}\"}} {counts[i]}\n");
                    text.Append(CultureInfo.InvariantCulture, $"{name}_bucket{{{labelName}=\"{label}\",le=\"+Inf\"}} {count}\n");
                    text.Append(CultureInfo.InvariantCulture, $"{name}_sum{{{labelName}=\"{label}\"}} {sum}\n");
                    text.Append(CultureInfo.InvariantCulture, $"{name}_count{{{labelName}=\"{label}\"}} {count}\n");
                }
        }
    }
}
