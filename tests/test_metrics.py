"""Metric suites against their references: StarDist's matching (upstream vectors + DSB2018 label pairs),
py-ctcmetrics (GOWT1 and the E. coli movie with perturbed tracks), scikit-learn and scikit-image."""

from __future__ import annotations

import contextlib
import io
import math
import sys

import numpy as np
import pytest
import tifffile
from scipy import ndimage as ndi
from skimage.draw import disk
from skimage.segmentation import expand_labels

from hub.errors import InvalidInput
from hub.metrics import (
    SUITE_VERSION,
    TAUS,
    class_shares,
    classification_metrics,
    instance_counts,
    instance_metrics,
    integrated,
    labelfree_metrics,
    macro_f1_score,
    merged_classes,
    merged_metrics,
    pearson,
    pooled_stats,
    population_accuracy,
    semantic_metrics,
    sequence_metrics,
    tracking_metrics,
)
from hub.ome import Track, lineage_from_attrs, write_man_track

stardist_matching = pytest.importorskip("stardist.matching")


# ---------------------------------------------------------------------------------------------------- the package


def test_package_surface_and_no_torch():
    import subprocess

    code = (
        "import sys, hub.tasks as t; assert 'torch' not in sys.modules, 'torch imported'; print(sorted(t.task_keys()))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['classification', 'detection', 'instance', 'label-free', 'semantic', 'tracking']"
    assert SUITE_VERSION == "1.0"
    assert TAUS == (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)


# ------------------------------------------------------------------------------- instance: StarDist's own vectors


def _disks(width=128, n=5):
    y = np.zeros((width, width), np.uint16)
    for i, r in enumerate(np.linspace(0, width, n + 2)[1:-1]):
        rr, cc = disk((width // 2, r), radius=width // (3 * n), shape=y.shape)
        y[rr, cc] = i + 1
    return y


@pytest.mark.parametrize("shift", [0, 5, 10])
def test_stardist_upstream_disks(shift):
    """stardist tests/test_matching.py: 5 disks rolled by 0/5/10 px match at half their IoU, none at twice."""
    y = _disks()
    y2 = np.roll(y, shift, axis=0)
    iou = np.sum((y2 == y)[y > 0]) / np.sum((y + y2) > 0)
    c = instance_counts(y, y2, taus=(0.5 * iou, 2.0 * iou))
    assert (c.tp.tolist(), c.n_pred - c.tp[0], c.n_true - c.tp[0]) == ([5, 0], 0, 0)
    ref = stardist_matching.matching(y, y2, thresh=(0.5 * iou, 2.0 * iou))
    assert [r.tp for r in ref] == c.tp.tolist()


def test_stardist_upstream_docstring_and_shuffled_labels():
    y_true = np.zeros((100, 100), np.uint16)
    y_true[10:20, 10:20] = 1
    c = instance_counts(y_true, np.roll(y_true, 5, axis=0), taus=(0.5,))
    s = pooled_stats([c])[0]
    assert (s["fp"], s["tp"], s["fn"], s["accuracy"], s["panoptic_quality"]) == (1, 0, 1, 0, 0)
    # stardist test_grouping: relabelled identical masks match at thresh 1 (IoU exactly 1 counts under >=)
    from stardist.data import test_image_nuclei_2d

    y0 = test_image_nuclei_2d(return_mask=True)[1]
    y1 = stardist_matching._shuffle_labels(y0)
    assert pooled_stats([instance_counts(y0, y1, taus=(1.0,))])[0]["accuracy"] == 1.0


def test_iou_exactly_half_counts_under_ge_not_under_gt():
    y = np.zeros((40, 40), np.uint16)
    y[4:16, 4:16] = 1
    y2 = np.roll(y, 4, axis=0)  # 12x12 square shifted by 4 rows: IoU = 96/192 = 0.5 exactly
    c = instance_counts(y, y2)
    assert c.tp[0] == 1 and c.tp_strict[0] == 0 and c.tp[1] == 0
    assert stardist_matching.matching(y, y2, thresh=0.5).tp == 1
    m = instance_metrics([y], [y2])["metrics"]
    assert m["acc@0.5"] == 1.0 and m["dsb_score"] == 0.0 and m["acc@[.5:.95]"] == 0.1


def test_hungarian_tie_two_halves():
    """A true object split into two halves: each half has IoU 0.5; only one may match."""
    y = np.zeros((20, 20), np.uint16)
    y[5:15, 5:15] = 1
    p = np.zeros_like(y)
    p[5:10, 5:15], p[10:15, 5:15] = 1, 2
    c = instance_counts(y, p, taus=(0.5,))
    ref = stardist_matching.matching(y, p, thresh=0.5)
    assert (c.tp[0], c.n_pred - c.tp[0], c.n_true - c.tp[0]) == (ref.tp, ref.fp, ref.fn) == (1, 1, 0)
    assert c.sum_iou[0] == 0.5


def test_empty_images():
    z = np.zeros((8, 8), np.uint8)
    one = z.copy()
    one[2:4, 2:4] = 3
    m = instance_metrics([z, one], [z, z])
    assert m["per_sample"][0]["dsb_score"] == 1.0 and m["per_sample"][1]["dsb_score"] == 0.0
    assert m["metrics"]["recall@0.5"] == 0.0 and m["metrics"]["acc@[.5:.95]"] == 0.0
    with pytest.raises(InvalidInput, match="shape"):
        instance_metrics([z], [np.zeros((4, 4), np.uint8)])
    with pytest.raises(InvalidInput, match="integer"):
        instance_metrics([z], [z.astype(float)])
    with pytest.raises(InvalidInput):
        instance_metrics([z, z], [z])


# ------------------------------------------------------------------------- instance: DSB2018 vs matching_dataset

N_DSB = 40


@pytest.fixture(scope="module")
def dsb_labels(built):
    from hub.curate import open_dataset

    ds = open_dataset(built("dsb2018-fluo"))
    return [np.asarray(ds.image(i).label("instances")[...]) for i in ds.ids()[:N_DSB]]


def _drop(y, rng, frac=0.1):
    labels = np.unique(y)[1:]
    gone = rng.choice(labels, size=int(round(frac * labels.size)), replace=False)
    out = y.copy()
    out[np.isin(out, gone)] = 0
    return out, gone.size


def _erode(y):
    return np.where(ndi.minimum_filter(y, 3) == ndi.maximum_filter(y, 3), y, 0).astype(y.dtype)


def _merge_neighbours(y, rng, frac=0.3):
    """Merge a share of the neighbouring object pairs (at most 6 px apart; the second takes the first's label)."""
    g = expand_labels(y, 3)
    a, b = g[:, :-1].ravel(), g[:, 1:].ravel()
    c, d = g[:-1, :].ravel(), g[1:, :].ravel()
    pairs = np.unique(np.stack([np.r_[a, c], np.r_[b, d]], 1), axis=0)
    pairs = pairs[(pairs[:, 0] > 0) & (pairs[:, 1] > 0) & (pairs[:, 0] != pairs[:, 1])]
    out, used = y.copy(), set()
    for p, q in pairs[rng.random(len(pairs)) < frac]:
        if p not in used and q not in used:
            out[out == q] = p
            used |= {p, q}
    return out


def _shift(y, k=3):
    out = np.zeros_like(y)
    out[k:, k:] = y[:-k, :-k]
    return out


PERTURB = {
    "identity": lambda y, rng: y,
    "dilate": lambda y, rng: expand_labels(y, 2),
    "erode": lambda y, rng: _erode(y),
    "drop10": lambda y, rng: _drop(y, rng)[0],
    "merge": _merge_neighbours,
    "shift": lambda y, rng: _shift(y),
    "mixed": lambda y, rng: _shift(_merge_neighbours(_drop(expand_labels(y, 1), rng)[0], rng), 1),
}


def _safe_divide64(x, y, eps=1e-10):
    """stardist's ``_safe_divide`` with a float64 output instead of float32."""
    if np.isscalar(x) and np.isscalar(y):
        return x / y if np.abs(y) > eps else 0.0
    out = np.zeros(np.broadcast(x, y).shape, np.float64)
    np.divide(x, y, out=out, where=np.abs(y) > eps)
    return out


FIELDS = (
    "tp",
    "fp",
    "fn",
    "n_true",
    "n_pred",
    "precision",
    "recall",
    "accuracy",
    "f1",
    "panoptic_quality",
    "mean_true_score",
    "mean_matched_score",
)


@pytest.fixture(scope="module")
def dsb_predictions(dsb_labels):
    rng = np.random.default_rng(2018)
    return {name: [f(y, rng) for y in dsb_labels] for name, f in PERTURB.items()}


@pytest.mark.parametrize("name", list(PERTURB))
def test_instance_equals_stardist_on_dsb2018(dsb_labels, dsb_predictions, name, monkeypatch):
    preds = dsb_predictions[name]
    ours = pooled_stats([instance_counts(t, p) for t, p in zip(dsb_labels, preds)])
    ref32 = stardist_matching.matching_dataset(dsb_labels, preds, thresh=TAUS, show_progress=False)
    # stardist keeps IoU in float32: counts and count ratios are exact, IoU sums agree to float32 precision
    for o, r in zip(ours, ref32):
        for k in ("tp", "fp", "fn", "n_true", "n_pred"):
            assert o[k] == getattr(r, k), (name, o["thresh"], k)
        for k in ("precision", "recall", "accuracy", "f1"):
            assert abs(o[k] - getattr(r, k)) <= 1e-12, (name, o["thresh"], k)
        for k in ("panoptic_quality", "mean_true_score", "mean_matched_score"):
            assert abs(o[k] - getattr(r, k)) <= 1e-6, (name, o["thresh"], k)
    # the same StarDist code computing IoU in float64 agrees with us on every field to 1e-9
    monkeypatch.setattr(stardist_matching, "_safe_divide", _safe_divide64)
    ref = stardist_matching.matching_dataset(dsb_labels, preds, thresh=TAUS, show_progress=False)
    for o, r in zip(ours, ref):
        for k in FIELDS:
            assert abs(o[k] - getattr(r, k)) <= 1e-9, (name, o["thresh"], k)
    m = instance_metrics(dsb_labels, preds)["metrics"]
    assert m["acc@[.5:.95]"] == pytest.approx(np.mean([r.accuracy for r in ref]), abs=1e-12)
    by_image = stardist_matching.matching_dataset(
        dsb_labels, preds, thresh=(0.5, 0.75, 0.9), by_image=True, show_progress=False
    )
    for r in by_image:
        assert m[f"image_acc@{r.thresh:g}"] == pytest.approx(r.accuracy, abs=1e-9)


def test_perturbations_move_instance_scores(dsb_labels, dsb_predictions):
    score = {name: instance_metrics(dsb_labels, p)["metrics"] for name, p in dsb_predictions.items()}
    ident = score["identity"]
    assert all(
        ident[k] == 1.0
        for k in ("acc@0.5", "precision@0.5", "recall@0.5", "f1@0.5", "pq@0.5", "acc@[.5:.95]", "dsb_score")
    )
    n_true = sum(np.unique(y).size - 1 for y in dsb_labels)
    rng = np.random.default_rng(7)
    dropped = sum(_drop(y, rng)[1] for y in dsb_labels)
    assert score["drop10"]["recall@0.5"] == pytest.approx(1 - dropped / n_true, abs=1e-12)
    assert score["drop10"]["recall@0.5"] == pytest.approx(0.9, abs=0.01)
    assert score["drop10"]["precision@0.5"] == 1.0
    # a merged pair matches its larger part at best: recall falls, precision stays high
    assert score["merge"]["recall@0.5"] < 0.95 and score["merge"]["precision@0.5"] > score["merge"]["recall@0.5"]
    for name in ("dilate", "erode", "shift", "mixed"):
        assert score[name]["acc@[.5:.95]"] < score[name]["acc@0.5"] <= 1.0
        assert score[name]["acc@[.5:.95]"] < 1.0
    assert score["mixed"]["acc@[.5:.95]"] < score["drop10"]["acc@[.5:.95]"]
    assert score["shift"]["acc@[.5:.95]"] == min(s["acc@[.5:.95]"] for s in score.values())  # 3 px on nuclei
    per = instance_metrics(dsb_labels, dsb_predictions["drop10"])["per_sample"]
    assert len(per) == N_DSB and all(s["precision@0.5"] == 1.0 for s in per)


# ------------------------------------------------------------------------------------------------------- semantic


def test_semantic_nnunet_rule():
    t1 = np.array([[0, 1, 1, 2]])
    p1 = np.array([[0, 1, 0, 2]])
    t2 = np.array([[0, 0, 1, 1]])  # class 2 absent from truth ...
    p2 = np.array([[0, 2, 1, 1]])  # ... but predicted: Dice 0
    t3 = np.array([[0, 0, 1, 0]])  # class 2 absent from both: skipped
    p3 = np.array([[0, 0, 1, 1]])
    r = semantic_metrics([t1, t2, t3], [p1, p2, p3], classes=[1, 2])
    d1 = (2 / 3 + 1 + 2 / 3) / 3
    d2 = (1 + 0) / 2
    assert r["metrics"]["dice/1"] == pytest.approx(d1)
    assert r["metrics"]["dice/2"] == pytest.approx(d2)
    assert r["metrics"]["dice"] == pytest.approx((d1 + d2) / 2)
    j1 = (1 / 2 + 1 + 1 / 2) / 3
    assert r["metrics"]["iou"] == pytest.approx((j1 + 0.5) / 2)
    # pooled: class 1 hits 1+2+1=4, |T| 2+2+1=5, |P| 1+2+2=5; class 2 hits 1, |T| 1, |P| 2
    assert r["metrics"]["dice_pooled"] == pytest.approx((8 / 10 + 2 / 3) / 2)
    assert r["per_sample"][2]["dice"] == pytest.approx(2 / 3)  # class 2 skipped in that image
    assert math.isnan(semantic_metrics([t3], [t3], classes=[2])["metrics"]["dice"])
    assert semantic_metrics([t1], [p1])["metrics"]["dice"] == pytest.approx((2 / 3 + 1) / 2)  # classes inferred


def test_semantic_on_dsb_foreground(dsb_labels):
    from sklearn.metrics import f1_score, jaccard_score

    truth = [y > 0 for y in dsb_labels[:10]]
    pred = [expand_labels(y, 2) > 0 for y in dsb_labels[:10]]
    r = semantic_metrics(truth, pred, classes=[1])
    assert r["metrics"]["dice"] == pytest.approx(
        np.mean([f1_score(t.ravel(), p.ravel()) for t, p in zip(truth, pred)]), abs=1e-12
    )
    assert r["metrics"]["iou"] == pytest.approx(
        np.mean([jaccard_score(t.ravel(), p.ravel()) for t, p in zip(truth, pred)]), abs=1e-12
    )
    allt, allp = np.concatenate([t.ravel() for t in truth]), np.concatenate([p.ravel() for p in pred])
    assert r["metrics"]["dice_pooled"] == pytest.approx(f1_score(allt, allp), abs=1e-12)


# ------------------------------------------------------------------------------------------------- classification


def test_classification_hand_checked():
    y = ["a", "a", "b", "b", "c", "c"]
    prob = np.array(
        [[0.8, 0.1, 0.1], [0.3, 0.6, 0.1], [0.2, 0.7, 0.1], [0.1, 0.8, 0.1], [0.1, 0.2, 0.7], [0.5, 0.1, 0.4]]
    )
    r = classification_metrics(y, prob, classes=["a", "b", "c"])
    m = r["metrics"]
    # predictions a b b b c a: a P1/2 R1/2 F1/2; b P2/3 R1 F0.8; c P1 R1/2 F2/3
    assert m["macro_f1"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["balanced_accuracy"] == pytest.approx((0.5 + 1 + 0.5) / 3)
    assert r["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert r["per_class"]["b"] == {
        "precision": pytest.approx(2 / 3),
        "recall": 1.0,
        "f1": pytest.approx(0.8),
        "support": 2,
    }
    # one-vs-rest AUROC = share of (positive, negative) pairs ranked right. a: .8 .3 vs .2 .1 .1 .5 -> 7/8;
    # b: .7 .8 vs .1 .6 .2 .1 -> 8/8; c: .7 .4 vs .1 .1 .1 .1 -> 8/8
    assert m["macro_auroc"] == pytest.approx((7 / 8 + 1 + 1) / 3)
    assert [s["correct"] for s in r["per_sample"]] == [1, 0, 1, 1, 1, 0]
    # a class never predicted and absent from truth: F1 0 (zero_division=0), AUROC skips it
    r4 = classification_metrics(y, np.c_[prob, np.zeros(6)], classes=["a", "b", "c", "d"])
    assert r4["metrics"]["macro_f1"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 4)
    assert r4["metrics"]["macro_auroc"] == pytest.approx(m["macro_auroc"])
    labels_only = classification_metrics(y, ["a", "b", "b", "b", "c", "a"])
    assert labels_only["metrics"]["macro_f1"] == m["macro_f1"] and math.isnan(labels_only["metrics"]["macro_auroc"])
    with pytest.raises(InvalidInput, match="not in the class list"):
        classification_metrics(["z"], [[1.0, 0, 0]], classes=["a", "b", "c"])


def test_classification_matches_sklearn():
    from sklearn.metrics import balanced_accuracy_score, f1_score, matthews_corrcoef, roc_auc_score

    rng = np.random.default_rng(0)
    y = rng.integers(0, 7, 500)
    logits = rng.normal(size=(500, 7)) + 2.0 * np.eye(7)[y]
    prob = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    m = classification_metrics(y, prob, classes=list(range(7)))["metrics"]
    pred = prob.argmax(1)
    assert m["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro"), abs=1e-12)
    assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, pred), abs=1e-12)
    assert m["mcc"] == pytest.approx(matthews_corrcoef(y, pred), abs=1e-12)
    assert m["macro_auroc"] == pytest.approx(roc_auc_score(y, prob, multi_class="ovr", average="macro"), abs=1e-12)


def test_merged_view_is_sklearn_on_the_merged_labels():
    """Jurkat's 5-class view: G1, S and G2 merged into interphase, the mitotic phases kept."""
    from sklearn.metrics import accuracy_score, f1_score

    classes = ["G1", "S_phase", "G2", "Prophase", "Metaphase", "Anaphase", "Telophase"]
    merged = merged_classes(classes, {"interphase": ["G1", "S_phase", "G2"]})
    assert merged.tolist() == [0, 0, 0, 1, 2, 3, 4]
    rng = np.random.default_rng(0)
    y = rng.integers(0, 7, 500)
    pred = np.where(rng.random(500) < 0.7, y, rng.integers(0, 7, 500))
    m = merged_metrics(y, pred, merged)
    assert m["merged_accuracy"] == pytest.approx(accuracy_score(merged[y], merged[pred]), abs=1e-12)
    assert m["merged_macro_f1"] == pytest.approx(f1_score(merged[y], merged[pred], average="macro"), abs=1e-12)
    assert macro_f1_score(y, pred, 7) == pytest.approx(f1_score(y, pred, average="macro"), abs=1e-12)
    within = np.array([1, 2, 0, 3])  # G1 <-> S <-> G2 confusions only: every merged prediction is right
    assert merged_metrics(np.array([0, 1, 2, 3]), within, merged)["merged_accuracy"] == 1.0
    with pytest.raises(InvalidInput, match="'M' is not a class"):
        merged_classes(classes, {"mitosis": ["M"]})


def test_accuracy_at_a_population_mix_is_accuracy_at_the_samples_own_mix_and_balanced_at_an_even_one():
    """population_accuracy weighs each class's recall by its share of a population: at the test samples' own
    class counts it is sklearn's accuracy, at equal counts its balanced accuracy; Jurkat's population (interphase
    97.8%) weighs the interphase recall almost alone; a draw without some classes renormalises the others'
    shares; a population that misses a class, or counts one that is not, is an error."""
    from sklearn.metrics import accuracy_score, balanced_accuracy_score

    classes = ["G1", "S_phase", "G2", "Prophase", "Metaphase", "Anaphase", "Telophase"]
    rng = np.random.default_rng(1)
    y = rng.choice(7, 500, p=[0.25, 0.25, 0.25, 0.17, 0.04, 0.02, 0.02])
    pred = np.where(rng.random(500) < 0.7, y, rng.integers(0, 7, 500))
    own = dict(zip(classes, np.bincount(y, minlength=7).tolist()))
    even = dict.fromkeys(classes, 1)
    ok = pred == y
    assert population_accuracy(y, ok, class_shares(classes, own)) == pytest.approx(accuracy_score(y, pred), abs=1e-12)
    assert population_accuracy(y, ok, class_shares(classes, even)) == pytest.approx(balanced_accuracy_score(y, pred))
    jurkat = {
        "G1": 14333,
        "S_phase": 8616,
        "G2": 8601,
        "Prophase": 606,
        "Metaphase": 68,
        "Anaphase": 15,
        "Telophase": 27,
    }
    interphase_right = y < 3  # only the interphase cells right: about the population's interphase share
    assert population_accuracy(y, interphase_right, class_shares(classes, jurkat)) == pytest.approx(31550 / 32266)
    interphase = y < 3  # a draw without mitotic cells: the shares of the classes it holds, renormalised
    recall = [ok[y == c].mean() for c in range(3)]
    expected = np.dot([14333, 8616, 8601], recall) / 31550
    assert population_accuracy(y[interphase], ok[interphase], class_shares(classes, jurkat)) == pytest.approx(expected)
    with pytest.raises(InvalidInput, match="no count for class 'Telophase'"):
        class_shares(classes, {c: 1 for c in classes[:6]})
    with pytest.raises(InvalidInput, match="counts 'M', not a class"):
        class_shares(classes, {**even, "M": 3})


def test_object_correlation_of_integrated_intensity():
    rng = np.random.default_rng(2)
    truths = [rng.gamma(2.0, 100.0, (32, 32)) * rng.uniform(1, 2) for _ in range(40)]
    preds = [0.5 * t + rng.normal(0, 20, t.shape) + 3 for t in truths]
    sums = np.array([[d["sum_true"], d["sum_pred"]] for d in map(integrated, truths, preds)])
    assert sums[0].tolist() == pytest.approx([truths[0].sum(), preds[0].sum()])
    assert pearson(sums[:, 0], sums[:, 1]) == pytest.approx(np.corrcoef(sums.T)[0, 1], abs=1e-12)
    assert math.isnan(pearson(np.ones(5), np.arange(5))) and math.isnan(pearson([1.0], [2.0]))


# ---------------------------------------------------------------------------------------------------- label-free


def test_labelfree_care_protocol():
    from csbdeep.utils import normalize_minmse
    from skimage.metrics import normalized_root_mse, peak_signal_noise_ratio, structural_similarity

    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:64, :64]
    truth = (1000 + 800 * np.sin(xx / 6.0) * np.cos(yy / 9.0) + rng.normal(0, 40, (64, 64))).astype(np.uint16)
    pred = 0.003 * truth.astype(float) + 5 + rng.normal(0, 0.4, (64, 64))
    r = labelfree_metrics([truth], [pred])
    m = r["metrics"]
    lo, hi = np.percentile(truth, (0.1, 99.9))
    tn = (truth - lo) / (hi - lo)
    pn = normalize_minmse(pred, tn)
    rng_ = tn.max() - tn.min()
    assert m["pearson_r"] == pytest.approx(np.corrcoef(truth.ravel(), pred.ravel())[0, 1], abs=1e-12)
    assert m["ssim"] == pytest.approx(
        structural_similarity(tn, pn, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=rng_),
        abs=1e-6,
    )
    assert m["psnr"] == pytest.approx(peak_signal_noise_ratio(tn, pn, data_range=rng_), abs=1e-6)
    assert m["nrmse"] == pytest.approx(normalized_root_mse(tn, pn, normalization="min-max"), abs=1e-6)
    # an affine transform of the truth is a perfect prediction; noise lowers every score
    perfect = labelfree_metrics([truth], [2.0 * truth + 7])["metrics"]
    assert perfect["pearson_r"] == pytest.approx(1.0) and perfect["ssim"] == pytest.approx(1.0)
    assert perfect["nrmse"] == pytest.approx(0.0, abs=1e-9)
    assert m["pearson_r"] < 1 and m["ssim"] < 1 and m["nrmse"] > 0
    two = labelfree_metrics([truth, np.stack([truth, truth])], [pred, np.stack([pred, 2 * truth + 1.0])])
    assert two["per_sample"][1]["pearson_r"] == pytest.approx((m["pearson_r"] + 1) / 2)
    assert math.isnan(labelfree_metrics([np.ones((8, 8))], [np.ones((8, 8))])["metrics"]["pearson_r"])


