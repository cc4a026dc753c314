namespace Unmask.Training;

/// <summary>Draws training and validation loss against tokens seen, written atomically as a PNG.</summary>
public static class LossPlot
{
    public static void Save(string path, IReadOnlyList<MetricsRecord> records, string title)
    {
        var plot = new ScottPlot.Plot();
        AddSeries(plot, records, "train", "training loss");
        AddSeries(plot, records, "validation", "validation loss");
        plot.Title(title);
        plot.XLabel("tokens");
        plot.YLabel("masked-token cross-entropy");
        plot.ShowLegend();
        var temp = path + ".tmp.png";
        plot.SavePng(temp, 900, 540);
        File.Move(temp, path, overwrite: true);
    }

    static void AddSeries(ScottPlot.Plot plot, IReadOnlyList<MetricsRecord> records, string split, string label)
    {
        var points = records.Where(r => r.Split == split && r.Values.ContainsKey("loss")).ToList();
        if (points.Count == 0) return;
        var scatter = plot.Add.Scatter(points.Select(p => (double)p.Tokens).ToArray(), points.Select(p => p.Values["loss"]).ToArray());
        scatter.LegendText = label;
        if (split == "train") scatter.MarkerSize = 0;
    }
}
