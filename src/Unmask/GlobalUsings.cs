// TorchSharp is the tensor library under every folder of Unmask; naming it once here keeps each file's header to
// what is particular to that file.
global using TorchSharp;
global using TorchSharp.Utils;
global using static TorchSharp.torch;
global using F = TorchSharp.torch.nn.functional;
