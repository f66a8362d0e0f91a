"""The spill detector: split, normalisation, scores, threshold policy, baselines, a quick run."""
import numpy as np
import pytest
import torch

import config
from cvtasks.data.wells import (
    LIGHTING,
    SHIFT_LIGHTING,
    VAL_SHIFT_LIGHTING,
    WellImages,
    WellSettings,
    generate_wells,
)
from cvtasks.models.autoencoder import ConvAutoencoder, EncoderClassifier
from cvtasks.spill import (
    SpillTask,
    anomalib_baselines,
    evaluation,
    experiments,
    training,
)
from cvtasks.spill import data as D
from cvtasks.spill import scores as S
from cvtasks.spill import thresholds as T


def test_threshold_policies_on_a_hand_made_case():
    y = np.array([0, 0, 0, 0, 1, 1, 1])
    s = np.array([0.1, 0.2, 0.3, 0.4, 0.35, 0.5, 0.6])
    # Youden: at 0.35 TPR 1, FPR 1/4 (J = .75) beats 0.5 (TPR 2/3, FPR 0, J = .67)
    assert T.choose_threshold(y, s, "youden") == pytest.approx(0.35)
    # no false alarm allowed: the lowest threshold above every normal score
    assert T.choose_threshold(y, s, "fixed_fpr", target_fpr=0.01) == pytest.approx(0.5)
    assert T.choose_threshold(y, s, "fixed_fpr", target_fpr=0.25) == pytest.approx(0.35)
    # separable scores: the threshold flags every spill and no normal image
    thr = T.choose_threshold([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9], "youden")
    m = T.detection(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.8, 0.9]), thr, "val")
    assert m["val/tpr"] == 1 and m["val/tnr"] == 1
    with pytest.raises(ValueError, match="both classes"):
        T.choose_threshold([0, 0], [0.1, 0.2], "youden")
    with pytest.raises(ValueError, match="policy"):
        T.choose_threshold(y, s, "median")


def test_fpr_bound_policy_keeps_a_margin_for_the_uncertainty_of_the_validation_rate():
    # 200 normal images scored 0, 1, .., 199; 250 spills at 150.5, 151.5, .., 399.5 (overlapping)
    y = np.r_[np.zeros(200, int), np.ones(250, int)]
    s = np.r_[np.arange(200.0), np.arange(150.5, 400)]
    # the full 5 % budget: 10 false alarms (190..199), every spill from 189.5 up
    assert T.choose_threshold(y, s, "fixed_fpr", target_fpr=0.05) == pytest.approx(189.5)
    thr = T.choose_threshold(y, s, "fpr_bound", target_fpr=0.05, confidence=0.9)
    # Clopper-Pearson at 90 %: 5 false alarms of 200 bound the rate below 4.6 %, 6 do not (5.2 %)
    assert int((s[:200] >= thr).sum()) == 5 and thr == pytest.approx(194.5)
    assert T.false_alarm_bound(np.array([5, 6]), 200, 0.9) == pytest.approx([0.0459, 0.0523], abs=5e-4)
    assert T.false_alarm_bound(np.array([0, 200]), 200, 0.9) == pytest.approx([1 - 0.1 ** (1 / 200), 1.0])
    # more confidence, fewer false alarms allowed
    assert T.choose_threshold(y, s, "fpr_bound", target_fpr=0.05, confidence=0.99) > thr
    # too few normal images to bound 5 % at 90 %: warn and allow no validation false alarm
    with pytest.warns(UserWarning, match="cannot bound"):
        small = T.choose_threshold([0, 0, 0, 1, 1], [0.1, 0.2, 0.3, 0.25, 0.9], "fpr_bound")
    assert small == pytest.approx(0.9)


def test_split_is_stratified_disjoint_and_ae_trains_on_normals_only():
    labels = np.array([0, 1] * 50)
    split = D.make_split(labels, 0.2, 0.3, seed=1)
    parts = [split.train, split.val, split.test]
    assert sum(map(len, parts)) == 100 and len(np.unique(np.concatenate(parts))) == 100
    assert (len(split.test), len(split.val)) == (30, 20)
    for p in parts:
        assert labels[p].mean() == pytest.approx(0.5, abs=0.05)
    normals = D.normal_only(split.train, labels)
    assert np.all(labels[normals] == 0) and len(normals) == int((labels[split.train] == 0).sum())


