
namespace Unmask.Training;

/// <summary>
/// AdamW with decoupled weight decay, written out so its whole state (moments and step) is plain named tensors
/// that a checkpoint stores as safetensors and a resume restores exactly.
/// </summary>
public sealed class AdamW : IDisposable
{
    /// <param name="LearningRateScale">This group's share of the step's learning rate (layer-wise decay).</param>
    public sealed record Group(IReadOnlyList<(string Name, Tensor Parameter)> Parameters, double WeightDecay, double LearningRateScale = 1);

    readonly IReadOnlyList<Group> _groups;
    readonly Dictionary<string, (Tensor M, Tensor V)> _moments = new();
    readonly double _beta1, _beta2, _eps;

    public long Step { get; private set; }

    public AdamW(IReadOnlyList<Group> groups, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8)
    {
        _groups = groups;
        (_beta1, _beta2, _eps) = (beta1, beta2, eps);
        foreach (var (name, p) in groups.SelectMany(g => g.Parameters))
            _moments[name] = (zeros_like(p).DetachFromDisposeScope(), zeros_like(p).DetachFromDisposeScope());
    }

    /// <summary>
    /// BERT's convention: no weight decay on biases and normalisation weights, whatever a family calls its norms
    /// (LayerNorm, layer_norm, attn_norm, final_norm, norm).
    /// </summary>
    public static IReadOnlyList<Group> DecayGroups(IEnumerable<(string Name, Tensor Parameter)> parameters, double weightDecay)
    {
        var all = parameters.ToList();
        static bool NoDecay(string name)
        {
            var dot = name.LastIndexOf('.');
            var module = dot < 0 ? "" : name[..dot];
            return name.EndsWith("bias", StringComparison.Ordinal) || module.EndsWith("norm", StringComparison.OrdinalIgnoreCase);
        }
        return
        [
            new Group(all.Where(p => !NoDecay(p.Name)).ToList(), weightDecay),
            new Group(all.Where(p => NoDecay(p.Name)).ToList(), 0.0),
        ];
    }

    public void StepWith(double learningRate)
    {
        Step++;
        double bias1 = 1 - Math.Pow(_beta1, Step), bias2 = 1 - Math.Pow(_beta2, Step);
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        foreach (var group in _groups)
            foreach (var (name, p) in group.Parameters)
            {
                var grad = p.grad;
                if (grad is null) continue;
                var (m, v) = _moments[name];
                double rate = learningRate * group.LearningRateScale, stepSize = rate / bias1;
                if (group.WeightDecay > 0) p.mul_(1 - rate * group.WeightDecay);
                m.mul_(_beta1).add_(grad, alpha: 1 - _beta1);
                v.mul_(_beta2).addcmul_(grad, grad, value: 1 - _beta2);
                var denom = v.div(bias2).sqrt_().add_(_eps);
                p.addcdiv_(m, denom, value: -stepSize);
            }
    }

    /// <summary>Moments as named tensors (exp_avg / exp_avg_sq), for saving.</summary>
    public Dictionary<string, Tensor> StateTensors()
    {
        var state = new Dictionary<string, Tensor>();
        foreach (var (name, (m, v)) in _moments)
        {
            state[name + ".exp_avg"] = m;
            state[name + ".exp_avg_sq"] = v;
        }
        return state;
    }

    public void LoadState(IReadOnlyDictionary<string, Tensor> state, long step, string source)
    {
        using var noGrad = no_grad();
        foreach (var (name, (m, v)) in _moments)
        {
            if (!state.TryGetValue(name + ".exp_avg", out var sm) || !state.TryGetValue(name + ".exp_avg_sq", out var sv))
                throw new UnmaskException($"{source}: optimizer state for parameter '{name}' is missing");
            m.copy_(sm);
            v.copy_(sv);
        }
        Step = step;
    }

    public void Dispose()
    {
        foreach (var (m, v) in _moments.Values)
        {
            m.Dispose();
            v.Dispose();
        }
    }
}
