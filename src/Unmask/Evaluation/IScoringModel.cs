using Unmask.Inference;
using Unmask.Modeling;
using Unmask.Tokenization;

namespace Unmask.Evaluation;

/// <summary>
/// What scoring needs from a masked language model: logits at chosen positions of a right-padded batch. Every family
/// gives it through <see cref="PretrainedModel.Forward"/> with head positions, so the scorers stay family-free.
/// </summary>
public interface IScoringModel
{
    /// <summary>Longest input, special tokens included, that the model accepts without truncation.</summary>
    int MaxSequenceLength { get; }

    /// <summary>Rows of the output projection (may exceed the tokenizer's vocabulary).</summary>
    int VocabSize { get; }

    /// <summary>Where the inputs of <see cref="LogitsAt"/> must be.</summary>
    Device Device { get; }

    /// <param name="inputIds">[batch, seq] int64.</param>
    /// <param name="attentionMask">[batch, seq] int64, 1 for real tokens, 0 for right padding.</param>
    /// <param name="tokenTypeIds">[batch, seq] int64 segment ids.</param>
    /// <param name="selected">[batch, seq] bool: where logits are wanted.</param>
    /// <returns>[n, vocab] float32 logits of the selected positions in row-major order; the head runs only there.</returns>
    Tensor LogitsAt(Tensor inputIds, Tensor attentionMask, Tensor tokenTypeIds, Tensor selected);
}

/// <summary>A tokenizer and a scoring model that belong together.</summary>
public sealed record ScoringContext(ITokenizer Tokenizer, IScoringModel Model)
{
    public static ScoringContext From(MaskedLanguageModel mlm) => new(mlm.Tokenizer, new MaskedLmScoringModel(mlm.Model));
}

/// <summary>Any family's masked-LM head, run only at the selected positions.</summary>
public sealed class MaskedLmScoringModel : IScoringModel
{
    readonly PretrainedModel model;

    public MaskedLmScoringModel(PretrainedModel model)
    {
        if (model.Head != HeadKind.MaskedLm)
            throw new UnmaskException($"{model.Architecture} has no masked-language-model head (it predicts replaced tokens), so it cannot score text");
        this.model = model;
    }

    public int MaxSequenceLength => model.MaxSequenceLength;

    public int VocabSize => model.HfConfig.VocabSize;

    public Device Device => model.Device;

    public Tensor LogitsAt(Tensor inputIds, Tensor attentionMask, Tensor tokenTypeIds, Tensor selected)
    {
        using var scope = NewDisposeScope();
        // Not disposed here: the scope frees the hidden state, and the logits leave it.
        var output = model.Forward(inputIds, attentionMask, tokenTypeIds, positions: selected);
        return output.Logits.MoveToOuterDisposeScope(); // [n, vocab]
    }
}
