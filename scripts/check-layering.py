#!/usr/bin/env python3
"""Fails when a library of src/ includes a header of a library it does not link.

The layers of docs/architecture.md are the CMake targets of src/: a target's headers are
the .h files in the folders of its sources. A file of target T may include a header of
target U only if U is T, a library T links (PUBLIC or PRIVATE), or a library those link
PUBLIC, transitively: what the compiler would see if each target had only its own and its
dependencies' include directories. Headers of no target (none today) may not be included.

Usage: check-layering.py [--graph]    (from the repository root)
  --graph  prints each target's direct links: the block of docs/architecture.md between
           the link-lists markers, which must match it.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

SRC = Path("src")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def parse_cmake() -> tuple[dict, dict, dict]:
    """Returns (sources by target, public deps, private deps) for the targets of src/."""
    sources, public, private = {}, {}, {}
    for cmake in sorted(SRC.rglob("CMakeLists.txt")):
        text = re.sub(r"#[^\n]*", "", cmake.read_text())
        for m in re.finditer(r"add_(?:library|executable)\s*\(([^)]*)\)", text):
            words = m.group(1).split()
            name = words[0]
            files = [w for w in words[1:] if w.endswith((".cc", ".h"))]
            sources[name] = [cmake.parent / f for f in files]
            public.setdefault(name, set())
            private.setdefault(name, set())
        for m in re.finditer(r"target_link_libraries\s*\(([^)]*)\)", text):
            words = m.group(1).split()
            name, mode = words[0], "PUBLIC"
            for w in words[1:]:
                if w in ("PUBLIC", "PRIVATE", "INTERFACE"):
                    mode = w
                elif w.startswith("cairn"):
                    (private if mode == "PRIVATE" else public).setdefault(name, set()).add(w)
    return sources, public, private


def main(argv: list[str]) -> int:
    sources, public, private = parse_cmake()
    owner = {}  # header path relative to src/ -> target
    for target, files in sources.items():
        for folder in {f.parent for f in files}:
            for header in folder.glob("*.h"):
                owner[str(header.relative_to(SRC))] = target

    def public_closure(target: str, seen: set) -> set:
        for dep in public.get(target, ()):
            if dep not in seen:
                seen.add(dep)
                public_closure(dep, seen)
        return seen

    graph = []
    for target in sorted(sources):
        deps = sorted(public.get(target, set()) | private.get(target, set()))
        graph.append(f"{target}: {' '.join(deps)}".rstrip())
    if "--graph" in argv:
        print("\n".join(graph))
        return 0

    problems = []
    doc = Path("docs/architecture.md").read_text()
    block = re.search(r"<!-- link-lists:begin -->\s*```\n(.*?)```\s*<!-- link-lists:end -->", doc,
                      re.S)
    documented = [line.rstrip() for line in block.group(1).splitlines()] if block else []
    if documented != graph:
        problems.append("docs/architecture.md's link lists differ from the CMake files; "
                        "replace the block with the output of scripts/check-layering.py --graph:\n"
                        + "\n".join(f"  - {line}" for line in documented if line not in graph)
                        + "\n" + "\n".join(f"  + {line}" for line in graph if line not in documented))
    for target, files in sorted(sources.items()):
        allowed = {target}
        for dep in public.get(target, set()) | private.get(target, set()):
            allowed.add(dep)
            public_closure(dep, allowed)
        headers = {h for f in files for h in f.parent.glob("*.h")}
        for path in sorted(set(files) | headers):
            if not path.exists():
                continue
            for include in INCLUDE.findall(path.read_text(errors="replace")):
                if not (SRC / include).exists():
                    continue  # a path relative to the file (tests' helpers) or generated
                header_owner = owner.get(include)
                if header_owner is None:
                    problems.append(f"{path}: includes {include}, which belongs to no target")
                elif header_owner not in allowed:
                    problems.append(f"{path} ({target}): includes {include} of {header_owner}, "
                                    f"which {target} does not link")
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} include(s) across the layers; link the library or move the "
              "code (docs/architecture.md)", file=sys.stderr)
        return 1
    print(f"layering: {len(sources)} targets, every include is of a linked library")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
