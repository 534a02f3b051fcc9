"""The colours and meanings of the profile's kinds, shared by the HTML page and the PNG.

Every kind in one picture must be told apart at a glance, and every kind must say what it is.
Colours are compared in CIELAB (ΔE*ab, 1976): about 2.3 is the smallest difference an eye
notices side by side, and bars of a timeline are judged across the picture, so the fixed
colours are at least 20 apart and a kind without a fixed colour gets, among a pool of
candidates, the one farthest from every colour already used in the picture.  (Before, every
unlisted iRODS API was hashed into one band of pinks: AUTHENTICATION_APN and GEN_QUERY_AN
came out 5 ΔE apart.)
"""

from __future__ import annotations

import colorsys
import math
import re
from functools import lru_cache
from typing import Iterable

OTHER = "other"
IRODS_PREFIX = "irods:"

#: The engine's kinds (hpcingest.profile.recorder spans) and what each one is.
ENGINE_KINDS: dict[str, tuple[str, str]] = {
    "idle": ("#c2c2c2", "no work: waiting for work or for the end"),
    "steal": ("#737373", "asking other ranks for work, or handing it over"),
    "list": ("#1f77b4", "listing directories"),
    "stat": ("#17becf", "statting a batch of names"),
    "sink": ("#2ca02c", "deciding and acting on a batch, outside the calls below"),
    "state": ("#9467bd", "sync state: reading and recording last-sync times"),
    "catalog": ("#8c564b", "one catalog query per batch, outside its iRODS requests"),
    "hook": ("#bcbd22", "event-handler hooks"),
    "delete": ("#17304f", "delete mode: removing what left the source"),
    "throttle": ("#c6b3e6", "waiting under --max_rate"),
    OTHER: ("#fdf5dc", "not recorded: interpreter, MPI and engine bookkeeping"),
}
#: The iRODS APIs an ingest calls most, by name without the _AN/_APN suffix.
IRODS_KINDS: dict[str, str] = {
    "PHY_PATH_REG": "#d62728",
    "DATA_OBJ_PUT": "#ff7f0e",
    "GEN_QUERY": "#e377c2",
    "AUTHENTICATION": "#ffd23f",
    "COLL_CREATE": "#7a0019",
    "MOD_AVU_METADATA": "#ff9896",
    "MOD_DATA_OBJ_META": "#b8006b",
    "OBJ_STAT": "#f4c2a1",
    "DATA_OBJ_UNLINK": "#3d1f00",
    "DATA_OBJ_CHKSUM": "#8a7a00",
    "RM_COLL": "#4d004d",
}
IRODS_MEANING = "one iRODS API request, from sending it to its reply"
_SUFFIX = re.compile(r"_(AN|APN|PN)$")


def _api(kind: str) -> str:
    return _SUFFIX.sub("", kind[len(IRODS_PREFIX):])


def fixed_color(kind: str) -> str | None:
    if kind in ENGINE_KINDS:
        return ENGINE_KINDS[kind][0]
    if kind.startswith(IRODS_PREFIX):
        return IRODS_KINDS.get(_api(kind))
    return None


def kind_meaning(kind: str) -> str:
    """What a kind of the picture is, in a few words (legends, tooltips)."""
    if kind in ENGINE_KINDS:
        return ENGINE_KINDS[kind][1]
    if kind.startswith(IRODS_PREFIX):
        return IRODS_MEANING
    return "recorded by a newer hpcingest than this legend knows"


def _lab(color: str) -> tuple[float, float, float]:
    """CIELAB of an sRGB "#rrggbb" (D65)."""
    def linear(channel: float) -> float:
        return channel / 12.92 if channel <= 0.04045 else ((channel + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(int(color[i:i + 2], 16) / 255) for i in (1, 3, 5))
    x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047
    y = 0.2126 * r + 0.7152 * g + 0.0722 * b
    z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883

    def f(t: float) -> float:
        return t ** (1 / 3) if t > 0.008856 else 7.787 * t + 16 / 116

    return 116 * f(y) - 16, 500 * (f(x) - f(y)), 200 * (f(y) - f(z))


def color_difference(first: str, second: str) -> float:
    """ΔE*ab between two "#rrggbb" colours."""
    return math.dist(_lab(first), _lab(second))


@lru_cache(maxsize=1)
def _candidates() -> tuple[tuple[str, tuple[float, float, float]], ...]:
    """The pool colours for kinds without a fixed one: a grid of hues, lightnesses and saturations."""
    pool = []
    for lightness in (0.28, 0.42, 0.56, 0.7, 0.82):
        for saturation in (0.55, 0.9):
            for hue in range(0, 360, 12):
                rgb = colorsys.hls_to_rgb(hue / 360, lightness, saturation)
                color = "#{:02x}{:02x}{:02x}".format(*(round(c * 255) for c in rgb))
                pool.append((color, _lab(color)))
    return tuple(pool)


def palette(kinds: Iterable[str]) -> dict[str, str]:
    """A colour for each kind of one picture: the fixed ones, and for the rest (in name order)
    the candidate farthest from every fixed colour and every colour given so far."""
    kinds = list(dict.fromkeys(kinds))
    colors = {kind: fixed_color(kind) for kind in kinds}
    used = [_lab(color) for color, _ in ENGINE_KINDS.values()] + [_lab(color) for color in IRODS_KINDS.values()]
    for kind in sorted(kind for kind, color in colors.items() if color is None):
        color, lab = max(_candidates(), key=lambda c: (min(math.dist(c[1], u) for u in used), c[0]))
        colors[kind] = color
        used.append(lab)
    return colors  # type: ignore[return-value]


def kind_color(kind: str) -> str:
    """The colour of a kind drawn on its own (in a picture, use :func:`palette`)."""
    return palette([kind])[kind]
