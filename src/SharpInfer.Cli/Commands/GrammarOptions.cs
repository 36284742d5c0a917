using System.CommandLine;
using SharpInfer.Models;
using SharpInfer.Sampling;
using SharpInfer.Sampling.Grammar;

namespace SharpInfer.Cli.Commands;

/// <summary><c>--grammar-file</c> (GBNF) and <c>--json-schema</c> (a JSON Schema file) for <c>run</c>. The grammar is
/// checked when the options are read; it is bound to the vocabulary once the model is loaded.</summary>
internal static class GrammarOptions
{
    public static readonly Option<FileInfo?> GrammarFile = new("--grammar-file") { Description = "Constrain the output to a GBNF grammar (llama.cpp syntax)" };
    public static readonly Option<FileInfo?> JsonSchema = new("--json-schema") { Description = "Constrain the output to JSON valid under this JSON Schema file" };

    /// <summary>Adds a placeholder constraint to <paramref name="p"/> when either option is given.</summary>
    public static SamplingParams Apply(ParseResult r, SamplingParams p)
    {
        string? gbnf = r.GetValue(GrammarFile) is { } g ? File.ReadAllText(g.FullName)
            : r.GetValue(JsonSchema) is { } j ? JsonSchemaToGbnf.Convert(File.ReadAllText(j.FullName)) : null;
        return gbnf == null ? p : p with { LogitsProcessor = new Unbound(CompiledGrammar.FromGbnf(gbnf)) };
    }

    /// <summary>Replaces the placeholder with the grammar bound to <paramref name="model"/>'s vocabulary.</summary>
    public static SamplingParams Bind(SamplingParams p, Model model) => p.LogitsProcessor is Unbound u
        ? p with { LogitsProcessor = new GrammarConstraint(u.Grammar, TokenTrie.For(model.Tokenizer), model.Config.VocabSize) }
        : p;

    private sealed class Unbound(CompiledGrammar grammar) : ILogitsProcessorFactory
    {
        public CompiledGrammar Grammar => grammar;
        public ILogitsProcessor Create() => throw new InvalidOperationException("the grammar is not bound to a vocabulary");
    }
}
