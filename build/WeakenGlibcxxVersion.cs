using System;
using System.IO;
using System.Text;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

// TorchSharp-cpu's libLibTorchSharp.so names GLIBCXX_3.4.32 (for the link-time marker std::ios_base_library_init,
// which no relocation uses). Debian 12's libstdc++ stops at 3.4.30, so the dynamic loader refuses the library.
// Flagging that one Vernaux entry VER_FLG_WEAK turns the hard requirement into a warning-free soft one.
// Compiled by RoslynCodeTaskFactory against netstandard2.0, hence the plain APIs.
// The file is rewritten through a temp file and a rename so a hard link into the NuGet cache is never written through.
public class WeakenGlibcxxVersion : Task
{
    const string Version = "GLIBCXX_3.4.32";
    const uint ShtGnuVerneed = 0x6ffffffe;
    const ushort VerFlgWeak = 0x2;

    [Required] public ITaskItem[] Files { get; set; } = Array.Empty<ITaskItem>();

    public override bool Execute()
    {
        if (SystemLibstdcxxHas(Version)) return true;
        foreach (var item in Files)
        {
            var path = item.ItemSpec;
            if (!File.Exists(path)) continue;
            try
            {
                var bytes = File.ReadAllBytes(path);
                var result = Patch(bytes);
                if (result == PatchResult.Patched)
                {
                    var temp = path + ".weaken.tmp";
                    File.WriteAllBytes(temp, bytes);
                    File.Delete(path);
                    File.Move(temp, path);
                    Log.LogMessage(MessageImportance.Normal, $"Marked {Version} weak in {path}");
                }
            }
            catch (Exception e)
            {
                Log.LogError($"{path}: cannot weaken {Version}: {e.Message}");
                return false;
            }
        }
        return !Log.HasLoggedErrors;
    }

    enum PatchResult { Patched, AlreadyWeak, NotNeeded }

    static bool SystemLibstdcxxHas(string version)
    {
        string[] candidates =
        {
            "/usr/lib/x86_64-linux-gnu/libstdc++.so.6", "/usr/lib64/libstdc++.so.6", "/lib/x86_64-linux-gnu/libstdc++.so.6",
            "/usr/lib/aarch64-linux-gnu/libstdc++.so.6", "/usr/lib/libstdc++.so.6",
        };
        var needle = Encoding.ASCII.GetBytes(version + "\0");
        foreach (var c in candidates)
        {
            if (!File.Exists(c)) continue;
            var data = File.ReadAllBytes(c);
            return IndexOf(data, needle) >= 0;
        }
        // No libstdc++ where we look (not Linux, or an unusual layout): leave the library as shipped.
        return true;
    }

    static PatchResult Patch(byte[] b)
    {
        if (b.Length < 64 || b[0] != 0x7f || b[1] != (byte)'E' || b[2] != (byte)'L' || b[3] != (byte)'F')
            throw new InvalidDataException("not an ELF file");
        if (b[4] != 2 || b[5] != 1) throw new InvalidDataException("only 64-bit little-endian ELF is supported");
        ulong shoff = BitConverter.ToUInt64(b, 0x28);
        int shentsize = BitConverter.ToUInt16(b, 0x3A);
        int shnum = BitConverter.ToUInt16(b, 0x3C);
        var result = PatchResult.NotNeeded;
        for (int i = 0; i < shnum; i++)
        {
            int sh = checked((int)shoff + i * shentsize);
            uint type = BitConverter.ToUInt32(b, sh + 4);
            if (type != ShtGnuVerneed) continue;
            long offset = (long)BitConverter.ToUInt64(b, sh + 0x18);
            uint link = BitConverter.ToUInt32(b, sh + 0x28);
            uint count = BitConverter.ToUInt32(b, sh + 0x2C); // sh_info: number of Verneed entries
            int strSh = checked((int)shoff + (int)link * shentsize);
            long strOffset = (long)BitConverter.ToUInt64(b, strSh + 0x18);
            long need = offset;
            for (uint n = 0; n < count; n++)
            {
                int cnt = BitConverter.ToUInt16(b, (int)need + 2);
                long aux = need + BitConverter.ToUInt32(b, (int)need + 8);
                for (int a = 0; a < cnt; a++)
                {
                    ushort flags = BitConverter.ToUInt16(b, (int)aux + 4);
                    uint nameOff = BitConverter.ToUInt32(b, (int)aux + 8);
                    if (ReadCString(b, strOffset + nameOff) == Version)
                    {
                        if ((flags & VerFlgWeak) != 0) result = PatchResult.AlreadyWeak;
                        else
                        {
                            BitConverter.GetBytes((ushort)(flags | VerFlgWeak)).CopyTo(b, (int)aux + 4);
                            return PatchResult.Patched;
                        }
                    }
                    aux += BitConverter.ToUInt32(b, (int)aux + 12);
                }
                uint next = BitConverter.ToUInt32(b, (int)need + 12);
                if (next == 0) break;
                need += next;
            }
        }
        return result;
    }

    static int IndexOf(byte[] hay, byte[] needle)
    {
        for (int i = 0; i + needle.Length <= hay.Length; i++)
        {
            int j = 0;
            while (j < needle.Length && hay[i + j] == needle[j]) j++;
            if (j == needle.Length) return i;
        }
        return -1;
    }

    static string ReadCString(byte[] b, long at)
    {
        int end = (int)at;
        while (b[end] != 0) end++;
        return Encoding.ASCII.GetString(b, (int)at, end - (int)at);
    }
}
