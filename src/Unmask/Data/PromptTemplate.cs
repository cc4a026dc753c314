using System.Text.Json;

namespace Unmask.Data;

/// <summary>
/// A classification pattern: {text} (and optionally {text_pair}) where the input goes and one [MASK] (or the model's
/// own mask token) where the label word goes, e.g. "{text} It was [MASK].". Saved beside a PET model as prompt.json
/// with its verbalizer, so evaluation scores that model the way it was trained.
/// </summary>
public sealed record PromptTemplate
{
    public const string TextSlot = "{text}";
    public const string PairSlot = "{text_pair}";
    public const string MaskSlot = "[MASK]";
    public const string FileName = "prompt.json";

    PromptTemplate(string pattern) => Pattern = pattern;

    /// <summary>The pattern with the mask spelled [MASK].</summary>
    public string Pattern { get; }

    /// <param name="maskToken">The model's own mask token, accepted in place of [MASK].</param>
    public static PromptTemplate Parse(string template, string maskToken)
    {
        var pattern = maskToken != MaskSlot ? template.Replace(maskToken, MaskSlot, StringComparison.Ordinal) : template;
        if (!pattern.Contains(TextSlot, StringComparison.Ordinal))
            throw new UnmaskException($"the template '{template}' has no {TextSlot} for the input text.");
        int masks = (pattern.Length - pattern.Replace(MaskSlot, "", StringComparison.Ordinal).Length) / MaskSlot.Length;
        var spelled = maskToken == MaskSlot ? MaskSlot : $"{MaskSlot} (or {maskToken})";
        if (masks != 1)
            throw new UnmaskException($"the template '{template}' must hold exactly one {spelled} where the label word goes; it holds {masks}.");
        return new PromptTemplate(pattern);
    }

    /// <summary>Whether the label word follows whitespace (byte-level tokenizers then spell it with its space).</summary>
    public bool MaskAfterSpace => Pattern.IndexOf(MaskSlot, StringComparison.Ordinal) is > 0 and var at && char.IsWhiteSpace(Pattern[at - 1]);

    /// <summary>The pattern with the input in it and <paramref name="masks"/> mask tokens where the label word goes.</summary>
    public string Fill(string text, string? pair, string maskToken, int masks = 1) =>
        Pattern.Replace(TextSlot, text, StringComparison.Ordinal).Replace(PairSlot, pair ?? "", StringComparison.Ordinal)
            .Replace(MaskSlot, string.Concat(Enumerable.Repeat(maskToken, masks)), StringComparison.Ordinal);

    /// <summary>Writes prompt.json: the template and the label words per label, in label order.</summary>
    public void Save(string folder, IReadOnlyList<string> labels, IReadOnlyDictionary<string, IReadOnlyList<string>> words)
    {
        var json = JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["template"] = Pattern,
            ["verbalizer"] = labels.ToDictionary(l => l, l => words[l]),
        }, new JsonSerializerOptions { WriteIndented = true });
        AtomicFile.WriteAllText(Path.Combine(folder, FileName), json + "\n");
    }
}
