using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Unmask.Evaluation;
using Unmask.Generation;
using Unmask.Inference;
using Unmask.Serving;

namespace Unmask.Tests;

/// <summary>Two models behind one server on a real Kestrel port: the masked LM fixture and a classifier fine-tuned from it.</summary>
public sealed class ServerFixture : IAsyncLifetime
{
    readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("unmask-serve");

    public static string MlmFolder => Path.Combine(SharedFixtures.HfReference, "models", "bert-uncased");

    public string ClassifierFolder => Path.Combine(_dir.FullName, "classifier");

    public string TaggerFolder => Path.Combine(_dir.FullName, "tagger");

    public UnmaskServer Server { get; private set; } = null!;

    public HttpClient Client { get; private set; } = null!;

    public string Temp => _dir.FullName;

    public async Task InitializeAsync()
    {
        var train = Path.Combine(_dir.FullName, "train.tsv");
        File.WriteAllText(train, "sentence\tlabel\n" + string.Concat(Enumerable.Range(0, 16).Select(i => i % 2 == 0 ? "they like coffee\thot\n" : "she likes cheese\tcold\n")));
        var (code, _, stderr) = CliTests.Run("finetune", "--model", MlmFolder, "--train", train, "--output", ClassifierFolder, "--epochs", "1", "--batch-size", "8");
        Assert.True(code == 0, stderr);
        var conll = Path.Combine(_dir.FullName, "train.conll");
        File.WriteAllText(conll, string.Concat(Enumerable.Repeat("she\tO\nlike\tO\ncheese\tB-food\noutside\tO\n\nthey\tO\nlike\tO\ncreme\tB-food\nbrulee\tI-food\n\n", 20)));
        (code, _, stderr) = CliTests.Run("finetune", "--task", "token-classification", "--model", MlmFolder, "--train", conll, "--output", TaggerFolder,
            "--epochs", "4", "--lr", "3e-3", "--batch-size", "8");
        Assert.True(code == 0, stderr);
        Server = await UnmaskServer.StartAsync(new ServerOptions
        {
            Models = [("mlm", MlmFolder), ("clf", ClassifierFolder), ("ner", TaggerFolder)],
            Port = 0,
            PayloadLimit = 65536,
        });
        await Server.Ready;
        Client = new HttpClient { BaseAddress = Server.Address };
    }

    public async Task DisposeAsync()
    {
        Client.Dispose();
        await Server.DisposeAsync();
        _dir.Delete(recursive: true);
    }
}

