"""A chandelier photo generator: nine brands, each a design language, several product models each.

No public chandelier data set exists, so the default data of Image.ipynb is drawn here with
PIL. What defines a brand is geometry: frame type (candle arms, sphere cage, rings, sputnik
rods, drums, crystal waterfall, lantern cage, empire bag), arm curve, tiers. What does not is
randomised per product model or per photo and shared across brands: the finish (brass,
chrome, black iron, gold), fabric and glass colours, lights on (glow) or off, camera
elevation and azimuth, scale and position, background (studio, ceiling, room), colour
temperature, blur, JPEG noise and partial crops. Colour alone therefore says little about the
brand, which is what makes the task worth a pretrained backbone.

Brand shares are imbalanced like a market (the largest brand has 5x the images of the
smallest) and two brands, "Lumen Royale" and "Bellecourt", are deliberately close: both
classic candle chandeliers on a baluster column; only the arm curve and the bowl differ.

Every image is drawn from a random generator seeded by (seed, brand, model, photo), so a data
set is deterministic by seed. Shapes are drawn at twice the size and reduced, for smooth
edges. ``load_chandeliers`` caches the rendered set under data/cache keyed by its settings.
"""
from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from cvtasks.cache import cached_arrays

GENERATOR_VERSION = 2   # bump when the drawing changes, so that caches are rebuilt
SUPERSAMPLE = 2         # shapes are drawn at this multiple of the image size, then reduced

FINISHES = {"brass": (176, 138, 62), "chrome": (192, 198, 208), "black iron": (42, 40, 40),
            "gold": (214, 174, 72)}
FABRICS = [(236, 228, 210), (246, 244, 238), (152, 146, 140), (44, 42, 44), (192, 172, 142),
           (118, 92, 74), (170, 60, 50), (70, 90, 120)]
GLASS = [(240, 238, 232), (208, 218, 224), (206, 146, 70), (124, 124, 130)]
WAX = [(242, 234, 214), (250, 250, 248), (232, 222, 196)]
CRYSTAL = (226, 234, 244)


