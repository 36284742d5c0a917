# Sourced by the microbenchmark scripts (bench/kernel-micro.sh, bench/attention-micro.sh): a console project in a
# temporary folder outside the repository that references this checkout's Release SharpInfer.dll under the name of a
# friend assembly (SharpInfer.Server, to reach the internal kernel types), with tiered compilation off like the CLI.
#   micro_project NAME     builds SharpInfer, writes $dir/micro.csproj; the caller then writes $dir/Program.cs
#   micro_run ARGS...      builds the harness, puts $SHARPINFER_DLL (another build, for an A/B) or this build in it, runs it
micro_project() {
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  dir="${TMPDIR:-/tmp}/sharpinfer-$1"
  mkdir -p "$dir"
  dotnet build "$root/src/SharpInfer/SharpInfer.csproj" -c Release -v q -nologo >/dev/null
  dll="${SHARPINFER_DLL:-$root/src/SharpInfer/bin/Release/net10.0/SharpInfer.dll}"
  cat > "$dir/micro.csproj" <<PROJ
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup>
    <OutputType>Exe</OutputType><TargetFramework>net10.0</TargetFramework><AllowUnsafeBlocks>true</AllowUnsafeBlocks>
    <AssemblyName>SharpInfer.Server</AssemblyName><Nullable>disable</Nullable><TieredCompilation>false</TieredCompilation>
  </PropertyGroup>
  <ItemGroup><Reference Include="SharpInfer"><HintPath>$root/src/SharpInfer/bin/Release/net10.0/SharpInfer.dll</HintPath></Reference></ItemGroup>
</Project>
PROJ
}

micro_run() {
  dotnet build "$dir/micro.csproj" -c Release -o "$dir/out" -v q -nologo >/dev/null
  cp "$dll" "$dir/out/SharpInfer.dll"
  "$dir/out/SharpInfer.Server" "$@"
}
