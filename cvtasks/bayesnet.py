"""A Bayesian network of categorical attributes where every attribute has at most one parent,
and parents are roots (a forest of depth one).

That is exactly the shape of a style model: hairstyle -> hair colour, clothes -> clothes
colour, the rest on their own; with no parents at all it is the independent model. The
restriction keeps every quantity exact and cheap: probabilities of styles, marginals (law of
total probability), pairwise joints, and KL divergence between two networks.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

Schema = Mapping[str, Sequence[str]]   # attribute -> its options, in a fixed order


def encode(table: pd.DataFrame, schema: Schema) -> np.ndarray:
    """Integer codes (n, n_attributes) of a styles table; unknown values are an error."""
    missing = [a for a in schema if a not in table.columns]
    if missing:
        raise KeyError(f"styles table lacks the attribute column(s) {missing}; it has {list(table.columns)}")
    codes = np.empty((len(table), len(schema)), dtype=np.int64)
    for j, (attr, options) in enumerate(schema.items()):
        index = {str(o): i for i, o in enumerate(options)}
        values = table[attr].astype(str)
        unknown = sorted(set(values) - set(index))
        if unknown:
            raise ValueError(f"attribute {attr!r}: values {unknown[:5]} are not among its options {list(options)}")
        codes[:, j] = values.map(index).to_numpy()
    return codes


def decode(codes: np.ndarray, schema: Schema) -> pd.DataFrame:
    return pd.DataFrame({attr: np.asarray(options, dtype=object)[codes[:, j]]
                         for j, (attr, options) in enumerate(schema.items())})


@dataclass(frozen=True)
class BayesNet:
    """``tables[a]`` is P(a) with shape (k_a,) for a root, P(a | parent) with shape
    (k_parent, k_a) for a child; rows sum to one."""

    schema: dict[str, tuple[str, ...]]
    parents: dict[str, str | None]
    tables: dict[str, np.ndarray]

    def __post_init__(self) -> None:
        for attr, options in self.schema.items():
            parent = self.parents.get(attr)
            table = np.asarray(self.tables[attr], dtype=float)
            if parent is not None:
                if parent not in self.schema or self.parents.get(parent) is not None:
                    raise ValueError(f"{attr!r}: parent {parent!r} must be a root attribute of the schema")
                shape = (len(self.schema[parent]), len(options))
            else:
                shape = (len(options),)
            if table.shape != shape:
                raise ValueError(f"{attr!r}: table has shape {table.shape}, expected {shape}")
            if (table < 0).any() or not np.allclose(table.sum(-1), 1.0):
                raise ValueError(f"{attr!r}: probabilities must be >= 0 and sum to 1")

    @property
    def attributes(self) -> list[str]:
        return list(self.schema)

    def marginal(self, attr: str) -> np.ndarray:
        """P(attr); for a child, by total probability: sum_p P(attr | p) P(p)."""
        parent = self.parents.get(attr)
        if parent is None:
            return np.asarray(self.tables[attr], float)
        return self.tables[parent] @ self.tables[attr]

    def pair(self, a: str, b: str) -> np.ndarray:
        """The joint P(a, b), shape (k_a, k_b)."""
        pa, pb = self.parents.get(a), self.parents.get(b)
        if a == b:
            return np.diag(self.marginal(a))
        if pb == a:
            return self.tables[a][:, None] * self.tables[b]
        if pa == b:
            return self.pair(b, a).T
        if pa is not None and pa == pb:   # siblings: independent given their shared parent
            return np.einsum("c,ci,cj->ij", self.tables[pa], self.tables[a], self.tables[b])
        return np.outer(self.marginal(a), self.marginal(b))

    def log_prob(self, codes: np.ndarray) -> np.ndarray:
        """log P(style) of each row of integer codes; -inf where the model gives zero."""
        codes = np.atleast_2d(codes)
        col = {a: j for j, a in enumerate(self.schema)}
        with np.errstate(divide="ignore"):
            out = np.zeros(len(codes))
            for attr, j in col.items():
                parent = self.parents.get(attr)
                table = self.tables[attr]
                p = table[codes[:, j]] if parent is None else table[codes[:, col[parent]], codes[:, j]]
                out += np.log(p)
        return out

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n styles as integer codes, roots first, each child from its parent's row."""
        col = {a: j for j, a in enumerate(self.schema)}
        codes = np.zeros((n, len(col)), dtype=np.int64)
        order = sorted(self.schema, key=lambda a: self.parents.get(a) is not None)
        for attr in order:
            parent, table = self.parents.get(attr), self.tables[attr]
            if parent is None:
                codes[:, col[attr]] = rng.choice(len(table), size=n, p=table)
            else:
                # inverse-CDF sampling, one row of the conditional table per sample
                cdf = np.cumsum(table[codes[:, col[parent]]], axis=1)
                u = rng.random((n, 1)) * cdf[:, -1:]
                codes[:, col[attr]] = (u >= cdf).sum(axis=1)
        return codes

    def sample_table(self, n: int, rng: np.random.Generator) -> pd.DataFrame:
        return decode(self.sample(n, rng), self.schema)


def _xlogy(p: np.ndarray, q: np.ndarray) -> float:
    """sum p log q with 0 log anything = 0 and p > 0, q = 0 giving -inf."""
    p, q = np.broadcast_arrays(np.asarray(p, float), np.asarray(q, float))
    mask = p > 0
    if (q[mask] <= 0).any():
        return -np.inf
    return float((p[mask] * np.log(q[mask])).sum())


def cross_entropy(p: BayesNet, q: BayesNet) -> float:
    """-E_p[log q(style)], exact: q's factors only need p's pairwise joints."""
    total = 0.0
    for attr in q.schema:
        parent = q.parents.get(attr)
        if parent is None:
            total += _xlogy(p.marginal(attr), q.tables[attr])
        else:
            total += _xlogy(p.pair(parent, attr), q.tables[attr])
    return -total


def kl_divergence(p: BayesNet, q: BayesNet) -> float:
    """KL(p || q) in nats; inf when q gives zero probability to a style that p can produce."""
    if list(p.schema) != list(q.schema) or any(tuple(p.schema[a]) != tuple(q.schema[a]) for a in p.schema):
        raise ValueError("KL needs two models over the same attributes and options")
    return cross_entropy(p, q) - cross_entropy(p, p)