# --- the scene: a camera, a canvas, a list of depth-sorted drawing operations ------------------
class Scene:
    """A canvas seen by an orbiting camera; 3D points (x, y up, z) project orthographically.

    Operations are queued with the depth of what they draw and painted back to front, so that
    the near arms of a chandelier hide the far ones. Light sources are collected for the glow.
    """

    def __init__(self, size: int, rng: np.random.Generator, *, centre: tuple[float, float],
                 scale: float, elevation: float, azimuth: float, lit: bool):
        self.size = size
        self.rng = rng
        self.cx, self.cy = centre
        self.u = scale                      # pixels per unit of chandelier radius
        self.ce, self.se = math.cos(elevation), math.sin(elevation)
        self.ca, self.sa = math.cos(azimuth), math.sin(azimuth)
        self.lit = lit
        self.ops: list[tuple[float, int, Callable[[ImageDraw.ImageDraw], None]]] = []
        self.lights: list[tuple[float, float, float, float]] = []   # x, y, radius, strength

    def p(self, x: float, y: float, z: float) -> tuple[float, float, float]:
        """Image position and depth (larger is nearer) of a 3D point."""
        xr = x * self.ca - z * self.sa
        zr = x * self.sa + z * self.ca
        return self.cx + self.u * xr, self.cy - self.u * (y * self.ce + zr * self.se), zr

    def polar(self, r: float, theta: float, h: float) -> tuple[float, float, float]:
        return self.p(r * math.cos(theta), h, r * math.sin(theta))

    def px(self, length: float, minimum: float = 1.0) -> int:
        """A length in units as a whole number of pixels (at least ``minimum``)."""
        return max(int(round(length * self.u)), int(minimum))

    def add(self, depth: float, op: Callable[[ImageDraw.ImageDraw], None]) -> None:
        self.ops.append((depth, len(self.ops), op))

    def paint(self, draw: ImageDraw.ImageDraw) -> None:
        for _, _, op in sorted(self.ops, key=lambda t: (t[0], t[1])):
            op(draw)
        self.ops.clear()

    # primitives -------------------------------------------------------------------------
    def polyline(self, points3d, color, width: float, depth: float | None = None) -> None:
        pts = [self.p(*q) for q in points3d]
        d = float(np.mean([q[2] for q in pts])) if depth is None else depth
        xy = [(q[0], q[1]) for q in pts]
        w = self.px(width)
        self.add(d, lambda dr: dr.line(xy, fill=shade(color, d), width=w, joint="curve"))

    def ring(self, r: float, h: float, color, width: float, depth: float = 0.0) -> None:
        """A horizontal circle, drawn as two halves so that things inside sit between them."""
        n = 48
        back = [(r * math.cos(t), h, r * math.sin(t)) for t in np.linspace(0, 2 * math.pi, n + 1)]
        pts = [self.p(*q) for q in back]
        far = [(x, y) for x, y, z in pts if z <= 0.05 * r]
        near = [(x, y) for x, y, z in pts if z >= -0.05 * r]
        w = self.px(width)
        if len(far) > 1:
            self.add(depth - 0.9 * r, lambda dr: dr.line(far, fill=shade(color, -0.6), width=w, joint="curve"))
        if len(near) > 1:
            self.add(depth + 0.9 * r, lambda dr: dr.line(near, fill=shade(color, 0.6), width=w, joint="curve"))

    def ball(self, x: float, y: float, z: float, radius: float, color, *, outline=None,
             highlight: bool = True) -> None:
        px, py, d = self.p(x, y, z)
        rr = max(radius * self.u, 1.0)
        box = (px - rr, py - rr, px + rr, py + rr)
        fill = shade(color, d)
        hl = (px - 0.45 * rr, py - 0.5 * rr, px - 0.05 * rr, py - 0.15 * rr)

        def op(dr):
            dr.ellipse(box, fill=fill, outline=outline)
            if highlight and rr > 3:
                dr.ellipse(hl, fill=mix(fill, (255, 255, 255), 0.6))
        self.add(d, op)

    def bowl(self, r: float, h: float, depth: float, color) -> None:
        """A half-sphere hanging under the rim circle of radius ``r`` at height ``h``."""
        px, py, _ = self.p(0, h, 0)
        rx, ry = r * self.u, max(abs(r * self.se) * self.u, 1.0)
        dy = depth * self.ce * self.u
        rim = (px - rx, py - ry, px + rx, py + ry)
        body = (px - rx, py - dy, px + rx, py + dy)

        def op(dr):
            dr.chord(body, 0, 180, fill=shade(color, 0.1))
            dr.ellipse(rim, fill=shade(color, -0.3), outline=shade(color, 0.5))
        self.add(0.05, op)

    def light(self, x: float, y: float, z: float, radius: float, strength: float = 1.0) -> None:
        if self.lit:
            px, py, _ = self.p(x, y, z)
            self.lights.append((px, py, radius * self.u, strength))

    # chandelier parts ---------------------------------------------------------------------
    def candle(self, x: float, y: float, z: float, height: float, wax, finish) -> None:
        px, py, d = self.p(x, y, z)
        w, h = 0.045 * self.u, height * self.u
        cup = (px - 2.2 * w, py - 0.6 * w, px + 2.2 * w, py + 0.6 * w)
        body = (px - w, py - h, px + w, py)
        flame_c = (255, 226, 150) if self.lit else (214, 214, 206)
        flame = (px - 0.8 * w, py - h - 2.6 * w, px + 0.8 * w, py - h + 0.2 * w)
        fin, wx = shade(finish, d), shade(wax, d)

        def op(dr):
            dr.rectangle(body, fill=wx)
            dr.ellipse(cup, fill=fin)
            dr.ellipse(flame, fill=flame_c)
        self.add(d + 0.01, op)
        self.light(x, y + height + 0.05, z, 0.16, 1.0)

    def drop(self, x: float, y: float, z: float, length: float, sparkle: bool) -> None:
        """A crystal pendant hanging from (x, y, z)."""
        px, py, d = self.p(x, y, z)
        h = max(length * self.u, 2.0)
        w = 0.32 * h
        poly = [(px, py), (px + w, py + 0.55 * h), (px, py + h), (px - w, py + 0.55 * h)]
        fill = shade(CRYSTAL, d)
        edge = (150, 160, 175)
        glint = (px - 0.3 * w, py + 0.35 * h, px + 0.1 * w, py + 0.6 * h)

        def op(dr):
            dr.polygon(poly, fill=fill, outline=edge)
            if sparkle:
                dr.ellipse(glint, fill=(255, 255, 255))
        self.add(d, op)

    def drum(self, h_top: float, h_bottom: float, r_top: float, r_bottom: float, fabric,
             x: float = 0.0, z: float = 0.0) -> None:
        """A fabric drum shade (a truncated cone) centred on (x, z)."""
        top = [self.p(x + r_top * math.cos(t), h_top, z + r_top * math.sin(t)) for t in np.linspace(0, 2 * math.pi, 33)]
        bot = [self.p(x + r_bottom * math.cos(t), h_bottom, z + r_bottom * math.sin(t)) for t in np.linspace(0, 2 * math.pi, 33)]
        d = self.p(x, 0.0, z)[2]
        xs = [q[0] for q in top + bot]
        left_t = min(top, key=lambda q: q[0])
        right_t = max(top, key=lambda q: q[0])
        left_b = min(bot, key=lambda q: q[0])
        right_b = max(bot, key=lambda q: q[0])
        near_b = [(q[0], q[1]) for q in bot if q[2] >= -1e-6]
        glow = 0.45 if self.lit else 0.0
        body = mix(shade(fabric, 0.2), (255, 236, 190), glow)
        rim = mix(shade(fabric, -0.5), (255, 240, 200), glow)
        inner = [(q[0], q[1]) for q in top]
        del xs

        def op(dr):
            dr.polygon(inner, fill=rim)
            dr.polygon([left_t[:2], right_t[:2], right_b[:2], left_b[:2]], fill=body)
            if len(near_b) > 1:
                dr.line(near_b, fill=body, width=max(int(0.02 * self.u), 1))
            dr.line([left_t[:2], left_b[:2]], fill=rim, width=max(int(0.012 * self.u), 1))
            dr.line([right_t[:2], right_b[:2]], fill=rim, width=max(int(0.012 * self.u), 1))
        self.add(d, op)
        self.light(x, h_bottom - 0.05, z, 0.6 * r_bottom + 0.1, 0.8)


