namespace Unmask.Serving;

/// <summary>The browser playground served at "/": one page, its script and styles inline, read from the assembly.</summary>
public static class Playground
{
    public static string Html { get; } = Read();

    static string Read()
    {
        using var stream = typeof(Playground).Assembly.GetManifestResourceStream("Unmask.Serving.playground.html")
            ?? throw new InvalidOperationException("the playground page is missing from the assembly");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
