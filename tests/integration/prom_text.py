"""A small, strict parser for the Prometheus text exposition format 0.0.4.

Checks what a scraper relies on: HELP/TYPE lines (at most one each per family, TYPE before
the family's samples), sample syntax `name{label="value",...} value [timestamp]`, label
escaping, no duplicate series, each family's lines grouped together, sample names that fit
the family's type, and for histograms: `le` labels strictly increasing and ending with
+Inf, cumulative bucket counts, and `_count` equal to the +Inf bucket.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
FLOAT = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|[+-]?Inf|NaN")
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")


class ExpositionError(AssertionError):
    pass


@dataclass
class Sample:
    name: str
    labels: dict
    value: float


@dataclass
class Family:
    name: str
    type: str = "untyped"
    help: str | None = None
    typed: bool = False
    samples: list = field(default_factory=list)

    def series(self, suffix: str = "", **labels) -> list[Sample]:
        """Samples named name+suffix whose labels include `labels`."""
        return [s for s in self.samples if s.name == self.name + suffix and
                all(s.labels.get(k) == v for k, v in labels.items())]

    def total(self, suffix: str = "", **labels) -> float:
        return sum(s.value for s in self.series(suffix, **labels))


def parse_float(text: str, where: str) -> float:
    if not FLOAT.fullmatch(text):
        raise ExpositionError(f"{where}: bad number {text!r}")
    return float(text.replace("Inf", "inf"))


def parse_labels(text: str, pos: int, where: str) -> tuple[dict, int]:
    """Parses `{a="b",...}` starting at text[pos] == '{'; returns (labels, index after '}')."""
    labels: dict[str, str] = {}
    pos += 1
    while True:
        if pos < len(text) and text[pos] == "}":
            return labels, pos + 1
        match = LABEL_NAME.match(text, pos)
        if not match:
            raise ExpositionError(f"{where}: bad label name at column {pos}")
        name = match.group(0)
        pos = match.end()
        if text[pos:pos + 2] != '="':
            raise ExpositionError(f"{where}: expected =\" after label {name}")
        pos += 2
        value = []
        while True:
            if pos >= len(text):
                raise ExpositionError(f"{where}: unterminated label value")
            ch = text[pos]
            if ch == "\\":
                escaped = text[pos + 1:pos + 2]
                if escaped not in ("\\", '"', "n"):
                    raise ExpositionError(f"{where}: bad escape \\{escaped} in label value")
                value.append("\n" if escaped == "n" else escaped)
                pos += 2
            elif ch == '"':
                pos += 1
                break
            elif ch == "\n":
                raise ExpositionError(f"{where}: newline in label value")
            else:
                value.append(ch)
                pos += 1
        if name in labels:
            raise ExpositionError(f"{where}: duplicate label {name}")
        labels[name] = "".join(value)
        if pos < len(text) and text[pos] == ",":
            pos += 1
        elif pos < len(text) and text[pos] == "}":
            continue
        else:
            raise ExpositionError(f"{where}: expected , or }} after label {name}")


def family_of(name: str, families: dict) -> str:
    """The family a sample belongs to: histogram/summary samples carry a suffix."""
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix):
            base = families.get(name[:-len(suffix)])
            if base is not None and base.type in ("histogram", "summary"):
                if suffix == "_bucket" and base.type == "summary":
                    raise ExpositionError(f"{name}: summaries have no _bucket samples")
                return base.name
    return name


def parse(text: str) -> dict[str, Family]:
    if text and not text.endswith("\n"):
        raise ExpositionError("exposition does not end with a newline")
    families: dict[str, Family] = {}
    finished: set[str] = set()  # families whose group of lines has ended
    current: str | None = None
    seen_series: set = set()

    def enter(name: str, where: str) -> None:
        nonlocal current
        if current != name:
            if name in finished:
                raise ExpositionError(f"{where}: lines of {name} are not grouped together")
            if current is not None:
                finished.add(current)
            current = name

    for number, line in enumerate(text.split("\n")[:-1] if text else [], start=1):
        where = f"line {number}"
        if not line.strip():
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 2 and parts[1] in ("HELP", "TYPE"):
                if len(parts) < 3 or not METRIC_NAME.fullmatch(parts[2]):
                    raise ExpositionError(f"{where}: bad {parts[1]} line {line!r}")
                name = parts[2]
                enter(name, where)
                family = families.setdefault(name, Family(name))
                if parts[1] == "HELP":
                    if family.help is not None:
                        raise ExpositionError(f"{where}: second HELP for {name}")
                    doc = parts[3] if len(parts) > 3 else ""
                    if re.search(r"\\(?!n)", doc.replace("\\\\", "")):
                        raise ExpositionError(f"{where}: bad escape in HELP of {name}")
                    family.help = doc
                else:
                    kind = parts[3].strip() if len(parts) > 3 else ""
                    if kind not in TYPES:
                        raise ExpositionError(f"{where}: bad type {kind!r} for {name}")
                    if family.typed:
                        raise ExpositionError(f"{where}: second TYPE for {name}")
                    if family.samples:
                        raise ExpositionError(f"{where}: TYPE of {name} after its samples")
                    family.type, family.typed = kind, True
            continue
        match = METRIC_NAME.match(line)
        if not match:
            raise ExpositionError(f"{where}: bad metric name in {line!r}")
        name = match.group(0)
        pos = match.end()
        labels: dict = {}
        if pos < len(line) and line[pos] == "{":
            labels, pos = parse_labels(line, pos, where)
        rest = line[pos:]
        if not rest.startswith(" "):
            raise ExpositionError(f"{where}: expected a space before the value in {line!r}")
        fields = rest.split()
        if len(fields) not in (1, 2):
            raise ExpositionError(f"{where}: expected `value [timestamp]` in {line!r}")
        value = parse_float(fields[0], where)
        if len(fields) == 2 and not re.fullmatch(r"-?\d+", fields[1]):
            raise ExpositionError(f"{where}: bad timestamp {fields[1]!r}")
        base = family_of(name, families)
        enter(base, where)
        family = families.setdefault(base, Family(base))
        if family.type in ("counter", "gauge", "untyped") and name != base:
            raise ExpositionError(f"{where}: sample {name} in {family.type} family {base}")
        if family.type == "histogram" and name == base:
            raise ExpositionError(f"{where}: histogram sample {name} needs a suffix")
        if family.type == "counter" and (math.isnan(value) or value < 0):
            raise ExpositionError(f"{where}: counter {name} has value {value}")
        series = (name, tuple(sorted(labels.items())))
        if series in seen_series:
            raise ExpositionError(f"{where}: duplicate series {name}{labels}")
        seen_series.add(series)
        family.samples.append(Sample(name, labels, value))

    for family in families.values():
        if family.type == "histogram":
            check_histogram(family)
    return families


def check_histogram(family: Family) -> None:
    groups: dict[tuple, dict] = {}
    for s in family.samples:
        key = tuple(sorted((k, v) for k, v in s.labels.items() if k != "le"))
        group = groups.setdefault(key, {"buckets": [], "sum": None, "count": None})
        if s.name.endswith("_bucket"):
            if "le" not in s.labels:
                raise ExpositionError(f"{family.name}_bucket{s.labels} has no le label")
            group["buckets"].append((parse_float(s.labels["le"], family.name), s.value))
        elif s.name.endswith("_sum"):
            group["sum"] = s.value
        else:
            group["count"] = s.value
    for key, group in groups.items():
        where = f"{family.name}{dict(key)}"
        buckets = group["buckets"]
        if not buckets or buckets[-1][0] != math.inf:
            raise ExpositionError(f"{where}: buckets must end with le=\"+Inf\"")
        for (le_a, n_a), (le_b, n_b) in zip(buckets, buckets[1:]):
            if not le_a < le_b:
                raise ExpositionError(f"{where}: le not increasing ({le_a} then {le_b})")
            if n_b < n_a:
                raise ExpositionError(f"{where}: bucket counts not cumulative at le={le_b}")
        if group["count"] is None or group["sum"] is None:
            raise ExpositionError(f"{where}: missing _count or _sum")
        if group["count"] != buckets[-1][1]:
            raise ExpositionError(f"{where}: _count {group['count']} != +Inf bucket "
                                  f"{buckets[-1][1]}")
