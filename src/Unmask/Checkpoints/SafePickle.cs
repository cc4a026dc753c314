using System.Buffers.Binary;
using System.Text;

namespace Unmask.Checkpoints;

/// <summary>A class or function a pickle names (module and qualified name).</summary>
public sealed record PickleGlobal(string Module, string Name)
{
    public override string ToString() => $"{Module}.{Name}";
}

/// <summary>A dict (or OrderedDict) in the order its items were pickled.</summary>
public sealed class PickleDict
{
    public List<KeyValuePair<object?, object?>> Items { get; } = [];
}

/// <summary>The result of calling an allowed global: the global and its arguments, for the caller to interpret.</summary>
public sealed record PickleCall(PickleGlobal Callable, object?[] Arguments);

/// <summary>
/// A pickle interpreter that never runs code: it builds plain values (None, bool, int, float, str, bytes, tuple as
/// object?[], list, <see cref="PickleDict"/>) and refuses every global outside an allow-list, naming it. Calling an
/// allowed global (REDUCE) yields a <see cref="PickleCall"/>, or whatever <c>reduce</c> makes of it; persistent ids
/// go to <c>persistentLoad</c>. Covers the opcodes of protocols 0-5 that torch.save's pickles use.
/// </summary>
public sealed class SafePickle
{
    readonly byte[] data;
    readonly string source;
    readonly IReadOnlySet<string> allowedGlobals;
    readonly Func<object?, object?> persistentLoad;
    readonly Func<PickleCall, object?> reduce;
    readonly List<object?> stack = [];
    readonly List<int> marks = [];
    readonly Dictionary<long, object?> memo = [];
    int position;

    static readonly object NoValue = new();

    /// <param name="source">Named in errors (the file and entry).</param>
    /// <param name="allowedGlobals">"module.name" of each global the pickle may name.</param>
    public SafePickle(byte[] data, string source, IReadOnlySet<string> allowedGlobals,
        Func<object?, object?> persistentLoad, Func<PickleCall, object?> reduce)
    {
        this.data = data;
        this.source = source;
        this.allowedGlobals = allowedGlobals;
        this.persistentLoad = persistentLoad;
        this.reduce = reduce;
    }

