using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;
using Unmask.Modeling;

namespace Unmask.Distributed;

/// <summary>
/// The processes of one job. A process started by mpiexec (MPICH's Hydra sets PMI_SIZE) joins MPI_COMM_WORLD; any
/// other process is a world of one and never loads an MPI library. Collectives work in place on host tensors' memory;
/// tensors on a GPU go through host copies, so no CUDA-aware MPI is needed.
///
/// A thin P/Invoke of MPICH's C API rather than MPI.NET: the handful of calls needed (init, rank and size, allreduce in
/// place, broadcast, barrier, abort) are a page of code, they run on libtorch's memory directly, and MPICH's ABI
/// (libmpich.so.12; Intel MPI and MVAPICH share it) fixes the integer handles below, where MPI.NET expects MS-MPI's
/// library name and would need a resolver to be pointed at MPICH.
/// </summary>
public sealed class MpiWorld : IDisposable
{
    const int CommWorld = 0x44000000;
    const int Float = 0x4c00040a;
    const int Double = 0x4c00080b;
    const int Sum = 0x58000003;
    const int Max = 0x58000001;
    static readonly IntPtr InPlace = new(-1);

    /// <summary>Floats per allreduce call: int counts stay in range, and a bucket is a few tens of MB.</summary>
    const int BucketElements = 1 << 23;

    MpiWorld(int rank, int size, int localRank, int localSize, bool mpi)
    {
        Rank = rank;
        Size = size;
        LocalRank = localRank;
        LocalSize = localSize;
        IsMpi = mpi;
    }

    /// <summary>The world this process belongs to: one process unless <see cref="Initialize"/> joined an MPI job.</summary>
    public static MpiWorld Current { get; private set; } = new(0, 1, 0, 1, mpi: false);

    public int Rank { get; }
    public int Size { get; }

    /// <summary>This process's index among the ranks on its machine, and their number.</summary>
    public int LocalRank { get; }
    public int LocalSize { get; }

    public bool IsMpi { get; }
    public bool IsRoot => Rank == 0;

    /// <summary>Seconds spent in collectives since the start (allreduce and broadcast), for the step-time share.</summary>
    public double CommunicationSeconds { get; private set; }

    /// <summary>
    /// Joins the MPI job when launched by mpiexec with more than one process (and sets libtorch's threads to the cores
    /// divided among the ranks on this machine, unless <paramref name="threads"/> says otherwise); otherwise stays a
    /// world of one.
    /// </summary>
    public static MpiWorld Initialize(int? threads = null)
    {
        if (!int.TryParse(Environment.GetEnvironmentVariable("PMI_SIZE"), out int size) || size <= 1)
        {
            if (threads is int t) torch.set_num_threads(t);
            return Current;
        }
        NativeLibrary.SetDllImportResolver(typeof(MpiWorld).Assembly, (name, assembly, path) =>
            name == Native.Library ? NativeLibrary.Load("libmpich.so.12", assembly, path) : IntPtr.Zero);
        try
        {
            Check(Native.MPI_Init(IntPtr.Zero, IntPtr.Zero), "MPI_Init");
        }
        catch (DllNotFoundException e)
        {
            throw new UnmaskException($"launched by mpiexec (PMI_SIZE={size}) but MPICH's libmpich.so.12 cannot be loaded: {e.Message}; install it (Debian: apt-get install mpich)");
        }
        Check(Native.MPI_Comm_rank(CommWorld, out int rank), "MPI_Comm_rank");
        Check(Native.MPI_Comm_size(CommWorld, out int worldSize), "MPI_Comm_size");
        int localSize = int.TryParse(Environment.GetEnvironmentVariable("MPI_LOCALNRANKS"), out int ls) && ls > 0 ? ls : 1;
        int localRank = int.TryParse(Environment.GetEnvironmentVariable("MPI_LOCALRANKID"), out int lr) ? lr : 0;
        torch.set_num_threads(threads ?? Math.Max(1, Environment.ProcessorCount / localSize));
        Current = new MpiWorld(rank, worldSize, localRank, localSize, mpi: true);
        return Current;
    }

    /// <summary>Rows [start, end) of a batch of <paramref name="rows"/> that this rank takes.</summary>
    public (int Start, int End) Slice(int rows)
    {
        if (rows % Size != 0) throw new UnmaskException($"a batch of {rows} rows does not split evenly over {Size} ranks; make --batch-size a multiple of {Size}");
        int per = rows / Size;
        return (Rank * per, (Rank + 1) * per);
    }

    /// <summary>Sums the tensors over all ranks, in place, through a few large flat buckets. The buckets are host
    /// memory whatever the tensors' device, so any MPI library serves; a GPU's gradients cross the bus once each way.</summary>
    public void AllReduceSum(IReadOnlyList<Tensor> tensors)
    {
        if (Size == 1 || tensors.Count == 0) return;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        int start = 0;
        while (start < tensors.Count)
        {
            long elements = 0;
            int end = start;
            while (end < tensors.Count && (end == start || elements + tensors[end].numel() <= BucketElements)) elements += tensors[end++].numel();
            using (var scope = NewDisposeScope())
            {
                var flat = cat([.. tensors.Skip(start).Take(end - start).Select(t => t.detach().reshape(-1))]).to(ScalarType.Float32).cpu().contiguous(); // [elements]
                ReduceInPlace(flat);
                long offset = 0;
                for (int i = start; i < end; i++)
                {
                    long n = tensors[i].numel();
                    tensors[i].copy_(flat.narrow(0, offset, n).view_as(tensors[i]));
                    offset += n;
                }
            }
            start = end;
        }
        CommunicationSeconds += clock.Elapsed.TotalSeconds;
    }

