"""A Bayesian network of categorical attributes where every attribute has at most one parent:
a forest. That is the shape of a style model (hairstyle -> hair colour, clothes -> clothes
colour, the rest on their own; with no parents at all it is the independent model) and of
every structure the styles task learns (cvtasks.styles.structure). The restriction keeps
every quantity exact and cheap: probabilities of styles, marginals (law of total
probability), pairwise joints along the tree paths, and KL divergence between two networks.
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cvtasks.io import atomic_write_text

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
                if parent not in self.schema or parent == attr:
                    raise ValueError(f"{attr!r}: parent {parent!r} must be another attribute of the schema")
                shape = (len(self.schema[parent]), len(options))
            else:
                shape = (len(options),)
            if table.shape != shape:
                raise ValueError(f"{attr!r}: table has shape {table.shape}, expected {shape}")
            if (table < 0).any() or not np.allclose(table.sum(-1), 1.0):
                raise ValueError(f"{attr!r}: probabilities must be >= 0 and sum to 1")
        for attr in self.schema:
            self.ancestors(attr)   # raises on a cycle

    @property
    def attributes(self) -> list[str]:
        return list(self.schema)

    @property
    def edges(self) -> list[tuple[str, str]]:
        """(parent, child) pairs."""
        return [(p, a) for a, p in self.parents.items() if p is not None]

    def ancestors(self, attr: str) -> list[str]:
        """``attr``, its parent, its parent's parent, ... up to its root."""
        chain = [attr]
        while (parent := self.parents.get(chain[-1])) is not None:
            if parent in chain:
                raise ValueError(f"the parents form a cycle through {parent!r}; a forest has none")
            chain.append(parent)
        return chain

    def marginal(self, attr: str) -> np.ndarray:
        """P(attr); for a child, by total probability: sum_p P(attr | p) P(p)."""
        parent = self.parents.get(attr)
        if parent is None:
            return np.asarray(self.tables[attr], float)
        return self.marginal(parent) @ self.tables[attr]

    def _down(self, ancestor: str, attr: str) -> np.ndarray:
        """P(attr | ancestor), shape (k_ancestor, k_attr): the tables along the path, multiplied."""
        path = self.ancestors(attr)
        out = np.eye(len(self.schema[ancestor]))
        for node in reversed(path[:path.index(ancestor)]):
            out = out @ self.tables[node]
        return out

    def pair(self, a: str, b: str) -> np.ndarray:
        """The joint P(a, b), shape (k_a, k_b): through their lowest common ancestor c,
        P(a, b) = sum_c P(c) P(a | c) P(b | c); independent when in different trees."""
        if a == b:
            return np.diag(self.marginal(a))
        up_b = self.ancestors(b)
        common = next((x for x in self.ancestors(a) if x in up_b), None)
        if common is None:
            return np.outer(self.marginal(a), self.marginal(b))
        return np.einsum("c,ci,cj->ij", self.marginal(common), self._down(common, a), self._down(common, b))

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
        """n styles as integer codes, each attribute after its parent (ancestral sampling)."""
        col = {a: j for j, a in enumerate(self.schema)}
        codes = np.zeros((n, len(col)), dtype=np.int64)
        for attr in sorted(self.schema, key=lambda a: len(self.ancestors(a))):
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


def save_json(model: BayesNet, path: str | Path) -> Path:
    """The network as JSON (options, parents, tables): what a generator needs to sample."""
    doc = {"schema": {a: list(o) for a, o in model.schema.items()}, "parents": model.parents,
           "tables": {a: np.asarray(t).tolist() for a, t in model.tables.items()}}
    return atomic_write_text(path, json.dumps(doc, indent=1) + "\n")


def load_json(path: str | Path) -> BayesNet:
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    return BayesNet({a: tuple(o) for a, o in doc["schema"].items()}, doc["parents"],
                    {a: np.asarray(t) for a, t in doc["tables"].items()})
