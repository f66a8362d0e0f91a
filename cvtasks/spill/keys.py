"""The spill task's metric keys, by the stage that writes them (see cvtasks/metric_keys.py)."""
from cvtasks.data.wells import SHIFT_LIGHTING
from cvtasks.metric_keys import MetricKeys, one_of
from cvtasks.spill.scores import LOCAL_SCORES, SCORES

_RATES = "{roc_auc,pr_auc,tpr,tnr}"
_SCORES = one_of(SCORES)
_CI = "{ci_low,ci_high}"


def _detector(prefix: str) -> tuple[str, ...]:
    """What one detector over the seeds records (evaluation.flatten and SpillTask._detector)."""
    return (f"{prefix}seeds", f"{prefix}test/{_RATES}_mean", f"{prefix}test/{_RATES}_mean_{_CI}",
            f"{prefix}val/{_RATES}_mean", f"{prefix}threshold_mean")


KEYS = MetricKeys({
    "data": ("data/{train,val,test}/{normal,spill}", "data/{n_images,ae_train}"),
    "autoencoder": ("autoencoder/{best_epoch_mean,train_seconds_mean}",),
    # the config's score is the headline (no prefix); every other score under ae_<score>/
    "scores": (*_detector(""), *(f"?{p}" for p in _detector(f"ae_{_SCORES}/")), "test/roc_auc_ci_low"),
    "baselines": (*_detector("supervised/"), "supervised/{best_epoch_mean,epochs_mean}",
                  *_detector("anomalib/{patchcore,padim}/"), f"anomalib/{{patchcore,padim}}/test/{_RATES}"),
    "maps": ("maps/{flagged_spill,missed_spill,false_alarm,quiet_normal}",),
    "errors": ("errors/{normal_false_alarms,spill_detected}/*",),
    "lighting_shift": ("lighting_shift/{val,test}/{tnr,tpr}", f"lighting_shift/{{val,test}}/{{tnr,tpr}}_{_CI}",
                       "lighting_shift/{val,test}/{worst_seed_false_alarms,n_normal,worst_seed_tnr_low}",
                       f"?lighting_shift/{one_of(LOCAL_SCORES)}/{{val,test}}/{{tnr,tpr}}",   # as in scores
                       f"?lighting_shift/{one_of(LOCAL_SCORES)}/{{val,test}}/{{tnr,tpr}}_{_CI}",
                       f"photometric/test/{_RATES}", "lighting_shift/photometric/{val,test}/{tnr,tpr}",
                       f"lighting_shift/{one_of(SHIFT_LIGHTING)}/tnr"),
    "design": (f"design/{_SCORES}/{{roc_auc,tpr_at_target_fpr}}",
               "design/policy/*/{p_both,tnr}", "design/n_images"),
    "experiments": ("experiments/*/{val_roc_auc,test_roc_auc,val_shift_tnr}",),
})
