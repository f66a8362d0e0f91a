"""The styles task's metric keys, by the stage that writes them (see cvtasks/metric_keys.py)."""
from cvtasks.metric_keys import MetricKeys

_ATTRIBUTE = "{hairstyle,hair_colour,accessory,clothes,clothes_colour,skin}"
_GENERATOR = "{a_independent,b_conditional,c_factor}"
_STRUCTURE = "{independent,learned,true}"

KEYS = MetricKeys({
    "data": ("data/{n_people,n_train,n_val,n_test,n_attributes,n_options}",),
    "estimates": ("estimates/{sample,mle_zero_options,total_probability_max_diff}",),
    "structure": ("structure/{learned_edges,n_full,ess,shd_at_n_full,true_edges}",),
    "prior": ("avatars/prior_strength", "styles/prior/val_ll", "structure/reversed_edges"),
    "heldout": ("styles/{n_small,n_full}",
                f"styles/{{small,full}}/{_STRUCTURE}/{{bayes,mle}}/{{zero_rate,heldout_ll_inf_share,heldout_ll_seen,kl_inf_share}}",
                f"styles/{{small,full}}/{_STRUCTURE}/bayes/{{heldout_ll,kl}}",
                # the MLE gives an unseen option probability 0: its log-likelihood and KL are -inf
                # or inf then, and left out (the _inf_share keys say how often)
                f"?styles/{{small,full}}/{_STRUCTURE}/mle/{{heldout_ll,kl}}"),
    "generate": (f"styles/generate/{_STRUCTURE}_{{mle,bayes}}/{{novelty,distinct,validity}}",),
    "avatars": (f"avatars/classifier_heldout_acc/{_ATTRIBUTE}",
                "avatars/{real_nn_distance,distinct_colours,invalid_rate,invalid_rate_a1,invalid_shown}",
                f"avatars/{_GENERATOR}/{{nn_distance,diversity,recognisability}}",
                f"avatars/{_GENERATOR}/recognisability/{_ATTRIBUTE}"),
    "avatar_experiments": (f"avatars/conditioning/*/{_ATTRIBUTE}", "avatars/palette/*/rmse"),
    "seeds": ("headline/seeds", "headline/{heldout_ll,shd,reversed_edges,invalid_rate}",
              "headline/{heldout_ll,shd,reversed_edges,invalid_rate}_{ci_low,ci_high}",
              f"headline/recognisability/{_GENERATOR}", f"headline/recognisability/{_GENERATOR}_{{ci_low,ci_high}}",
              "styles/full/learned/bayes/heldout_ll_{ci_low,ci_high}"),
})