# ------------------------------------------------------------------------------- tracking vs py-ctcmetrics (CTC)

ctc_evaluate = pytest.importorskip("ctc_metrics.scripts.evaluate")


def _window(masks, lineage, a, b, crop=None):
    """Frames a..b-1 of a tracked sequence (lineage clipped, parents outside the window dropped), optionally
    cropped to ``crop`` = (y0, y1, x0, x1)."""
    m = np.asarray(masks[a:b])
    if crop:
        m = m[:, crop[0] : crop[1], crop[2] : crop[3]]
    rows = [t for t in lineage if t.end >= a and t.begin < b]
    keep = {t.label for t in rows}
    ends = {t.label: min(t.end, b - 1) - a for t in rows}
    out = []
    for t in rows:
        begin = max(t.begin, a) - a
        p = t.parent if t.parent in keep and ends[t.parent] < begin else 0
        out.append(Track(t.label, begin, min(t.end, b - 1) - a, p))
    return m, out


def lineage_from_masks(masks, parent):
    """A valid CTC lineage for ``masks`` given a parent map on its labels: a label with gaps becomes one track per
    contiguous run, each run the only child of the run before; parents resolve to their last run."""
    masks = masks.copy()
    present: dict[int, list[int]] = {}
    for t in range(masks.shape[0]):
        for lab in np.unique(masks[t]).tolist():
            if lab:
                present.setdefault(lab, []).append(t)
    nxt = max(present, default=0) + 1
    rows, last = [], {}
    for lab in sorted(present):
        frames = np.array(present[lab])
        runs = np.split(frames, np.flatnonzero(np.diff(frames) > 1) + 1)
        cur, par = lab, None
        for k, run in enumerate(runs):
            if k:
                cur, par = nxt, cur
                nxt += 1
                for t in run:
                    masks[t][masks[t] == lab] = cur
            rows.append([cur, int(run[0]), int(run[-1]), par])
        last[lab] = cur
    end = {r[0]: r[2] for r in rows}
    out = []
    for lab, b, e, p in rows:
        if p is None:
            p = last.get(parent.get(lab, 0), 0)
            if p and end[p] >= b:
                p = 0
        out.append(Track(lab, b, e, p))
    return masks, out