public sealed class ServerTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    HttpClient Client => fixture.Client;

    static StringContent Body(object value) => new(JsonSerializer.Serialize(value), Encoding.UTF8, "application/json");

    async Task<(HttpStatusCode Status, JsonElement Json, string Text)> Post(string route, object body)
    {
        using var response = await Client.PostAsync(route, Body(body));
        var text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, text.Length > 0 && response.Content.Headers.ContentType?.MediaType == "application/json" ? JsonDocument.Parse(text).RootElement.Clone() : default, text);
    }

    /// <summary>The objects the library's records give through the same JSON writers the CLI uses.</summary>
    static string Array<T>(IEnumerable<T> items, Action<Utf8JsonWriter, T> write)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartArray();
            foreach (var item in items) write(w, item);
            w.WriteEndArray();
        }
        return Canonical(Encoding.UTF8.GetString(buffer.ToArray()));
    }

    static string Canonical(string json) => JsonSerializer.Serialize(JsonDocument.Parse(json).RootElement);

    static string Canonical(JsonElement json) => JsonSerializer.Serialize(json);

    [Fact]
    public async Task FillScoreClassifyAndGenerateEqualTheLibrary()
    {
        using var mlm = MaskedLanguageModel.Load(ServerFixture.MlmFolder);
        string[] texts = ["the [MASK] sat on the mat.", "she [MASK] coffee [MASK]."];

        var fill = await Post("/fill", new { model = "mlm", inputs = texts, top_k = 3 });
        Assert.Equal(HttpStatusCode.OK, fill.Status);
        Assert.Equal(Array(mlm.Fill(texts, 3), ResultJson.Fill), Canonical(fill.Json));

        string[] sentences = ["the cat sat on the mat.", "she likes coffee."];
        var score = await Post("/score", new { model = "mlm", inputs = sentences, per_token = true });
        Assert.Equal(HttpStatusCode.OK, score.Status);
        var pll = new PllScorer(ScoringContext.From(mlm)).Score(sentences);
        Assert.Equal(Array(pll, (w, r) => ResultJson.Score(w, r, true)), Canonical(score.Json));

        var verbalizer = new Verbalizer(["hot", "cold"], new Dictionary<string, IReadOnlyList<string>> { ["hot"] = ["good"], ["cold"] = ["bad", "poor"] });
        var classify = await Post("/classify", new { model = "mlm", inputs = new[] { "they like coffee", "she hates rain" }, template = "{text} it was [MASK].", verbalizer = new { hot = "good", cold = new[] { "bad", "poor" } } });
        Assert.Equal(HttpStatusCode.OK, classify.Status);
        var prompts = new PromptClassifier(mlm, "{text} it was [MASK].", verbalizer).Predict([("they like coffee", null), ("she hates rain", null)]);
        Assert.Equal(Array(prompts, ResultJson.Prompt), Canonical(classify.Json));

        var generate = await Post("/generate", new { model = "mlm", inputs = "the [MASK] [MASK] on the mat.", length = 3, num_samples = 2, seed = 7, steps = 4, temperature = 0.7 });
        Assert.Equal(HttpStatusCode.OK, generate.Status);
        var request = new GenerateRequest { Texts = ["the [MASK] [MASK] on the mat."], Length = 3, NumSamples = 2, Sampling = new SamplingOptions { Steps = 4, Temperature = 0.7, Seed = 7 } };
        var generated = TextGeneration.Generate(mlm, request);
        string WithoutSeconds(string json) => Canonical(System.Text.RegularExpressions.Regex.Replace(json, "\"seconds\":[0-9.eE+-]+", "\"seconds\":0"));
        Assert.Equal(WithoutSeconds(Array(generated, ResultJson.Generated)), WithoutSeconds(generate.Text));
        Assert.Equal(2, generate.Json.GetArrayLength());
    }

    [Fact]
    public async Task EmbeddingsAndPredictionsEqualTheLibraryInTeiShapes()
    {
        using var embedder = SentenceEmbedder.Load(ServerFixture.MlmFolder);
        string[] texts = ["a cat sat.", "the weather is nice today."];
        var embed = await Post("/embed", new { model = "mlm", inputs = texts });
        Assert.Equal(HttpStatusCode.OK, embed.Status);
        var expected = embedder.Embed(texts, new EmbeddingOptions(Normalize: true));
        Assert.Equal(expected.Select(v => v.ToArray()), embed.Json.EnumerateArray().Select(v => v.EnumerateArray().Select(x => x.GetSingle()).ToArray()));
        var cls = await Post("/embed", new { model = "mlm", inputs = "a cat sat.", pooling = "cls", normalize = false });
        Assert.Equal(embedder.Embed(["a cat sat."], new EmbeddingOptions(Pooling.Cls, Normalize: false))[0], cls.Json[0].EnumerateArray().Select(x => x.GetSingle()).ToArray());

        var openAi = await Post("/v1/embeddings", new { model = "mlm", input = texts });
        Assert.Equal("list", openAi.Json.GetProperty("object").GetString());
        Assert.Equal(expected[1], openAi.Json.GetProperty("data")[1].GetProperty("embedding").EnumerateArray().Select(x => x.GetSingle()).ToArray());
        Assert.Equal(1, openAi.Json.GetProperty("data")[1].GetProperty("index").GetInt32());
        Assert.True(openAi.Json.GetProperty("usage").GetProperty("prompt_tokens").GetInt32() > 4);

        var sparse = await Post("/embed_sparse", new { model = "mlm", inputs = texts, top_terms = 5 });
        var terms = embedder.Sparse(texts, 5);
        Assert.Equal(terms[1].Select(t => (t.Id, t.Weight)), sparse.Json[1].EnumerateArray().Select(t => (t.GetProperty("index").GetInt32(), t.GetProperty("value").GetSingle())));

        using var classifier = Classifier.Load(fixture.ClassifierFolder);
        var single = await Post("/predict", new { model = "clf", inputs = "they like coffee" });
        Assert.Equal(HttpStatusCode.OK, single.Status);
        var p = classifier.Predict([("they like coffee", null)])[0];
        Assert.Equal(p.Scores!.OrderByDescending(s => s.Value).Select(s => (s.Key, s.Value)),
            single.Json.EnumerateArray().Select(s => (s.GetProperty("label").GetString()!, s.GetProperty("score").GetDouble())));
        var batch = await Post("/predict", new { model = "clf", inputs = new object[] { "they like coffee", new[] { "she likes cheese" } }, raw_scores = true });
        Assert.Equal(2, batch.Json.GetArrayLength());
        var raw = classifier.Predict([("they like coffee", null), ("she likes cheese", null)])[1].Logits;
        Assert.Equal(raw.OrderDescending().Select(x => (double)x), batch.Json[1].EnumerateArray().Select(s => s.GetProperty("score").GetDouble()));
    }

    [Fact]
    public async Task ATokenClassifierAnswersPredictWithEntities()
    {
        using var tagger = Classifier.Load(fixture.TaggerFolder);
        string[] texts = ["they like creme brulee", "she like cheese outside"];
        // TEI's reading: two strings are one pair, so a batch of two texts is [[a], [b]].
        var predict = await Post("/predict", new { model = "ner", inputs = texts.Select(t => new[] { t }) });
        Assert.Equal(HttpStatusCode.OK, predict.Status);
        Assert.Equal(Array(tagger.PredictTokens(texts, tagger.Model.MaxSequenceLength, texts.Length), ResultJson.Entities), Canonical(predict.Json));
        Assert.Contains(predict.Json[0].GetProperty("entities").EnumerateArray(), e => e.GetProperty("word").GetString() == "creme brulee");
        var pair = await Post("/predict", new { model = "ner", inputs = new[] { "a", "b" } });
        Assert.Equal(HttpStatusCode.UnprocessableEntity, pair.Status);
    }

    [Fact]
    public async Task TokenizeAndDecodeKeepTeiShapes()
    {
        using var mlm = MaskedLanguageModel.Load(ServerFixture.MlmFolder);
        var tokenize = await Post("/tokenize", new { model = "mlm", inputs = new[] { "hello world", "cats" } });
        Assert.Equal(HttpStatusCode.OK, tokenize.Status);
        var first = tokenize.Json[0].EnumerateArray().ToList();
        Assert.Equal(mlm.Tokenizer.Encode("hello world").InputIds, first.Select(t => t.GetProperty("id").GetInt32()));
        Assert.True(first[0].GetProperty("special").GetBoolean());
        Assert.Equal(JsonValueKind.Null, first[0].GetProperty("start").ValueKind);
        // Offsets are UTF-16 positions into the text: the second word starts at 6.
        Assert.Contains(first, t => t.GetProperty("start").ValueKind == JsonValueKind.Number && t.GetProperty("start").GetInt32() == 6);

        var ids = mlm.Tokenizer.Encode("hello world").InputIds;
        var decode = await Post("/decode", new { model = "mlm", ids = new[] { ids, ids[1..3] }, skip_special_tokens = true });
        Assert.Equal([mlm.Tokenizer.Decode(ids, true), mlm.Tokenizer.Decode(ids[1..3], true)], decode.Json.EnumerateArray().Select(s => s.GetString()));
        var bad = await Post("/decode", new { model = "mlm", ids = new[] { 1, 99999 } });
        Assert.Equal(HttpStatusCode.UnprocessableEntity, bad.Status);
        Assert.Contains("99999", bad.Json.GetProperty("error").GetString());
    }

    [Fact]
    public async Task StreamedGenerationSendsEveryStepInOrderThenTheSameResult()
    {
        var body = new { model = "mlm", inputs = "she [MASK] [MASK] [MASK] every day.", seed = 3, steps = 3, sampler = "confidence" };
        using var request = new HttpRequestMessage(HttpMethod.Post, "/generate") { Content = Body(new { body.model, body.inputs, body.seed, body.steps, body.sampler, stream = true }) };
        using var response = await Client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        var events = ParseEvents(await response.Content.ReadAsStringAsync());
        Assert.Equal("result", events[^1].Name);
        var steps = events.SkipLast(1).ToList();
        Assert.All(steps, e => Assert.Equal("step", e.Name));
        Assert.Equal(Enumerable.Range(1, steps.Count), steps.Select(s => s.Data.GetProperty("forward_passes").GetInt32()));
        var remaining = steps.Select(s => s.Data.GetProperty("masked_remaining").GetInt32()).ToList();
        Assert.Equal(remaining.OrderDescending(), remaining);
        Assert.Equal(0, remaining[^1]);
        var result = events[^1].Data[0];
        Assert.Equal(steps.Count, result.GetProperty("nfe").GetInt32());
        Assert.Equal(result.GetProperty("ids").EnumerateArray().Select(i => i.GetInt64()), steps[^1].Data.GetProperty("rows")[0].GetProperty("ids").EnumerateArray().Select(i => i.GetInt64()));

        var plain = await Post("/generate", body);
        Assert.Equal(result.GetProperty("output").GetString(), plain.Json[0].GetProperty("output").GetString());
    }

    static List<(string Name, JsonElement Data)> ParseEvents(string stream) =>
        [.. stream.Split("\n\n", StringSplitOptions.RemoveEmptyEntries).Select(block =>
        {
            var lines = block.Split('\n');
            return (lines.Single(l => l.StartsWith("event: ", StringComparison.Ordinal))[7..],
                JsonDocument.Parse(lines.Single(l => l.StartsWith("data: ", StringComparison.Ordinal))[6..]).RootElement.Clone());
        })];

    [Fact]
    public async Task ErrorsNameTheProblemWithTheirStatus()
    {
        var unnamed = await Post("/fill", new { inputs = "a [MASK]." });
        Assert.Equal(HttpStatusCode.UnprocessableEntity, unnamed.Status);
        Assert.Equal("validation", unnamed.Json.GetProperty("error_type").GetString());
        Assert.Contains("mlm, clf, ner", unnamed.Json.GetProperty("error").GetString());

        var wrongHead = await Post("/fill", new { model = "clf", inputs = "a [MASK]." });
        Assert.Equal(HttpStatusCode.UnprocessableEntity, wrongHead.Status);
        Assert.Contains("/predict", wrongHead.Json.GetProperty("error").GetString());

        var typo = await Post("/fill", new { model = "mlm", inputs = "a [MASK].", topk = 3 });
        Assert.Contains("\"topk\"", typo.Json.GetProperty("error").GetString());

        var noMask = await Post("/fill", new { model = "mlm", inputs = new[] { "a [MASK].", "no mask here" } });
        Assert.Equal(HttpStatusCode.UnprocessableEntity, noMask.Status);
        Assert.StartsWith("input 1:", noMask.Json.GetProperty("error").GetString());

        var tooLong = await Post("/embed", new { model = "mlm", inputs = string.Join(" ", Enumerable.Repeat("word", 200)) });
        Assert.Equal(HttpStatusCode.UnprocessableEntity, tooLong.Status);
        Assert.Contains("truncate", tooLong.Json.GetProperty("error").GetString());
        var truncated = await Post("/embed", new { model = "mlm", inputs = string.Join(" ", Enumerable.Repeat("word", 200)), truncate = true });
        Assert.Equal(HttpStatusCode.OK, truncated.Status);

        var huge = await Post("/embed", new { model = "mlm", inputs = new string('a', 70000) });
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, huge.Status);
        Assert.Equal("payload_too_large", huge.Json.GetProperty("error_type").GetString());

        using var broken = await Client.PostAsync("/score", new StringContent("{\"inputs\": [", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, broken.StatusCode);

        var metrics = await Client.GetStringAsync("/metrics");
        Assert.Contains("unmask_requests_total{route=\"/fill\",status=\"422\"}", metrics);
        Assert.Contains("unmask_requests_total{route=\"/embed\",status=\"413\"}", metrics);
    }

    [Fact]
    public async Task InfoHealthMetricsAndOpenApiDescribeTheServer()
    {
        Assert.Equal(HttpStatusCode.OK, (await Client.GetAsync("/health")).StatusCode);
        var info = JsonDocument.Parse(await Client.GetStringAsync("/info")).RootElement;
        var models = info.GetProperty("models").EnumerateArray().ToDictionary(m => m.GetProperty("name").GetString()!);
        Assert.Contains("/fill", models["mlm"].GetProperty("routes").EnumerateArray().Select(r => r.GetString()));
        Assert.Equal("cpu", models["mlm"].GetProperty("device").GetString());
        Assert.Equal(["/predict", "/embed", "/tokenize", "/decode"], models["clf"].GetProperty("routes").EnumerateArray().Select(r => r.GetString()));
        Assert.Equal(["cold", "hot"], models["clf"].GetProperty("labels").EnumerateArray().Select(r => r.GetString()).Order());
        Assert.Equal(65536, info.GetProperty("payload_limit").GetInt64());

        await Post("/embed", new { model = "mlm", inputs = new[] { "one", "two three" } });
        var metrics = await Client.GetStringAsync("/metrics");
        Assert.Contains("# TYPE unmask_batch_tokens histogram", metrics);
        Assert.Matches("unmask_inference_duration_seconds_count\\{model=\"mlm\"\\} [1-9]", metrics);
        Assert.Contains("unmask_queue_size{model=\"clf\"} 0", metrics);

        var openApi = JsonDocument.Parse(await Client.GetStringAsync("/openapi/v1.json")).RootElement;
        var paths = openApi.GetProperty("paths").EnumerateObject().Select(p => p.Name).ToList();
        Assert.Subset(paths.ToHashSet(), new HashSet<string> { "/fill", "/score", "/embed", "/embed_sparse", "/predict", "/classify", "/generate", "/tokenize", "/decode", "/v1/embeddings", "/info", "/health", "/metrics" });
        var docs = await Client.GetStringAsync("/docs/");
        Assert.Contains("scalar.js", docs);
        Assert.Equal(HttpStatusCode.OK, (await Client.GetAsync("/docs/scalar.js")).StatusCode);
    }

    [Fact]
    public async Task ABurstBeyondTheQueueLimitGetsOnly429sBesideAnswers()
    {
        await using var server = await UnmaskServer.StartAsync(new ServerOptions
        {
            Models = [("mlm", ServerFixture.MlmFolder)],
            Port = 0,
            Limits = new ServingLimits { MaxConcurrentRequests = 2 },
        });
        await server.Ready;
        using var client = new HttpClient { BaseAddress = server.Address };
        var sentence = "the cat sat on the mat and looked at the dog.";
        var statuses = await Task.WhenAll(Enumerable.Range(0, 60).Select(async _ =>
        {
            using var response = await client.PostAsync("/score", Body(new { inputs = sentence }));
            if (response.StatusCode == HttpStatusCode.TooManyRequests)
                Assert.Equal("overloaded", JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error_type").GetString());
            return response.StatusCode;
        }));
        Assert.All(statuses, s => Assert.True(s is HttpStatusCode.OK or HttpStatusCode.TooManyRequests, s.ToString()));
        Assert.Contains(HttpStatusCode.TooManyRequests, statuses);
        Assert.Contains(HttpStatusCode.OK, statuses);
        Assert.Equal(statuses.Count(s => s == HttpStatusCode.TooManyRequests), server.Metrics.RequestCount("/score", 429));
    }

    [Fact]
    public async Task AnApiKeyGuardsEveryRouteButHealthAndMetrics()
    {
        await using var server = await UnmaskServer.StartAsync(new ServerOptions { Models = [("mlm", ServerFixture.MlmFolder)], Port = 0, ApiKey = "s3cret" });
        await server.Ready;
        using var client = new HttpClient { BaseAddress = server.Address };
        using var refused = await client.PostAsync("/tokenize", Body(new { inputs = "hi" }));
        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetAsync("/info")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/health")).StatusCode);
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", "s3cret");
        using var accepted = await client.PostAsync("/tokenize", Body(new { inputs = "hi" }));
        Assert.Equal(HttpStatusCode.OK, accepted.StatusCode);
    }

    [Fact]
    public async Task AModelThatFailsToLoadKeepsHealthAt503WithTheReason()
    {
        var broken = Directory.CreateDirectory(Path.Combine(fixture.Temp, "broken"));
        File.WriteAllText(Path.Combine(broken.FullName, "config.json"), "{\"model_type\": \"bert\", \"architectures\": [\"BertForMaskedLM\"]");
        await using var server = await UnmaskServer.StartAsync(new ServerOptions { Models = [("broken", broken.FullName)], Port = 0 });
        await Assert.ThrowsAnyAsync<Exception>(() => server.Ready);
        using var client = new HttpClient { BaseAddress = server.Address };
        using var health = await client.GetAsync("/health");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, health.StatusCode);
        Assert.Contains("config.json", await health.Content.ReadAsStringAsync());
        using var fill = await client.PostAsync("/fill", Body(new { inputs = "a [MASK]" }));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, fill.StatusCode);
    }

    [Fact]
    public async Task StoppingFinishesTheRequestInFlight()
    {
        var server = await UnmaskServer.StartAsync(new ServerOptions { Models = [("mlm", ServerFixture.MlmFolder)], Port = 0 });
        await server.Ready;
        using var client = new HttpClient { BaseAddress = server.Address };
        using var request = new HttpRequestMessage(HttpMethod.Post, "/generate")
        {
            Content = Body(new { length = 60, num_samples = 32, steps = 60, seed = 1, stream = true }),
        };
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        Assert.Equal("event: step", await reader.ReadLineAsync());
        var stopping = server.StopAsync();
        var rest = await reader.ReadToEndAsync();
        await stopping;
        Assert.Contains("event: result", rest);
        await Assert.ThrowsAnyAsync<HttpRequestException>(() => client.GetAsync("/health"));
        await server.DisposeAsync();
    }
}

