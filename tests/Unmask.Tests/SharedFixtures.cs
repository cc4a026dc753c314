namespace Unmask.Tests;

/// <summary>Locates the project's ../shared folder (fixtures and data sets) from the test output folder.</summary>
public static class SharedFixtures
{
    public static string Root { get; } = Find();

    public static string HfReference => Path.Combine(Root, "fixtures", "hf-reference");
    public static string BertBaseUncasedTokenizer => Path.Combine(Root, "fixtures", "bert-base-uncased-tokenizer");
    public static string Data => Path.Combine(Root, "data");
    public static string Gutenberg => Path.Combine(Root, "data", "gutenberg-en");

    static string Find()
    {
        var env = Environment.GetEnvironmentVariable("UNMASK_SHARED");
        if (!string.IsNullOrEmpty(env) && Directory.Exists(Path.Combine(env, "fixtures"))) return env;
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "shared");
            if (Directory.Exists(Path.Combine(candidate, "fixtures"))) return candidate;
        }
        throw new DirectoryNotFoundException(
            "The shared fixtures folder was not found: expected ../shared beside the repository, or set UNMASK_SHARED.");
    }
}