def test_per_image_normalisation_cancels_gain_and_colour_cast():
    rng = np.random.default_rng(0)
    img = rng.uniform(0.2, 0.6, (1, 16, 16, 3))
    cast = img * np.array([1.3, 1.0, 0.6]) * 0.9
    x1, mean, std = D.normalise((img * 255).round().astype(np.uint8), "per_image")
    x2, _, _ = D.normalise((cast * 255).round().astype(np.uint8), "per_image")
    assert torch.allclose(x1, x2, atol=0.05)
    xf1, _, _ = D.normalise((img * 255).round().astype(np.uint8), "fixed")
    xf2, _, _ = D.normalise((cast * 255).round().astype(np.uint8), "fixed")
    assert (xf1 - xf2).abs().max() > 0.3
    back = D.to_uint8(x1, mean, std)
    assert np.abs(back.astype(int) - (img * 255).round()).max() <= 1


def test_local_normalisation_cancels_a_lamp_on_one_side_and_keeps_a_spot():
    rng = np.random.default_rng(0)
    img = rng.uniform(0.25, 0.35, (1, 32, 32, 3))
    lamp = np.linspace(0.5, 1.8, 32)[None, None, :, None]          # light rising across the scene
    lit = img * lamp
    lit[0, 14:17, 14:17] = 1.0                                        # a 3x3 spot of light
    img[0, 14:17, 14:17] = 1.0
    as_uint8 = [(a * 255).round().astype(np.uint8) for a in (img, lit)]
    inner = (slice(None), slice(None), slice(6, 26), slice(6, 26))   # away from the blur's border
    local = [D.normalise(a, "local", 4.0) for a in as_uint8]
    global_ = [D.normalise(a, "per_image") for a in as_uint8]
    assert (local[0][0] - local[1][0])[inner].abs().median() < 0.1
    assert (global_[0][0] - global_[1][0])[inner].abs().median() > 0.3   # one gain per image cannot
    spot = local[1][0][0, :, 15, 15]
    assert (spot > 1.0).all()                                          # the spot still stands out
    back = D.to_uint8(local[1][0], local[1][1], local[1][2])
    assert np.abs(back.astype(int) - as_uint8[1].astype(int)).max() <= 1
    with pytest.raises(ValueError, match="normalisation"):
        D.normalise(as_uint8[0], "gamma")


def test_pooled_score_finds_a_small_spot_that_mse_dilutes():
    x = torch.zeros(2, 3, 32, 32)
    recon = torch.zeros(2, 3, 32, 32)
    recon[0] += 0.3 * torch.randn(3, 32, 32, generator=torch.Generator().manual_seed(0))  # error everywhere
    recon[1, :, 10:13, 10:13] = 1.0                                                       # a 3x3 spot
    mse = S.anomaly_scores(recon, x, "mse", sigma=0)
    pooled = S.anomaly_scores(recon, x, "pooled", sigma=2.0)
    assert mse[1] == pytest.approx(27 / 3072)                    # 9 pixels x 3 channels / all values
    assert mse[0] > mse[1] and pooled[1] > pooled[0]
    emap = S.error_map(recon, x, 2.0, signed=False)
    assert emap.shape == (2, 32, 32)
    assert np.unravel_index(int(emap[1].argmax()), (32, 32)) == (11, 11)
    assert S.anomaly_scores(recon, x, "pooled", sigma=0)[1] == pytest.approx(3.0)
    with pytest.raises(ValueError, match="score"):
        S.anomaly_scores(recon, x, "ssim", sigma=0)


def test_excess_score_counts_only_light_the_reconstruction_lacks_in_image_units():
    recon = torch.zeros(3, 3, 16, 16)
    x = torch.zeros(3, 3, 16, 16)
    x[0, :, 4:6, 4:6] = 1.0     # brighter than the reconstruction: molten metal
    x[1, :, 4:6, 4:6] = -1.0    # darker: a slag lump the model did not redraw
    x[2, :, 4:6, 4:6] = 1.0     # the same excess, in an image normalised by a 3x larger scale
    scale = torch.tensor([1.0, 1.0, 3.0]).view(3, 1, 1, 1).expand(3, 3, 1, 1)
    excess = S.anomaly_scores(recon, x, "excess", sigma=0, scale=scale)
    pooled = S.anomaly_scores(recon, x, "pooled", sigma=0)
    assert excess[0] == pytest.approx(3.0) and excess[1] == 0.0   # 3 channels x 1^2; dark counts nothing
    assert excess[2] == pytest.approx(27.0)                        # (3 x 1)^2 per channel in image units
    assert pooled[0] == pooled[1] == pooled[2] == pytest.approx(3.0)   # both signs, normalised units
    emap = S.error_map(recon, x, 1.0, signed=True, scale=scale)
    assert np.unravel_index(int(emap[0].argmax()), (16, 16)) in {(4, 4), (4, 5), (5, 4), (5, 5)}