    public object? Load()
    {
        while (true)
        {
            if (position >= data.Length) throw Bad("the pickle ends without a STOP opcode");
            var at = position;
            var op = data[position++];
            switch (op)
            {
                case 0x80: ReadBytes(1); break; // PROTO
                case 0x95: ReadBytes(8); break; // FRAME: framing is only a read-ahead hint
                case (byte)'.': // STOP
                    if (stack.Count != 1) throw Bad($"STOP with {stack.Count} values on the stack");
                    return stack[0];

                case (byte)'N': Push(null); break;
                case 0x88: Push(true); break;
                case 0x89: Push(false); break;
                case (byte)'K': Push((long)ReadBytes(1)[0]); break; // BININT1
                case (byte)'M': Push((long)BinaryPrimitives.ReadUInt16LittleEndian(ReadBytes(2))); break; // BININT2
                case (byte)'J': Push((long)BinaryPrimitives.ReadInt32LittleEndian(ReadBytes(4))); break; // BININT
                case 0x8a: Push(ReadLong(ReadBytes(1)[0], at)); break; // LONG1
                case 0x8b: Push(ReadLong(checked((int)BinaryPrimitives.ReadUInt32LittleEndian(ReadBytes(4))), at)); break; // LONG4
                case (byte)'G': Push(BinaryPrimitives.ReadDoubleBigEndian(ReadBytes(8))); break; // BINFLOAT

                case (byte)'X': Push(Utf8(ReadBytes(Length32()))); break; // BINUNICODE
                case 0x8c: Push(Utf8(ReadBytes(ReadBytes(1)[0]))); break; // SHORT_BINUNICODE
                case 0x8d: Push(Utf8(ReadBytes(Length64()))); break; // BINUNICODE8
                case (byte)'T': Push(Encoding.Latin1.GetString(ReadBytes(Length32()))); break; // BINSTRING
                case (byte)'U': Push(Encoding.Latin1.GetString(ReadBytes(ReadBytes(1)[0]))); break; // SHORT_BINSTRING
                case (byte)'B': Push(ReadBytes(Length32()).ToArray()); break; // BINBYTES
                case (byte)'C': Push(ReadBytes(ReadBytes(1)[0]).ToArray()); break; // SHORT_BINBYTES
                case 0x8e: Push(ReadBytes(Length64()).ToArray()); break; // BINBYTES8

                case (byte)'(': marks.Add(stack.Count); break; // MARK
                case (byte)')': Push(Array.Empty<object?>()); break; // EMPTY_TUPLE
                case (byte)'t': Push(PopToMark().ToArray()); break; // TUPLE
                case 0x85: Push(PopN(1)); break; // TUPLE1
                case 0x86: Push(PopN(2)); break; // TUPLE2
                case 0x87: Push(PopN(3)); break; // TUPLE3
                case (byte)']': Push(new List<object?>()); break; // EMPTY_LIST
                case (byte)'l': Push(PopToMark()); break; // LIST
                case (byte)'}': Push(new PickleDict()); break; // EMPTY_DICT
                case (byte)'d': // DICT
                {
                    var dict = new PickleDict();
                    AddPairs(dict, PopToMark());
                    Push(dict);
                    break;
                }
                case (byte)'a': // APPEND
                {
                    var value = Pop();
                    Top<List<object?>>("APPEND").Add(value);
                    break;
                }
                case (byte)'e': // APPENDS
                {
                    var values = PopToMark();
                    Top<List<object?>>("APPENDS").AddRange(values);
                    break;
                }
                case (byte)'s': // SETITEM
                {
                    var value = Pop();
                    var key = Pop();
                    Top<PickleDict>("SETITEM").Items.Add(new(key, value));
                    break;
                }
                case (byte)'u': // SETITEMS
                {
                    var pairs = PopToMark();
                    AddPairs(Top<PickleDict>("SETITEMS"), pairs);
                    break;
                }
                case (byte)'0': Pop(); break; // POP
                case (byte)'1': PopToMark(); break; // POP_MARK
                case (byte)'2': Push(Peek()); break; // DUP

                case (byte)'q': memo[ReadBytes(1)[0]] = Peek(); break; // BINPUT
                case (byte)'r': memo[BinaryPrimitives.ReadUInt32LittleEndian(ReadBytes(4))] = Peek(); break; // LONG_BINPUT
                case 0x94: memo[memo.Count] = Peek(); break; // MEMOIZE
                case (byte)'h': Push(Memo(ReadBytes(1)[0])); break; // BINGET
                case (byte)'j': Push(Memo(BinaryPrimitives.ReadUInt32LittleEndian(ReadBytes(4)))); break; // LONG_BINGET

                case (byte)'c': // GLOBAL
                {
                    var module = ReadLine();
                    Push(Global(module, ReadLine()));
                    break;
                }
                case 0x93: // STACK_GLOBAL
                {
                    var name = Pop() as string ?? throw Bad("STACK_GLOBAL needs string module and name");
                    var module = Pop() as string ?? throw Bad("STACK_GLOBAL needs string module and name");
                    Push(Global(module, name));
                    break;
                }
                case (byte)'R': // REDUCE
                {
                    var arguments = Pop() as object?[] ?? throw Bad("REDUCE needs an argument tuple");
                    var callable = Pop() as PickleGlobal ?? throw Bad("REDUCE needs a global to call");
                    Push(reduce(new PickleCall(callable, arguments)));
                    break;
                }
                case (byte)'Q': Push(persistentLoad(Pop())); break; // BINPERSID
                case (byte)'b': // BUILD
                {
                    var state = Pop();
                    // Only OrderedDict carries state in a state_dict pickle: its _metadata attribute, not needed here.
                    if (Peek() is not PickleDict || state is not (PickleDict or null))
                        throw Bad($"BUILD on a {Describe(Peek())} is not supported");
                    break;
                }
                default:
                    throw Bad($"unsupported pickle opcode 0x{op:x2} at offset {at}");
            }
        }
    }