def _children(parent):
    kids: dict[int, list[int]] = {}
    for c, p in parent.items():
        if p:
            kids.setdefault(p, []).append(c)
    return kids


def _present(masks, t):
    return [int(v) for v in np.unique(masks[t]) if v]


def perturb_tracks(
    masks,
    lineage,
    rng,
    *,
    drop_tracks=0,
    drop_objects=0,
    swap_ids=0,
    swap_parents=0,
    miss_divisions=0,
    split=0,
    merge=0,
    grow=2,
):
    """A tracking "prediction" made from the truth: objects grown by ``grow`` px, then whole tracks dropped,
    single detections dropped, identities swapped between two cells from a frame on, children swapped between two
    divisions, divisions missed (one child continues its parent's track, the other is orphaned), objects split
    in two and neighbouring objects merged. Returns (masks, lineage), valid for the CTC."""
    m = np.array(masks)
    if grow:  # objects grown by a maximum filter (cheaper than expand_labels on 1024^2 frames)
        m = np.where(m > 0, m, ndi.maximum_filter(m, size=(1, 2 * grow + 1, 2 * grow + 1)))
    parent = {t.label: t.parent for t in lineage}
    n_frames = m.shape[0]
    for lab in rng.choice(sorted(parent), size=drop_tracks, replace=False):
        m[m == lab] = 0
        parent = {c: (0 if p == lab else p) for c, p in parent.items() if c != lab}
    for _ in range(drop_objects):
        t = int(rng.integers(n_frames))
        labs = _present(m, t)
        if labs:
            m[t][m[t] == rng.choice(labs)] = 0
    for _ in range(swap_ids):
        t = int(rng.integers(1, n_frames))
        both = sorted(set(_present(m, t - 1)) & set(_present(m, t)))
        if len(both) < 2:
            continue
        a, b = rng.choice(both, size=2, replace=False)
        tail = m[t:]
        ia, ib = tail == a, tail == b
        tail[ia], tail[ib] = b, a
        parent = {c: (b if p == a else a if p == b else p) for c, p in parent.items()}
    kids = _children(parent)
    end = {lab: t for t in range(n_frames) for lab in _present(m, t)}
    divs = [p for p, ks in kids.items() if len(ks) >= 2 and p in end]
    for _ in range(swap_parents):
        same = [(p, q) for p in divs for q in divs if p < q and end[p] == end[q]]
        if not same:
            break
        p, q = same[int(rng.integers(len(same)))]
        c, d = kids[p][0], kids[q][0]
        parent[c], parent[d] = q, p
        kids = _children(parent)
    for p in rng.permutation(divs)[:miss_divisions]:
        ks = sorted(c for c in kids.get(p, []) if (m == c).any())
        if len(ks) < 2:
            continue
        first = ks[0]
        m[m == first] = p
        parent.pop(first)
        parent = {c: (p if q == first else q) for c, q in parent.items()}
        for c in ks[1:]:
            parent[c] = 0
    nxt = int(m.max()) + 1
    for _ in range(split):
        t = int(rng.integers(n_frames))
        labs = [lab for lab in _present(m, t) if (m[t] == lab).sum() >= 20]
        if labs:
            lab = rng.choice(labs)
            yy, xx = np.nonzero(m[t] == lab)
            right = xx > np.median(xx)
            m[t][yy[right], xx[right]] = nxt
            nxt += 1
    for _ in range(merge):
        t = int(rng.integers(n_frames))
        labs = _present(m, t)
        if len(labs) < 2:
            continue
        cy = ndi.center_of_mass(np.ones_like(m[t]), m[t], labs)
        a = int(rng.integers(len(labs)))
        dist = [np.hypot(cy[a][0] - c[0], cy[a][1] - c[1]) if k != a else np.inf for k, c in enumerate(cy)]
        m[t][m[t] == labs[int(np.argmin(dist))]] = labs[a]
    return lineage_from_masks(m, parent)