def shade(color, depth: float) -> tuple[int, int, int]:
    """A colour lit a little more on the near side (depth in about [-1, 1])."""
    f = 0.82 + 0.22 * max(-1.0, min(1.0, depth))
    return tuple(int(max(0, min(255, c * f))) for c in color)


def mix(a, b, t: float) -> tuple[int, int, int]:
    return tuple(int(round(x + (y - x) * t)) for x, y in zip(a, b))


def bezier(p0, p1, p2, p3, n: int = 12) -> list[tuple[float, float]]:
    """Points of a cubic Bézier curve in the (radius, height) plane of an arm."""
    t = np.linspace(0, 1, n)[:, None]
    pts = ((1 - t) ** 3) * np.array(p0) + 3 * ((1 - t) ** 2) * t * np.array(p1) \
        + 3 * (1 - t) * t ** 2 * np.array(p2) + t ** 3 * np.array(p3)
    return [tuple(q) for q in pts]


def arm(scene: Scene, curve, theta: float, color, width: float) -> None:
    """A curve given in an arm's vertical plane, swung to angle ``theta`` around the axis."""
    c, s = math.cos(theta), math.sin(theta)
    scene.polyline([(r * c, h, r * s) for r, h in curve], color, width)


def column(scene: Scene, top: float, bottom: float, finish, knobs: list[tuple[float, float]]) -> None:
    """A baluster: a rod with knobs (height, radius) along it."""
    scene.polyline([(0, top, 0), (0, bottom, 0)], finish, 0.05, depth=0.0)
    for h, r in knobs:
        scene.ball(0, h, 0, r, finish)


# --- the brands ----------------------------------------------------------------------------------
# Each brand: sample_model(rng) -> a product model's fixed design; draw(scene, model).
def _classic_model(rng):
    return {"arms": int(rng.integers(5, 9)), "tiers": int(rng.choice([1, 1, 2])),
            "reach": rng.uniform(0.75, 1.0), "candle": rng.uniform(0.16, 0.28),
            "drops": bool(rng.random() < 0.5), "knobs": int(rng.integers(2, 4)),
            "wax": WAX[rng.integers(len(WAX))]}


def draw_lumen_royale(scene: Scene, m: dict, finish) -> None:
    """Classic: baluster column, S-arms rising from a ring, candles; a finial below."""
    column(scene, 0.9, -0.55, finish, [(0.55 - 0.3 * i, 0.07 + 0.03 * (i % 2)) for i in range(m["knobs"])])
    scene.ball(0, -0.62, 0, 0.06, finish)
    for tier in range(m["tiers"]):
        h0, reach = -0.1 + 0.42 * tier, m["reach"] * (1 - 0.35 * tier)
        n = m["arms"] - 2 * tier
        for i in range(n):
            th = 2 * math.pi * (i + 0.5 * tier) / n
            curve = bezier((0.05, h0), (0.55 * reach, h0 - 0.32), (0.9 * reach, h0 - 0.12), (reach, h0 + 0.14))
            arm(scene, curve, th, finish, 0.035)
            x, z = reach * math.cos(th), reach * math.sin(th)
            scene.candle(x, h0 + 0.14, z, m["candle"], m["wax"], finish)
            if m["drops"]:
                scene.drop(0.55 * reach * math.cos(th), h0 - 0.24, 0.55 * reach * math.sin(th), 0.12, scene.lit)


