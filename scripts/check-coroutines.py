#!/usr/bin/env python3
"""Fails on the coroutine patterns that GCC 12 with Boost 1.74 miscompiles.

The rules and why they exist are in docs/architecture.md ("Coroutine rules"). Inside the
body of a coroutine (a function or lambda whose own body, not a nested lambda's, holds
co_await, co_return or co_yield) this refuses:

  binding   a structured binding (`auto [a, b] = ...`, also in range-for);
  catch     co_await inside a catch block;
  temporary a lambda or a braced temporary inside a co_await expression;
  literals  a braced list of two or more string literals (an initializer list of them).

Usage: check-coroutines.py [FILE_OR_DIR ...]   (default: src tests)
A finding is waived by a comment `// coroutine-ok: <reason>` on its line or the line above.
Exit status 1 when anything is found, with one line per finding.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

CO_KEYWORD = re.compile(r"\bco_(await|return|yield)\b")
BINDING = re.compile(r"\bauto\s*(?:&&?|const\s*&?)?\s*\[")
LAMBDA_INTRO = re.compile(r"\[[^\[\]]*\]\s*(?:\(|\{|mutable\b)")
LITERAL_LIST = re.compile(r'\{\s*"(?:[^"\\]|\\.)*"\s*,\s*"')
CATCH = re.compile(r"\bcatch\s*\(")
STATIC_TABLE = re.compile(r"\bstatic\b[^;{}]*=\s*\{")
OPT_OUT = "coroutine-ok:"


def blank_out(text: str) -> str:
    """Comments become spaces and string/char literal contents become 'x', keeping every
    offset and newline, so that braces and keywords inside them do not count."""
    out = list(text)
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            for k in range(i, j):
                out[k] = " "
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            for k in range(i, j):
                if out[k] != "\n":
                    out[k] = " "
            i = j
        elif c == 'R' and text.startswith('R"', i) and (i == 0 or not text[i - 1].isalnum()):
            m = re.match(r'R"([^(\s]*)\(', text[i:])
            if not m:
                i += 1
                continue
            end = text.find(")" + m.group(1) + '"', i)
            end = n if end < 0 else end + len(m.group(1)) + 2
            for k in range(i + len(m.group(0)), end - len(m.group(1)) - 2):
                if out[k] != "\n":
                    out[k] = "x"
            i = end
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            for k in range(i + 1, min(j, n)):
                out[k] = "x"
            i = j + 1
        else:
            i += 1
    return "".join(out)


def match_braces(code: str) -> dict[int, int]:
    pairs, stack = {}, []
    for i, c in enumerate(code):
        if c == "{":
            stack.append(i)
        elif c == "}" and stack:
            pairs[stack.pop()] = i
    return pairs


BODY_PREFIX = re.compile(
    r"\)\s*(?:const\s*|mutable\s*|noexcept\s*|override\s*|final\s*|&\s*)*"
    r"(?:->\s*[\w:<>,\s*&]+?)?\s*$")


def function_bodies(code: str, pairs: dict[int, int]) -> list[tuple[int, int]]:
    """(open, close) of every block that looks like a function or lambda body: a brace
    right after a parameter list (and qualifiers or a trailing return type). Control
    statements (if/for/while/switch/catch) are told apart by the word before '('."""
    bodies = []
    for open_at, close_at in pairs.items():
        head = code[max(0, open_at - 300):open_at]
        if not BODY_PREFIX.search(head):
            continue
        # Find the '(' matching the ')' that ends the parameter list.
        paren = head.rfind(")")
        depth, k = 0, paren
        while k >= 0:
            if head[k] == ")":
                depth += 1
            elif head[k] == "(":
                depth -= 1
                if depth == 0:
                    break
            k -= 1
        before = head[:k].rstrip() if k >= 0 else ""
        word = re.search(r"(\w+)\s*$", before)
        if word and word.group(1) in ("if", "for", "while", "switch", "catch", "return",
                                      "sizeof", "decltype", "alignof", "static_assert"):
            continue
        bodies.append((open_at, close_at))
    return bodies


def own_ranges(body: tuple[int, int], inner: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The parts of `body` outside the function bodies nested directly in it."""
    ranges, start = [], body[0]
    for open_at, close_at in sorted(inner):
        if open_at < start:
            continue
        ranges.append((start, open_at))
        start = close_at + 1
    ranges.append((start, body[1] + 1))
    return ranges


