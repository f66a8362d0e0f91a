"""The tables and prose of the search report, built from a run's metrics (no number typed)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from cvtasks.prose import ci
from cvtasks.stats import Interval

KIND = {"dummy": "votes", "linear": "votes", "mlp": "votes", "interaction": "votes", "cosine": "no votes",
        "contrastive": "no votes", "blend": "both"}


def audit_table(m: Mapping[str, Any]) -> pd.DataFrame:
    return pd.DataFrame({
        "without dedup and text groups (the earlier build)": {
            "test drawings with a copy in training": m.get("data/before/cross_split_duplicates"),
            "test query texts that are training texts": m.get("data/before/cross_split_queries")},
        "this build (audited on the files)": {
            "test drawings with a copy in training": m.get("data/cross_split_duplicates"),
            "test query texts that are training texts": m.get("data/cross_split_queries")}})


def model_table(rows: Mapping[str, Mapping[str, Interval]], ranker: str, vote_free: str) -> pd.DataFrame:
    out = {}
    for name, ivs in rows.items():
        label = name + (" (served)" if name == ranker else "") + (" (best vote-free)" if name == vote_free else "")
        out[label] = {"trained on": KIND.get(name, ""), **{m: str(iv) for m, iv in ivs.items()}}
    return pd.DataFrame(out).T.fillna("undefined (constant scores)")   # Kendall's tau of a constant ranking


def summary(m: Mapping[str, Any], run_name: str) -> str:
    lines = [f"**Summary of this run** (`{run_name}`; test gallery of {int(m.get('data/test_images', 0))} drawings, "
             f"{int(m.get('data/test_new_queries', 0))} new queries; [95 % interval over queries])", ""]
    if "new_queries/test/ndcg@10" in m:
        lines.append(f"- Served ranker `{m['search/ranker']}` (chosen on validation): NDCG@10 "
                     f"{ci(m, 'new_queries/test/ndcg@10')}, Recall@5 {ci(m, 'new_queries/test/recall@5')}, "
                     f"Kendall's tau {ci(m, 'new_queries/test/kendall_tau')}; best vote-free ranker "
                     f"`{m['search/vote_free']}` NDCG@10 {ci(m, 'new_queries/vote_free/test/ndcg@10')}.")
    if "calibration/test/ece" in m:
        lines.append(f"- Calibrated scores: ECE {m['calibration/test/ece']:.3f}; \"no good match\" precision "
                     f"{m.get('nomatch/test/precision', float('nan')):.2f}, recall {m.get('nomatch/test/recall', float('nan')):.2f}.")
    lines.append(f"- Leakage: {int(m.get('data/cross_split_duplicates', 0))} duplicate drawings and "
                 f"{int(m.get('data/cross_split_queries', 0))} query texts across splits.")
    return "\n".join(lines)


def _with_ci(m: Mapping[str, Any], key: str) -> str:
    if key + "_ci_low" not in m:
        return f"{m[key]:.2f}"
    return f"{m[key]:.2f} [{m[key + '_ci_low']:.2f}, {m[key + '_ci_high']:.2f}]"


def conclusions(m: Mapping[str, Any], cfg: Any) -> str:
    out = ["## Conclusions", "", "Every figure below is read from this run's metrics; intervals are 95 % bootstrap "
           "intervals over queries. The votes are *derived* from a documented rule, not cast by people.", ""]
    out.append(f"- **Leakage removed.** The library ships the same drawing under several paths; "
               f"{int(m.get('data/duplicates_removed', 0))} copies were dropped before splitting, and drawings that "
               f"share a query text stay on one side. A split without these steps would have put "
               f"{int(m.get('data/before/cross_split_duplicates', 0))} test drawings with a copy in training and "
               f"{int(m.get('data/before/cross_split_queries', 0))} test texts that are training texts; this build has "
               f"{int(m.get('data/cross_split_duplicates', 0))} and {int(m.get('data/cross_split_queries', 0))} "
               "(`reports/search/split.json` lists every split's images and queries).")
    if "new_queries/test/ndcg@10" in m:
        lo, hi = m["new_queries/test/ndcg@10_delta_ci_low"], m["new_queries/test/ndcg@10_delta_ci_high"]
        ranker, free = m["search/ranker"], m["search/vote_free"]
        if ranker == free:
            verdict = (f"no vote-trained model (nor the blend) ranked better on validation than the vote-free "
                       f"`{free}`, so the search serves `{free}`: the votes did not earn their keep")
        elif lo > 0:
            verdict = (f"the served `{ranker}` beats the best vote-free ranker `{free}` by "
                       f"{m['new_queries/test/ndcg@10_delta']:+.3f} [{lo:+.3f}, {hi:+.3f}] NDCG@10 on test, an interval "
                       "above zero: the votes earn their keep")
        else:
            verdict = (f"the served `{ranker}` (chosen on validation) and the best vote-free ranker `{free}` differ by "
                       f"{m['new_queries/test/ndcg@10_delta']:+.3f} [{lo:+.3f}, {hi:+.3f}] NDCG@10 on test: an interval "
                       "that holds zero, so no difference is shown")
        out.append(f"- **New images, new queries (the headline).** Served ranker NDCG@10 {ci(m, 'new_queries/test/ndcg@10')}, "
                   f"Recall@5 {ci(m, 'new_queries/test/recall@5')}, MRR {ci(m, 'new_queries/test/mrr')}, Kendall's "
                   f"tau-b {ci(m, 'new_queries/test/kendall_tau')}; {verdict}.")
    if "seen_queries/" + str(m.get("search/ranker")) + "/test/ndcg@10" in m:
        r = m["search/ranker"]
        out.append(f"- **Seen queries** (training texts searching new drawings; an easier diagnostic): NDCG@10 "
                   f"{ci(m, f'seen_queries/{r}/test/ndcg@10')}.")
    if "test/r2" in m:
        out.append(f"- **Pairs** (the test gallery's voted pairs; `{m['pairs/model']}`, the vote-trained model with "
                   f"the best validation R2): MAE {ci(m, 'test/mae')}, RMSE {ci(m, 'test/rmse')}, R2 {ci(m, 'test/r2')}"
                   f"; the dummy's R2 {ci(m, 'dummy/test/r2')}.")
    if "ceiling/test/r2" in m:
        out.append(f"- **What the derived votes allow.** A perfect follower of the rule that made the votes (it knows "
                   f"each pair's folders and keywords) reaches R2 {ci(m, 'ceiling/test/r2')} and NDCG@10 "
                   f"{m['ceiling/test/ndcg@10']:.3f}; the rest is the votes' own noise. The model stands at R2 "
                   f"{m.get('test/r2', float('nan')):.3f} between the dummy ({m.get('dummy/test/r2', float('nan')):.3f}) "
                   "and that ceiling: the frozen ImageNet and sentence vectors carry the library's folders poorly.")
    if "calibration/test/ece" in m:
        ok = m["calibration/test/ece"] <= 0.05
        out.append(f"- **Calibrated scores**: isotonic regression fitted on validation gives ECE "
                   f"{m['calibration/test/ece']:.3f} on test (target <= 0.05: {'met' if ok else 'missed'}; the raw "
                   f"score, min-max scaled: {m.get('calibration/test/ece_uncalibrated', float('nan')):.3f}).")
    if "nomatch/test/precision" in m:
        ok = m["nomatch/test/precision"] >= cfg.nomatch_precision
        text_side = str(m["nomatch/statistic"]).startswith("gallery text")
        out.append(f"- **\"No good match\"**: when the {m['nomatch/statistic']} falls below {m['nomatch/threshold']:.3g} "
                   f"(statistic and threshold chosen on validation for precision >= {cfg.nomatch_precision:.2f}) the "
                   "search answers that nothing fits. "
                   + ("That statistic is the query's side: its mean cosine to the k nearest texts of the gallery's own "
                      "drawings (each gallery query's own drawing left out: a user's words are not the title), read as "
                      "1 minus a conformal p-value against validation queries of categories held out of the gallery. "
                      if text_side else "")
                   + f"On test, with queries of categories no gallery drawing belongs to and "
                   f"{m['nomatch/prevalence']:.0%} of searches assumed to have nothing to find, the answer is given "
                   f"{int(m['nomatch/test/answered'])} times, right {_with_ci(m, 'nomatch/test/precision')} of the "
                   f"time ({'met' if ok else 'missed'}), and catches {_with_ci(m, 'nomatch/test/recall')} of those "
                   f"queries. The statistic separates the two kinds of query with ROC-AUC "
                   f"{m['nomatch/test/roc_auc']:.2f} (validation {m['nomatch/val/roc_auc']:.2f}; 0.5: not at all): "
                   "at a 90 % precision bar it may answer only for the few queries least like anything in the "
                   "gallery. The ranking itself is untouched by this answer.")
    return "\n".join(out)