def draw_bellecourt(scene: Scene, m: dict, finish) -> None:
    """Close to Lumen Royale: baluster and candles, but J-arms dipping out of a bowl."""
    column(scene, 0.9, -0.2, finish, [(0.6 - 0.3 * i, 0.06 + 0.03 * (i % 2)) for i in range(m["knobs"] - 1)])
    scene.bowl(0.3, -0.25, 0.24, finish)
    for tier in range(m["tiers"]):
        h0, reach = -0.3 + 0.5 * tier, m["reach"] * (1 - 0.3 * tier)
        n = m["arms"] - 2 * tier
        for i in range(n):
            th = 2 * math.pi * (i + 0.5 * tier) / n
            curve = bezier((0.22, h0), (0.45 * reach, h0 - 0.45), (reach, h0 - 0.42), (reach, h0 + 0.12))
            arm(scene, curve, th, finish, 0.035)
            x, z = reach * math.cos(th), reach * math.sin(th)
            scene.candle(x, h0 + 0.12, z, m["candle"], m["wax"], finish)
            if m["drops"]:
                scene.drop(x, h0 - 0.05, z, 0.1, scene.lit)


def _orbis_model(rng):
    return {"meridians": int(rng.integers(3, 7)), "bands": int(rng.integers(1, 4)),
            "radius": rng.uniform(0.75, 1.0), "inner": str(rng.choice(["candles", "globe"])),
            "candles": int(rng.integers(3, 6)), "glass": GLASS[rng.integers(len(GLASS))],
            "wax": WAX[rng.integers(len(WAX))]}


def draw_orbis(scene: Scene, m: dict, finish) -> None:
    """A sphere cage of meridians and latitude bands around candles or a glass globe."""
    R = m["radius"]
    for j in range(m["meridians"]):
        a = math.pi * j / m["meridians"]
        ts = np.linspace(0, 2 * math.pi, 40)
        for half in (ts[:21], ts[20:]):
            pts = [(R * math.sin(t) * math.cos(a), R * math.cos(t), R * math.sin(t) * math.sin(a)) for t in half]
            scene.polyline(pts, finish, 0.025)
    for b in range(m["bands"]):
        lat = (b - (m["bands"] - 1) / 2) * 0.5
        scene.ring(R * math.cos(lat), R * math.sin(lat), finish, 0.03)
    scene.ball(0, R + 0.05, 0, 0.06, finish)
    scene.ball(0, -R - 0.05, 0, 0.05, finish)
    if m["inner"] == "globe":
        scene.ball(0, 0, 0, 0.35 * R, mix(m["glass"], (255, 240, 200), 0.6 if scene.lit else 0.0))
        scene.light(0, 0, 0, 0.45 * R, 1.2)
    else:
        for i in range(m["candles"]):
            th = 2 * math.pi * i / m["candles"]
            scene.candle(0.3 * R * math.cos(th), -0.3 * R, 0.3 * R * math.sin(th), 0.3, m["wax"], finish)


def _halo_model(rng):
    n = int(rng.integers(1, 4))
    return {"radii": sorted(rng.uniform(0.35, 1.0, n), reverse=True).copy(),
            "stacked": bool(rng.random() < 0.6), "band": rng.uniform(0.04, 0.09),
            "wires": int(rng.choice([3, 4, 6]))}


def draw_halo(scene: Scene, m: dict, finish) -> None:
    """LED rings: one to three thin hoops, stacked or concentric, hung on wires."""
    top = 1.1
    for k, r in enumerate(m["radii"]):
        h = -0.35 * k if m["stacked"] else 0.0
        color = (250, 246, 230) if scene.lit else finish
        scene.ring(r, h, color, m["band"])
        scene.ring(r, h - 0.5 * m["band"], shade(finish, -0.3), 0.5 * m["band"])
        for w in range(m["wires"]):
            th = 2 * math.pi * w / m["wires"] + 0.3 * k
            scene.polyline([(r * math.cos(th), h, r * math.sin(th)), (0, top, 0)], (90, 90, 90), 0.008)
        for t in np.linspace(0, 2 * math.pi, 10, endpoint=False):
            scene.light(r * math.cos(t), h - 0.05, r * math.sin(t), 0.22, 0.5)
    scene.ball(0, top, 0, 0.05, finish)


def _sputnik_model(rng):
    n = int(rng.integers(8, 21))
    # directions spread over the sphere (a jittered Fibonacci lattice), fixed per model
    k = np.arange(n) + 0.5
    phi = np.arccos(1 - 2 * k / n) + rng.normal(0, 0.12, n)
    theta = math.pi * (1 + 5 ** 0.5) * k + rng.normal(0, 0.2, n)
    dirs = np.stack([np.sin(phi) * np.cos(theta), np.cos(phi), np.sin(phi) * np.sin(theta)], 1)
    return {"dirs": dirs, "length": rng.uniform(0.7, 1.0), "globe": rng.uniform(0.06, 0.12),
            "glass": GLASS[rng.integers(len(GLASS))], "hub": rng.uniform(0.1, 0.18)}


