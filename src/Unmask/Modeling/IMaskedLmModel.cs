using TorchSharp;
using static TorchSharp.torch;

namespace Unmask.Modeling;

/// <summary>The fields every Hugging Face config.json shares, whatever the model family.</summary>
public interface IHfConfig
{
    string ModelType { get; }
    IReadOnlyList<string>? Architectures { get; }
    int VocabSize { get; }
    int? PadTokenId { get; }

    /// <summary>Writes config.json with keys sorted, as HF's save_pretrained does.</summary>
    void Save(string path);
}

/// <summary>What a model's head predicts at each position.</summary>
public enum HeadKind
{
    /// <summary>Logits over the vocabulary: [batch, seq, vocab_size].</summary>
    MaskedLm,

    /// <summary>ELECTRA's discriminator: one logit per position that the token was replaced, [batch, seq].</summary>
    ReplacedToken,
}

/// <summary>
/// A Hugging Face encoder with its pretraining head (BERT, RoBERTa, DistilBERT, ELECTRA, ModernBERT), named and
/// computed as transformers does, so that fill-mask, logits, scoring and saving work on any of them.
/// </summary>
public interface IMaskedLmModel : IDisposable
{
    /// <summary>The HF class name, e.g. RobertaForMaskedLM.</summary>
    string Architecture { get; }

    IHfConfig HfConfig { get; }

    HeadKind Head { get; }

    /// <summary>The longest input the model takes (its position embeddings, less RoBERTa's padding offset).</summary>
    int MaxSequenceLength { get; }

    /// <summary>Whether token_type_ids reach the model (BERT, ELECTRA); the others ignore them.</summary>
    bool UsesTokenTypeIds { get; }

    /// <summary>The model as a module, for train()/eval(), parameters() and state_dict().</summary>
    nn.Module Module { get; }

    /// <param name="inputIds">[batch, seq] int64 token ids.</param>
    /// <param name="attentionMask">[batch, seq], 1 for real tokens and 0 for padding; null means all ones.</param>
    /// <param name="tokenTypeIds">[batch, seq] segment ids; null means all zeros; ignored where the model has none.</param>
    /// <param name="labels">[batch, seq] targets, -100 where no loss is wanted (token ids; for
    /// <see cref="HeadKind.ReplacedToken"/> 1 = replaced, 0 = original).</param>
    /// <param name="outputHiddenStates">Also return the embedding output and every layer's output.</param>
    /// <param name="sparsePrediction">Run the head only where labels are not -100; logits are then [n, ...] in
    /// row-major order of those positions. Requires labels.</param>
    MaskedLmOutput Forward(Tensor inputIds, Tensor? attentionMask = null, Tensor? tokenTypeIds = null,
        Tensor? labels = null, bool outputHiddenStates = false, bool sparsePrediction = false);

    /// <summary>The tensors to write to model.safetensors under HF's names, tied duplicates left out as HF does.
    /// The values are the live parameters: do not dispose or modify them.</summary>
    Dictionary<string, Tensor> StateDictForSave();

    /// <summary>Copies HF-named tensors into the parameters; a missing, unexpected or misshapen tensor is an
    /// <see cref="UnmaskException"/> naming it.</summary>
    void LoadHfStateDict(IReadOnlyDictionary<string, Tensor> source);

    /// <summary>As <see cref="LoadHfStateDict"/>, copying each tensor from the source straight into its parameter.</summary>
    void LoadHfWeights(Checkpoints.IHfTensorSource source);
}