def ctc_reference(tmp_path, ref_masks, ref_lineage, pred_masks, pred_lineage, seg=None, seg_frames=()):
    """py-ctcmetrics on CTC folders written from the arrays (GT: TRA + SEG; RES: maskTTT.tif + res_track.txt)."""
    gt, res = tmp_path / "01_GT", tmp_path / "01_RES"
    (gt / "TRA").mkdir(parents=True)
    res.mkdir()
    for t in range(ref_masks.shape[0]):
        tifffile.imwrite(gt / "TRA" / f"man_track{t:03d}.tif", ref_masks[t])
        tifffile.imwrite(res / f"mask{t:03d}.tif", pred_masks[t].astype(np.uint16))
    write_man_track(ref_lineage, gt / "TRA" / "man_track.txt")
    write_man_track(pred_lineage, res / "res_track.txt")
    metrics = ["TRA", "DET", "LNK", "BC"]
    if seg is not None:
        (gt / "SEG").mkdir()
        for k, t in enumerate(seg_frames):
            tifffile.imwrite(gt / "SEG" / f"man_seg{t:03d}.tif", seg[k])
        metrics.append("SEG")
    with contextlib.redirect_stdout(io.StringIO()):
        out = ctc_evaluate.evaluate_sequence(str(res), str(gt), metrics=metrics, threads=1)
    assert out["TRA"] is not None, "py-ctcmetrics found the result invalid"
    return out


