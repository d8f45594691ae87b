"""Shrink a crashing input while it keeps failing the same way (same :func:`signature`).

Usage: ``python fuzz/minimize.py <target> <input> <output>``. Pure Python (no atheris): it cuts
byte ranges out, halving their size (ddmin), then simplifies the bytes that remain.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from fuzz import targets  # noqa: E402


def failure(target: str, data: bytes) -> str | None:
    try:
        targets.TARGETS[target](data)
    except Exception as exc:
        return targets.signature(exc)
    return None


def minimize(target: str, data: bytes) -> bytes:
    want = failure(target, data)
    if want is None:
        raise ValueError("the input does not fail")
    size = max(len(data) // 2, 1)
    while size >= 1:
        at = 0
        while at < len(data):
            trial = data[:at] + data[at + size :]
            if failure(target, trial) == want:
                data = trial
            else:
                at += size
        size //= 2
    for at in range(len(data)):  # simplest bytes: 0, then "A"
        for value in (0, 0x41):
            if data[at] != value:
                trial = data[:at] + bytes([value]) + data[at + 1 :]
                if failure(target, trial) == want:
                    data = trial
                    break
    return data


def main() -> None:
    if len(sys.argv) != 4 or sys.argv[1] not in targets.TARGETS:
        print(f"usage: {sys.argv[0]} <target> <input> <output>", file=sys.stderr)
        raise SystemExit(2)
    target, source, dest = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    data = source.read_bytes()
    small = minimize(target, data)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(small)
    print(f"{len(data)} -> {len(small)} bytes: {failure(target, small)}")


if __name__ == "__main__":
    main()
