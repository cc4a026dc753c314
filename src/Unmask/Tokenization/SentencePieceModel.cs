using System.Buffers.Binary;
using System.Text;

namespace Unmask.Tokenization;

/// <summary>The type of a SentencePiece piece (sentencepiece_model.proto).</summary>
public enum SentencePieceType { Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 }

/// <summary>
/// A SentencePiece model file (sentencepiece.bpe.model, spm.model, spiece.model): the ModelProto protobuf, read
/// field by field: pieces with scores and types, the trainer's model type and byte fallback, the normaliser spec.
/// </summary>
public sealed class SentencePieceModel
{
    public required IReadOnlyList<(string Piece, float Score, SentencePieceType Type)> Pieces { get; init; }

    /// <summary>TrainerSpec.model_type: 1 unigram, 2 BPE, 3 word, 4 char.</summary>
    public int ModelType { get; init; } = 1;
    public bool ByteFallback { get; init; }
    public byte[]? PrecompiledCharsmap { get; init; }
    public bool AddDummyPrefix { get; init; } = true;
    public bool RemoveExtraWhitespaces { get; init; } = true;
    public bool EscapeWhitespaces { get; init; } = true;

    public static SentencePieceModel Read(string path)
    {
        if (!File.Exists(path)) throw new UnmaskException($"SentencePiece model '{path}' does not exist.");
        try
        {
            return Parse(File.ReadAllBytes(path));
        }
        catch (FormatException e)
        {
            throw new UnmaskException($"{path}: not a SentencePiece ModelProto ({e.Message}).", e);
        }
    }

    public static SentencePieceModel Parse(byte[] data)
    {
        var pieces = new List<(string, float, SentencePieceType)>();
        int modelType = 1;
        bool byteFallback = false;
        byte[]? charsmap = null;
        bool dummy = true, removeExtra = true, escape = true;
        var root = new ProtoReader(data);
        while (root.Next(out int field, out int wire))
        {
            switch (field)
            {
                case 1 when wire == 2:
                {
                    var p = new ProtoReader(root.Bytes());
                    string piece = "";
                    float score = 0;
                    var type = SentencePieceType.Normal;
                    while (p.Next(out int f, out int w))
                    {
                        if (f == 1 && w == 2) piece = Encoding.UTF8.GetString(p.Bytes());
                        else if (f == 2 && w == 5) score = p.Float();
                        else if (f == 3 && w == 0) type = (SentencePieceType)(int)p.Varint();
                        else p.Skip(w);
                    }
                    pieces.Add((piece, score, type));
                    break;
                }
                case 2 when wire == 2:
                {
                    var t = new ProtoReader(root.Bytes());
                    while (t.Next(out int f, out int w))
                    {
                        if (f == 3 && w == 0) modelType = (int)t.Varint();
                        else if (f == 35 && w == 0) byteFallback = t.Varint() != 0;
                        else t.Skip(w);
                    }
                    break;
                }
                case 3 when wire == 2:
                {
                    var n = new ProtoReader(root.Bytes());
                    while (n.Next(out int f, out int w))
                    {
                        if (f == 2 && w == 2) charsmap = n.Bytes();
                        else if (f == 3 && w == 0) dummy = n.Varint() != 0;
                        else if (f == 4 && w == 0) removeExtra = n.Varint() != 0;
                        else if (f == 5 && w == 0) escape = n.Varint() != 0;
                        else n.Skip(w);
                    }
                    break;
                }
                default:
                    root.Skip(wire);
                    break;
            }
        }
        if (pieces.Count == 0) throw new FormatException("it has no pieces");
        return new SentencePieceModel
        {
            Pieces = pieces, ModelType = modelType, ByteFallback = byteFallback,
            PrecompiledCharsmap = charsmap is { Length: > 0 } ? charsmap : null,
            AddDummyPrefix = dummy, RemoveExtraWhitespaces = removeExtra, EscapeWhitespaces = escape,
        };
    }

    /// <summary>A minimal protobuf wire-format reader (varint, 64-bit, length-delimited, 32-bit fields).</summary>
    sealed class ProtoReader(byte[] data)
    {
        int pos;

        public bool Next(out int field, out int wire)
        {
            field = wire = 0;
            if (pos >= data.Length) return false;
            ulong key = Varint();
            field = (int)(key >> 3);
            wire = (int)(key & 7);
            return true;
        }

        public ulong Varint()
        {
            ulong value = 0;
            for (int shift = 0; shift < 64; shift += 7)
            {
                if (pos >= data.Length) throw new FormatException("truncated varint");
                byte b = data[pos++];
                value |= (ulong)(b & 0x7F) << shift;
                if (b < 0x80) return value;
            }
            throw new FormatException("varint too long");
        }

        public byte[] Bytes()
        {
            ulong length = Varint();
            if (length > (ulong)(data.Length - pos)) throw new FormatException("a field runs past the end of the data");
            var result = data.AsSpan(pos, (int)length).ToArray();
            pos += (int)length;
            return result;
        }

        public float Float()
        {
            if (pos + 4 > data.Length) throw new FormatException("truncated float");
            float value = BinaryPrimitives.ReadSingleLittleEndian(data.AsSpan(pos));
            pos += 4;
            return value;
        }

        public void Skip(int wire)
        {
            switch (wire)
            {
                case 0: Varint(); break;
                case 1: pos += 8; break;
                case 2: Bytes(); break;
                case 5: pos += 4; break;
                default: throw new FormatException($"unsupported wire type {wire}");
            }
            if (pos > data.Length) throw new FormatException("a field runs past the end of the data");
        }
    }
}
