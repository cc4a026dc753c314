using System.Text.Json;
using Unmask.Data;

namespace Unmask.Training;

/// <summary>Mean and sample standard deviation of each validation metric over runs that differ only in seed.</summary>
public static class FineTuneSummary
{
    public static IReadOnlyDictionary<string, (double Mean, double Std)> Of(IReadOnlyList<FineTuneResult> runs)
    {
        var best = runs.Where(r => r.Best is not null).Select(r => r.Best!.Metrics).ToList();
        var summary = new Dictionary<string, (double, double)>();
        if (best.Count == 0) return summary;
        foreach (var key in best[0].Keys)
        {
            var values = best.Select(m => m[key]).ToList();
            double mean = values.Average();
            double std = values.Count < 2 ? 0 : Math.Sqrt(values.Sum(v => (v - mean) * (v - mean)) / (values.Count - 1));
            summary[key] = (mean, std);
        }
        return summary;
    }

    /// <summary>Writes summary.json (per seed the best metrics, then mean and std) into <paramref name="folder"/>.</summary>
    public static IReadOnlyDictionary<string, (double Mean, double Std)> Write(string folder, ClassificationTask task, IReadOnlyList<int> seeds,
        IReadOnlyList<FineTuneResult> runs)
    {
        var summary = Of(runs);
        var json = JsonSerializer.Serialize(new
        {
            task = task.ToString(),
            seeds,
            runs = runs.Select((r, i) => new { seed = seeds[i], output = r.OutputDir, best_step = r.Best?.Step, best = r.Best?.Metrics, seconds = r.Elapsed.TotalSeconds }),
            mean = summary.ToDictionary(p => p.Key, p => p.Value.Mean),
            std = summary.ToDictionary(p => p.Key, p => p.Value.Std),
        }, new JsonSerializerOptions { WriteIndented = true });
        Directory.CreateDirectory(folder);
        AtomicFile.WriteAllText(Path.Combine(folder, "summary.json"), json + "\n");
        return summary;
    }
}
