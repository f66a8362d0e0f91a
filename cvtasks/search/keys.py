"""The search task's metric keys, by the stage that writes them (see cvtasks/metric_keys.py)."""
from cvtasks.metric_keys import MetricKeys

_RANKING = "{ndcg@10,recall@1,recall@5,recall@10,mrr,kendall_tau}"
_PAIRS = "{mae,rmse,r2}"
_CI = "{ci_low,ci_high}"

KEYS = MetricKeys({
    "data": ("data/{cross_split_duplicates,cross_split_queries,duplicates_removed}",
             "data/before/{cross_split_duplicates,cross_split_queries}",
             "data/train_{images,pairs,queries}", "data/{val,test}_{images,new_queries,seen_queries,nomatch_queries}"),
    "features": ("data/cross_split_similar_vectors", "features/{image_dim,text_dim}"),
    "models": ("models/{mlp,interaction}/best_epoch",),
    "select": ("search/{ranker,vote_free}", "new_queries/*/val/ndcg@10"),
    "evaluate": (f"new_queries/*/test/{_RANKING}", f"new_queries/*/test/{_RANKING}_{_CI}",
                 f"new_queries/test/{_RANKING}", f"new_queries/test/{_RANKING}_{_CI}",
                 "new_queries/*/test/ndcg@10_delta", f"new_queries/*/test/ndcg@10_delta_{_CI}",
                 "new_queries/test/ndcg@10_delta", f"new_queries/test/ndcg@10_delta_{_CI}",
                 "seen_queries/*/test/{ndcg@10,kendall_tau}", f"seen_queries/*/test/{{ndcg@10,kendall_tau}}_{_CI}",
                 f"{{dummy,linear,mlp,interaction,ceiling}}/test/{_PAIRS}",
                 f"{{dummy,linear,mlp,interaction,ceiling}}/test/{_PAIRS}_{_CI}",
                 "{dummy,linear,mlp,interaction}/val/r2", "pairs/model", f"test/{_PAIRS}", f"test/{_PAIRS}_{_CI}",
                 "ceiling/test/ndcg@10"),
    "calibrate": ("calibration/test/{ece,ece_uncalibrated,pairs}",),
    "nomatch": ("nomatch/{statistic,threshold,prevalence}",
                "nomatch/{val,test}/{precision,precision_as_sampled,recall,roc_auc,answered,no_match_queries}",
                f"nomatch/test/{{precision,recall}}_{_CI}"),
    "demo": (),
})