COUNTS = {"NS": "AOGM_NS", "FN": "AOGM_FN", "FP": "AOGM_FP", "ED": "AOGM_ED", "EA": "AOGM_EA", "EC": "AOGM_EC"}


def assert_agrees(ours, ref):
    for k in ("TRA", "DET", "LNK") + (("SEG",) if "SEG" in ref else ()):
        assert abs(ours[k] - ref[k]) <= 1e-6, (k, ours[k], ref[k])
    for k, rk in COUNTS.items():
        assert ours[k] == ref[rk], (k, ours[k], ref[rk])
    assert ours["AOGM"] == pytest.approx(float(ref["AOGM"]), abs=1e-9)
    for tol in (0, 2):
        r = ref[f"BC({tol})"]
        assert math.isnan(ours[f"division_f1@{tol}"]) if r is None else abs(ours[f"division_f1@{tol}"] - r) <= 1e-9, (
            tol,
            ours[f"division_f1@{tol}"],
            r,
        )


@pytest.fixture(scope="module")
def gowt1(built):
    """Two short windows of GOWT1 sequence 01, each around a division (the second with a child appearing 4 frames
    after its parent ends), with three frames of the sparse gold segmentation each (py-ctcmetrics needs ~1 s
    per frame: windows keep the test short)."""
    from hub.curate import open_dataset

    img = open_dataset(built("ctc-gowt1")).image("01")
    lineage = lineage_from_attrs(img.label_attrs("tracks")["lineage"])
    seg_frames = img.label_attrs("segmentation")["annotated_frames"]
    out = []
    for a, b in ((43, 49), (16, 22)):
        masks, lin = _window(img.label("tracks"), lineage, a, b)
        frames = [f - a for f in seg_frames if a <= f < b][:3]
        seg = np.stack([img.label("segmentation")[f + a] for f in frames])
        out.append((masks, lin, seg, frames))
    return out


