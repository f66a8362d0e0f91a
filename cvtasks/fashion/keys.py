"""The fashion task's metric keys, by the stage that writes them (see cvtasks/metric_keys.py)."""
from cvtasks.metric_keys import MetricKeys

_SPLIT = "{accuracy,balanced_accuracy,macro_f1,min_class_precision,min_class_recall,top3}"
_CI = "{ci_low,ci_high}"

KEYS = MetricKeys({
    "data": ("data/{train,val,test}", "data/duplicates_{train_val,train_test,val_test}"),
    "architectures": ("architectures/*/val_acc",),
    "study": ("study/{n_trials,complete,pruned,seeds_per_top_config,top_configs,best_val_acc_mean,best_val_acc_std}",
              "study/{config_is_winner,shirt_recall_vs_accuracy_spearman,config_differs_in}"),
    "train": ("train/{seconds,epochs,best_epoch,device,reused,val_acc,seeds}", "model/parameters",
              "train/val_flip_gain", f"train/val_flip_gain_{_CI}", "train/val_acc_seeds_{mean,min,max}",
              "train/offset/{class,value,val_min_pr_before,val_min_pr_after}",
              "train/{cpu_epoch_seconds,cpu_retrain_hours}",
              "schedules/recipes", "schedules/*/{val_acc,minus_final}", f"schedules/*/minus_final_{_CI}"),
    "evaluate": (f"{{train,test}}/{_SPLIT}",
                 f"test/{{accuracy,macro_f1,top3,min_class_precision,min_class_recall}}_{_CI}",
                 "test/*/{precision,recall}", f"test/*/{{precision,recall}}_{_CI}",
                 "test/*/confused_{1,2,3}", "test/*/confused_{1,2,3}_share"),
    "export": ("export/{onnx_max_abs_diff,onnx_top1_agreement,int8_top1_agreement}",
               "export/{torch_test_accuracy,fp32_test_accuracy,int8_test_accuracy,int8_accuracy_drop_points}",
               "export/{checkpoint_mb,fp32_mb,int8_mb}"),
    "service": (),
})
