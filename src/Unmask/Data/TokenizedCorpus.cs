using Unmask.Tokenization;

namespace Unmask.Data;

/// <summary>The two parts a corpus is split into, named as their token stores' folders are.</summary>
public enum DataSplit { Train, Validation }

/// <summary>
/// A corpus's splits as token stores (cached by corpus content and tokenizer) packed into sequences. Pretraining and
/// masked-token evaluation both open corpora through here, so a split evaluated is exactly the sequences trained on.
/// </summary>
public sealed class TokenizedCorpus : IDisposable
{
    readonly ITokenizer tokenizer;
    readonly Dictionary<DataSplit, TokenStore> stores;

    TokenizedCorpus(Corpus corpus, ITokenizer tokenizer, string cacheDirectory, Dictionary<DataSplit, TokenStore> stores)
    {
        Corpus = corpus;
        this.tokenizer = tokenizer;
        CacheDirectory = cacheDirectory;
        this.stores = stores;
    }

    public Corpus Corpus { get; }

    /// <summary>The folder of the token stores, where anything else derived from this corpus and tokenizer belongs.</summary>
    public string CacheDirectory { get; }

    /// <summary>Tokenizes the splits asked for, or reads them from the cache when done before.</summary>
    public static TokenizedCorpus Open(Corpus corpus, ITokenizer tokenizer, IEnumerable<DataSplit> splits, CancellationToken ct = default)
    {
        var cache = TokenStoreCache.Directory(corpus.Name + "/" + corpus.ContentHash, tokenizer.Fingerprint);
        var stores = new Dictionary<DataSplit, TokenStore>();
        try
        {
            foreach (var split in splits.Distinct())
            {
                var name = FolderName(split);
                var lines = split == DataSplit.Train ? corpus.Train : corpus.Validation;
                stores.Add(split, TokenStore.OpenOrBuild(Path.Combine(cache, name), lines, t => tokenizer.Encode(t, addSpecialTokens: false).InputIds,
                    new TokenStoreInfo(tokenizer.Fingerprint, corpus.Name + "/" + name, tokenizer.VocabSize), null, ct));
            }
        }
        catch
        {
            foreach (var store in stores.Values) store.Dispose();
            throw;
        }
        return new TokenizedCorpus(corpus, tokenizer, cache, stores);
    }

    public static string FolderName(DataSplit split) => split == DataSplit.Train ? "train" : "validation";

    public TokenStore Store(DataSplit split) =>
        stores.TryGetValue(split, out var store) ? store : throw new InvalidOperationException($"the {FolderName(split)} split was not opened");

    /// <summary>The split as [CLS] … [SEP] sequences of <paramref name="length"/> tokens, as pretraining batches them.</summary>
    public SequencePacker Pack(DataSplit split, int length) => new(Store(split), length, tokenizer.ClsId, tokenizer.SepId);

    public void Dispose()
    {
        foreach (var store in stores.Values) store.Dispose();
    }
}
