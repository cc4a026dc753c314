namespace Unmask.Data;

/// <summary>
/// Views a token store as fixed-length training sequences: the documents are concatenated in order, each followed
/// by [SEP], and the stream is cut into pieces of <c>length - 2</c> tokens, each wrapped as [CLS] piece [SEP]
/// (Hugging Face's run_mlm "group_texts" with BERT's specials). No padding: a final piece too short to fill a
/// sequence is dropped. Sequences are addressed by index and copied out on demand.
/// </summary>
public sealed class SequencePacker
{
    readonly TokenStore _store;
    readonly int _clsId, _sepId;
    readonly long[] _streamStarts; // stream position of each document's first token; documents are followed by [SEP]

    public int Length { get; }
    public long Count { get; }

    public SequencePacker(TokenStore store, int length, int clsId, int sepId)
    {
        if (length < 3) throw new ArgumentOutOfRangeException(nameof(length), "a sequence needs room for [CLS], a token and [SEP]");
        (_store, Length, _clsId, _sepId) = (store, length, clsId, sepId);
        _streamStarts = new long[store.Documents + 1];
        for (long d = 0; d <= store.Documents; d++) _streamStarts[d] = store.DocumentStart(d) + d;
        Count = _streamStarts[^1] / (length - 2);
    }

    public void CopySequence(long index, Span<long> destination)
    {
        if (index < 0 || index >= Count) throw new ArgumentOutOfRangeException(nameof(index));
        if (destination.Length != Length) throw new ArgumentException($"destination must hold {Length} ids", nameof(destination));
        int inner = Length - 2;
        long position = index * inner;
        destination[0] = _clsId;
        destination[^1] = _sepId;
        int doc = Array.BinarySearch(_streamStarts, position);
        if (doc < 0) doc = ~doc - 1;
        int written = 0;
        while (written < inner)
        {
            long offset = position + written - _streamStarts[doc];
            var tokens = _store.Document(doc);
            if (offset < tokens.Length)
            {
                int take = (int)Math.Min(tokens.Length - offset, inner - written);
                for (int i = 0; i < take; i++) destination[1 + written + i] = tokens[(int)offset + i];
                written += take;
            }
            else
            {
                destination[1 + written++] = _sepId;
                doc++;
            }
        }
    }
}
