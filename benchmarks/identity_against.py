"""identity_scale.py on SQLite, this tree against an earlier commit, in one run: is lookup p95 within 10 %?

    python benchmarks/identity_against.py [--rev a0e370e] [--new REV] [--customers 100000] [--lookups 2000] [--rounds 3]

Checks the commit out in a temporary git worktree, then runs each side's own benchmarks/identity_scale.py with
its own code (PYTHONPATH) as a process of its own, rounds alternating which side goes first; each side imports
its base once (its own SQLite file, reused by its later rounds) from the same generated CSV; after each, lookup_cpu.py
measures the same mix's thread CPU time with that side's code (wall-clock percentiles move with whatever else
the machine runs). Prints every round's overall lookup figures, the medians, and the change in p95. The worktree is removed at the end.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ALL = re.compile(r"^\s+all: p50\s+([\d.]+) ms\s+p95\s+([\d.]+) ms")


def run_side(tree: Path, folder: Path, customers: int, lookups: int) -> tuple[tuple[float, float], tuple[float, float], str]:
    """(backend p50, p95), (through the client p50, p95), and the import line when there was one."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run([sys.executable, str(tree / "benchmarks" / "identity_scale.py"), "--customers", str(customers),
                           "--lookups", str(lookups), "--keep", str(folder)], cwd=tree, env=env, capture_output=True,
                          text=True, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(f"{tree}: identity_scale.py failed:\n{done.stderr[-2000:]}")
    found = [m.groups() for line in done.stdout.splitlines() if (m := ALL.match(line))]
    imported = next((line for line in done.stdout.splitlines() if line.startswith("import:")), "")
    (b50, b95), (c50, c95) = [(float(a), float(b)) for a, b in found[:2]]
    return (b50, b95), (c50, c95), imported


CPU = re.compile(r"^cpu: p50 ([\d.]+) ms  p95 ([\d.]+) ms")


def cpu_side(tree: Path, folder: Path, customers: int, lookups: int) -> tuple[float, float]:
    """Lookup p50 and p95 in thread CPU time on the side's base, by lookup_cpu.py with the side's code."""
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "lookup_cpu.py"), "--db",
                           str(folder / f"identity-{customers}.db"), "--customers", str(customers), "--lookups",
                           str(lookups)], cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)}, capture_output=True,
                          text=True, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(f"{tree}: lookup_cpu.py failed:\n{done.stderr[-2000:]}")
    found = next(m.groups() for line in done.stdout.splitlines() if (m := CPU.match(line)))
    for line in done.stdout.splitlines():
        if line.startswith("cpu of "):
            print(f"    {tree.name}: {line}", flush=True)
    return float(found[0]), float(found[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rev", default="a0e370e")
    parser.add_argument("--new", metavar="REV", help="compare this commit (in a worktree of its own) instead of this tree")
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--lookups", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fsm-against-") as tmp:
        base = Path(tmp) / "base"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(base), args.rev], check=True,
                       capture_output=True)
        new = ROOT
        if args.new:
            new = Path(tmp) / "new"
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(new), args.new], check=True,
                           capture_output=True)
        try:
            sides = {"this tree": new, args.rev: base}
            for name, tree in sides.items():
                where = subprocess.run([sys.executable, "-c", "import fsm_mcp; print(fsm_mcp.__file__)"], text=True,
                                       env={**os.environ, "PYTHONPATH": str(tree)}, cwd=tree, capture_output=True,
                                       check=True).stdout.strip()
                rev = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], text=True,
                                     capture_output=True).stdout.strip()
                dirty = " with uncommitted changes" if tree == ROOT else ""  # "this tree" is --new's commit if given
                print(f"{name}: {rev}{dirty}, fsm_mcp from {where}", flush=True)
                if not where.startswith(str(tree)):
                    raise SystemExit(f"{name}: its benchmark would run another tree's code")
            folders = {name: Path(tmp) / f"data-{i}" for i, name in enumerate(sides)}
            csv_name = f"customers-{args.customers}.csv"
            first = folders["this tree"]
            first.mkdir()
            sys.path.insert(0, str(ROOT / "benchmarks"))
            from generate import write_customers

            write_customers(first / csv_name, args.customers)
            for folder in list(folders.values())[1:]:
                folder.mkdir()
                os.link(first / csv_name, folder / csv_name)
            results: dict[str, list[tuple[tuple[float, float], tuple[float, float], tuple[float, float]]]] = {
                name: [] for name in sides}
            for r in range(args.rounds):
                for name in (list(sides) if r % 2 == 0 else list(sides)[::-1]):
                    backend, through, imported = run_side(sides[name], folders[name], args.customers, args.lookups)
                    cpu = cpu_side(sides[name], folders[name], args.customers, args.lookups)
                    results[name].append((backend, through, cpu))
                    print(f"round {r + 1}, {name:>9}: backend p50 {backend[0]:6.2f} ms p95 {backend[1]:6.2f} ms; "
                          f"through mcp.Client p50 {through[0]:6.2f} ms p95 {through[1]:6.2f} ms; backend CPU time "
                          f"p50 {cpu[0]:6.3f} ms p95 {cpu[1]:6.3f} ms" + (f"  [{imported}]" if imported else ""), flush=True)
            med = {name: [statistics.median(o[k][q] for o in outs) for k in (0, 1, 2) for q in (0, 1)]
                   for name, outs in results.items()}
            for name, (b50, b95, c50, c95, u50, u95) in med.items():
                print(f"median {name:>9}: backend p50 {b50:6.2f} ms p95 {b95:6.2f} ms; through mcp.Client p50 {c50:6.2f} ms "
                      f"p95 {c95:6.2f} ms; backend CPU time p50 {u50:6.3f} ms p95 {u95:6.3f} ms")
            now, then = med["this tree"], med[args.rev]
            print(f"SQLite, {args.customers} customers, lookup p95 against {args.rev} (goal within 10 %): "
                  f"{100 * (now[1] / then[1] - 1):+.1f} % in the backend (wall), {100 * (now[3] / then[3] - 1):+.1f} % "
                  f"through mcp.Client (wall), {100 * (now[5] / then[5] - 1):+.1f} % in the backend's CPU time")
        finally:
            for tree in {base, new} - {ROOT}:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False)
            subprocess.run(["git", "-C", str(ROOT), "worktree", "prune"], check=False)


if __name__ == "__main__":
    main()
