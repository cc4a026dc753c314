using Unmask.Tokenization;

namespace Unmask.Data;

/// <summary>What a classifier predicts, as <c>finetune --task</c> names it.</summary>
public enum ClassificationTask
{
    Classification,
    MultiLabel,
    Regression,
    TokenClassification,

    /// <summary>PET: the masked-LM head trained on a pattern, cross-entropy over the verbalizer's label words at the mask.</summary>
    Prompt,
}

/// <summary>
/// One encoded example. <see cref="Targets"/> holds the sequence target: the class id (single-label), a 0/1 per label
/// (multi-label) or the value(s) (regression). <see cref="TokenLabels"/>: per token the label id, -100 where no loss
/// is wanted. <see cref="WordOfToken"/>: per token the word it starts, -1 for special tokens and later pieces.
/// </summary>
public sealed record EncodedExample(int[] InputIds, int[] TokenTypeIds, float[] Targets, long[]? TokenLabels, int[]? WordOfToken, int Words);

/// <summary>Turns labelled texts and tagged sentences into model inputs and targets, as transformers' run_glue.py
/// and run_ner.py prepare them.</summary>
public static class ClassificationData
{
    public static string ProblemType(ClassificationTask task) => task switch
    {
        ClassificationTask.Regression => "regression",
        ClassificationTask.MultiLabel => "multi_label_classification",
        _ => "single_label_classification",
    };

    /// <summary>The label set the training data implies: sorted names (numerically when all are integers, so 0 and 1
    /// keep their ids); regression has one output per target column (one here).</summary>
    public static IReadOnlyList<string> LabelsOf(ClassificationTask task, IReadOnlyList<TextExample> texts, IReadOnlyList<WordExample> sentences)
    {
        IEnumerable<string> names = task switch
        {
            ClassificationTask.Regression => ["LABEL_0"],
            ClassificationTask.MultiLabel => texts.SelectMany(e => LabelledData.SplitLabels(e.Label)),
            ClassificationTask.TokenClassification => sentences.SelectMany(s => s.Tags),
            _ => texts.Select(e => e.Label),
        };
        var distinct = names.Distinct(StringComparer.Ordinal).ToList();
        if (task == ClassificationTask.Regression) return distinct;
        if (distinct.All(n => long.TryParse(n, out _))) return [.. distinct.OrderBy(long.Parse)];
        // Put O first for tags, as datasets' NER features do; the rest by type then prefix keeps B-/I- pairs together.
        return [.. distinct.OrderBy(n => n != "O").ThenBy(n => n.Length > 2 && n[1] == '-' ? n[2..] : n, StringComparer.Ordinal).ThenBy(n => n, StringComparer.Ordinal)];
    }

    /// <summary>Encodes sequence examples; a label outside <paramref name="labels"/> is an error naming its file and line.</summary>
    public static List<EncodedExample> EncodeTexts(ITokenizer tokenizer, IReadOnlyList<TextExample> examples, ClassificationTask task,
        IReadOnlyList<string> labels, int maxLength)
    {
        var index = labels.Select((name, id) => (name, id)).ToDictionary(p => p.name, p => p.id, StringComparer.Ordinal);
        int Id(TextExample e, string name) => index.TryGetValue(name, out var id) ? id
            : throw new UnmaskException($"{e.Source}: label '{name}' is not one of the model's labels ({string.Join(", ", labels.Take(20))}{(labels.Count > 20 ? ", ..." : "")}).");
        var encoded = new List<EncodedExample>(examples.Count);
        foreach (var e in examples)
        {
            float[] targets = task switch
            {
                ClassificationTask.Regression => [LabelledData.ParseTarget(e)],
                ClassificationTask.MultiLabel => MultiHot(LabelledData.SplitLabels(e.Label).Select(n => Id(e, n)), labels.Count),
                _ => [Id(e, e.Label)],
            };
            var tokens = tokenizer.Encode(e.Text, e.Pair, maxLength: maxLength);
            encoded.Add(new EncodedExample(tokens.InputIds, tokens.TokenTypeIds, targets, null, null, 0));
        }
        return encoded;
    }

