"""Summarise an Autobahn fuzzingclient run (``wstest -m fuzzingclient``).

    python bench/autobahn/summarize.py [REPORT_DIR] [--details]

Reads ``REPORT_DIR/index.json`` (default ``/tmp/autobahn-reports``) and prints, per agent, the
count of each result (OK / NON-STRICT / INFORMATIONAL / UNIMPLEMENTED / FAILED) and every case
that is not OK with its ``behavior`` and ``behaviorClose``. ``--details`` adds, from each such
case's own report, the suite's description, expectation and result text, the events the suite
received and the close code and reason the server sent.

Exit status: 0 when no case FAILED (for either its behavior or its closing behavior) and every
agent ran as many cases as the one that ran most; 1 otherwise; 2 when the index is missing.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

RESULTS = ("OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED")
DEFAULT_DIR = Path("/tmp/autobahn-reports")


def case_key(case_id: str) -> tuple[int, ...]:
    """``"7.13.2"`` -> ``(7, 13, 2)``, for a numeric sort."""
    return tuple(int(part) if part.isdigit() else 0 for part in case_id.split("."))


def load_index(report_dir: Path) -> dict[str, dict[str, dict[str, Any]]]:
    index: dict[str, dict[str, dict[str, Any]]] = json.loads(
        (report_dir / "index.json").read_text(encoding="utf-8")
    )
    return index


def summarize(report_dir: Path, details: bool = False) -> tuple[str, bool]:
    """The summary text, and whether any case FAILED or an agent's run is incomplete."""
    index = load_index(report_dir)
    lines: list[str] = []
    any_failed = False
    header = f"{'agent':<16}" + "".join(f"{name:>15}" for name in RESULTS) + f"{'total':>8}"
    lines += [header, "-" * len(header)]
    for agent in sorted(index):
        cases = index[agent]
        counts = dict.fromkeys(RESULTS, 0)
        for result in cases.values():
            behavior = result.get("behavior", "?")
            counts[behavior] = counts.get(behavior, 0) + 1
        lines.append(
            f"{agent:<16}"
            + "".join(f"{counts.get(n, 0):>15}" for n in RESULTS)
            + f"{len(cases):>8}"
        )
    expected_total = max((len(cases) for cases in index.values()), default=0)
    for agent in sorted(index):
        if len(index[agent]) < expected_total:
            any_failed = True
            lines.append(
                f"INCOMPLETE: {agent} has {len(index[agent])} of {expected_total} cases "
                "(the server stopped answering during the run?)"
            )
    for agent in sorted(index):
        cases = index[agent]
        odd = [
            cid
            for cid in sorted(cases, key=case_key)
            if cases[cid].get("behavior") != "OK" or cases[cid].get("behaviorClose") != "OK"
        ]
        lines.append("")
        lines.append(f"{agent}: {len(odd)} case(s) not OK")
        for cid in odd:
            result = cases[cid]
            behavior, closing = result.get("behavior"), result.get("behaviorClose")
            any_failed = any_failed or "FAILED" in (behavior, closing)
            lines.append(
                f"  {cid:<10} behavior={behavior:<14} behaviorClose={closing:<14} "
                f"remoteCloseCode={result.get('remoteCloseCode')} "
                f"duration={result.get('duration')}ms"
            )
            if details and result.get("reportfile"):
                report_path = report_dir / str(result["reportfile"])
                try:
                    report = json.loads(report_path.read_text(encoding="utf-8"))
                except (OSError, ValueError) as exc:
                    lines.append(f"      (report {report_path} unreadable: {exc})")
                    continue
                for field in ("description", "expectation", "result", "resultClose"):
                    text = " ".join(str(report.get(field, "")).split())
                    lines.append(f"      {field}: {text}")
                received = [event[:2] for event in report.get("received") or []]
                lines.append(f"      received: {received}")
                lines.append(
                    f"      server's close: {report.get('remoteCloseCode')} "
                    f"{report.get('remoteCloseReason')!r}"
                )
    return "\n".join(lines), any_failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("report_dir", nargs="?", type=Path, default=DEFAULT_DIR)
    parser.add_argument(
        "--details",
        action="store_true",
        help="quote each non-OK case's description, expectation and result",
    )
    args = parser.parse_args(argv)
    if not (args.report_dir / "index.json").is_file():
        print(f"no index.json in {args.report_dir}", file=sys.stderr)
        return 2
    text, any_failed = summarize(args.report_dir, args.details)
    print(text)
    return 1 if any_failed else 0


if __name__ == "__main__":
    sys.exit(main())