@pytest.fixture(scope="module")
def ecoli(built):
    """The E. coli validation window (8 frames, 61 divisions), cropped to its cells (lossless)."""
    from hub.curate import open_dataset

    img = open_dataset(built("ecoli-lineage")).image("01_t033-040")
    masks = np.asarray(img.label("tracks")[...])
    ys, xs = np.nonzero(masks.any(0))
    crop = (max(ys.min() - 8, 0), ys.max() + 9, max(xs.min() - 8, 0), xs.max() + 9)
    return _window(masks, lineage_from_attrs(img.label_attrs("tracks")["lineage"]), 0, masks.shape[0], crop)


def test_tracking_truth_scores_perfect(gowt1, ecoli):
    masks, lin, seg, frames = gowt1[0]
    r = sequence_metrics((masks, lin, seg, frames), (masks, lin))
    assert all(r[k] == 1.0 for k in ("TRA", "DET", "LNK", "division_f1@0", "division_f1@2"))
    assert 0.3 < r["SEG"] < 1.0  # the tracking truth is markers, not the gold segmentation
    r = sequence_metrics(ecoli, ecoli)
    assert r["TRA"] == r["DET"] == r["LNK"] == r["division_f1@0"] == 1.0 and "SEG" not in r
    assert r["divisions"] == 61