    static float[] MultiHot(IEnumerable<int> ids, int count)
    {
        var row = new float[count];
        foreach (var id in ids) row[id] = 1;
        return row;
    }

    /// <summary>
    /// Encodes tagged sentences: the words joined by single spaces, each token assigned to the word its offset falls
    /// in. The first piece of a word carries the word's tag; later pieces get -100, or with
    /// <paramref name="labelAllPieces"/> the tag too (a B- tag as its I- form when the labels have one, as run_ner.py).
    /// </summary>
    public static List<EncodedExample> EncodeWords(ITokenizer tokenizer, IReadOnlyList<WordExample> sentences, IReadOnlyList<string> labels,
        int maxLength, bool labelAllPieces)
    {
        var index = labels.Select((name, id) => (name, id)).ToDictionary(p => p.name, p => p.id, StringComparer.Ordinal);
        var encoded = new List<EncodedExample>(sentences.Count);
        foreach (var s in sentences)
        {
            var ids = s.Tags.Select(t => index.TryGetValue(t, out var id) ? id
                : throw new UnmaskException($"{s.Source}: tag '{t}' is not one of the model's labels ({string.Join(", ", labels.Take(20))}).")).ToArray();
            var (tokens, wordOfToken, tokenWord) = EncodeWordsOnly(tokenizer, s.Words, maxLength);
            var tokenLabels = new long[tokens.InputIds.Length];
            for (int t = 0; t < tokenLabels.Length; t++)
            {
                if (wordOfToken[t] >= 0) tokenLabels[t] = ids[wordOfToken[t]];
                else if (labelAllPieces && tokenWord[t] >= 0)
                {
                    var tag = s.Tags[tokenWord[t]];
                    var inside = tag.StartsWith("B-", StringComparison.Ordinal) ? "I-" + tag[2..] : tag;
                    tokenLabels[t] = index.TryGetValue(inside, out var insideId) ? insideId : ids[tokenWord[t]];
                }
                else tokenLabels[t] = -100;
            }
            encoded.Add(new EncodedExample(tokens.InputIds, tokens.TokenTypeIds, [], tokenLabels, wordOfToken, s.Words.Count));
        }
        return encoded;
    }

    /// <summary>The encoding of words joined by spaces; per token the index of the word it starts (-1 for special
    /// tokens and for a word's later pieces), and the word it belongs to (-1 for special tokens). A word the tokenizer
    /// drops entirely (control characters) starts nothing.</summary>
    public static (TokenizedText Tokens, int[] WordOfToken, int[] TokenWord) EncodeWordsOnly(ITokenizer tokenizer, IReadOnlyList<string> words, int maxLength)
    {
        var starts = new int[words.Count];
        var text = new System.Text.StringBuilder();
        for (int w = 0; w < words.Count; w++)
        {
            if (w > 0) text.Append(' ');
            starts[w] = text.Length;
            text.Append(words[w]);
        }
        var tokens = tokenizer.Encode(text.ToString(), maxLength: maxLength);
        var offsets = tokens.Offsets ?? throw new UnmaskException("the tokenizer gives no offsets; token classification needs them.");
        var wordOfToken = new int[tokens.InputIds.Length];
        var tokenWord = new int[tokens.InputIds.Length];
        int previous = -1;
        for (int t = 0; t < wordOfToken.Length; t++)
        {
            wordOfToken[t] = tokenWord[t] = -1;
            if (tokens.SpecialTokensMask[t] || offsets[t].End <= offsets[t].Start) continue;
            // The word whose span holds the token's first character (a byte-level token may start at the space before it).
            int start = offsets[t].Start;
            int word = Array.BinarySearch(starts, start);
            if (word < 0) word = ~word - 1;
            if (word < words.Count - 1 && start == starts[word + 1] - 1) word++;
            tokenWord[t] = word;
            if (word >= 0 && word != previous) wordOfToken[t] = word;
            previous = Math.Max(previous, word);
        }
        return (tokens, wordOfToken, tokenWord);
    }

