using TorchSharp;

namespace Unmask.Tests;

public class TorchLoadsTests
{
    [Fact]
    public void MatrixProductRunsThroughLibTorch()
    {
        using var scope = torch.NewDisposeScope();
        var a = torch.tensor(new float[] { 1, 2, 3, 4 }, new long[] { 2, 2 });
        var p = a.matmul(a); // [[7, 10], [15, 22]]
        Assert.Equal(new float[] { 7, 10, 15, 22 }, p.data<float>().ToArray());
    }
}
