using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using SharpInfer.Sampling.Grammar;

namespace SharpInfer.Engine.Tools;

/// <summary>
/// The GBNF grammar for <c>tool_choice</c> <c>required</c> or a named function: the reply is one call (or, with
/// parallel calls, one or more) in the template's format, each call's arguments constrained by its function's
/// parameter schema (<see cref="JsonSchemaToGbnf"/>). So the reply always parses into well-formed calls.
/// </summary>
internal static class ToolCallGrammar
{
    /// <summary>The grammar; <see cref="InvalidRequestException"/> (field <c>tools[i].function.parameters</c>) for a
    /// parameter schema the converter does not support.</summary>
    public static string Build(ToolCallFormat format, ToolSet tools)
    {
        var rules = new StringBuilder();
        var calls = new List<string>();
        int i = 0;
        foreach (var f in tools.Callable)
        {
            string args;
            try
            {
                args = JsonSchemaToGbnf.Convert(f.Parameters);
            }
            catch (InvalidRequestException e)
            {
                int index = tools.Functions.ToList().IndexOf(f);
                throw new InvalidRequestException($"function '{f.Name}': {e.Message}", $"tools[{index}].function.parameters");
            }
            string prefix = $"t{i}-";
            rules.Append(GbnfRules.Prefix(args, prefix));
            string name = JsonValue.Create(f.Name).ToJsonString();   // a JSON string literal, escaped as the serializer escapes
            string call = format switch
            {
                ToolCallFormat.Llama3 => $"{GbnfRules.Literal($"{{\"name\": {name}, \"parameters\": ")} {prefix}root \"}}\"",
                ToolCallFormat.Mistral => $"{GbnfRules.Literal($"{{\"name\": {name}, \"arguments\": ")} {prefix}root " +
                                          $"{GbnfRules.Literal(", \"id\": \"")} [a-zA-Z0-9]{{9}} \"\\\"}}\"",
                // the recipient in the channel part (harmony's own examples) or in the role part (how the template
                // renders a call back), the content type as gpt-oss writes it
                ToolCallFormat.Harmony => $"({GbnfRules.Literal($"<|channel|>commentary to=functions.{f.Name}")} | " +
                                          $"{GbnfRules.Literal($" to=functions.{f.Name}<|channel|>commentary")}) harmony-type \"<|message|>\" {prefix}root",
                _ => $"{GbnfRules.Literal($"{{\"name\": {name}, \"arguments\": ")} {prefix}root \"}}\"",
            };
            rules.Append($"call-{i} ::= {call}\n");
            calls.Add($"call-{i}");
            i++;
        }
        if (calls.Count == 0) throw new InvalidRequestException("no function to call", "tool_choice");
        rules.Append("call ::= ").Append(string.Join(" | ", calls)).Append('\n');
        // Llama 3's templates take one call per turn (they raise on more), so it never repeats; harmony's <|call|> ends
        // generation after one
        bool many = tools.Parallel && format is not (ToolCallFormat.Llama3 or ToolCallFormat.Harmony);
        if (format == ToolCallFormat.Harmony) rules.Append("harmony-type ::= (\" \" \"<|constrain|>\"? \"json\")?\n");
        string root = format switch
        {
            ToolCallFormat.Hermes => "\"<tool_call>\\n\" call \"\\n</tool_call>\"" + (many ? " (\"\\n<tool_call>\\n\" call \"\\n</tool_call>\")*" : ""),
            ToolCallFormat.Llama3 or ToolCallFormat.Harmony => "call",
            ToolCallFormat.Mistral => "\"[TOOL_CALLS][\" call " + (many ? "(\", \" call)* " : "") + "\"]\"",
            _ => many ? "\"{\\\"tool_calls\\\": [\" call (\", \" call)* \"]}\"" : "\"{\\\"tool_call\\\": \" call \"}\"",
        };
        return $"root ::= {root}\n{rules}";
    }
}