GOWT1_CASES = {
    "mixed": (0, dict(drop_tracks=2, drop_objects=4, swap_ids=2, split=3, merge=3)),
    "divisions": (1, dict(miss_divisions=1, drop_objects=2, split=1, grow=3)),
}


@pytest.mark.parametrize("case", list(GOWT1_CASES))
def test_tracking_equals_ctcmetrics_gowt1(gowt1, case, tmp_path):
    window, kw = GOWT1_CASES[case]
    masks, lin, seg, frames = gowt1[window]
    pm, pl = perturb_tracks(masks, lin, np.random.default_rng(5), **kw)
    ours = sequence_metrics((masks, lin, seg, frames), (pm, pl))
    ref = ctc_reference(tmp_path, masks, lin, pm, pl, seg, frames)
    assert_agrees(ours, ref)
    assert ours["OP_CTB"] == pytest.approx(ref["OP_CTB"], abs=1e-9)
    assert ours["TRA"] < 1.0
    if case == "mixed":
        assert ours["FN"] > 0 and ours["FP"] > 0 and ours["NS"] > 0 and ours["ED"] > 0 and ours["EA"] > 0
    else:
        assert ours["divisions"] == 1 and ours["division_f1@2"] == 0.0


def test_tracking_dataset_mean(gowt1):
    truths = [(m, lin, s, f) for m, lin, s, f in gowt1]
    preds = [perturb_tracks(m, lin, np.random.default_rng(k), drop_objects=3) for k, (m, lin, _, _) in enumerate(gowt1)]
    total = tracking_metrics(truths, preds)
    per = total["per_sample"]
    assert len(per) == 2
    for k in ("TRA", "DET", "LNK", "SEG", "OP_CTB", "division_f1@0", "division_f1@2"):
        assert total["metrics"][k] == pytest.approx((per[0][k] + per[1][k]) / 2)
    assert tracking_metrics(truths[:1], [(m, lin) for m, lin, _, _ in gowt1[:1]])["metrics"]["TRA"] == 1.0
    no_seg = tracking_metrics([t[:2] for t in truths], preds)["metrics"]
    assert "SEG" not in no_seg and "OP_CTB" not in no_seg