/// <summary>`unmask serve` as a process: SIGTERM lets the request in flight finish, then the process exits cleanly.</summary>
public sealed class ServeProcessTests
{
    [Fact]
    public async Task SigtermDrainsTheRequestInFlightAndExitsZero()
    {
        var cli = Path.Combine(AppContext.BaseDirectory, "unmask-cli.dll");
        var start = new System.Diagnostics.ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var arg in new[] { cli, "serve", "--model", ServerFixture.MlmFolder, "--port", "0" }) start.ArgumentList.Add(arg);
        using var process = System.Diagnostics.Process.Start(start)!;
        try
        {
            string? address = null;
            for (string? line; (line = await process.StandardError.ReadLineAsync()) is not null;)
            {
                if (line.StartsWith("listening on ", StringComparison.Ordinal)) address = line.Split(' ')[2];
                if (line.StartsWith("ready", StringComparison.Ordinal)) break;
            }
            Assert.NotNull(address);
            using var client = new HttpClient { BaseAddress = new Uri(address) };
            using var request = new HttpRequestMessage(HttpMethod.Post, "/generate")
            {
                Content = new StringContent(JsonSerializer.Serialize(new { length = 60, num_samples = 64, steps = 60, seed = 1, stream = true }), Encoding.UTF8, "application/json"),
            };
            using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
            Assert.Equal("event: step", await reader.ReadLineAsync());
            System.Diagnostics.Process.Start("kill", ["-TERM", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])!.WaitForExit();
            var rest = await reader.ReadToEndAsync();
            Assert.Contains("event: result", rest);
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await process.WaitForExitAsync(timeout.Token);
            Assert.Equal(0, process.ExitCode);
            Assert.Contains("stopped", await process.StandardError.ReadToEndAsync());
        }
        finally
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
        }
    }
}