def test_emission_score_weights_the_excess_light_by_the_pixels_brightness():
    recon = torch.zeros(2, 3, 8, 8)
    x = torch.zeros(2, 3, 8, 8)
    x[:, :, 3, 3] = 1.0                      # the same excess light, normalised units
    scale = torch.full((2, 3, 1, 1), 0.5)
    shift = torch.tensor([0.45, 0.05]).view(2, 1, 1, 1).expand(2, 3, 1, 1)   # pixel 0.95 vs 0.55 in the image
    emission = S.anomaly_scores(recon, x, "emission", sigma=0, scale=scale, shift=shift)
    excess = S.anomaly_scores(recon, x, "excess", sigma=0, scale=scale)
    assert excess[0] == excess[1] == pytest.approx(3 * 0.5 ** 2)
    assert emission == pytest.approx([3 * (0.5 * 0.95) ** 2, 3 * (0.5 * 0.55) ** 2])   # near-white counts more
    x[1, :, 3, 3] = -1.0                     # darker than the reconstruction: nothing
    assert S.anomaly_scores(recon, x, "emission", sigma=0, scale=scale, shift=shift)[1] == 0.0
    with pytest.raises(ValueError, match="scale and shift"):
        S.anomaly_scores(recon, x, "emission", sigma=0, scale=scale)


def test_glow_score_counts_warm_light_and_not_light_clipped_to_white():
    recon = torch.zeros(2, 3, 8, 8)
    x = torch.zeros(2, 3, 8, 8)
    x[:, :, 3, 3] = 1.0                                  # the same excess light in both images
    scale = torch.full((2, 3, 1, 1), 0.5)
    # pixel (3, 3) in the image: orange metal (0.95, 0.6, 0.2) and a surface clipped to white (1, 1, 1)
    shift = torch.tensor([[0.45, 0.1, -0.3], [0.5, 0.5, 0.5]]).view(2, 3, 1, 1)
    glow = S.anomaly_scores(recon, x, "glow", sigma=0, scale=scale, shift=shift)
    emission = S.anomaly_scores(recon, x, "emission", sigma=0, scale=scale, shift=shift)
    image = torch.tensor([0.95, 0.6, 0.2])
    warmth = 0.95 - 0.2
    assert glow[0] == pytest.approx(float(((0.5 * image * warmth) ** 2).sum()), rel=1e-5)
    assert glow[1] == 0.0 and emission[1] > emission[0]   # white light: bright, but not warm
    with pytest.raises(ValueError, match="scale and shift"):
        S.anomaly_scores(recon, x, "glow", sigma=0, scale=scale)


def test_photometric_views_change_the_light_not_the_scene():
    raw = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 0.5
    views = training.photometric(raw, torch.Generator().manual_seed(1))
    normalised, _, _ = D.normalise((raw.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8))
    assert views.shape == raw.shape and not torch.allclose(views, normalised, atol=0.05)
    # a flat grey image stays flat under any global gain: the per-image normalisation undoes it,
    # and only the lamp's pool of light (on about half the images) leaves a pattern, which the
    # local normalisation flattens as well
    flat = {mode: training.photometric(torch.full((64, 3, 32, 32), 0.2), torch.Generator().manual_seed(2),
                                       normalisation=mode) for mode in ("per_image", "local")}
    patterned = (flat["per_image"].flatten(1).std(1) > 1e-3).float().mean()
    assert 0.2 < patterned < 0.8
    assert flat["local"].flatten(1).std(1).mean() < 0.5 * flat["per_image"].flatten(1).std(1).mean()
    with pytest.raises(ValueError, match="raw"):
        training.train_autoencoder(training.AutoencoderData(raw, None, raw, np.array([0, 0, 1, 1])),
                                   config.get("spill", augment="photometric"), training.Budget(1, None, 1e-3, 2), seed=0)


def test_models_shapes_and_bad_sizes():
    ae = ConvAutoencoder(depth=3, base=8, bottleneck=4)
    assert ae(torch.zeros(2, 3, 32, 32)).shape == (2, 3, 32, 32)
    with pytest.raises(ValueError, match="multiples"):
        ae(torch.zeros(1, 3, 30, 30))
    assert EncoderClassifier(depth=2, base=8)(torch.zeros(2, 3, 32, 32)).shape == (2, 2)


def test_anomalib_feature_extractor_takes_the_offline_weights():
    from anomalib.models.image.patchcore.torch_model import PatchcoreModel

    from cvtasks.models import create_image_encoder

    model = PatchcoreModel(backbone=config.OFFLINE_IMAGE_ENCODER, layers=["blocks.2"], pre_trained=False)
    extractor = model.feature_extractor.feature_extractor
    anomalib_baselines.load_offline_weights(extractor)
    ours = create_image_encoder(config.OFFLINE_IMAGE_ENCODER).backbone.state_dict()
    assert all(torch.equal(v, ours[k]) for k, v in extractor.state_dict().items())


