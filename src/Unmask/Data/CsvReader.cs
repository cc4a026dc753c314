using System.Text;

namespace Unmask.Data;

/// <summary>
/// RFC 4180 CSV as Python's csv module reads it by default: comma-separated, fields in double quotes may hold commas,
/// line breaks and doubled quotes. Each record comes with the line it starts on.
/// </summary>
internal static class CsvReader
{
    /// <summary>Tab-separated records, one per line, no quoting (as GLUE ships its TSVs); blank lines are skipped.</summary>
    public static List<(int Line, string[] Fields)> ParseTsv(string text) =>
        [.. text.Split('\n').Select((l, i) => (Line: i + 1, Fields: l.TrimEnd('\r').Split('\t'))).Where(r => !(r.Fields.Length == 1 && r.Fields[0].Length == 0))];

    public static List<(int Line, string[] Fields)> Parse(string text, string source)
    {
        var records = new List<(int, string[])>();
        var fields = new List<string>();
        var field = new StringBuilder();
        int line = 1, recordLine = 1, i = 0;
        bool quoted = false, any = false;
        if (text.Length > 0 && text[0] == '\uFEFF') i = 1;

        void EndRecord()
        {
            fields.Add(field.ToString());
            field.Clear();
            records.Add((recordLine, fields.ToArray()));
            fields.Clear();
            any = false;
        }

        for (; i < text.Length; i++)
        {
            char c = text[i];
            if (quoted)
            {
                if (c == '"')
                {
                    if (i + 1 < text.Length && text[i + 1] == '"')
                    {
                        field.Append('"');
                        i++;
                    }
                    else quoted = false;
                }
                else
                {
                    if (c == '\n') line++;
                    field.Append(c);
                }
                continue;
            }
            switch (c)
            {
                case '"' when field.Length == 0:
                    quoted = any = true;
                    break;
                case ',':
                    fields.Add(field.ToString());
                    field.Clear();
                    any = true;
                    break;
                case '\r' when i + 1 < text.Length && text[i + 1] == '\n':
                    break;
                case '\n' or '\r':
                    if (any || field.Length > 0) EndRecord();
                    line++;
                    recordLine = line;
                    break;
                default:
                    field.Append(c);
                    any = true;
                    break;
            }
        }
        if (quoted) throw new UnmaskException($"{source}:{recordLine}: a quoted field is not closed before the end of the file");
        if (any || field.Length > 0) EndRecord();
        return records;
    }
}