    /// <summary>Elementwise sum over all ranks, in place.</summary>
    public void AllReduceSum(double[] values) => Reduce(values, Sum);

    /// <summary>Elementwise maximum over all ranks, in place.</summary>
    public void AllReduceMax(double[] values) => Reduce(values, Max);

    /// <summary>Elementwise sum over all ranks, in place.</summary>
    public void AllReduceSum(float[] values)
    {
        if (Size == 1 || values.Length == 0) return;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        unsafe
        {
            fixed (float* p = values)
                for (int offset = 0; offset < values.Length; offset += BucketElements)
                    Check(Native.MPI_Allreduce(InPlace, (IntPtr)(p + offset), Math.Min(BucketElements, values.Length - offset), Float, Sum, CommWorld), "MPI_Allreduce");
        }
        CommunicationSeconds += clock.Elapsed.TotalSeconds;
    }

    void Reduce(double[] values, int op)
    {
        if (Size == 1 || values.Length == 0) return;
        unsafe
        {
            fixed (double* p = values) Check(Native.MPI_Allreduce(InPlace, (IntPtr)p, values.Length, Double, op, CommWorld), "MPI_Allreduce");
        }
    }

    void ReduceInPlace(Tensor flat)
    {
        long count = flat.numel();
        IntPtr data = Pointer(flat);
        for (long offset = 0; offset < count; offset += BucketElements)
            Check(Native.MPI_Allreduce(InPlace, data + (nint)(offset * sizeof(float)), (int)Math.Min(BucketElements, count - offset), Float, Sum, CommWorld), "MPI_Allreduce");
    }

    /// <summary>Copies rank 0's values of the float32 tensors to every rank, through a host copy of each.</summary>
    public void Broadcast(IReadOnlyList<Tensor> tensors)
    {
        if (Size == 1) return;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        using (no_grad())
            foreach (var t in tensors)
            {
                if (t.dtype != ScalarType.Float32)
                    throw new InvalidOperationException($"broadcast needs float32 tensors, got {t.dtype}");
                using var scope = NewDisposeScope();
                var host = t.detach().to(ComputeDevice.Cpu, copy: true).contiguous(); // [t's shape]
                long count = host.numel();
                for (long offset = 0; offset < count; offset += BucketElements)
                    Check(Native.MPI_Bcast(Pointer(host) + (nint)(offset * sizeof(float)), (int)Math.Min(BucketElements, count - offset), Float, 0, CommWorld), "MPI_Bcast");
                t.copy_(host);
            }
        CommunicationSeconds += clock.Elapsed.TotalSeconds;
    }

    /// <summary>The address of a contiguous host tensor's elements: its span is over libtorch's own memory, which never moves.</summary>
    static unsafe IntPtr Pointer(Tensor t)
    {
        fixed (byte* p = t.bytes) return (IntPtr)p;
    }

    /// <summary>Rank 0's answer on every rank; only rank 0 calls <paramref name="decide"/>. Every rank must call this.</summary>
    public bool RootDecides(Func<bool> decide)
    {
        if (Size == 1) return decide();
        var answer = new[] { IsRoot && decide() ? 1.0 : 0.0 };
        AllReduceSum(answer);
        return answer[0] > 0;
    }

    public void Barrier()
    {
        if (Size > 1) Check(Native.MPI_Barrier(CommWorld), "MPI_Barrier");
    }

    /// <summary>Ends every rank of the job at once: a rank that fails must not leave the others waiting in a collective.</summary>
    public void Abort(int code)
    {
        if (IsMpi) Native.MPI_Abort(CommWorld, code);
    }

    public void Dispose()
    {
        if (IsMpi) Native.MPI_Finalize();
    }

    static void Check(int code, string call)
    {
        if (code != 0) throw new InvalidOperationException($"{call} failed with MPI error {code}");
    }

    static class Native
    {
        public const string Library = "mpich";

        [DllImport(Library)] public static extern int MPI_Init(IntPtr argc, IntPtr argv);
        [DllImport(Library)] public static extern int MPI_Comm_rank(int comm, out int rank);
        [DllImport(Library)] public static extern int MPI_Comm_size(int comm, out int size);
        [DllImport(Library)] public static extern int MPI_Allreduce(IntPtr send, IntPtr receive, int count, int datatype, int op, int comm);
        [DllImport(Library)] public static extern int MPI_Bcast(IntPtr buffer, int count, int datatype, int root, int comm);
        [DllImport(Library)] public static extern int MPI_Barrier(int comm);
        [DllImport(Library)] public static extern int MPI_Abort(int comm, int code);
        [DllImport(Library)] public static extern int MPI_Finalize();
    }
}
