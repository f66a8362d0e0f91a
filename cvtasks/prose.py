"""Small helpers of the findings modules: figures as text, read from a metrics dict."""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any


def slug(text: str) -> str:
    """A class or strategy name as a metric-key part: ``T-shirt/top`` -> ``t_shirt_top``."""
    return re.sub(r"[^a-z0-9]+", "_", str(text).lower()).strip("_")


def num(m: Mapping[str, Any], key: str, fmt: str = ".3f") -> str:
    """``m[key]`` formatted, or ``n/a`` when the run has no such figure."""
    return format(m[key], fmt) if key in m else "n/a"


def ci(m: Mapping[str, Any], key: str, fmt: str = ".3f") -> str:
    """``value [low, high]`` when the run recorded the 95 % interval of ``key``, else the value."""
    if key in m and f"{key}_ci_low" in m and f"{key}_ci_high" in m:
        return f"{m[key]:{fmt}} [{m[key + '_ci_low']:{fmt}}, {m[key + '_ci_high']:{fmt}}]"
    return num(m, key, fmt)
