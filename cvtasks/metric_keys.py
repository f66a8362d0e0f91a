"""Each task's metric keys, declared once: which stage writes which keys.

A task declares ``keys = MetricKeys({stage: (pattern, ...)})``. A pattern is a key, or a key
with ``*`` standing for one varying part of a name (a class, a model, a seed), never for a
``/`` (``test/class/*/recall`` holds ``test/class/shirt/recall``, not
``test/class/shirt/val/recall``), and ``{a,b}`` for one of a listed few (``{val,test}/tpr``).
A pattern that starts with ``?`` is optional: allowed, but a run may leave it out (a figure
that is infinite on this data, or the one score of several that the config makes the headline). A stage's timer (``time/<stage>_s``) is declared by the stage
itself. ``Task.record`` refuses a key that its stage has not declared; tests/test_metric_keys.py
checks that the findings read only declared keys and that a full run writes every declared one.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


class UndeclaredMetricError(KeyError):
    """A stage recorded a key that its task's declaration does not give to that stage."""


def _expand(pattern: str) -> list[str]:
    """``{a,b}/x_{c,d}`` -> ``a/x_c``, ``a/x_d``, ``b/x_c``, ``b/x_d``: each listed key on its own,
    so that a run that writes one of them does not pass for the others."""
    match = re.search(r"\{([^}]*)\}", pattern)
    if match is None:
        return [pattern]
    return [expanded for name in match.group(1).split(",")
            for expanded in _expand(pattern[:match.start()] + name + pattern[match.end():])]


def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile("".join("[^/]+" if part == "*" else re.escape(part) for part in re.split(r"(\*)", pattern)))


def one_of(names: Iterable[str]) -> str:
    """``{a,b,c}``: a pattern part for one of the given names."""
    return "{" + ",".join(names) + "}"


@dataclass(frozen=True)
class MetricKeys:
    """stage name -> the key patterns that stage writes."""

    by_stage: Mapping[str, tuple[str, ...]]
    _compiled: dict[str, list[tuple[str, re.Pattern[str]]]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        compiled = {stage: [(p, _regex(p.lstrip("?"))) for pattern in (*patterns, f"time/{stage}_s")
                            for p in _expand(pattern)]
                    for stage, patterns in self.by_stage.items()}
        object.__setattr__(self, "_compiled", compiled)

    def stages_of(self, key: str) -> list[str]:
        """The stages whose declaration holds ``key`` (one, for a well-formed declaration)."""
        return [stage for stage, pats in self._compiled.items() if any(rx.fullmatch(key) for _, rx in pats)]

    def check(self, stage: str | None, keys: Iterable[str]) -> None:
        """Raise UndeclaredMetricError for a key that ``stage`` (any stage, when None) does not declare."""
        for key in keys:
            owners = self.stages_of(key)
            if not owners or (stage is not None and stage not in owners):
                where = f"stage {stage!r}" if stage else "any stage"
                raise UndeclaredMetricError(f"metric {key!r} is not declared for {where}; declare it in the "
                                            "task's keys module (cvtasks/<task>/keys.py)")

    def unwritten(self, keys: Iterable[str]) -> dict[str, list[str]]:
        """stage -> its required (not ``?``) patterns that no key of ``keys`` matches."""
        keys = list(keys)
        return {stage: missing for stage, pats in self._compiled.items()
                if (missing := [p for p, rx in pats if not p.startswith("?") and not any(rx.fullmatch(k) for k in keys)])}

