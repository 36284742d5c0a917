using System.Text;
using System.Text.RegularExpressions;

namespace SharpInfer.Engine.Tools;

/// <summary>Puts generated GBNF grammars side by side in one grammar: every rule of a grammar gets a prefix, so the
/// rules of several JSON-schema grammars (which reuse names like <c>kv-0</c>) do not collide.</summary>
internal static partial class GbnfRules
{
    [GeneratedRegex(@"^[ \t]*([A-Za-z0-9_-]+)[ \t]*::=", RegexOptions.Multiline)]
    private static partial Regex RuleHead();

    /// <summary>The rules of <paramref name="gbnf"/> (each rule starting a line, as the converters and llama.cpp's
    /// grammars write them) with every rule name prefixed; its <c>root</c> becomes <c>{prefix}root</c>.</summary>
    public static string Prefix(string gbnf, string prefix)
    {
        var names = RuleHead().Matches(gbnf).Select(m => m.Groups[1].Value).ToHashSet(StringComparer.Ordinal);
        var sb = new StringBuilder(gbnf.Length + names.Count * 8);
        int i = 0;
        while (i < gbnf.Length)
        {
            char c = gbnf[i];
            if (c is '"' or '[')
            {
                // a literal or a character class: copied as it is (escapes included)
                char close = c == '"' ? '"' : ']';
                int j = i + 1;
                while (j < gbnf.Length && gbnf[j] != close) j += gbnf[j] == '\\' ? 2 : 1;
                j = Math.Min(j + 1, gbnf.Length);
                sb.Append(gbnf, i, j - i);
                i = j;
            }
            else if (char.IsAsciiLetterOrDigit(c) || c is '_' or '-')
            {
                int j = i;
                while (j < gbnf.Length && (char.IsAsciiLetterOrDigit(gbnf[j]) || gbnf[j] is '_' or '-')) j++;
                string word = gbnf[i..j];
                if (names.Contains(word)) sb.Append(prefix);
                sb.Append(word);
                i = j;
            }
            else if (c == '#')
            {
                while (i < gbnf.Length && gbnf[i] != '\n') sb.Append(gbnf[i++]);
            }
            else sb.Append(gbnf[i++]);
        }
        return sb.ToString();
    }

    /// <summary>A GBNF string literal for <paramref name="text"/>.</summary>
    public static string Literal(string text)
    {
        var sb = new StringBuilder("\"");
        foreach (char c in text)
            sb.Append(c switch
            {
                '"' => "\\\"",
                '\\' => "\\\\",
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                < ' ' => $"\\x{(int)c:X2}",
                _ => c.ToString(),
            });
        return sb.Append('"').ToString();
    }
}