    /// <summary>
    /// PET examples: each text put into the template (cut so the mask survives truncation); TokenLabels hold the class
    /// id at the mask and -100 elsewhere, so that the mask is the one position the head runs at.
    /// </summary>
    public static List<EncodedExample> EncodePrompts(ITokenizer tokenizer, IReadOnlyList<TextExample> examples, PromptTemplate template,
        IReadOnlyList<string> labels, int maxLength)
    {
        var index = labels.Select((name, id) => (name, id)).ToDictionary(p => p.name, p => p.id, StringComparer.Ordinal);
        var encoded = new List<EncodedExample>(examples.Count);
        foreach (var e in examples)
        {
            var id = index.TryGetValue(e.Label, out var found) ? found
                : throw new UnmaskException($"{e.Source}: label '{e.Label}' is not one of the verbalizer's labels ({string.Join(", ", labels)}).");
            var text = e.Text;
            var tokens = tokenizer.Encode(template.Fill(text, e.Pair, tokenizer.MaskToken), maxLength: maxLength);
            int mask = Array.IndexOf(tokens.InputIds, tokenizer.MaskId);
            if (mask < 0)
            {
                // Too long: keep as much of the text as leaves room for the rest of the pattern.
                var overflow = tokenizer.Encode(template.Fill(text, e.Pair, tokenizer.MaskToken)).InputIds.Length - maxLength;
                var pieces = tokenizer.Encode(text, addSpecialTokens: false);
                int keep = pieces.InputIds.Length - overflow - 1;
                if (keep < 1) throw new UnmaskException($"{e.Source}: the pattern alone is longer than --max-seq-length {maxLength}.");
                text = text[..pieces.Offsets![keep].Start].TrimEnd();
                tokens = tokenizer.Encode(template.Fill(text, e.Pair, tokenizer.MaskToken), maxLength: maxLength);
                mask = Array.IndexOf(tokens.InputIds, tokenizer.MaskId);
                if (mask < 0) throw new UnmaskException($"{e.Source}: the mask does not fit in --max-seq-length {maxLength}.");
            }
            var tokenLabels = new long[tokens.InputIds.Length];
            Array.Fill(tokenLabels, -100L);
            tokenLabels[mask] = id;
            encoded.Add(new EncodedExample(tokens.InputIds, tokens.TokenTypeIds, [id], tokenLabels, null, 0));
        }
        return encoded;
    }

    /// <summary>
    /// Batches of example indices, grouped by length as transformers' group_by_length does: a seeded shuffle, then
    /// mega-batches of 50 batches each sorted longest first and cut into batches, so padding stays small while the
    /// order still changes every epoch. Depends only on (seed, epoch).
    /// </summary>
    public static List<int[]> LengthGroupedBatches(IReadOnlyList<EncodedExample> examples, int batchSize, int seed, int epoch)
    {
        var order = Enumerable.Range(0, examples.Count).ToArray();
        new Random(unchecked(seed * 1_000_003 + epoch)).Shuffle(order);
        var batches = new List<int[]>();
        int mega = batchSize * 50;
        for (int start = 0; start < order.Length; start += mega)
        {
            var chunk = order.Skip(start).Take(mega).OrderByDescending(i => examples[i].InputIds.Length).ToArray();
            for (int b = 0; b < chunk.Length; b += batchSize) batches.Add(chunk.Skip(b).Take(batchSize).ToArray());
        }
        return batches;
    }

    /// <summary>Batches for inference: longest first, at most <paramref name="batchSize"/> rows each.</summary>
    public static List<int[]> SortedBatches(IReadOnlyList<EncodedExample> examples, int batchSize)
    {
        var order = Enumerable.Range(0, examples.Count).OrderByDescending(i => examples[i].InputIds.Length).ToArray();
        return [.. order.Chunk(batchSize)];
    }
}
