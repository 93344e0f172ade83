"""The benchmark suite: ``python -m benchmarks.run --quick`` (about two minutes) or ``--full``.

Generates seeded Gaussian-blob collections (D=384, float32) in ``benchmarks/out/data``, runs each
measured case in its own child process (``benchmarks.cases``: a clean heap, so its peak RSS is its
own), and prints one table per target with the measured ratio against the baseline measured in the
same run, and PASS/FAIL. The whole report is written to ``benchmarks/out/results-<size>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out"

SIZES = {
    "quick": {"scale": [10_000, 100_000], "inertia": 50_000, "hdbscan": 20_000, "stream": 300_000, "budget_mb": 768},
    "full": {
        "scale": [10_000, 100_000, 1_000_000],
        "inertia": 100_000,
        "hdbscan": 100_000,
        "stream": 4_000_000,
        "budget_mb": 2048,
    },
}
N_CLUSTERS = 100


@dataclass
class Target:
    name: str
    measured: str
    ratio: float | None
    limit: str
    passed: bool | None

    def row(self) -> str:
        verdict = "n/a" if self.passed is None else "PASS" if self.passed else "FAIL"
        ratio = "-" if self.ratio is None else f"{self.ratio:.3g}"
        return f"| {self.name} | {self.measured} | {ratio} | {self.limit} | {verdict} |"


def label(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 and n % 1_000_000 == 0 else f"{n // 1000}k"


def run_case(case: str, **arguments: Any) -> dict[str, Any]:
    """Run one case in a child process and return its RESULT (or the error it died with)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NUMBA_CACHE_DIR": str(ROOT / ".cache" / "numba")}
    started = time.perf_counter()
    process = subprocess.run(
        [sys.executable, "-m", "benchmarks.cases", case, json.dumps(arguments)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - started
    for line in process.stdout.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[len("RESULT ") :])
            result["wall_seconds"] = round(wall, 2)
            print(f"  {case} {arguments.get('n', '')}: {wall:.1f} s", file=sys.stderr, flush=True)
            return result
    tail = (process.stderr or process.stdout)[-2000:]
    print(f"  {case} {arguments}: FAILED\n{tail}", file=sys.stderr, flush=True)
    return {"error": tail, "wall_seconds": round(wall, 2)}


def blob(n: int, with_text: bool = True) -> dict[str, Any]:
    return {"n": n, "collection": f"blobs_{label(n)}", "prepare": True, "with_text": with_text}


def measure(size: str) -> dict[str, Any]:
    spec = SIZES[size]
    report: dict[str, Any] = {"size": size, "spec": spec, "load": {}, "kmeans": {}}
    for n in spec["scale"]:
        print(f"N = {n:,}", file=sys.stderr, flush=True)
        report["load"][n] = {"bare": run_case("load_bare", **blob(n)), "ours": run_case("load", **blob(n))}
        report["kmeans"][n] = {
            "bare": run_case("kmeans_bare", **blob(n), n_clusters=N_CLUSTERS),
            "execute": run_case("execute", **blob(n), parameters={"n_clusters": N_CLUSTERS}),
        }
    report["inertia"] = run_case("kmeans_bare", **blob(spec["inertia"]), n_clusters=N_CLUSTERS, sklearn_default=True)
    report["silhouette"] = run_case("silhouette", **blob(100_000), rows=20_000)
    report["ag_news"] = run_case("ag_news", n=7600, collection="ag_news")
    report["hdbscan"] = run_case("hdbscan", **blob(spec["hdbscan"]))
    stream = blob(spec["stream"], with_text=False)
    report["streaming"] = run_case(
        "execute", **stream, parameters={"n_clusters": N_CLUSTERS}, memory_budget_mb=spec["budget_mb"]
    )
    report["streaming"]["budget_mb"] = spec["budget_mb"]
    return report


def _get(data: dict[str, Any], *keys: Any) -> Any:
    for key in keys:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def targets(report: dict[str, Any]) -> list[Target]:
    out: list[Target] = []
    n_max = max(report["load"])
    load = report["load"][n_max]
    bare_s, ours_s = _get(load, "bare", "seconds"), _get(load, "ours", "seconds")
    if bare_s and ours_s:
        out.append(
            Target(
                f"load {label(n_max)}: time vs read_table + conversion",
                f"{ours_s:.2f} s vs {bare_s:.2f} s",
                ours_s / bare_s,
                "≤ 1.25",
                ours_s / bare_s <= 1.25,
            )
        )
        peak, matrix = load["ours"]["peak_mb"], load["ours"]["matrix_mb"]
        out.append(
            Target(
                f"load {label(n_max)}: peak memory vs matrix",
                f"{peak:.0f} MB vs {matrix:.0f} MB (bare: {load['bare']['peak_mb']:.0f} MB)",
                peak / matrix,
                "≤ 1.3",
                peak / matrix <= 1.3,
            )
        )
    kmeans = report["kmeans"][n_max]
    execute, bare = kmeans["execute"], kmeans["bare"]
    if execute.get("seconds") and bare.get("seconds"):
        ratio = execute["seconds"] / bare["seconds"]
        out.append(
            Target(
                f"kmeans {label(n_max)}×384 k={N_CLUSTERS}: execution vs bare fit ({bare.get('method')})",
                f"{execute['seconds']:.1f} s vs {bare['seconds']:.1f} s; stages {execute['timings']}",
                ratio,
                "≤ 1.5",
                ratio <= 1.5,
            )
        )
        grown = execute["peak_mb"] - execute["baseline_mb"]
        out.append(
            Target(
                f"kmeans {label(n_max)}: peak RSS (above the interpreter's) vs matrix",
                f"{grown:.0f} MB (+{execute['baseline_mb']:.0f} MB interpreter) vs {execute['matrix_mb']:.0f} MB; "
                f"per stage {execute['stage_peak_mb']}",
                grown / execute["matrix_mb"],
                "≤ 2.5",
                grown / execute["matrix_mb"] <= 2.5,
            )
        )
    inertia = report["inertia"]
    if inertia.get("sklearn_inertia"):
        ratio = inertia["inertia"] / inertia["sklearn_inertia"]
        out.append(
            Target(
                f"kmeans {label(report['spec']['inertia'])}: inertia vs scikit-learn default KMeans",
                f"{inertia['inertia']:.1f} ({inertia['seconds']:.1f} s) vs {inertia['sklearn_inertia']:.1f} "
                f"({inertia['sklearn_seconds']:.1f} s)",
                ratio,
                "≤ 1.01",
                ratio <= 1.01,
            )
        )
    sil = report["silhouette"]
    if sil.get("ours_seconds"):
        speedup = sil["sklearn_seconds"] / sil["ours_seconds"]
        same = abs(sil["ours"] - sil["sklearn"]) <= 1e-4
        out.append(
            Target(
                "exact silhouette 20k×384: speed-up over sklearn silhouette_score",
                f"{sil['ours_seconds']:.2f} s vs {sil['sklearn_seconds']:.2f} s; values {sil['ours']:.6f} vs "
                f"{sil['sklearn']:.6f}; +{sil['ours_extra_mb']:.0f} MB",
                speedup,
                "≥ 2, |Δ| ≤ 1e-4",
                speedup >= 2 and same,
            )
        )
    ag = report["ag_news"]
    if ag.get("sampled_silhouette_max_error"):
        errors = {int(k): round(v, 4) for k, v in ag["sampled_silhouette_max_error"].items()}
        worst = max(v for k, v in errors.items() if k >= 2000)
        out.append(
            Target(
                "AG News: sampled silhouette error vs exact (samples ≥ 2,000, 5 seeds)",
                f"exact {ag['silhouette_exact']:.4f}; max error by sample size {errors}; V-measure "
                f"{ag['v_measure']}; execution {ag['seconds']:.2f} s",
                worst,
                "≤ 0.01",
                worst <= 0.01,
            )
        )
    hd = report["hdbscan"]
    if hd.get("backends"):
        fastest = min(hd["backends"], key=lambda b: hd["backends"][b]["seconds"])
        ratio = hd["pipeline_seconds"] / hd["backends"][fastest]["seconds"]
        times = ", ".join(f"{b} {v['seconds']:.1f} s ({v['clusters']} clusters)" for b, v in hd["backends"].items())
        out.append(
            Target(
                f"hdbscan {label(report['spec']['hdbscan'])}×384 (PCA-{hd['dimensions']}): pipeline vs fastest bare backend",
                f"pipeline {hd['pipeline_seconds']:.1f} s {hd['pipeline_timings']}; {times}",
                ratio,
                "≤ 1.2",
                ratio <= 1.2,
            )
        )
    st = report["streaming"]
    if st.get("peak_mb"):
        n = report["spec"]["stream"]
        out.append(
            Target(
                f"out of core {label(n)}×384 ({st['matrix_mb'] / 1024:.1f} GiB of vectors): peak RSS vs budget",
                f"{st['peak_mb']:.0f} MB, {st['seconds']:.0f} s {st['timings']}; silhouette sample "
                f"{st['silhouette_sample_size']}",
                st["peak_mb"] / st["budget_mb"],
                f"≤ 1 ({st['budget_mb']} MB)",
                st["peak_mb"] <= st["budget_mb"] and st["status"] == "completed",
            )
        )
    sizes = sorted(report["kmeans"])
    if len(sizes) >= 2:
        small, large = sizes[-2], sizes[-1]
        t_small = _get(report["kmeans"][small], "execute", "seconds")
        t_large = _get(report["kmeans"][large], "execute", "seconds")
        if t_small and t_large:
            ratio = (t_large / large) / (t_small / small)
            out.append(
                Target(
                    f"scaling: kmeans execution time per document, {label(large)} vs {label(small)}",
                    f"{t_large:.1f} s vs {t_small:.1f} s",
                    ratio,
                    "≤ 1.5 (about linear)",
                    ratio <= 1.5,
                )
            )
    return out


def _num(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def scaling_table(report: dict[str, Any]) -> list[str]:
    lines = [
        "| N | load s (ours / bare) | load peak MB (ours / bare) | bare fit s | execution s | load | fit | metrics | labels | write | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for n in sorted(report["kmeans"]):
        load, km = report["load"][n], report["kmeans"][n]
        execute, timings = km["execute"], km["execute"].get("timings", {})
        lines.append(
            f"| {label(n)} | {_num(_get(load, 'ours', 'seconds'))} / {_num(_get(load, 'bare', 'seconds'))} | "
            f"{_num(_get(load, 'ours', 'peak_mb'), 0)} / {_num(_get(load, 'bare', 'peak_mb'), 0)} | "
            f"{_num(km['bare'].get('seconds'))} | {_num(execute.get('seconds'))} | "
            + " | ".join(_num(timings.get(stage)) for stage in ("load", "fit", "metrics", "labels", "write"))
            + f" | {_num(execute.get('peak_mb'), 0)} |"
        )
    return lines


def render(report: dict[str, Any], found: list[Target]) -> str:
    lines = [
        f"## Targets ({report['size']})",
        "",
        "| target | measured | ratio | limit | verdict |",
        "|---|---|---|---|---|",
        *(t.row() for t in found),
        "",
        "## Time against N (kmeans, k=100, 384 dimensions; seconds)",
        "",
        *scaling_table(report),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--quick", action="store_true", help="10k and 100k documents (about two minutes)")
    group.add_argument("--full", action="store_true", help="10k, 100k, 1M documents and 4M out of core")
    parser.add_argument("--from-json", type=Path, help="print the tables of an earlier run's JSON instead of measuring")
    args = parser.parse_args(argv)
    if args.from_json:
        report = json.loads(args.from_json.read_text())
        for section in ("load", "kmeans"):
            report[section] = {int(n): value for n, value in report[section].items()}
        found = targets(report)
        print(render(report, found))
        print(f"\n{len(found)} targets, {sum(bool(t.passed) for t in found)} PASS; {report['seconds']} s")
        return 0 if all(t.passed for t in found) else 1
    size = "full" if args.full else "quick"
    started = time.perf_counter()
    report = measure(size)
    found = targets(report)
    report["targets"] = [t.__dict__ for t in found]
    report["seconds"] = round(time.perf_counter() - started, 1)
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"results-{size}.json"
    path.write_text(json.dumps(report, indent=2, default=str))
    print(render(report, found))
    print(f"\n{len(found)} targets, {sum(bool(t.passed) for t in found)} PASS; {report['seconds']} s; JSON: {path}")
    return 0 if all(t.passed for t in found) else 1


if __name__ == "__main__":
    sys.exit(main())
