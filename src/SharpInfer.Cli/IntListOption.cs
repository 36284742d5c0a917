using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;

namespace SharpInfer.Cli;

/// <summary>An integer-list option that takes llama-bench's comma-separated form (<c>-p 128,512</c>) as well as
/// repeated or space-separated values (<c>-p 128 -p 512</c>, <c>-p 128 512</c>).</summary>
internal static class IntListOption
{
    public static Option<int[]> Create(string name, string alias, string description, int[] defaults) =>
        new(name, alias)
        {
            Description = description,
            DefaultValueFactory = _ => defaults,
            AllowMultipleArgumentsPerToken = true,
            CustomParser = Parse,
        };

    private static int[] Parse(ArgumentResult result)
    {
        var values = new List<int>();
        foreach (var token in result.Tokens)
            foreach (var part in token.Value.Split(','))
            {
                if (!int.TryParse(part.Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int v))
                {
                    result.AddError($"Cannot parse '{part}' in '{token.Value}' as an integer (use a list such as 128,512)");
                    return [];
                }
                values.Add(v);
            }
        return [.. values];
    }
}