@pytest.mark.parametrize("case", ["swaps", "divisions"])
def test_tracking_equals_ctcmetrics_ecoli(ecoli, case, tmp_path):
    masks, lin = ecoli
    rng = np.random.default_rng(11)
    kw = (
        dict(swap_ids=3, swap_parents=4, drop_tracks=5, split=5, merge=5)
        if case == "swaps"
        else dict(miss_divisions=8, drop_objects=10, grow=1)
    )
    pm, pl = perturb_tracks(masks, lin, rng, **kw)
    ours = sequence_metrics((masks, lin), (pm, pl))
    ref = ctc_reference(tmp_path, masks, lin, pm, pl)
    assert_agrees(ours, ref)
    assert ours["TRA"] < 1.0 and ours["LNK"] < 1.0
    assert ours["division_f1@0"] < 1.0
    if case == "swaps":
        assert ours["ED"] > 0 and ours["EA"] > 0


def test_tracking_perturbations_move_scores(ecoli):
    masks, lin = ecoli
    perfect = sequence_metrics((masks, lin), (masks, lin))
    dropped = sequence_metrics((masks, lin), perturb_tracks(masks, lin, np.random.default_rng(3), drop_tracks=20))
    assert dropped["DET"] < perfect["DET"] and dropped["TRA"] < perfect["TRA"]
    assert dropped["FN"] > 0 and dropped["FP"] == 0
    missed = sequence_metrics((masks, lin), perturb_tracks(masks, lin, np.random.default_rng(3), miss_divisions=30))
    assert missed["DET"] == 1.0 and missed["LNK"] < 1.0
    assert missed["division_f1@0"] < 0.8 and missed["divisions_pred"] == 61 - 30


def test_tracking_counts_per_frame_add_up_to_the_sequence(ecoli):
    """What the frame-block bootstrap resamples: per-frame AOGM counts that sum to the sequence's, and whose sum
    gives its TRA, DET and LNK back."""
    from hub.metrics import COUNTS, aogm_measures

    masks, lin = ecoli
    out = sequence_metrics((masks, lin), perturb_tracks(masks, lin, np.random.default_rng(3), drop_tracks=20))
    frames = np.array(out["frame_counts"])
    assert frames.shape == (len(masks), len(COUNTS)) and frames.min() >= 0
    assert dict(zip(COUNTS, frames.sum(0).tolist())) == {k: out[k] for k in COUNTS}
    whole = aogm_measures(dict(zip(COUNTS, frames.sum(0).tolist())))
    assert [whole[k] for k in ("TRA", "DET", "LNK")] == [out[k] for k in ("TRA", "DET", "LNK")] and out["TRA"] < 1
    assert frames[:, COUNTS.index("FN")].any() and frames[:, COUNTS.index("EA")].any()


def test_tracking_refuses_invalid_prediction(gowt1):
    masks, lin, _, _ = gowt1[0]
    with pytest.raises(InvalidInput, match="absent from the masks"):
        sequence_metrics((masks, lin), (masks, lin + [Track(999, 0, 1, 0)]))
    with pytest.raises(InvalidInput, match="in the mask of frame"):
        sequence_metrics((masks, lin), (masks, [t for t in lin if t.label != lin[0].label]))
    with pytest.raises(InvalidInput, match="do not match"):
        sequence_metrics((masks, lin), (masks[:-1], lin))
    bad = [Track(t.label, t.begin, t.end, lin[0].label if t.label == lin[1].label else t.parent) for t in lin]
    with pytest.raises(InvalidInput, match="not after its parent"):
        sequence_metrics((masks, lin), (masks, bad))
