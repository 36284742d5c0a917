using System.Reflection;

namespace SharpInfer.Cli;

/// <summary>What the build embedded about itself (see the BuildCommit target in the project file).</summary>
internal static class BuildInfo
{
    /// <summary>The short git commit the CLI was built from, or <c>unknown</c> outside a git checkout.</summary>
    public static string Commit { get; } =
        typeof(BuildInfo).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().FirstOrDefault(a => a.Key == "BuildCommit")?.Value is { Length: > 0 } c
            ? c : "unknown";
}
