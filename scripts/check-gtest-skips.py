#!/usr/bin/env python3
"""Fails when a GoogleTest test was skipped (GTEST_SKIP, which ctest reports as "Skipped"
through gtest_discover_tests' SKIP_REGULAR_EXPRESSION) or disabled and is not on the
allow-list, tests/skip-allowlist.txt (entries `gtest::<Suite>.<Test pattern>  # reason`).

Usage: check-gtest-skips.py JUNIT.xml...  (written by `ctest --output-junit JUNIT.xml`)
CAIRN_SKIP_GUARD=warn prints the unlisted skips without failing (local runs only).
"""
from __future__ import annotations

import os
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))

import skipguard  # noqa: E402


def skipped_tests(junit: Path) -> list[tuple[str, str]]:
    """(test name, reason) of every test ctest did not run to a pass or a failure."""
    out = []
    for case in ET.parse(junit).getroot().iter("testcase"):
        status = case.get("status", "")
        skipped = case.find("skipped")
        if status not in ("notrun", "disabled") and skipped is None:
            continue
        reason = skipped.get("message", "") if skipped is not None else status
        text = (case.findtext("system-out") or "").splitlines()
        for i, line in enumerate(text):  # GTEST_SKIP's message follows "<file>:<line>: Skipped"
            if line.endswith(": Skipped") and i + 1 < len(text):
                reason = text[i + 1].strip()
                break
        out.append((case.get("name", "?"), reason))
    return out


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        entries = skipguard.load_allowlist()
    except (OSError, skipguard.AllowListError) as e:
        print(f"gtest skip guard: the allow-list is invalid: {e}", file=sys.stderr)
        return 2
    skips = []
    for name in argv[1:]:
        skips += skipped_tests(Path(name))
    unlisted = [(t, why) for t, why in skips if not skipguard.allowed(f"gtest::{t}", entries)]
    listed = len(skips) - len(unlisted)
    print(f"gtest skip guard: {len(skips)} skipped, {listed} on {skipguard.ALLOWLIST.name}, "
          f"{len(unlisted)} not")
    for test, why in unlisted:
        print(f"UNLISTED SKIP gtest::{test}  ({why})")
    if unlisted:
        print(f"Fix the cause of the skip, or add 'gtest::<Suite>.<Test>  # <reason>' to "
              f"{skipguard.ALLOWLIST}.")
        if os.environ.get("CAIRN_SKIP_GUARD") != "warn":
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