def draw_sputnik(scene: Scene, m: dict, finish) -> None:
    """Straight rods radiating from a hub, a small glass globe at each end."""
    scene.ball(0, 0, 0, m["hub"], finish)
    for d in m["dirs"]:
        tip = d * m["length"]
        scene.polyline([(0, 0, 0), tuple(tip)], finish, 0.025)
        glass = mix(m["glass"], (255, 244, 214), 0.7) if scene.lit else m["glass"]
        scene.ball(*(tip * 1.04), m["globe"], glass)
        scene.light(*(tip * 1.04), m["globe"] * 2.2, 0.7)


def _drum_model(rng):
    return {"style": str(rng.choice(["drum", "drum", "arms"])), "tiers": int(rng.choice([1, 2])),
            "radius": rng.uniform(0.75, 1.0), "height": rng.uniform(0.3, 0.55),
            "taper": rng.uniform(0.7, 1.0), "arms": int(rng.integers(4, 7)),
            "fabric": FABRICS[rng.integers(len(FABRICS))]}


def draw_drum(scene: Scene, m: dict, finish) -> None:
    """Fabric drums: one or two large stacked drums, or arms each ending in a small drum."""
    if m["style"] == "drum":
        R, H = m["radius"], m["height"]
        for t in range(m["tiers"]):
            r = R * (1 - 0.3 * t)
            h = 0.3 - 0.55 * t
            scene.drum(h + H / 2, h - H / 2, r * m["taper"], r, m["fabric"])
        scene.ring(0.95 * R, 0.3 - H / 2 - 0.02, finish, 0.02)
        for th in (0.0, math.pi / 2):
            scene.polyline([(-R * math.cos(th), 0.3 - H / 2, -R * math.sin(th)),
                            (R * math.cos(th), 0.3 - H / 2, R * math.sin(th))], finish, 0.015, depth=-0.2)
    else:
        scene.ball(0, 0, 0, 0.1, finish)
        for i in range(m["arms"]):
            th = 2 * math.pi * i / m["arms"]
            r = 0.85 * m["radius"]
            scene.polyline([(0, 0, 0), (r * math.cos(th), 0, r * math.sin(th)),
                            (r * math.cos(th), 0.12, r * math.sin(th))], finish, 0.03)
            scene.drum(0.38, 0.12, 0.13 * m["taper"], 0.17, m["fabric"], r * math.cos(th), r * math.sin(th))
    scene.polyline([(0, 0.3 + m["height"] / 2, 0), (0, -0.1, 0)], finish, 0.03, depth=-0.1)


def _cascata_model(rng):
    return {"radius": rng.uniform(0.6, 0.95), "rings": int(rng.integers(2, 4)),
            "per_ring": int(rng.integers(8, 15)), "pattern": str(rng.choice(["flat", "cone", "wave", "bowl"])),
            "length": rng.uniform(0.9, 1.5), "spacing": rng.uniform(0.11, 0.16)}


def draw_cascata(scene: Scene, m: dict, finish) -> None:
    """A crystal waterfall: straight strands of drops hanging from a flat canopy disc."""
    R, top = m["radius"], 0.65
    scene.ring(R + 0.05, top, finish, 0.07)
    for k in range(m["rings"]):
        r = R * (k + 1) / m["rings"]
        n = max(4, int(m["per_ring"] * (k + 1) / m["rings"]))
        for i in range(n):
            th = 2 * math.pi * (i + 0.5 * k) / n
            frac = r / R
            length = m["length"] * {"flat": 1.0, "cone": 1.25 - 0.8 * frac, "bowl": 0.45 + 0.7 * frac,
                                    "wave": 0.8 + 0.25 * math.sin(3 * th)}[m["pattern"]]
            x, z = r * math.cos(th), r * math.sin(th)
            scene.polyline([(x, top, z), (x, top - length, z)], (170, 170, 176), 0.006)
            for y in np.arange(top - m["spacing"], top - length, -m["spacing"]):
                scene.drop(x, y, z, 0.07, scene.lit and scene.rng.random() < 0.3)
            scene.drop(x, top - length, z, 0.14, scene.lit)
    for i in range(3):
        th = 2 * math.pi * i / 3
        scene.light(0.4 * R * math.cos(th), top - 0.2, 0.4 * R * math.sin(th), 0.35, 0.8)


def _cage_model(rng):
    return {"sides": int(rng.integers(4, 9)), "radius": rng.uniform(0.55, 0.85), "height": rng.uniform(1.1, 1.6),
            "bulge": float(rng.choice([0.0, 0.0, rng.uniform(0.15, 0.35)])), "candles": int(rng.integers(3, 7)),
            "crown": bool(rng.random() < 0.6), "wax": WAX[rng.integers(len(WAX))]}


