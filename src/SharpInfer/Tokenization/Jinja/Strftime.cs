using System.Globalization;
using System.Text;

namespace SharpInfer.Tokenization.Jinja;

/// <summary>C-locale <c>strftime</c> (what Python's <c>datetime.strftime</c> does on Linux), including the
/// glibc flags <c>-</c> (no padding), <c>_</c> (space padding) and <c>0</c>.</summary>
internal static class Strftime
{
    private static readonly string[] Days = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
    private static readonly string[] Months =
        ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];

    public static string Format(DateTimeOffset t, string fmt)
    {
        var sb = new StringBuilder();
        for (int i = 0; i < fmt.Length; i++)
        {
            char c = fmt[i];
            if (c != '%' || i + 1 >= fmt.Length) { sb.Append(c); continue; }
            char flag = '\0';
            int j = i + 1;
            if (fmt[j] is '-' or '_' or '0' or '^' && j + 1 < fmt.Length) flag = fmt[j++];
            char k = fmt[j];
            string? r = Field(t, k, flag);
            if (r is null) { sb.Append(fmt, i, j - i + 1); i = j; continue; }
            if (flag == '^') r = r.ToUpperInvariant();
            sb.Append(r);
            i = j;
        }
        return sb.ToString();
    }

    private static string Num(long v, int width, char flag, char defaultPad = '0')
    {
        string s = v.ToString(CultureInfo.InvariantCulture);
        if (flag == '-') return s;
        char pad = flag == '_' ? ' ' : flag == '0' ? '0' : defaultPad;
        return s.Length >= width ? s : new string(pad, width - s.Length) + s;
    }

    private static string? Field(DateTimeOffset t, char k, char flag)
    {
        int dow = (int)t.DayOfWeek;
        switch (k)
        {
            case 'a': return Days[dow].Substring(0, 3);
            case 'A': return Days[dow];
            case 'b': case 'h': return Months[t.Month - 1].Substring(0, 3);
            case 'B': return Months[t.Month - 1];
            case 'c': return Format(t, "%a %b %e %H:%M:%S %Y");
            case 'C': return Num(t.Year / 100, 2, flag);
            case 'd': return Num(t.Day, 2, flag);
            case 'D': return Format(t, "%m/%d/%y");
            case 'e': return Num(t.Day, 2, flag, ' ');
            case 'f': return Num(t.Ticks % TimeSpan.TicksPerSecond / 10, 6, flag);
            case 'F': return Format(t, "%Y-%m-%d");
            case 'G': return Num(ISOWeek.GetYear(t.DateTime), 4, flag);
            case 'g': return Num(ISOWeek.GetYear(t.DateTime) % 100, 2, flag);
            case 'H': return Num(t.Hour, 2, flag);
            case 'I': return Num(t.Hour % 12 == 0 ? 12 : t.Hour % 12, 2, flag);
            case 'j': return Num(t.DayOfYear, 3, flag);
            case 'k': return Num(t.Hour, 2, flag, ' ');
            case 'l': return Num(t.Hour % 12 == 0 ? 12 : t.Hour % 12, 2, flag, ' ');
            case 'm': return Num(t.Month, 2, flag);
            case 'M': return Num(t.Minute, 2, flag);
            case 'n': return "\n";
            case 'p': return t.Hour < 12 ? "AM" : "PM";
            case 'P': return t.Hour < 12 ? "am" : "pm";
            case 'r': return Format(t, "%I:%M:%S %p");
            case 'R': return Format(t, "%H:%M");
            case 's': return t.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);
            case 'S': return Num(t.Second, 2, flag);
            case 't': return "\t";
            case 'T': return Format(t, "%H:%M:%S");
            case 'u': return (dow == 0 ? 7 : dow).ToString(CultureInfo.InvariantCulture);
            case 'U': return Num((t.DayOfYear + 6 - dow) / 7, 2, flag);
            case 'V': return Num(ISOWeek.GetWeekOfYear(t.DateTime), 2, flag);
            case 'w': return dow.ToString(CultureInfo.InvariantCulture);
            case 'W': return Num((t.DayOfYear + 6 - (dow + 6) % 7) / 7, 2, flag);
            case 'x': return Format(t, "%m/%d/%y");
            case 'X': return Format(t, "%H:%M:%S");
            case 'y': return Num(t.Year % 100, 2, flag);
            case 'Y': return Num(t.Year, 1, flag);
            // Python's strftime_now uses datetime.now(), a naive datetime: %z and %Z are empty.
            case 'z': return "";
            case 'Z': return "";
            case '%': return "%";
            default: return null;
        }
    }
}
