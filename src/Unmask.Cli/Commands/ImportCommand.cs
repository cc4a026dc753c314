using System.CommandLine;
using Spectre.Console;
using Unmask.Checkpoints;

namespace Unmask.Cli.Commands;

/// <summary>`unmask import onnx`: a BERT encoder exported to ONNX becomes a Hugging Face model folder.</summary>
public static class ImportCommand
{
    public static Command Create(CliOutput io) => new("import", "Turn a model in another format into a Hugging Face model folder")
    {
        Onnx(io),
    };

    static Command Onnx(CliOutput io)
    {
        var onnx = new Option<string>("--onnx") { Description = "The .onnx file: a BERT encoder exported by torch.onnx or optimum (output last_hidden_state)", Required = true };
        var tokenizer = new Option<string>("--tokenizer") { Description = "Folder with the tokenizer's files as transformers saves them (vocab.txt, tokenizer_config.json, ...)", Required = true };
        var output = new Option<string>("--output") { Description = "Model folder to write (config.json, model.safetensors, tokenizer files)", Required = true };
        var command = new Command("onnx", "Import a BERT encoder from ONNX: config inferred from the graph, weights under transformers' names")
        {
            onnx, tokenizer, output,
        };
        command.SetAction(parse => io.Guard(() =>
        {
            var result = OnnxImport.Run(parse.GetValue(onnx)!, parse.GetValue(tokenizer)!, parse.GetValue(output)!);
            var c = result.Config;
            io.Console.WriteLine(Markup.Escape($"{result.OutputDir}: BertModel, {c.NumHiddenLayers} layers, hidden {c.HiddenSize}, {c.NumAttentionHeads} heads, " +
                $"intermediate {c.IntermediateSize}, vocabulary {c.VocabSize}, {c.MaxPositionEmbeddings} positions, {c.HiddenAct}, layer_norm_eps {c.LayerNormEps:G3}; " +
                $"{result.Tensors} tensors, {result.Renamed.Count} named from their MatMul"));
            return 0;
        }));
        return command;
    }
}
