using ScottPlot;
using Unmask.Checkpoints;

namespace Unmask.Training;

/// <summary>
/// An ablation's loss curves as one PNG, written atomically: validation loss against tokens for every variant above
/// (the same masked copy for all, so the curves compare directly), training loss below (each variant's own masking).
/// </summary>
public static class AblationPlot
{
    public static void Save(string path, IReadOnlyList<(string Name, IReadOnlyList<MetricsRecord> Records)> runs, string title)
    {
        var validation = Panel(runs, "validation", $"{title}\nvalidation loss (same masked copy)");
        var training = Panel(runs, "train", "training loss");
        var multiplot = new Multiplot();
        multiplot.Reset(validation);
        multiplot.AddPlot(training);
        multiplot.Layout = new ScottPlot.MultiplotLayouts.Rows();
        AtomicFile.WriteAllBytes(path, multiplot.Render(900, 900).GetImageBytes(ImageFormat.Png));
    }

    static ScottPlot.Plot Panel(IReadOnlyList<(string Name, IReadOnlyList<MetricsRecord> Records)> runs, string split, string title)
    {
        var plot = new ScottPlot.Plot();
        // Series are added in the same order on both panels, so each variant gets the same palette colour on both.
        foreach (var (name, records) in runs)
        {
            var points = records.Where(r => r.Split == split && r.Values.ContainsKey("loss")).ToList();
            var scatter = plot.Add.Scatter(points.Select(p => (double)p.Tokens).ToArray(), points.Select(p => p.Values["loss"]).ToArray());
            scatter.LegendText = name;
            if (split == "train") scatter.MarkerSize = 0;
        }
        // Loss falls from the upper left; the upper right is where the legend hides no curve.
        plot.Legend.Alignment = Alignment.UpperRight;
        plot.Title(title);
        plot.XLabel("tokens");
        plot.YLabel("masked-token cross-entropy");
        return plot;
    }
}