@pytest.mark.slow
def test_anomalib_methods_score_a_bright_blob_above_plain_images():
    rng = np.random.default_rng(0)
    normal = (rng.uniform(90, 110, (12, 32, 32, 3))).astype(np.uint8)
    odd = normal[:2].copy()
    odd[:, 10:20, 10:20] = 255
    for method in anomalib_baselines.METHODS:
        small = config.get("spill", anomalib_size=64, patchcore_layers=("blocks.1", "blocks.2"),
                           padim_layers=("blocks.1", "blocks.2"), patchcore_coreset=0.5, padim_features=20)
        out = anomalib_baselines.fit_and_score(method, normal[2:], {"test": np.r_[normal[:2], odd]}, small, seed=0)
        assert out["test"][2:].min() > out["test"][:2].max(), method


def test_fast_metrics_match_scikit_learn_and_seeds_intervals_hold_the_mean():
    from sklearn.metrics import average_precision_score, roc_auc_score

    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(60, int), np.ones(40, int)]
    s = y + rng.normal(0, 0.8, 100)
    assert evaluation.roc_auc(y, s) == pytest.approx(roc_auc_score(y, s))
    assert evaluation.average_precision(y, s) == pytest.approx(average_precision_score(y, s))
    scores = [y + rng.normal(0, 0.8, 100) for _ in range(3)]
    ivs = evaluation.seeds_intervals(y, scores, [0.5] * 3, resamples=200, seed=0)
    for m, iv in ivs.items():
        assert iv.low <= iv.value <= iv.high, m
    assert ivs["roc_auc"].high - ivs["roc_auc"].low < 0.2


def test_lighting_shift_draws_only_unseen_lighting():
    assert not set(SHIFT_LIGHTING) & set(VAL_SHIFT_LIGHTING)
    assert not set(SHIFT_LIGHTING + VAL_SHIFT_LIGHTING) & set(LIGHTING)
    for lighting in (SHIFT_LIGHTING, VAL_SHIFT_LIGHTING):
        shift = generate_wells(WellSettings(n_images=12, size=32, seed=5, lighting=lighting,
                                            lighting_p=(1 / 3, 1 / 3, 1 / 3)), cache=False)
        assert set(shift.lighting) <= set(lighting) and shift.labels.sum() == 6
    with pytest.raises(ValueError, match="lighting"):
        WellSettings(lighting=("candlelight",), lighting_p=(1.0,))


def test_error_analysis_groups_flags_by_lighting_and_size():
    data = WellImages(images=np.zeros((6, 4, 4, 3), np.uint8), labels=np.array([0, 0, 0, 1, 1, 1]),
                      lighting=np.array(["dim", "dim", "glare", "dim", "glare", "glare"]),
                      smoke=np.array([0, 1, 0, 0, 0, 1], bool),
                      spill_area=np.array([0, 0, 0, 0.005, 0.02, 0.05]))
    flags = {"ae": np.array([0, 1, 1, 0, 1, 1], bool)}
    table = experiments.error_analysis(data, np.arange(6), flags)
    assert table.loc[("normal: false alarms", "light=dim"), "ae"] == 0.5
    assert table.loc[("normal: false alarms", "light=glare"), "ae"] == 1.0
    assert table.loc[("spill: detected", "size small <1%"), "ae"] == 0.0
    assert table.loc[("spill: detected", "size large >3%"), "n"] == 1


@pytest.mark.slow
def test_quick_run_end_to_end(tmp_path):
    cfg = config.get("spill", quick=True, paths=config.Paths.under(tmp_path, cache=config.CACHE_DIR))
    task = SpillTask(cfg, caller="cli", wandb_mode="disabled")
    wells = task.data()
    assert np.all(wells.data.labels[wells.ae_train] == 0)
    assert len(wells.ae_train) == int((wells.data.labels[wells.split.train] == 0).sum())
    assert not set(wells.ae_train) & (set(wells.split.val) | set(wells.split.test))
    for name in SpillTask.stages[1:]:
        getattr(task, name)()
    metrics = task.finish()
    assert metrics["seeds"] == cfg.seeds
    for prefix in ("", "anomalib/patchcore/", "anomalib/padim/", "supervised/"):
        for key in ("tpr", "tnr", "roc_auc", "pr_auc"):
            m = metrics[f"{prefix}test/{key}_mean"]
            assert 0 <= metrics[f"{prefix}test/{key}_mean_ci_low"] <= m <= metrics[f"{prefix}test/{key}_mean_ci_high"]
    assert metrics["test/roc_auc_mean"] > 0.5                       # better than chance even when quick
    assert 0 <= metrics["lighting_shift/test/tnr"] <= 1 and "anomalib/patchcore/test/roc_auc" in metrics