def co_await_expressions(code: str, start: int, end: int):
    for m in re.finditer(r"\bco_await\b", code[start:end]):
        at = start + m.start()
        depth, k = 0, at
        while k < end:
            c = code[k]
            if c in "([{":
                depth += 1
            elif c in ")]}":
                if depth == 0:
                    break
                depth -= 1
            elif c == ";" and depth == 0:
                break
            k += 1
        yield at, code[at:k]


def check_file(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8", errors="replace")
    if "co_" not in text:
        return []
    lines = text.split("\n")
    code = blank_out(text)
    pairs = match_braces(code)
    bodies = function_bodies(code, pairs)
    findings = []

    def report(offset: int, rule: str, what: str) -> None:
        line_no = code.count("\n", 0, offset) + 1
        if OPT_OUT in lines[line_no - 1] or (line_no >= 2 and OPT_OUT in lines[line_no - 2]):
            return
        findings.append(f"{path}:{line_no}: {rule}: {what}")

    for body in bodies:
        nested = [b for b in bodies if body[0] < b[0] and b[1] < body[1]]
        direct = [b for b in nested
                  if not any(o[0] < b[0] and b[1] < o[1] for o in nested if o != b)]
        ranges = own_ranges(body, direct)
        if not any(CO_KEYWORD.search(code, s, e) for s, e in ranges):
            continue
        for s, e in ranges:
            for m in BINDING.finditer(code, s, e):
                report(m.start(), "binding", "structured binding in a coroutine")
            # A static table is constant-initialized once, outside any coroutine frame.
            static_tables = []
            for m in STATIC_TABLE.finditer(code, s, e):
                brace = m.end() - 1
                static_tables.append((brace, pairs.get(brace, brace)))
            for m in LITERAL_LIST.finditer(code, s, e):
                if any(a <= m.start() <= b for a, b in static_tables):
                    continue
                report(m.start(), "literals", "braced list of string literals in a coroutine")
            for at, expression in co_await_expressions(code, s, e):
                rest = expression[len("co_await"):]
                if LAMBDA_INTRO.search(rest):
                    report(at, "temporary", "lambda temporary inside co_await")
                elif "{" in rest:
                    report(at, "temporary", "braced temporary inside co_await")
            for m in CATCH.finditer(code, s, e):
                brace = code.find("{", m.end())
                if brace < 0 or brace not in pairs:
                    continue
                handler_end = pairs[brace]
                inner = re.search(r"\bco_await\b", code[brace:handler_end])
                if inner:
                    report(brace + inner.start(), "catch", "co_await inside a catch block")
    return sorted(set(findings))


SELF_TEST = """
Awaitable<void> F(int x) {
  auto [a, b] = Pair();
  try { Foo(); } catch (const std::exception& e) { co_await Bar(); }
  co_await Send(call, {404, "x"});
  co_await pool->Run([x]() { return x; });
  auto list = std::vector<std::string>{"a", "b"};
  static const char* kTable[][2] = {{"a", "b"}};
  auto plain = [](int y) { auto [c, d] = Pair(); return c; };
  co_await pool->Run(work);  // coroutine-ok: waived
  co_await Send(call, MakeFailure(404, "x"));
  co_return;
}
void G() { auto [a, b] = Pair(); }
"""
SELF_TEST_EXPECTED = ["3: binding", "4: catch", "5: temporary", "6: temporary", "7: literals"]


def self_test() -> int:
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sample.cc"
        path.write_text(SELF_TEST)
        got = [f.split(":", 1)[1].split(":", 2) for f in check_file(path)]
        got = [f"{line}:{rule}" for line, rule, _ in got]
    if got != SELF_TEST_EXPECTED:
        print(f"self-test failed: expected {SELF_TEST_EXPECTED}, got {got}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str]) -> int:
    if self_test() != 0:
        return 1
    roots = [Path(a) for a in argv] or [Path("src"), Path("tests")]
    files = []
    for root in roots:
        if root.is_file():
            files.append(root)
        else:
            files.extend(p for p in sorted(root.rglob("*")) if p.suffix in (".cc", ".h"))
    findings = []
    for path in files:
        findings.extend(check_file(path))
    for finding in findings:
        print(finding)
    if findings:
        print(f"{len(findings)} coroutine rule violation(s); see docs/architecture.md "
              "(Coroutine rules)", file=sys.stderr)
        return 1
    print(f"coroutine rules: {len(files)} files clean")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
