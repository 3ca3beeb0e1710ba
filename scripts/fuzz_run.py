"""The long robustness run: the fuzzers and the hostile-input generators with >= 10,000 inputs in all (control
characters in every string field through check, the app and export; dotted-key and header depth; compressed sizes
in sessions; session state fields; serve's resize messages and headers; non-finite parameters), the SIGKILL runs,
and the rest of tests/robustness at full size, in a pytest child under an address-space cap (a MemoryError or the OS's OOM killer
would show as a failure). Prints the figures that docs/reliability.md records.

    python -m scripts.fuzz_run --inputs 10000 --kills 300
    python -m scripts.fuzz_run --inputs 500 --kills 100 --quick    # a few minutes

Besides the fuzz inputs and the kills, the long run plays --sequences action sequences of --action-steps rules
through the app, --oversized x 12 oversized models, --kills // 5 `s` presses in the app, and a --long-steps run.

CI runs the same tests with their small samples (`pytest tests/robustness`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FUZZ_TARGETS = 27  # hypothesis-driven tests in tests/robustness sized by counts.examples() (max_examples each)


# what each group counts as one input tried (a generated or hand-made hostile input through a loader, the app, the
# CLI, export or the server); groups of other figures (kills, stops, timings) are not inputs
INPUT_KEYS = {
    "preset loader": ["inputs"], "session loader": ["inputs"], "weight-text parser": ["inputs"],
    "CSV importer": ["inputs"], "export": ["inputs"], "hostile files": ["cases"],
    "hostile toml": ["hostile values refused with a bounded, safe text",
                     "hostile values accepted (harmless where they landed)",
                     "equivalent rewrites of bundled presets accepted", "bombs refused"],
    "hostile sessions": ["generated archives", "bombs refused"],
    "serve": ["resize messages", "junk messages", "host headers", "sessions"],
    "training faults": ["non-finite parameter runs"],
    "display": ["printable examples", "cli check", "cli check --json", "cli run", "cli run --json", "cli export",
                "cli gradcheck", "cli presets", "cli printers", "app in a pty: *"],
}


def tried(counts: dict[str, dict[str, float]]) -> int:
    """Inputs tried in all: the keys of INPUT_KEYS (a key names itself and its variants, "bombs refused (dotted)";
    "app in a pty: *" every key that starts so)."""
    def counted(k: str, key: str) -> bool:
        return k.startswith(key[:-1]) if key.endswith("*") else (k == key or k.startswith(key + " ("))

    return int(sum(v for g, keys in INPUT_KEYS.items() for k, v in counts.get(g, {}).items()
                   if any(counted(k, key) for key in keys)))


def peak_refusal_mb(counts: dict[str, dict[str, float]]) -> float:
    """The most memory any refusal took: the groups' "peak MB of a refusal" and the oversized models' growth."""
    mb = [float(v) for vals in counts.values() for k, v in vals.items() if k.startswith("peak MB of a refusal")]
    grow = counts.get("oversized models", {}).get("peak growth of a refusal (bytes)")
    if grow is not None:
        mb.append(float(grow) / 2**20)
    return max(mb, default=0.0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m scripts.fuzz_run", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--inputs", type=int, default=10_000,
                    help="generated inputs in all, over the fuzz and hostile-input targets")
    ap.add_argument("--kills", type=int, default=300, help="SIGKILLs while saving (and random stops)")
    ap.add_argument("--sequences", type=int, default=20, help="hypothesis action sequences through the app")
    ap.add_argument("--action-steps", type=int, default=15, help="rules (user actions) per action sequence")
    ap.add_argument("--oversized", type=int, default=30,
                    help="hypothesis examples of oversized models (12 layers and input shapes each)")
    ap.add_argument("--long-steps", type=int, default=10**6, help="steps of the real long training run")
    ap.add_argument("--memory-cap-gb", type=float, default=6.0, help="address-space cap of the run (RLIMIT_AS)")
    ap.add_argument("--quick", action="store_true", help="only the fuzzers and the kills")
    ap.add_argument("--json", metavar="FILE", help="also write the counts here")
    args = ap.parse_args(argv)

    per_target = max(1, math.ceil(args.inputs / FUZZ_TARGETS))
    report = Path(args.json) if args.json else Path(tempfile.mkstemp(suffix=".json")[1])
    env = dict(os.environ, TUI_NN_FUZZ_EXAMPLES=str(per_target), TUI_NN_KILLS=str(args.kills),
               TUI_NN_ACTION_SEQUENCES=str(args.sequences), TUI_NN_ACTION_STEPS=str(args.action_steps),
               TUI_NN_OVERSIZED_EXAMPLES=str(args.oversized), TUI_NN_LONG_STEPS=str(args.long_steps),
               TUI_NN_ROBUSTNESS_REPORT=str(report), OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"),
               TUI_NN_KILL_SEED=str(int(time.time())), TUI_NN_STOP_SEED=str(int(time.time()) + 1))
    targets = (["tests/robustness/test_fuzz_loaders.py", "tests/robustness/test_saves.py",
                "tests/robustness/test_hostile_files.py"] if args.quick else ["tests/robustness"])
    cap = int(args.memory_cap_gb * 1024**3)

    def limit() -> None:  # in the child: a runaway allocation fails there (MemoryError), not on the machine
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    t0 = time.time()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-s", *targets],
                          cwd=ROOT, env=env, preexec_fn=limit)
    took = time.time() - t0
    counts = json.loads(report.read_text()) if report.exists() and report.stat().st_size else {}
    inputs = tried(counts)
    crashes = 0 if proc.returncode == 0 else "some (pytest failed; see above)"
    code = sum(int(counts.get(g, {}).get("code executions", 0)) for g in counts)
    lost = int(counts.get("saves", {}).get("lost sessions", 0))
    leaked = sum(int(v.get("leaked processes", 0)) for v in counts.values())
    peak = peak_refusal_mb(counts)
    print()
    print(f"== robustness run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {took / 60:.1f} min, "
          f"memory cap {args.memory_cap_gb:g} GB ==")
    print(f"{inputs} inputs tried, {crashes} tracebacks, {code} code executions, peak memory of a refusal "
          f"{peak:.1f} MB, {lost} lost sessions, {leaked} leaked processes")
    for group, vals in counts.items():
        print(f"  {group}: " + ", ".join(f"{k} {v}" for k, v in vals.items()))
    if not args.json:
        report.unlink(missing_ok=True)
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
