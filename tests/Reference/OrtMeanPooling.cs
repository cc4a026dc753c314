using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Unmask.Reference;

/// <summary>
/// ONNX Runtime as the reference sentence encoder: a BERT graph exported with inputs input_ids, attention_mask and
/// token_type_ids and output last_hidden_state, run on one right-padded batch and mean-pooled over the real tokens in
/// C#. The import tests compare Unmask with it and the embed bench times it; both compile this one file.
/// </summary>
public static class OrtMeanPooling
{
    /// <param name="rows">Token ids per sentence, special tokens included; one segment each.</param>
    /// <returns>One vector per row, in order; unit length when <paramref name="normalize"/>.</returns>
    public static float[][] Embed(InferenceSession session, IReadOnlyList<int[]> rows, bool normalize)
    {
        int seq = rows.Max(r => r.Length);
        var ids = new long[rows.Count * seq];
        var mask = new long[ids.Length];
        for (int b = 0; b < rows.Count; b++)
            for (int t = 0; t < rows[b].Length; t++)
            {
                ids[b * seq + t] = rows[b][t];
                mask[b * seq + t] = 1;
            }
        int[] shape = [rows.Count, seq];
        using var outputs = session.Run(
        [
            NamedOnnxValue.CreateFromTensor("input_ids", new DenseTensor<long>(ids, shape)),
            NamedOnnxValue.CreateFromTensor("attention_mask", new DenseTensor<long>(mask, shape)),
            NamedOnnxValue.CreateFromTensor("token_type_ids", new DenseTensor<long>(new long[ids.Length], shape)),
        ], ["last_hidden_state"]);
        var hidden = outputs.Single().AsTensor<float>().ToArray(); // [batch, seq, width] flattened
        int width = hidden.Length / ids.Length;
        var result = new float[rows.Count][];
        for (int b = 0; b < rows.Count; b++)
        {
            var sum = new double[width];
            for (int t = 0; t < rows[b].Length; t++)
                for (int d = 0; d < width; d++) sum[d] += hidden[(b * seq + t) * width + d];
            double scale = normalize ? Math.Sqrt(sum.Sum(v => v * v)) : rows[b].Length;
            result[b] = [.. sum.Select(v => (float)(v / scale))];
        }
        return result;
    }
}
