"""The prose of the styles report, built from a run's metrics (no number is typed by hand),
and the few embedded-data specifics the notebook's tables use."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cvtasks.prose import num
from cvtasks.styles.seeds import HEADLINES

EMBEDDED_GROUPS = {"hair": ["hairstyle", "hair_colour"], "clothes": ["clothes", "clothes_colour"],
                   "skin + glasses": ["skin", "accessory"]}


def telling_styles(schema: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """A few styles whose probabilities tell the models apart (embedded schema only)."""
    if not {"hairstyle", "hair_colour", "accessory", "clothes", "clothes_colour", "skin"} <= set(schema):
        return {}
    rest = {"accessory": "default", "clothes": "hoodie", "clothes_colour": "blue_01", "skin": "light"}
    return {
        "bald, no hair colour": {**rest, "hairstyle": "no_hair", "hair_colour": "none"},
        "bald with black hair (impossible)": {**rest, "hairstyle": "no_hair", "hair_colour": "black"},
        "afro, black hair": {**rest, "hairstyle": "long_hair_fro", "hair_colour": "black"},
        "afro, platinum hair (never in the truth)": {**rest, "hairstyle": "long_hair_fro", "hair_colour": "platinum"},
    }


TITLE_LEGEND = " (hairstyle / hair colour / clothes colour)"


def style_title(style: Mapping[str, str]) -> str:
    """A short caption of a style for a grid of avatars."""
    if "hairstyle" in style:
        return f"{style['hairstyle'].replace('short_hair_', '').replace('long_hair_', 'long ')[:12]}\n" \
               f"{style.get('hair_colour', '')}\n{style.get('clothes_colour', '')}"
    return "\n".join(str(v)[:10] for v in list(style.values())[:3])


def attribute_groups(schema: Mapping[str, Any]) -> dict[str, list[str]]:
    """Which attributes method (b) is conditioned on, per row of the conditioning experiment."""
    groups = {"nothing (a)": []}
    if all(a in schema for attrs in EMBEDDED_GROUPS.values() for a in attrs):
        groups.update(EMBEDDED_GROUPS)
    groups["everything (b)"] = list(schema)
    return groups


def _mean_of(m: Mapping[str, float], prefix: str) -> float:
    values = [v for k, v in m.items() if k.startswith(prefix)]
    return sum(values) / len(values) if values else float("nan")


def _with_interval(m: Mapping[str, float], key: str) -> str:
    return f"{m[key]:.3g} [{m[key + '_ci_low']:.3g}, {m[key + '_ci_high']:.3g}]"


def summary(m: Mapping[str, float], run_name: str) -> str:
    lines = [f"**Summary of this run** (`{run_name}`; {int(m.get('data/n_people', 0))} people: "
             f"{int(m.get('data/n_train', 0))} train, {int(m.get('data/n_val', 0))} validation, "
             f"{int(m.get('data/n_test', 0))} test)", ""]
    if "structure/shd_at_n_full" in m:
        lines.append(f"- Structure learned from the training rows: {int(m['structure/learned_edges'])} edges, "
                     f"SHD {int(m['structure/shd_at_n_full'])} to the true graph.")
    full = "styles/full/{}/bayes/heldout_ll"
    if full.format("learned") in m:
        lines.append(f"- Test log-likelihood per style (Bayes, all training rows): learned structure "
                     f"{num(m, full.format('learned'))}, true {num(m, full.format('true'))}, independent "
                     f"{num(m, full.format('independent'))} nats.")
    if "avatars/prior_strength" in m:
        lines.append(f"- Prior strength chosen on validation: a = {m['avatars/prior_strength']:g}; invalid styles "
                     f"sampled at it {num(m, 'avatars/invalid_rate', '.1%')} (at a = 1: "
                     f"{num(m, 'avatars/invalid_rate_a1', '.1%')}).")
    if "avatars/c_factor/recognisability" in m:
        lines.append(f"- Avatar recognisability: (a) {num(m, 'avatars/a_independent/recognisability', '.2f')}, "
                     f"(b) {num(m, 'avatars/b_conditional/recognisability', '.2f')}, "
                     f"(c) {num(m, 'avatars/c_factor/recognisability', '.2f')}.")
    return "\n".join(lines)


def conclusions(m: Mapping[str, float], cfg: Any) -> str:
    out = ["## Conclusions", "", "Every figure below is read from this run's metrics.", ""]
    small, full = int(m.get("styles/n_small", 0)), int(m.get("styles/n_full", 0))
    if "styles/small/learned/mle/zero_rate" in m:
        out.append(
            f"- **MLE against Bayes.** With {small} training people MLE gives probability zero to "
            f"{m['styles/small/learned/mle/zero_rate']:.1%} of the test styles (learned structure), so their "
            f"log-likelihood is -inf; with all {full} it still does for "
            f"{m['styles/full/learned/mle/zero_rate']:.1%}. The Dirichlet estimate never does: its test "
            f"log-likelihood is {m['styles/small/learned/bayes/heldout_ll']:.2f} nats per style at n = {small} and "
            f"{m['styles/full/learned/bayes/heldout_ll']:.2f} at n = {full}.")
    if "structure/shd_at_n_full" in m:
        shd = int(m["structure/shd_at_n_full"])
        gap = m["styles/full/true/bayes/heldout_ll"] - m["styles/full/learned/bayes/heldout_ll"]
        out.append(
            f"- **Structure from the data.** The BDeu forest learned from the {full} training rows has "
            f"{int(m['structure/learned_edges'])} edges and lies at structural Hamming distance {shd} from the true "
            f"graph ({int(m['structure/true_edges'])} edges){' (target <= 2: met)' if shd <= 2 else ' (target <= 2: missed)'}; "
            f"that distance counts the skeleton (which pairs are linked), not directions"
            + (f": of the shared edges, {int(m['structure/reversed_edges'])} "
               f"{'points' if int(m['structure/reversed_edges']) == 1 else 'point'} against the true direction after "
               f"the directions were chosen on validation (in a forest, a reversed edge describes the "
               f"same family of joint distributions, so the data can barely tell the directions apart). " if "structure/reversed_edges" in m else ". ")
            + f"Its test log-likelihood is {abs(gap):.3f} nats per style "
            f"{'below' if gap > 0 else 'above'} that of the true structure "
            f"({'within' if abs(gap) <= 0.05 else 'outside'} the 0.05 target), and "
            f"{m['styles/full/learned/bayes/heldout_ll'] - m['styles/full/independent/bayes/heldout_ll']:.2f} nats "
            f"above the independent model. With few rows the search keeps fewer edges (figure above): "
            f"BDeu asks for evidence before it adds the parameters of a conditional table.")
    if "avatars/prior_strength" in m:
        out.append(
            f"- **Prior strength.** Validation chose a = {m['avatars/prior_strength']:g}; the avatars and the sampled "
            f"styles use it. At that strength {m['avatars/invalid_rate']:.1%} of the sampled styles are invalid "
            f"(a hair colour on a bald head, a shirt colour under a blazer), against {m['avatars/invalid_rate_a1']:.1%} "
            f"at a = 1: a strong prior pulls every conditional row towards uniform.")
    gen = "styles/generate/{}_bayes/{}"
    if gen.format("learned", "validity") in m:
        out.append(
            f"- **Sampling new styles.** The learned structure's Bayes model generates valid styles "
            f"{m[gen.format('learned', 'validity')]:.1%} of the time, the independent model "
            f"{m[gen.format('independent', 'validity')]:.1%}; {m[gen.format('learned', 'novelty')]:.0%} of the "
            f"learned model's styles are new (no person has them).")
    if "avatars/c_factor/recognisability" in m:
        out.append(
            f"- **Avatars.** (a) samples every pixel on its own and carries no style (recognisability "
            f"{m['avatars/a_independent/recognisability']:.2f}, chance); (b) shows the sampled colours and shapes "
            f"({m['avatars/b_conditional/recognisability']:.2f}) with speckled edges, since pixels stay independent; "
            f"(c) gives coherent avatars ({m['avatars/c_factor/recognisability']:.2f}, the mean over the six "
            f"attributes), close to real held-out avatars ({_mean_of(m, 'avatars/classifier_heldout_acc/'):.2f}, the "
            f"same classifiers' mean accuracy on them). No method "
            f"copies: generated avatars lie {m['avatars/c_factor/nn_distance']:.3f}-"
            f"{m['avatars/a_independent/nn_distance']:.3f} RMSE from their nearest training avatar, held-out real "
            f"ones {m['avatars/real_nn_distance']:.3f}.")
    if "headline/seeds" in m:
        n = int(m["headline/seeds"])
        figures = [f"{name} {_with_interval(m, f'headline/{key}')}" for key, (name, _) in HEADLINES.items()
                   if f"headline/{key}" in m]
        ll = "styles/full/learned/bayes/heldout_ll"
        out.append(
            f"- **Over {n} seeds** (each its own generated table, row split, sampled styles and avatars; mean over "
            f"the seeds with its 95 % Student-t interval): " + "; ".join(figures) + ". This run's seed alone: test "
            f"log-likelihood {_with_interval(m, ll)} (interval over its {int(m.get('data/n_test', 0))} test rows). "
            "The figures above are this seed's; the seed table shows how far another seed moves them.")
    out.append("- **Data.** The embedded styles (every table above) are *generated* from a known distribution of ours and rendered with "
               "py-avataaars, which is what makes the true structure and KL computable; with a real table the "
               "same stages run, without the rows that need the truth.")
    return "\n".join(out)
