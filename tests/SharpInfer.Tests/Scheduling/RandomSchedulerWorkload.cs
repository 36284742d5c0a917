using SharpInfer.Scheduling;

namespace SharpInfer.Tests.Scheduling;

/// <summary>
/// A seeded random workload for a scheduler and its block manager, without a model: adds (3 in 10), aborts (1 in 10)
/// and steps (the rest), where a step schedules, completes the plan and then finishes or extends every sequence that
/// sampled; afterwards everything left is drained to the end. The test says what must hold: <see cref="CheckPlan"/>
/// sees each plan before it completes, <see cref="CheckInvariants"/> runs after every operation and every drain step.
/// Shared by the property tests so that each states only its own invariants, not the loop.
/// </summary>
internal sealed class RandomSchedulerWorkload
{
    /// <summary>Random operations before the drain.</summary>
    public required int Operations { get; init; }
    /// <summary>No prompt plus output exceeds this many tokens.</summary>
    public required int CapacityTokens { get; init; }
    /// <summary>Prompts are 1 to this many tokens (and never more than the capacity less 2).</summary>
    public required int MaxPromptTokens { get; init; }
    /// <summary>A sequence may generate up to 1 + (this − 1) tokens after its prompt.</summary>
    public required int MaxExtraTokens { get; init; }
    /// <summary>A sequence that sampled finishes early with odds of 1 in this.</summary>
    public required int FinishOneIn { get; init; }
    /// <summary>The prompt of the given length (may draw from the random source).</summary>
    public required Func<int, Random, int[]> Prompt { get; init; }
    /// <summary>Called with each plan before <see cref="Scheduler.Complete"/>.</summary>
    public Action<List<ScheduledChunk>>? CheckPlan { get; init; }
    /// <summary>Called with the live sequences after every operation and every drain step.</summary>
    public Action<List<Sequence>>? CheckInvariants { get; init; }

    /// <summary>What a run did, for the tests' "the run exercised it" assertions.</summary>
    public readonly record struct Result(int Finished, int Aborted);

    /// <summary>Runs the workload to the end: no sequence is left (what that frees, the test asserts).</summary>
    public Result Run(Random rng, Scheduler sched)
    {
        var live = new List<Sequence>();
        var maxOut = new Dictionary<Sequence, int>();
        long id = 0;
        int finished = 0, aborted = 0;
        for (int op = 0; op < Operations; op++)
        {
            int kind = rng.Next(10);
            if (kind < 3)
            {
                // the order of the draws is part of each seed's workload: prompt length, output length, prompt, priority
                int prompt = 1 + rng.Next(Math.Min(MaxPromptTokens, CapacityTokens - 2));
                int max = Math.Min(CapacityTokens, prompt + 1 + rng.Next(MaxExtraTokens));
                var s = new Sequence(++id, Prompt(prompt, rng), max, rng.Next(3), id);
                sched.Add(s);
                live.Add(s);
                maxOut[s] = max;
            }
            else if (kind < 4 && live.Count > 0)
            {
                var s = live[rng.Next(live.Count)];
                sched.Remove(s);
                live.Remove(s);
                aborted++;
            }
            else
            {
                var plan = sched.Schedule().ToList();
                if (live.Count > 0) Assert.NotEmpty(plan);   // never stuck while there is work
                CheckPlan?.Invoke(plan);
                sched.Complete(plan);
                foreach (var c in plan.Where(c => c.SamplesNext))
                {
                    var s = c.Sequence;
                    if (s.Length >= maxOut[s] || rng.Next(FinishOneIn) == 0)
                    {
                        sched.Remove(s);
                        live.Remove(s);
                        finished++;
                    }
                    else s.Append(rng.Next(50));
                }
            }
            CheckInvariants?.Invoke(live);
        }
        // drain: everything left finishes
        for (int guard = 0; live.Count > 0; guard++)
        {
            Assert.True(guard < 100_000, "the scheduler made no progress");
            var plan = sched.Schedule().ToList();
            Assert.NotEmpty(plan);
            sched.Complete(plan);
            foreach (var c in plan.Where(c => c.SamplesNext))
            {
                if (c.Sequence.Length >= maxOut[c.Sequence]) { sched.Remove(c.Sequence); live.Remove(c.Sequence); finished++; }
                else c.Sequence.Append(1);
            }
            CheckInvariants?.Invoke(live);
        }
        return new Result(finished, aborted);
    }
}
