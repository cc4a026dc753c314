using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Spectre.Console;
using Unmask.Evaluation;
using Unmask.Inference;
using Unmask.Serving;

namespace Unmask.Cli.Commands;

/// <summary>The options that say how a sentence vector is made: embed, similarity and eval sts share them.</summary>
public sealed class EmbeddingArguments
{
    readonly Option<string?> _pooling = new Option<string?>("--pooling")
    {
        Description = "cls, mean, max or pooler (BERT's pooler, where the folder has one); default: the sentence-transformers folder's, else mean",
    }.AcceptOnlyFromAmong("cls", "mean", "max", "pooler");

    readonly Option<int?> _layer = new("--layer") { Description = "Hidden state to pool: 0 = embeddings, 1..L = layers, -1 = last (default)" };
    readonly Option<bool> _normalize = new("--normalize") { Description = "Scale each vector to unit length (always on when the folder ends with Normalize)" };
    readonly Option<int?> _maxLength = new("--max-seq-length") { Description = "Longest input in tokens (default: the folder's max_seq_length, else the model's)" };
    readonly Option<int> _batchTokens = new("--batch-tokens") { Description = "Most tokens (rows x padded length) per forward pass", DefaultValueFactory = _ => 8192 };
    readonly Option<string> _precision = new Option<string>("--precision")
    {
        Description = "Matrix products in fp32 (exact) or bf16 (faster on CPUs with bf16 units)",
        DefaultValueFactory = _ => "fp32",
    }.AcceptOnlyFromAmong("fp32", "bf16");

    public Option<string> Model { get; } = ModelOptions.Model();
    readonly Option<string> _device = ModelOptions.DeviceOption();

    public void AddTo(Command command)
    {
        command.Options.Add(Model);
        command.Options.Add(_device);
        foreach (var option in new Option[] { _pooling, _layer, _normalize, _maxLength, _batchTokens, _precision }) command.Options.Add(option);
    }

    public string ModelFolder(ParseResult parse) => ModelOptions.ExistingFolder(parse.GetValue(Model)!);

    public SentenceEmbedder Load(ParseResult parse)
    {
        var embedder = SentenceEmbedder.Load(ModelFolder(parse), ModelOptions.ReadDevice(parse, _device));
        embedder.ComputeDtype = parse.GetValue(_precision) == "bf16" ? Modeling.ComputeDtype.BFloat16 : Modeling.ComputeDtype.Float32;
        return embedder;
    }

    public EmbeddingOptions Options(ParseResult parse) => new(
        parse.GetValue(_pooling) is { } p ? Enum.Parse<Pooling>(p, ignoreCase: true) : null,
        parse.GetValue(_layer),
        parse.GetValue(_normalize) ? true : null,
        parse.GetValue(_maxLength),
        parse.GetValue(_batchTokens));

    public int? MaxLength(ParseResult parse) => parse.GetValue(_maxLength);

    public int TokenBudget(ParseResult parse) => parse.GetValue(_batchTokens);
}

/// <summary>`unmask embed` (dense or SPLADE vectors) and `unmask similarity` (cosine per sentence pair).</summary>
public static class EmbedCommand
{
    public static Command Create(CliOutput io)
    {
        var arguments = new EmbeddingArguments();
        var inputs = new TextInputs();
        var sparse = new Option<bool>("--sparse") { Description = "SPLADE vectors from the masked-LM head: max over positions of log(1 + ReLU(logit))" };
        var topTerms = new Option<int>("--top-terms") { Description = "Terms shown per sparse vector, largest weight first", DefaultValueFactory = _ => 32 };
        var json = ModelOptions.Json();
        var command = new Command("embed", "One vector per text: pooled hidden states (sentence-transformers folders use their own pooling), or --sparse SPLADE terms");
        arguments.AddTo(command);
        inputs.AddTo(command);
        command.Options.Add(sparse);
        command.Options.Add(topTerms);
        command.Options.Add(json);
        command.SetAction(parse => io.GuardCancellable(ct =>
        {
            var texts = inputs.Read(parse);
            using var embedder = arguments.Load(parse);
            var lines = new List<string>();
            var table = new Table();
            if (parse.GetValue(sparse))
            {
                var vectors = embedder.Sparse(texts, parse.GetValue(topTerms), arguments.MaxLength(parse), arguments.TokenBudget(parse), ct);
                table.AddColumns("text", "top terms");
                for (int i = 0; i < texts.Count; i++)
                {
                    lines.Add(JsonLines.Line(w => ResultJson.Sparse(w, texts[i], vectors[i])));
                    table.AddRow(Markup.Escape(texts[i]), Markup.Escape(string.Join(" ", vectors[i].Take(12).Select(t => $"{t.Token}:{t.Weight.ToString("F2", CultureInfo.InvariantCulture)}"))));
                }
            }
            else
            {
                var vectors = embedder.Embed(texts, arguments.Options(parse), ct);
                table.AddColumns("text", "dims", "norm", "first values");
                for (int i = 0; i < texts.Count; i++)
                {
                    lines.Add(JsonLines.Line(w => ResultJson.Embedding(w, texts[i], vectors[i])));
                    double norm = Math.Sqrt(vectors[i].Sum(v => (double)v * v));
                    table.AddRow(Markup.Escape(texts[i]), vectors[i].Length.ToString(CultureInfo.InvariantCulture), norm.ToString("F4", CultureInfo.InvariantCulture),
                        string.Join(" ", vectors[i].Take(4).Select(v => v.ToString("F4", CultureInfo.InvariantCulture))) + " …");
                }
            }
            // Everything is computed before the first line goes out: an error leaves no partial output.
            if (parse.GetValue(json)) foreach (var line in lines) io.Out.WriteLine(line);
            else io.Console.Write(table);
            return 0;
        }));
        return command;
    }

    public static Command Similarity(CliOutput io)
    {
        var arguments = new EmbeddingArguments();
        var pairs = new Option<string>("--pairs") { Description = "Sentence pairs: CSV/TSV sentence1,sentence2[,score] (header optional) or JSON Lines", Required = true };
        var json = ModelOptions.Json();
        var command = new Command("similarity", "Cosine similarity of the two sentences of each pair");
        arguments.AddTo(command);
        command.Options.Add(pairs);
        command.Options.Add(json);
        command.SetAction(parse => io.GuardCancellable(ct =>
        {
            var rows = StsEvaluator.ReadPairs(parse.GetValue(pairs)!, requireScores: false);
            using var embedder = arguments.Load(parse);
            var similarities = StsEvaluator.Similarities(embedder, rows, arguments.Options(parse), ct);
            if (parse.GetValue(json))
            {
                foreach (var s in similarities)
                    io.Out.WriteLine(JsonSerializer.Serialize(new { sentence1 = s.Sentence1, sentence2 = s.Sentence2, cosine = s.Cosine, score = s.Gold }));
                return 0;
            }
            var table = new Table().AddColumns("sentence1", "sentence2", "cosine", "gold");
            foreach (var s in similarities)
                table.AddRow(Markup.Escape(s.Sentence1), Markup.Escape(s.Sentence2), s.Cosine.ToString("F4", CultureInfo.InvariantCulture),
                    s.Gold?.ToString("G4", CultureInfo.InvariantCulture) ?? "-");
            io.Console.Write(table);
            return 0;
        }));
        return command;
    }
}
