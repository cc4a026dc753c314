using System.Security.Cryptography;
using System.Text;

namespace Unmask.Data;

/// <summary>
/// Token stores live in the user's cache folder (XDG_CACHE_HOME or ~/.cache, under unmask/tokens), keyed by corpus
/// and tokenizer, so a second run on the same corpus with the same tokenizer skips tokenization.
/// </summary>
public static class TokenStoreCache
{
    public static string Directory(string corpusName, string tokenizerFingerprint)
    {
        var root = Environment.GetEnvironmentVariable("UNMASK_CACHE");
        if (string.IsNullOrEmpty(root))
        {
            var xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
            var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
            root = Path.Combine(string.IsNullOrEmpty(xdg) ? Path.Combine(home, ".cache") : xdg, "unmask");
        }
        var key = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(corpusName + "\n" + tokenizerFingerprint)))[..16].ToLowerInvariant();
        return Path.Combine(root, "tokens", key);
    }
}
