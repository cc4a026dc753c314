using Unmask.Modeling;

namespace Unmask.Training;

/// <summary>
/// The networks one run trains, as the trainer handles them: the masked LM its shared validation measures, the Hugging
/// Face folders a checkpoint holds, and every parameter exactly once (shared ones are not counted twice).
/// </summary>
public sealed class TrainedModels : IDisposable
{
    /// <param name="maskedLm">The model the trainer's masked-LM validation runs on.</param>
    /// <param name="folders">Each model with the subfolder of a checkpoint it is saved in (null: the checkpoint folder itself).</param>
    /// <param name="parameters">Optimizer names and parameters; a tensor listed twice is kept under its first name.</param>
    public TrainedModels(PretrainedModel maskedLm, IReadOnlyList<(string? Folder, PretrainedModel Model)> folders,
        IEnumerable<(string Name, Tensor Parameter)> parameters)
    {
        MaskedLm = maskedLm;
        Folders = folders;
        var seen = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        Parameters = parameters.Where(p => seen.Add(p.Parameter)).ToList();
    }

    /// <summary>A single masked LM saved as the checkpoint folder itself, its parameters under their HF names.</summary>
    public static TrainedModels Single(PretrainedModel model) =>
        new(model, [(null, model)], model.NamedParametersOnce().Select(p => (p.Name, (Tensor)p.Parameter)));

    public PretrainedModel MaskedLm { get; }
    public IReadOnlyList<(string? Folder, PretrainedModel Model)> Folders { get; }
    public IReadOnlyList<(string Name, Tensor Parameter)> Parameters { get; }

    public bool Training => MaskedLm.training;

    public void SetTraining(bool training)
    {
        foreach (var (_, model) in Folders)
            if (training) model.train();
            else model.eval();
    }

    public void ZeroGrad()
    {
        foreach (var (_, model) in Folders) model.zero_grad();
    }

    public void Dispose()
    {
        foreach (var (_, model) in Folders) model.Dispose();
    }
}
