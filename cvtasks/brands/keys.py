"""The brands task's metric keys, by the stage that writes them (see cvtasks/metric_keys.py)."""
from cvtasks.metric_keys import MetricKeys

_SPLIT = "{train,val,test}/{accuracy,balanced_accuracy,macro_f1,min_class_precision,min_class_recall,top3}"
_MODEL = (f"{{model}}/{_SPLIT}", "{model}/{val,test}/macro_f1_{ci_low,ci_high}", "{model}/best_epoch_mean",
          "time/{model}_train_s_mean")


def _model(name: str) -> tuple[str, ...]:
    return tuple(p.replace("{model}", name) for p in _MODEL)


KEYS = MetricKeys({
    "data": ("data/{n_images,n_brands,n_models,skipped_files,imbalance_ratio}",
             "{train,val,test}/{n_models,n_images,n_brands}"),
    "baseline": (f"baseline/{_SPLIT}", "baseline/test/macro_f1_{ci_low,ci_high}"),
    "features": ("features/{dim,activation_values}",),
    "frozen": _model("frozen"),
    "finetune": _model("finetuned"),
    "small_cnn": _model("small_cnn"),
    "evaluate": ("transfer/finetuned_selected", _SPLIT, "{val,test}/macro_f1_{ci_low,ci_high}",
                 "finetuned_minus_frozen/test/macro_f1", "finetuned_minus_frozen/test/macro_f1_{ci_low,ci_high}"),
    "imbalance": ("imbalance/{unweighted,weighted}_{macro_f1,balanced_accuracy,min_class_recall}",),
    "embeddings": ("embed/silhouette_{before,after}", "embed/silhouette_{before,after}_{ci_low,ci_high}"),
    "active_learning": ("al/{eval_split,seeds,pool_size,full_accuracy_val,labels_budget,chosen,labels_fraction_of_pool}",
                        "al/labels_to_95pct_median", "al/*/reached", "al/*/labels_to_95pct_{min,median,max}",
                        "al/test/{accuracy_at_budget,full_accuracy,share_of_full}"),
    "autolabel": ("autolabel/{noise_rate,flag_precision,flag_recall,flagged,coverage,accuracy,noisy_label_accuracy}",
                  "autolabel/{noisy,clean}/accuracy_at_*pct"),
})