    PickleGlobal Global(string module, string name)
    {
        var global = new PickleGlobal(module, name);
        if (!allowedGlobals.Contains(global.ToString()))
            throw new UnmaskException($"{source}: the pickle refers to '{global}', which is not allowed in a weights file (nothing is executed; allowed: {string.Join(", ", allowedGlobals.Order(StringComparer.Ordinal))}).");
        return global;
    }

    void AddPairs(PickleDict dict, List<object?> flat)
    {
        if (flat.Count % 2 != 0) throw Bad("odd number of items for a dict");
        for (var i = 0; i < flat.Count; i += 2) dict.Items.Add(new(flat[i], flat[i + 1]));
    }

    ReadOnlySpan<byte> ReadBytes(long count)
    {
        if (count < 0 || count > data.Length - position) throw Bad("the pickle is truncated");
        var span = data.AsSpan(position, (int)count);
        position += (int)count;
        return span;
    }

    int Length32() => checked((int)BinaryPrimitives.ReadUInt32LittleEndian(ReadBytes(4)));
    long Length64() => checked((long)BinaryPrimitives.ReadUInt64LittleEndian(ReadBytes(8)));

    long ReadLong(int size, int at)
    {
        if (size > 8) throw Bad($"integer of {size} bytes at offset {at} is too large");
        Span<byte> buffer = stackalloc byte[8];
        var bytes = ReadBytes(size);
        var negative = size > 0 && (bytes[^1] & 0x80) != 0;
        buffer.Fill(negative ? (byte)0xff : (byte)0);
        bytes.CopyTo(buffer);
        return BinaryPrimitives.ReadInt64LittleEndian(buffer);
    }

    string ReadLine()
    {
        var end = Array.IndexOf(data, (byte)'\n', position);
        if (end < 0) throw Bad("the pickle is truncated inside a GLOBAL");
        var line = Encoding.UTF8.GetString(data, position, end - position);
        position = end + 1;
        return line;
    }

    string Utf8(ReadOnlySpan<byte> bytes)
    {
        try
        {
            return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            throw Bad("a string is not valid UTF-8");
        }
    }

    object? Memo(long index) => memo.TryGetValue(index, out var value) ? value : throw Bad($"memo entry {index} was never stored");

    void Push(object? value) => stack.Add(value);

    object? Peek() => stack.Count > CurrentMarkBase() ? stack[^1] : throw Bad("stack underflow");

    object? Pop()
    {
        var value = Peek();
        stack.RemoveAt(stack.Count - 1);
        return value;
    }

    object?[] PopN(int count)
    {
        if (stack.Count - CurrentMarkBase() < count) throw Bad("stack underflow");
        var values = stack.GetRange(stack.Count - count, count).ToArray();
        stack.RemoveRange(stack.Count - count, count);
        return values;
    }

    List<object?> PopToMark()
    {
        if (marks.Count == 0) throw Bad("no MARK to pop to");
        var mark = marks[^1];
        marks.RemoveAt(marks.Count - 1);
        var values = stack.GetRange(mark, stack.Count - mark);
        stack.RemoveRange(mark, stack.Count - mark);
        return values;
    }

    int CurrentMarkBase() => marks.Count == 0 ? 0 : marks[^1];

    T Top<T>(string opcode) where T : class =>
        Peek() as T ?? throw Bad($"{opcode} applies to a {typeof(T).Name}, found a {Describe(Peek())}");

    static string Describe(object? value) => value switch
    {
        null => "None",
        PickleCall call => call.Callable.ToString(),
        _ => value.GetType().Name,
    };

    UnmaskException Bad(string problem) => new($"{source}: malformed or unsupported pickle: {problem}.");
}