def draw_cage(scene: Scene, m: dict, finish) -> None:
    """A lantern: a polygonal cage of straight or bulging bars around a cluster of candles."""
    R, H, n = m["radius"], m["height"], m["sides"]
    top, bottom = H / 2, -H / 2
    for level, scale in ((top, 0.75), (bottom, 0.9)):
        pts = [(scale * R * math.cos(2 * math.pi * i / n), level, scale * R * math.sin(2 * math.pi * i / n))
               for i in range(n + 1)]
        for a, b in zip(pts[:-1], pts[1:]):
            scene.polyline([a, b], finish, 0.035)
    for i in range(n):
        th = 2 * math.pi * i / n
        curve = [(R * (0.75 + 0.15 * t + m["bulge"] * math.sin(math.pi * t)), top - H * t) for t in np.linspace(0, 1, 10)]
        arm(scene, curve, th, finish, 0.035)
        if m["crown"]:
            scene.polyline([(0.75 * R * math.cos(th), top, 0.75 * R * math.sin(th)),
                            (0.45 * R * math.cos(th), top + 0.3, 0.45 * R * math.sin(th))], finish, 0.03)
    for i in range(m["candles"]):
        th = 2 * math.pi * i / m["candles"]
        scene.candle(0.35 * R * math.cos(th), bottom + 0.05, 0.35 * R * math.sin(th), 0.35, m["wax"], finish)


def _empire_model(rng):
    return {"hoop": rng.uniform(0.75, 1.0), "strands": int(rng.integers(10, 19)), "candles": int(rng.integers(5, 10)),
            "tail": rng.uniform(0.6, 1.0), "spacing": rng.uniform(0.09, 0.13), "wax": WAX[rng.integers(len(WAX))]}


def draw_empire(scene: Scene, m: dict, finish) -> None:
    """Empire: crystal strands from a small crown to a hoop (a tent), and a bag tapering below."""
    R, top = m["hoop"], 0.75
    scene.ring(0.25, top, finish, 0.04)
    scene.ring(R, 0.0, finish, 0.05)
    for i in range(m["strands"]):
        th = 2 * math.pi * i / m["strands"]
        c, s = math.cos(th), math.sin(th)
        for t in np.linspace(0.1, 0.95, 7):   # the tent: from the crown to the hoop
            r = 0.25 + (R - 0.25) * t
            scene.drop(r * c, top - top * t, r * s, 0.06, scene.lit and scene.rng.random() < 0.3)
        for t in np.linspace(0.08, 1.0, 8):   # the bag: from the hoop curving to the tail
            r = R * (1 - t) ** 1.5 + 0.05
            scene.drop(r * c, -m["tail"] * math.sin(t * math.pi / 2), r * s, 0.07, scene.lit and scene.rng.random() < 0.3)
    for i in range(m["candles"]):
        th = 2 * math.pi * (i + 0.5) / m["candles"]
        scene.candle(R * math.cos(th), 0.0, R * math.sin(th), 0.22, m["wax"], finish)
    scene.drop(0, -m["tail"] - 0.05, 0, 0.22, scene.lit)


@dataclass(frozen=True)
class Brand:
    name: str
    share: float     # market share: the brand's fraction of the images
    n_models: int    # product models in the catalogue
    sample_model: Callable[[np.random.Generator], dict]
    draw: Callable[[Scene, dict, tuple], None]


# Catalogues large enough that the test split holds dozens of product models (about 7 photos
# each at 2,000 images), so that intervals over product models are usable.
BRANDS: tuple[Brand, ...] = (
    Brand("Lumen Royale", 0.21, 45, _classic_model, draw_lumen_royale),
    Brand("Bellecourt", 0.10, 30, _classic_model, draw_bellecourt),
    Brand("Orbis", 0.15, 35, _orbis_model, draw_orbis),
    Brand("Halo Works", 0.12, 30, _halo_model, draw_halo),
    Brand("Sputnik Lab", 0.11, 30, _sputnik_model, draw_sputnik),
    Brand("Drum & Linen", 0.10, 30, _drum_model, draw_drum),
    Brand("Cascata", 0.08, 25, _cascata_model, draw_cascata),
    Brand("Forge & Cage", 0.09, 25, _cage_model, draw_cage),
    Brand("Petite Empire", 0.04, 20, _empire_model, draw_empire),
)
BRAND_NAMES = tuple(b.name for b in BRANDS)
CLOSE_PAIR = ("Lumen Royale", "Bellecourt")


# --- backgrounds and the photographic variation -------------------------------------------------
def _muted(rng: np.random.Generator, lo: float = 0.25, hi: float = 0.95) -> np.ndarray:
    """A random colour of any hue, mostly low saturation (walls, ceilings, studio paper)."""
    import colorsys

    r, g, b = colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.0, 0.45) ** 1.3, rng.uniform(lo, hi))
    return np.array([r, g, b]) * 255


