using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Playwright;
using Unmask.Serving;

namespace Unmask.Tests;

/// <summary>
/// The server and a headless Chromium (Debian's, at /usr/bin/chromium; Playwright's own download cannot work here).
/// UNMASK_PLAYGROUND_MODEL serves another model folder (the README's screenshots use a pretrained mini);
/// UNMASK_SCREENSHOTS names a folder for one screenshot per tab.
/// </summary>
public sealed class PlaygroundFixture : IAsyncLifetime
{
    public UnmaskServer Server { get; private set; } = null!;
    public IPlaywright Playwright { get; private set; } = null!;
    public IBrowser Browser { get; private set; } = null!;
    public HttpClient Api { get; private set; } = null!;

    public static string ModelFolder => Environment.GetEnvironmentVariable("UNMASK_PLAYGROUND_MODEL") is { Length: > 0 } folder
        ? folder : Path.Combine(SharedFixtures.HfReference, "models", "bert-uncased");

    public async Task InitializeAsync()
    {
        Server = await UnmaskServer.StartAsync(new ServerOptions { Models = [("mlm", ModelFolder)], Port = 0 });
        await Server.Ready;
        Api = new HttpClient { BaseAddress = Server.Address };
        Playwright = await Microsoft.Playwright.Playwright.CreateAsync();
        Browser = await Playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = "/usr/bin/chromium",
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu"],
        });
    }

    public async Task DisposeAsync()
    {
        await Browser.DisposeAsync();
        Playwright.Dispose();
        Api.Dispose();
        await Server.DisposeAsync();
    }
}

public sealed class PlaygroundTests(PlaygroundFixture fixture) : IClassFixture<PlaygroundFixture>
{
    /// <summary>A fresh page on the playground, recording every URL it requests.</summary>
    async Task<(IPage Page, List<string> Requests)> Open(int width = 1100, int height = 800)
    {
        var page = await fixture.Browser.NewPageAsync(new BrowserNewPageOptions { ViewportSize = new ViewportSize { Width = width, Height = height } });
        var requests = new List<string>();
        page.Request += (_, request) => { lock (requests) requests.Add(request.Url); };
        await page.GotoAsync(fixture.Server.Address.ToString());
        await page.WaitForFunctionAsync("document.querySelectorAll('#model option').length > 0");
        return (page, requests);
    }

    void OnlyTheServer(List<string> requests)
    {
        lock (requests)
        {
            Assert.NotEmpty(requests);
            Assert.All(requests, url => Assert.StartsWith(fixture.Server.Address.ToString(), url));
        }
    }

