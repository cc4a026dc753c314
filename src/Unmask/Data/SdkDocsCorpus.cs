using System.Runtime.InteropServices;
using System.Text;
using System.Text.RegularExpressions;
using System.Xml;
using System.Xml.Linq;

namespace Unmask.Data;

/// <summary>
/// The default corpus: the prose of the .NET reference-assembly documentation that every SDK installation carries
/// (packs/Microsoft.NETCore.App.Ref/&lt;version&gt;/ref/net*/ *.xml). Needs nothing but the SDK.
/// </summary>
public static partial class SdkDocsCorpus
{
    public const string Name = "dotnet-sdk-api-docs";

    static readonly HashSet<string> ProseElements = ["summary", "remarks", "param", "returns", "value", "exception", "typeparam"];

    public static Corpus Load(CancellationToken ct = default)
    {
        var folder = FindDocsFolder();
        var files = Directory.GetFiles(folder, "*.xml").Order(StringComparer.Ordinal).ToArray();
        var perFile = files.AsParallel().AsOrdered().WithCancellation(ct).Select(ReadFile).ToList();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var train = new List<string>();
        var validation = new List<string>();
        foreach (var paragraphs in perFile)
            foreach (var (member, text) in paragraphs)
                if (seen.Add(text))
                    (Corpus.IsValidationKey(member) ? validation : train).Add(text);
        return new Corpus(Name, train, validation);
    }

    /// <summary>The newest Microsoft.NETCore.App.Ref pack's documentation folder, found from the running runtime.</summary>
    public static string FindDocsFolder()
    {
        var roots = new List<string>();
        if (Environment.GetEnvironmentVariable("DOTNET_ROOT") is { Length: > 0 } env) roots.Add(env);
        // The runtime lives in <root>/shared/Microsoft.NETCore.App/<version>/.
        var runtimeDir = new DirectoryInfo(RuntimeEnvironment.GetRuntimeDirectory().TrimEnd(Path.DirectorySeparatorChar));
        if (runtimeDir.Parent?.Parent?.Parent is { } root) roots.Add(root.FullName);
        foreach (var dotnetRoot in roots)
        {
            var packs = Path.Combine(dotnetRoot, "packs", "Microsoft.NETCore.App.Ref");
            if (!Directory.Exists(packs)) continue;
            var best = Directory.GetDirectories(packs)
                .Select(d => (Dir: d, Version: Version.TryParse(Path.GetFileName(d).Split('-')[0], out var v) ? v : null))
                .Where(d => d.Version is not null)
                .OrderByDescending(d => d.Version)
                .SelectMany(d => Directory.Exists(Path.Combine(d.Dir, "ref"))
                    ? Directory.GetDirectories(Path.Combine(d.Dir, "ref")).OrderByDescending(TargetVersion)
                    : Enumerable.Empty<string>())
                .FirstOrDefault(d => Directory.EnumerateFiles(d, "*.xml").Any());
            if (best is not null) return best;
        }
        throw new UnmaskException(
            "the default corpus needs the .NET SDK's reference documentation (packs/Microsoft.NETCore.App.Ref/*/ref/*/*.xml), " +
            $"which was not found under {string.Join(" or ", roots)}; pass --corpus PATH instead");
    }

    static Version TargetVersion(string refFolder) =>
        Version.TryParse(Path.GetFileName(refFolder).TrimStart('n', 'e', 't'), out var v) ? v : new Version(0, 0);

    static List<(string Member, string Text)> ReadFile(string file)
    {
        var result = new List<(string, string)>();
        using var reader = XmlReader.Create(file, new XmlReaderSettings { DtdProcessing = DtdProcessing.Ignore, IgnoreComments = true });
        reader.MoveToContent();
        while (!reader.EOF)
        {
            if (reader.NodeType == XmlNodeType.Element && reader.Name == "member")
            {
                var member = (XElement)XNode.ReadFrom(reader);
                var name = (string?)member.Attribute("name") ?? "";
                foreach (var element in member.Elements().Where(e => ProseElements.Contains(e.Name.LocalName)))
                {
                    var builder = new StringBuilder();
                    Render(element, builder);
                    foreach (var paragraph in builder.ToString().Split('\n'))
                    {
                        var text = Whitespace().Replace(paragraph, " ").Trim();
                        if (text.Length > 0) result.Add((name, text));
                    }
                }
            }
            else reader.Read();
        }
        return result;
    }

    /// <summary>Inline markup becomes the words a reader sees; block markup (para, list items) starts a new line.</summary>
    static void Render(XElement element, StringBuilder text)
    {
        foreach (var node in element.Nodes())
        {
            if (node is XText t)
            {
                text.Append(t.Value);
                continue;
            }
            if (node is not XElement e) continue;
            switch (e.Name.LocalName)
            {
                case "see" or "seealso":
                    if (!e.Nodes().Any())
                        text.Append((string?)e.Attribute("langword") ?? CrefName((string?)e.Attribute("cref") ?? (string?)e.Attribute("href") ?? ""));
                    else Render(e, text);
                    break;
                case "paramref" or "typeparamref":
                    text.Append((string?)e.Attribute("name"));
                    break;
                case "code":
                    text.Append('\n');
                    break;
                case "para" or "item" or "listheader" or "list" or "br":
                    text.Append('\n');
                    Render(e, text);
                    text.Append('\n');
                    break;
                case "term":
                    Render(e, text);
                    text.Append(": ");
                    break;
                default:
                    Render(e, text);
                    break;
            }
        }
    }

    /// <summary>"T:System.Collections.Generic.List`1" → "List"; "M:System.String.Join(System.String,System.String[])" → "Join".</summary>
    public static string CrefName(string cref)
    {
        var name = cref.Length > 2 && cref[1] == ':' ? cref[2..] : cref;
        int paren = name.IndexOf('(');
        if (paren >= 0) name = name[..paren];
        int dot = name.LastIndexOf('.');
        if (dot >= 0 && dot < name.Length - 1) name = name[(dot + 1)..];
        int tick = name.IndexOf('`');
        if (tick >= 0) name = name[..tick];
        return name.Replace("#ctor", "constructor");
    }

    [GeneratedRegex(@"\s+")]
    private static partial Regex Whitespace();
}