def background(size: int, rng: np.random.Generator) -> tuple[Image.Image, float]:
    """A studio sweep, a ceiling or a room; returns the image and where the ceiling line is."""
    kind = rng.choice(["studio", "ceiling", "room"], p=[0.35, 0.3, 0.35])
    ramp = np.linspace(0, 1, size)[:, None]
    top, bottom = _muted(rng), _muted(rng)
    column = top + (bottom - top) * ramp * rng.uniform(0.2, 1.0)    # a vertical gradient
    ceiling = 0.0
    if kind != "studio":
        ceiling = rng.uniform(0.05, 0.22) * size
        column[: int(ceiling)] = _muted(rng, 0.6, 1.0)
    column = column.clip(0, 255).astype(np.uint8)[:, None, :]
    im = Image.fromarray(np.repeat(column, size, axis=1))
    dr = ImageDraw.Draw(im)
    if kind == "ceiling":   # beams or coffers receding into the ceiling plane
        col = tuple(int(c) for c in _muted(rng, 0.4, 0.9))
        for x in np.linspace(-0.5, 1.5, int(rng.integers(4, 9))) * size:
            dr.line([(x, 0), (size / 2 + (x - size / 2) * 0.6, ceiling)], fill=col, width=max(1, size // 80))
        dr.line([(0, ceiling), (size, ceiling)], fill=col, width=max(1, size // 60))
    elif kind == "room":    # a floor, a window and a picture frame
        floor = rng.uniform(0.72, 0.92) * size
        dr.rectangle([0, floor, size, size], fill=tuple(int(c) for c in _muted(rng, 0.2, 0.7)))
        wx, wy = rng.uniform(-0.1, 0.8) * size, rng.uniform(0.25, 0.45) * size
        ww, wh = rng.uniform(0.15, 0.35) * size, rng.uniform(0.25, 0.4) * size
        dr.rectangle([wx, wy, wx + ww, wy + wh], fill=tuple(int(c) for c in _muted(rng, 0.75, 1.0)),
                     outline=(240, 240, 240), width=max(1, size // 100))
        dr.line([(wx + ww / 2, wy), (wx + ww / 2, wy + wh)], fill=(235, 235, 235), width=max(1, size // 120))
        fx = rng.uniform(0.0, 0.8) * size
        dr.rectangle([fx, wy, fx + 0.15 * size, wy + 0.12 * size], outline=tuple(int(c) for c in _muted(rng, 0.1, 0.5)),
                     width=max(1, size // 90), fill=tuple(int(c) for c in _muted(rng)))
    return im, ceiling


def colour_temperature(rng: np.random.Generator) -> np.ndarray:
    """Per-channel gains from warm (tungsten) to cool (shade) white balance."""
    t = rng.uniform(-1, 1)
    return np.array([1 + 0.16 * t, 1.0 + 0.02 * abs(t), 1 - 0.2 * t])


def render(brand: int, model: dict, finish: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """One photo (uint8, size x size x 3) of a product model of a brand."""
    S = size * SUPERSAMPLE
    canvas, ceiling = background(S, rng)
    lit = bool(rng.random() < 0.5)
    scale = rng.uniform(0.26, 0.42) * S
    centre = (S * (0.5 + rng.uniform(-0.12, 0.12)), S * (0.5 + rng.uniform(-0.08, 0.12)))
    scene = Scene(S, rng, centre=centre, scale=scale, elevation=rng.uniform(-0.15, 0.5),
                  azimuth=rng.uniform(0, 2 * math.pi), lit=lit)
    color = FINISHES[finish]
    # the chain from the ceiling (or the top of the frame) to the top of the chandelier
    cx, cy_top, _ = scene.p(0, 0.95, 0)
    dr = ImageDraw.Draw(canvas)
    dr.line([(cx, ceiling), (cx, cy_top)], fill=shade(color, -0.3), width=max(1, scene.px(0.025)))
    if ceiling > 0:
        dr.ellipse([cx - 0.12 * scale, ceiling - 0.03 * scale, cx + 0.12 * scale, ceiling + 0.05 * scale],
                   fill=shade(color, 0.0))
    BRANDS[brand].draw(scene, model, color)
    scene.paint(dr)

    if rng.random() < 0.2:   # a partial crop: the photographer stood too close
        frac = rng.uniform(0.6, 0.85)
        w = frac * S
        x0, y0 = rng.uniform(0, S - w), rng.uniform(0, S - w)
        canvas = canvas.resize((S, S), Image.BILINEAR, box=(x0, y0, x0 + w, y0 + w))
        zoom = 1 / frac
        scene.lights = [((x - x0) * zoom, (y - y0) * zoom, r * zoom, k) for x, y, r, k in scene.lights]
    # the photographic part runs at the final size: exposure, white balance, glow, blur, noise
    im = canvas.reduce(SUPERSAMPLE) if SUPERSAMPLE > 1 else canvas
    arr = np.asarray(im, dtype=np.float32)
    ambient = rng.uniform(0.55, 0.85) if lit else rng.uniform(0.8, 1.1)
    arr *= (ambient * colour_temperature(rng)).astype(np.float32)
    if scene.lights:    # light spots blurred and added, warm
        glow = Image.new("L", (size, size), 0)
        gd = ImageDraw.Draw(glow)
        for x, y, r, strength in scene.lights:
            x, y, r = x / SUPERSAMPLE, y / SUPERSAMPLE, r / SUPERSAMPLE
            gd.ellipse([x - r, y - r, x + r, y + r], fill=int(100 * strength))
        g = np.asarray(glow.filter(ImageFilter.GaussianBlur(0.06 * scale / SUPERSAMPLE)), dtype=np.float32)
        arr += g[..., None] * (np.array([1.0, 0.84, 0.59], np.float32) * rng.uniform(1.0, 1.8))
    if rng.random() < 0.4:
        arr = np.asarray(Image.fromarray(arr.clip(0, 255).astype(np.uint8))
                         .filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2))), dtype=np.float32)
    arr += rng.normal(0, rng.uniform(0, 6), (size, size, 3)).astype(np.float32)
    buf = io.BytesIO()
    Image.fromarray(arr.clip(0, 255).astype(np.uint8)).save(buf, "JPEG", quality=int(rng.integers(35, 93)))
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("RGB"))


# --- the data set --------------------------------------------------------------------------------
def brand_counts(n_images: int) -> np.ndarray:
    """Images per brand, proportional to the brands' market shares, summing to ``n_images``."""
    shares = np.array([b.share for b in BRANDS])
    raw = shares / shares.sum() * n_images
    counts = np.floor(raw).astype(int)
    counts[np.argsort(raw - counts)[::-1][: n_images - counts.sum()]] += 1
    if counts.min() < 1:
        raise ValueError(f"n_images = {n_images}: too few for {len(BRANDS)} brands (the smallest gets none)")
    return counts


def catalogue(seed: int) -> list[list[tuple[dict, str]]]:
    """Every brand's product models: (design, finish), fixed by the seed."""
    out = []
    for b, brand in enumerate(BRANDS):
        models = []
        for m in range(brand.n_models):
            rng = np.random.default_rng([seed, b, m])
            finish = str(rng.choice(list(FINISHES)))   # finishes are shared by all brands
            models.append((brand.sample_model(rng), finish))
        out.append(models)
    return out


def generate(n_images: int, image_size: int, seed: int) -> dict[str, np.ndarray]:
    """Render the data set: images (n, s, s, 3) uint8, labels, model ids (brand*100 + model), finishes."""
    cat = catalogue(seed)
    images, labels, models, finishes = [], [], [], []
    for b, count in enumerate(brand_counts(n_images)):
        n_models = len(cat[b])
        for k in range(count):
            m = k % n_models                    # photos spread evenly over the models
            design, finish = cat[b][m]
            rng = np.random.default_rng([seed, b, m, k, 1])
            images.append(render(b, design, finish, image_size, rng))
            labels.append(b)
            models.append(b * 100 + m)
            finishes.append(finish)
    return {"images": np.stack(images), "labels": np.array(labels), "models": np.array(models),
            "finishes": np.array(finishes)}


def load_chandeliers(n_images: int, image_size: int, seed: int, cache_dir=None) -> dict[str, np.ndarray]:
    """The generated data set, from the cache when these settings were rendered before."""
    key = {"generator": "chandeliers", "version": GENERATOR_VERSION, "n_images": n_images,
           "image_size": image_size, "seed": seed, "supersample": SUPERSAMPLE}
    return cached_arrays("chandeliers", key, lambda: generate(n_images, image_size, seed), cache_dir)


def split_by_model(labels: np.ndarray, groups: np.ndarray, test_fraction: float, val_fraction: float,
                   seed: int) -> np.ndarray:
    """'train' / 'val' / 'test' per image; all photos of a product model land on one side.

    Per brand, models are shuffled and taken for test until the test share reaches
    ``test_fraction`` of the brand's photos, then for validation likewise; each side gets at
    least one model when the brand has three or more (else the brand stays in train).
    """
    labels, groups = np.asarray(labels), np.asarray(groups)
    split = np.full(len(labels), "train", dtype="<U5")
    rng = np.random.default_rng(seed)
    for b in np.unique(labels):
        mask = labels == b
        models = rng.permutation(np.unique(groups[mask]))
        if len(models) < 3:
            continue
        sizes = {m: int((groups == m).sum()) for m in models}
        total, i = mask.sum(), 0
        for name, frac in (("test", test_fraction), ("val", val_fraction)):
            taken = 0
            while i < len(models) - 1 and (taken == 0 or taken + sizes[models[i]] / 2 <= frac * total):
                split[groups == models[i]] = name
                taken += sizes[models[i]]
                i += 1
    return split
