#!/usr/bin/env python3
"""Reads the junit XML reports of llama.cpp's server test suite (llama-server, SharpInfer) and prints each
test's outcome on both servers, then the headline: of the tests llama-server passes, how many SharpInfer passes."""
import sys
import xml.etree.ElementTree as ET


def outcomes(paths):
    """Outcomes from one report or a comma-separated list of them (a later report's rerun of a test wins)."""
    result = {}
    for path in (paths or "").split(","):
        result.update(_outcomes(path) if path else {})
    return result


def _outcomes(path):
    result = {}
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return result
    for case in root.iter("testcase"):
        name = case.get("classname", "").replace("unit.", "") + "::" + case.get("name", "")
        state = "pass"
        for child in case:
            if child.tag in ("failure", "error"):
                state = "FAIL"
                first = (child.get("message") or "").strip().splitlines()
                state += " (" + (first[0][:110] if first else child.tag) + ")"
                break
            if child.tag == "skipped":
                msg = child.get("message") or ""
                state = "n/a offline" if "unavailable offline" in msg else "skip"
        result[name] = state
    return result


def main():
    llama = outcomes(sys.argv[1] if len(sys.argv) > 1 else None)
    ours = outcomes(sys.argv[2] if len(sys.argv) > 2 else None)
    names = sorted(set(llama) | set(ours))
    width = max((len(n) for n in names), default=10)
    print(f"{'test':<{width}}  {'llama-server':<12}  SharpInfer")
    for n in names:
        print(f"{n:<{width}}  {llama.get(n, '-')[:12]:<12}  {ours.get(n, '-')}")
    base = [n for n in names if llama.get(n) == "pass"]
    both = [n for n in base if ours.get(n) == "pass"]
    count = lambda d, s: sum(1 for v in d.values() if v.startswith(s))
    print()
    for label, d in (("llama-server", llama), ("SharpInfer", ours)):
        if d:
            print(f"{label}: {count(d, 'pass')} passed, {count(d, 'FAIL')} failed, {count(d, 'skip')} skipped, "
                  f"{count(d, 'n/a')} model unavailable offline, of {len(d)}")
    if llama and ours:
        pct = 100.0 * len(both) / len(base) if base else 0.0
        print(f"HEADLINE: of the {len(base)} tests llama-server passes, SharpInfer passes {len(both)} ({pct:.1f}%)")
        extra = [n for n in names if ours.get(n) == "pass" and llama.get(n) != "pass"]
        if extra:
            print(f"SharpInfer also passes {len(extra)} test(s) llama-server does not: " + ", ".join(extra))


if __name__ == "__main__":
    main()
