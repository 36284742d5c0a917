namespace SharpInfer.Sampling.Grammar;

/// <summary>
/// A checked grammar flattened into one symbol array: each alternative is a run of symbols closed by an end
/// marker. Construction rejects grammars that could hang generation: left recursion (the automaton would expand
/// forever) and a root with no finite derivation. Alternatives that can never finish are dropped, so every
/// prefix the automaton accepts can still be completed.
/// </summary>
internal sealed class CompiledGrammar
{
    internal const int End = -2;       // Kind of the end-of-alternative marker
    internal const int Bytes = -1;     // Kind of a byte-set symbol; kinds >= 0 are rule references
    internal readonly int[] Kind;
    internal readonly Symbol[] Symbols;
    internal readonly int[][] RuleStarts;
    internal readonly int Root;

    /// <summary>Parses and checks GBNF text; throws <see cref="InvalidRequestException"/> on any problem.</summary>
    public static CompiledGrammar FromGbnf(string gbnf, string field = "grammar") => new(GbnfParser.Parse(gbnf, field), field);

    internal CompiledGrammar(GrammarRules g, string field)
    {
        int n = g.Rules.Count;
        Root = g.ByName["root"];
        // productive rules: those with at least one alternative whose references are all productive
        var productive = new bool[n];
        for (bool changed = true; changed;)
        {
            changed = false;
            for (int r = 0; r < n; r++)
                if (!productive[r] && g.Rules[r].Any(alt => alt.All(s => !s.IsRef || productive[s.Rule])))
                    productive[r] = changed = true;
        }
        if (!productive[Root])
            throw new InvalidRequestException("invalid grammar: 'root' has no finite derivation (generation could never end)", field);
        var rules = g.Rules.Select(alts => alts.Where(alt => alt.All(s => !s.IsRef || productive[s.Rule])).ToList()).ToList();
        CheckLeftRecursion(rules, g.Names, field);

        var kind = new List<int>();
        var syms = new List<Symbol>();
        RuleStarts = new int[n][];
        for (int r = 0; r < n; r++)
        {
            RuleStarts[r] = new int[rules[r].Count];
            for (int a = 0; a < rules[r].Count; a++)
            {
                RuleStarts[r][a] = kind.Count;
                foreach (var s in rules[r][a]) { kind.Add(s.IsRef ? s.Rule : Bytes); syms.Add(s); }
                kind.Add(End);
                syms.Add(default);
            }
        }
        Kind = [.. kind];
        Symbols = [.. syms];
    }

    private static void CheckLeftRecursion(List<List<List<Symbol>>> rules, List<string> names, string field)
    {
        int n = rules.Count;
        var nullable = new bool[n];
        for (bool changed = true; changed;)
        {
            changed = false;
            for (int r = 0; r < n; r++)
                if (!nullable[r] && rules[r].Any(alt => alt.All(s => s.IsRef && nullable[s.Rule])))
                    nullable[r] = changed = true;
        }
        // edges r -> s where s may be the first thing r expands to
        var first = new List<int>[n];
        for (int r = 0; r < n; r++)
        {
            first[r] = [];
            foreach (var alt in rules[r])
                foreach (var s in alt)
                {
                    if (!s.IsRef) break;
                    first[r].Add(s.Rule);
                    if (!nullable[s.Rule]) break;
                }
        }
        var color = new byte[n];   // 0 new, 1 on the path, 2 done
        for (int r = 0; r < n; r++)
            if (color[r] == 0) Visit(r);

        void Visit(int r)
        {
            var stack = new Stack<(int Rule, int Next)>();
            stack.Push((r, 0));
            color[r] = 1;
            while (stack.Count > 0)
            {
                var (u, i) = stack.Pop();
                if (i < first[u].Count)
                {
                    stack.Push((u, i + 1));
                    int v = first[u][i];
                    if (color[v] == 1)
                        throw new InvalidRequestException($"invalid grammar: rule '{names[v]}' is left-recursive (it can reach itself without consuming input)", field);
                    if (color[v] == 0) { color[v] = 1; stack.Push((v, 0)); }
                }
                else color[u] = 2;
            }
        }
    }
}
