using System.CommandLine;
using Unmask.Serving;

namespace Unmask.Cli.Commands;

/// <summary>`unmask serve`: the HTTP server, its API page and the playground, over one or more model folders.</summary>
public static class ServeCommand
{
    public static Command Create(CliOutput io)
    {
        var models = new Option<string[]>("--model") { Description = "Model folder, or NAME=DIR; repeat to serve several (requests then name theirs in \"model\")", Required = true, AllowMultipleArgumentsPerToken = false };
        var host = new Option<string>("--host") { Description = "Address to listen on", DefaultValueFactory = _ => "127.0.0.1" };
        var port = new Option<int>("--port") { Description = "Port to listen on (0: any free port)", DefaultValueFactory = _ => 8080 };
        var batchTokens = new Option<int>("--max-batch-tokens") { Description = "Most padded tokens (rows x longest length) in one model batch", DefaultValueFactory = _ => 16384 };
        var clientBatch = new Option<int>("--max-client-batch-size") { Description = "Most inputs of one request per model batch; larger requests are split over several", DefaultValueFactory = _ => 32 };
        var concurrent = new Option<int>("--max-concurrent-requests") { Description = "Most requests queued or running per model; more get 429", DefaultValueFactory = _ => 512 };
        var payload = new Option<long>("--payload-limit") { Description = "Largest request body in bytes; larger ones get 413", DefaultValueFactory = _ => 2_000_000 };
        var truncate = new Option<bool>("--auto-truncate") { Description = "Truncate inputs longer than the model takes (embed, predict) instead of answering 422" };
        var apiKey = new Option<string?>("--api-key") { Description = "Require \"Authorization: Bearer KEY\" on every route but /, /health, /metrics and the API page (default: $UNMASK_API_KEY)" };
        var device = ModelOptions.DeviceOption();
        var command = new Command("serve", "Serve models over HTTP: JSON routes with dynamic batching, OpenAPI and /docs, Prometheus /metrics, a playground at /")
        {
            models, device, host, port, batchTokens, clientBatch, concurrent, payload, truncate, apiKey,
        };
        command.SetAction(parse => io.GuardCancellable(ct =>
        {
            var served = parse.GetValue(models)!.Select(Named).ToList();
            var options = new ServerOptions
            {
                Models = served,
                Host = parse.GetValue(host)!,
                Port = parse.GetValue(port),
                Device = ModelOptions.ReadDevice(parse, device),
                PayloadLimit = parse.GetValue(payload),
                ApiKey = parse.GetValue(apiKey) ?? Environment.GetEnvironmentVariable("UNMASK_API_KEY"),
                Limits = new ServingLimits
                {
                    MaxBatchTokens = parse.GetValue(batchTokens),
                    MaxClientBatchSize = parse.GetValue(clientBatch),
                    MaxConcurrentRequests = parse.GetValue(concurrent),
                    AutoTruncate = parse.GetValue(truncate),
                },
            };
            foreach (var (_, folder) in served) ModelOptions.ExistingFolder(folder);
            return Serve(io, options, ct).GetAwaiter().GetResult();
        }));
        return command;
    }

    static (string Name, string Folder) Named(string value)
    {
        int equals = value.IndexOf('=');
        if (equals > 0 && !Directory.Exists(value)) return (value[..equals], value[(equals + 1)..]);
        return (Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(value))), value);
    }

    static async Task<int> Serve(CliOutput io, ServerOptions options, CancellationToken ct)
    {
        await using var server = await UnmaskServer.StartAsync(options, ct);
        io.Error.WriteLine($"listening on {server.Address} (playground /, API /docs, OpenAPI /openapi/v1.json); loading {options.Models.Count} model(s)");
        try
        {
            await server.Ready;
        }
        catch (UnmaskException e)
        {
            throw new UnmaskException($"a model failed to load: {e.Message}");
        }
        foreach (var model in server.Models.Values)
            io.Error.WriteLine($"model '{model.Name}': {model.Model.Architecture}, routes {string.Join(" ", model.Capabilities.Select(c => "/" + c))}");
        io.Error.WriteLine("ready; SIGTERM or Ctrl+C drains and stops");
        await server.WaitForShutdownAsync(ct);
        io.Error.WriteLine("stopped");
        return 0;
    }
}