    static async Task Screenshot(IPage page, string tab)
    {
        if (Environment.GetEnvironmentVariable("UNMASK_SCREENSHOTS") is { Length: > 0 } folder)
        {
            Directory.CreateDirectory(folder);
            await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(folder, $"playground-{tab}.png"), FullPage = true });
        }
    }

    async Task<JsonElement> Api(string route, object body)
    {
        using var response = await fixture.Api.PostAsJsonAsync(route, body);
        response.EnsureSuccessStatusCode();
        return JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone();
    }

    [Fact]
    public async Task FillShowsEveryMasksCandidatesWithTheirProbabilities()
    {
        var (page, requests) = await Open();
        const string text = "the [MASK] sat on the [MASK].";
        await page.FillAsync("#fill-text", text);
        await page.FillAsync("#fill-k", "4");
        await page.ClickAsync("#fill-run");
        await page.WaitForSelectorAsync("#fill-out .mask-block:nth-child(2)");
        var expected = (await Api("/fill", new { inputs = text, top_k = 4 }))[0].GetProperty("masks");
        var blocks = await page.QuerySelectorAllAsync("#fill-out .mask-block");
        Assert.Equal(expected.GetArrayLength(), blocks.Count);
        for (int m = 0; m < blocks.Count; m++)
        {
            var tokens = await Task.WhenAll((await blocks[m].QuerySelectorAllAsync(".token")).Select(t => t.TextContentAsync()));
            var shown = await Task.WhenAll((await blocks[m].QuerySelectorAllAsync(".cand")).Select(c => c.GetAttributeAsync("data-probability")));
            var candidates = expected[m].GetProperty("candidates").EnumerateArray().ToList();
            Assert.Equal(candidates.Select(c => c.GetProperty("token").GetString()), tokens);
            Assert.Equal(candidates.Select(c => c.GetProperty("probability").GetDouble()), shown.Select(s => double.Parse(s!, System.Globalization.CultureInfo.InvariantCulture)), (a, b) => Math.Abs(a - b) < 1e-6);
            // Bars are drawn in proportion: the first (most probable) is the widest.
            var widths = await blocks[m].EvalOnSelectorAllAsync<double[]>(".bar", "bars => bars.map(b => b.getBoundingClientRect().width)");
            Assert.Equal(widths.OrderDescending(), widths);
        }
        await Screenshot(page, "fill");
        OnlyTheServer(requests);
    }

    [Fact]
    public async Task ScoreColoursEachTokenByItsLogProbability()
    {
        var (page, requests) = await Open();
        await page.ClickAsync("#tab-score");
        const string sentences = "the cat sat on the mat.\nmat the on sat cat the.";
        await page.FillAsync("#score-text", sentences);
        await page.ClickAsync("#score-run");
        await page.WaitForSelectorAsync("#score-pppl");
        var expected = await Api("/score", new { inputs = sentences.Split('\n'), per_token = true });
        var logProbs = expected.EnumerateArray().SelectMany(r => r.GetProperty("tokens").EnumerateArray().Select(t => t.GetProperty("log_prob").GetDouble())).ToList();
        var spans = await page.EvalOnSelectorAllAsync<JsonElement>("#score-out .scored", """
            spans => spans.map(s => {
              const probe = document.createElement("span");
              probe.style.background = `hsl(${s.dataset.hue}, 70%, 78%)`;
              document.body.append(probe);
              const want = getComputedStyle(probe).backgroundColor;
              probe.remove();
              return { logprob: Number(s.dataset.logprob), hue: Number(s.dataset.hue), colour: getComputedStyle(s).backgroundColor, want };
            })
            """);
        var shown = spans.EnumerateArray().ToList();
        Assert.Equal(logProbs.Count, shown.Count);
        for (int i = 0; i < shown.Count; i++)
        {
            Assert.Equal(logProbs[i], shown[i].GetProperty("logprob").GetDouble(), 5);
            Assert.Equal((int)Math.Round(120 * Math.Clamp((logProbs[i] + 10) / 10, 0, 1)), shown[i].GetProperty("hue").GetInt32());
            Assert.Equal(shown[i].GetProperty("want").GetString(), shown[i].GetProperty("colour").GetString());
        }
        double total = expected.EnumerateArray().Sum(r => r.GetProperty("pll").GetDouble());
        int count = expected.EnumerateArray().Sum(r => r.GetProperty("num_scored").GetInt32());
        Assert.Contains(Math.Exp(-total / count).ToString("F2", System.Globalization.CultureInfo.InvariantCulture), await page.TextContentAsync("#score-pppl"));
        await Screenshot(page, "score");
        OnlyTheServer(requests);
    }

    [Fact]
    public async Task GenerateAnimatesTheStreamedStepsUpToTheFinalText()
    {
        var (page, requests) = await Open();
        await page.ClickAsync("#tab-generate");
        await page.FillAsync("#gen-text", "the [MASK] [MASK] on the mat.");
        await page.FillAsync("#gen-length", "4");
        await page.FillAsync("#gen-steps", "6");
        await page.FillAsync("#gen-seed", "5");
        await page.ClickAsync("#gen-run");
        await page.WaitForFunctionAsync("document.querySelector('#gen-final').textContent.length > 0", null, new PageWaitForFunctionOptions { Timeout = 30000 });
        var expected = (await Api("/generate", new { inputs = "the [MASK] [MASK] on the mat.", length = 4, steps = 6, seed = 5, sampler = "confidence", temperature = 1.0 }))[0];
        Assert.Equal(expected.GetProperty("output").GetString(), await page.TextContentAsync("#gen-final"));
        Assert.Equal(expected.GetProperty("nfe").GetInt32().ToString(System.Globalization.CultureInfo.InvariantCulture), await page.GetAttributeAsync("#gen-progress", "data-steps"));
        var tokens = await page.EvalOnSelectorAllAsync<string[]>("#gen-tokens .tok", "t => t.map(x => x.textContent)");
        Assert.Equal(expected.GetProperty("tokens").EnumerateArray().Select(t => t.GetString()), tokens);
        Assert.Equal(0, await page.Locator("#gen-tokens .masked").CountAsync());
        await Screenshot(page, "generate");
        OnlyTheServer(requests);
    }

    [Fact]
    public async Task TokenizeHighlightsEachPiecesOffsetsInTheText()
    {
        var (page, requests) = await Open();
        await page.ClickAsync("#tab-tokenize");
        const string text = "hello wide world";
        await page.FillAsync("#tok-text", text);
        await page.ClickAsync("#tok-run");
        await page.WaitForSelectorAsync("#tok-pieces .piece");
        var expected = (await Api("/tokenize", new { inputs = text }))[0].EnumerateArray().ToList();
        var pieces = page.Locator("#tok-pieces .piece");
        Assert.Equal(expected.Count, await pieces.CountAsync());
        for (int i = 0; i < expected.Count; i++)
        {
            Assert.Equal(expected[i].GetProperty("id").GetInt32().ToString(System.Globalization.CultureInfo.InvariantCulture), await pieces.Nth(i).GetAttributeAsync("data-id"));
            if (expected[i].GetProperty("start").ValueKind == JsonValueKind.Null) continue;
            await pieces.Nth(i).ClickAsync();
            int start = expected[i].GetProperty("start").GetInt32(), stop = expected[i].GetProperty("stop").GetInt32();
            Assert.Equal(text[start..stop], await page.TextContentAsync("#tok-view mark"));
            Assert.Equal("true", await pieces.Nth(i).GetAttributeAsync("aria-pressed"));
        }
        await pieces.Nth(2).ClickAsync();
        await Screenshot(page, "tokenize");
        OnlyTheServer(requests);
    }

    [Fact]
    public async Task EmbedShowsASymmetricSimilarityMatrixWithOnesOnTheDiagonal()
    {
        var (page, requests) = await Open();
        await page.ClickAsync("#tab-embed");
        await page.FillAsync("#emb-text", "a man plays a guitar.\nsomeone plays music.\nthe market fell today.\nit rained all day.");
        await page.ClickAsync("#emb-run");
        await page.WaitForSelectorAsync("#emb-matrix");
        var values = await page.EvalOnSelectorAllAsync<double[][]>("#emb-matrix tr", "rows => rows.slice(1).map(r => [...r.querySelectorAll('td')].map(c => Number(c.dataset.value)))");
        Assert.Equal(4, values.Length);
        for (int i = 0; i < 4; i++)
        {
            Assert.Equal(4, values[i].Length);
            Assert.Equal(1.0, values[i][i], 5);
            for (int j = 0; j < 4; j++) Assert.Equal(values[i][j], values[j][i], 6);
        }
        Assert.Contains(values.SelectMany((r, i) => r.Where((_, j) => j != i)), v => v < 0.9999);
        await Screenshot(page, "embed");
        OnlyTheServer(requests);
    }

    [Fact]
    public async Task ClassifyShowsEachTextsLabelAndProbabilities()
    {
        var (page, requests) = await Open();
        await page.ClickAsync("#tab-classify");
        await page.FillAsync("#cls-text", "what a great film.\na dull plot.");
        await page.FillAsync("#cls-template", "{text} it was [MASK].");
        await page.FillAsync("#cls-verbalizer", "{\"good\": [\"good\", \"great\"], \"bad\": \"bad\"}");
        await page.ClickAsync("#cls-run");
        await page.WaitForSelectorAsync("#cls-out .prediction:nth-child(2)");
        var expected = await Api("/classify", new { inputs = new[] { "what a great film.", "a dull plot." }, template = "{text} it was [MASK].", verbalizer = new { good = new[] { "good", "great" }, bad = "bad" } });
        var headings = await page.EvalOnSelectorAllAsync<string[]>("#cls-out h3", "h => h.map(x => x.textContent)");
        Assert.Equal(expected.EnumerateArray().Select(r => $"{r.GetProperty("text").GetString()} → {r.GetProperty("label").GetString()}"), headings);
        await Screenshot(page, "classify");
        OnlyTheServer(requests);
    }

    [Fact]
    public async Task TabsWorkFromTheKeyboardAndThePageFitsAPhone()
    {
        var (page, requests) = await Open(width: 375, height: 740);
        await page.FocusAsync("#tab-fill");
        await page.Keyboard.PressAsync("ArrowRight");
        Assert.Equal("true", await page.GetAttributeAsync("#tab-score", "aria-selected"));
        Assert.True(await page.IsVisibleAsync("#score"));
        Assert.False(await page.IsVisibleAsync("#fill"));
        Assert.Equal("tab-score", await page.EvaluateAsync<string>("document.activeElement.id"));
        await page.Keyboard.PressAsync("End");
        Assert.True(await page.IsVisibleAsync("#classify"));
        await page.Keyboard.PressAsync("ArrowRight");
        Assert.True(await page.IsVisibleAsync("#fill"));
        // Tab moves into the panel and Enter runs it.
        await page.FocusAsync("#fill-run");
        await page.Keyboard.PressAsync("Enter");
        await page.WaitForSelectorAsync("#fill-out .mask-block");
        Assert.True(await page.EvaluateAsync<bool>("document.documentElement.scrollWidth <= window.innerWidth"));
        await Screenshot(page, "phone");
        OnlyTheServer(requests);
    }
}
