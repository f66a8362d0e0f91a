"""Which attributes depend on which, learned from the training rows of a styles table.

The style model allows each attribute at most one parent (a forest). For such structures the
BDeu score decomposes over edges, so the best-scoring forest is a maximum-weight spanning
forest: weight an attribute pair by how much the BDeu score gains when one becomes the
other's parent, and keep, greedily from the strongest (Kruskal), the pairs with a positive
gain that close no cycle. With mutual information as the weight this is the Chow-Liu tree;
BDeu's Bayesian penalty stops it from adding the weak edges that any finite sample shows.
BDeu (pgmpy's scorer) rather than BIC: BIC charges a pair of 13- and 11-option attributes for
all 120 free parameters of a full table and misses the true edges until n is about 1,000
(measured on the embedded truth), while the true tables are mostly zeros.

BDeu is score-equivalent: an edge scores the same in either direction, and every orientation
of a tree describes the same set of distributions. The orientation only matters for the
smoothed (Dirichlet) estimate fitted afterwards, so it is chosen with that estimate on
validation rows (``orient``). Against the true graph the learned one is compared on the
skeleton (structural Hamming distance: edges missing plus edges added).
"""
from __future__ import annotations

import itertools
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from cvtasks.models.bayesnet import Schema, decode
from cvtasks.styles.estimation import fit_model

Parents = dict[str, str | None]


def _bdeu(codes: np.ndarray, schema: Schema, ess: float):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        from pgmpy.structure_score import BDeu

    frame = decode(codes, schema)
    return BDeu(frame, equivalent_sample_size=ess, state_names={a: list(o) for a, o in schema.items()})


def edge_gains(codes: np.ndarray, schema: Schema, ess: float) -> pd.DataFrame:
    """BDeu gain of every attribute pair (a parent-child edge against none), strongest first."""
    score = _bdeu(codes, schema, ess)
    alone = {a: score.local_score(a, ()) for a in schema}
    rows = [{"a": a, "b": b, "gain": score.local_score(b, (a,)) - alone[b]}
            for a, b in itertools.combinations(schema, 2)]
    return pd.DataFrame(rows).sort_values("gain", ascending=False, ignore_index=True)


def learn_skeleton(codes: np.ndarray, schema: Schema, ess: float) -> list[tuple[str, str]]:
    """The maximum-BDeu forest's edges (undirected pairs), strongest first."""
    root = {a: a for a in schema}

    def find(a: str) -> str:
        while root[a] != a:
            root[a] = root[root[a]]
            a = root[a]
        return a

    edges = []
    for row in edge_gains(codes, schema, ess).itertuples():
        if row.gain <= 0:
            break
        ra, rb = find(row.a), find(row.b)
        if ra != rb:   # joining two trees: no cycle
            root[ra] = rb
            edges.append((row.a, row.b))
    return edges


def _trees(edges: Sequence[tuple[str, str]], attributes: Sequence[str]) -> list[list[str]]:
    neighbours = {a: set() for a in attributes}
    for a, b in edges:
        neighbours[a].add(b)
        neighbours[b].add(a)
    seen, trees = set(), []
    for a in attributes:
        if a in seen:
            continue
        tree, stack = [], [a]
        while stack:
            x = stack.pop()
            if x not in seen:
                seen.add(x)
                tree.append(x)
                stack.extend(neighbours[x] - seen)
        trees.append(tree)
    return trees


def rooted(edges: Sequence[tuple[str, str]], attributes: Sequence[str], roots: Mapping[int, str]) -> Parents:
    """Parents of every attribute with each tree (by index in ``_trees``) hung from its root."""
    neighbours = {a: set() for a in attributes}
    for a, b in edges:
        neighbours[a].add(b)
        neighbours[b].add(a)
    parents: Parents = {a: None for a in attributes}
    for i, tree in enumerate(_trees(edges, attributes)):
        stack, seen = [roots.get(i, tree[0])], set()
        while stack:
            x = stack.pop()
            seen.add(x)
            for y in neighbours[x] - seen:
                parents[y] = x
                stack.append(y)
    return parents


def orient(edges: Sequence[tuple[str, str]], schema: Schema, train: np.ndarray, val: np.ndarray,
           prior_strength: float) -> Parents:
    """Hang each tree from the root whose Bayes model scores the validation rows best (the
    log-likelihood decomposes, so each tree's root is chosen on its own)."""
    attributes = list(schema)
    roots: dict[int, str] = {}
    for i, tree in enumerate(_trees(edges, attributes)):
        if len(tree) == 1:
            continue
        best = max(tree, key=lambda r: _tree_loglik(edges, schema, train, val, prior_strength, {**roots, i: r}, tree))
        roots[i] = best
    return rooted(edges, attributes, roots)


def _tree_loglik(edges, schema, train, val, prior_strength, roots, tree) -> float:
    parents = rooted(edges, list(schema), roots)
    model = fit_model(train, schema, parents, "bayes", prior_strength)
    col = {a: j for j, a in enumerate(schema)}
    total = 0.0
    for attr in tree:
        parent, table = parents[attr], model.tables[attr]
        p = table[val[:, col[attr]]] if parent is None else table[val[:, col[parent]], val[:, col[attr]]]
        total += float(np.log(p).sum())
    return total


def skeleton(parents: Mapping[str, str | None]) -> set[frozenset[str]]:
    return {frozenset((p, a)) for a, p in parents.items() if p is not None}


def shd(learned: Mapping[str, str | None] | Sequence[tuple[str, str]], truth: Mapping[str, str | None]) -> int:
    """Structural Hamming distance on the skeleton: true edges missed plus edges added."""
    found = skeleton(learned) if isinstance(learned, Mapping) else {frozenset(e) for e in learned}
    return len(found ^ skeleton(truth))


def reversed_edges(parents: Mapping[str, str | None], truth: Mapping[str, str | None]) -> int:
    """Edges of the skeleton both share that point the other way (SHD on the skeleton counts none)."""
    true_arrows = {(p, a) for a, p in truth.items() if p is not None}
    return sum((a, p) in true_arrows for a, p in parents.items() if p is not None)


def edge_list(parents: Mapping[str, str | None]) -> str:
    """``a -> b, c -> d`` (or ``none``) for tables and prose."""
    return ", ".join(f"{p} -> {a}" for a, p in parents.items() if p is not None) or "none"
