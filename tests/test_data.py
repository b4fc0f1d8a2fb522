"""hub.data on datasets built from the real data: shapes, dtypes, normalisation, lazy multi-worker loading,
joint augmentation and the Hugging Face export."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Subset

from hub.curate import open_dataset
from hub.data import (
    ClassificationDataset,
    Intensity,
    LabelFreeDataset,
    SegmentationDataset,
    TrackingDataset,
    to_hf_dataset,
)
from hub.errors import CardError, InvalidInput


def stats(path, channel):
    return next(s for s in open_dataset(path).card.statistics.channels if s.channel == channel)


def dihedral(a: np.ndarray) -> list[np.ndarray]:
    """The 8 flips/rotations of the last two axes."""
    rots = [np.rot90(a, k, axes=(-2, -1)) for k in range(4)]
    return rots + [r[..., ::-1] for r in rots]


def test_segmentation_patches_normalised_and_aligned(built):
    path = built("dsb2018-fluo")
    ds = SegmentationDataset(path, "train", patch=128, samples_per_epoch=6, seed=0)
    s = stats(path, "nuclei")
    img0 = open_dataset(path)
    assert len(ds) == 6
    for i in range(len(ds)):
        x, y = ds[i]
        assert x.shape == (1, 128, 128) and x.dtype == torch.float32
        assert y.shape == (128, 128) and y.dtype == torch.int64
        w = ds.window(i)
        zimg = img0.image(w.sample)
        raw = zimg.array(0)[w.y : w.y + 128, w.x : w.x + 128]
        np.testing.assert_allclose(x[0].numpy(), (raw - s.p1) / (s.p99_8 - s.p1), rtol=1e-6)
        np.testing.assert_array_equal(y.numpy(), zimg.label("instances")[w.y : w.y + 128, w.x : w.x + 128])
    again = SegmentationDataset(path, "train", patch=128, samples_per_epoch=6, seed=0)
    assert all(torch.equal(ds[i][0], again[i][0]) for i in range(3))  # windows are a function of the seed
    again.set_epoch(1)
    assert [again.window(i) for i in range(6)] != [ds.window(i) for i in range(6)]


def test_segmentation_meanstd_semantic_and_padding(built):
    path = built("dsb2018-fluo")
    s = stats(path, "nuclei")
    ds = SegmentationDataset(path, "val", patch=768, samples_per_epoch=3, semantic=True, normalize="meanstd", seed=1)
    for i in range(3):
        x, y = ds[i]
        w = ds.window(i)
        raw = open_dataset(path).image(w.sample).read()
        h, wd = raw.shape
        assert x.shape == (1, 768, 768) and y.shape == (768, 768)
        np.testing.assert_allclose(x[0, :h, :wd].numpy(), (raw - s.mean) / s.std, rtol=1e-5, atol=1e-6)
        assert not x[0, h:].any() and not x[0, :, wd:].any() and not y[h:].any() and not y[:, wd:].any()
        assert set(y.unique().tolist()) <= {0, 1} and y.any()


def test_timelapse_patches_come_from_annotated_frames(built):
    path = built("ctc-gowt1")
    img = open_dataset(path).image("01")
    annotated = img.label_attrs("segmentation")["annotated_frames"]
    ds = SegmentationDataset(path, "train", patch=256, label="segmentation", samples_per_epoch=5, seed=3)
    assert sorted(t for _, t, _, _ in ds.planes) == sorted(annotated)
    for i in range(len(ds)):
        x, y = ds[i]
        w = ds.window(i)
        assert w.frame in annotated and x.shape == (1, 256, 256) and y.dtype == torch.int64
        np.testing.assert_array_equal(y.numpy(), img.label("segmentation")[w.frame, w.y : w.y + 256, w.x : w.x + 256])
    tracks = SegmentationDataset(path, "train", label="tracks")
    assert len(tracks.planes) == img.array(0).shape[0]  # every frame has track markers


def test_foreground_oversampling_centres_windows_on_cells(built):
    path = built("ecoli-lineage")  # frame 0 holds 2 cells in a 1305 x 1009 field: uniform windows miss them
    uniform = SegmentationDataset(path, "train", patch=128, label="tracks", samples_per_epoch=40, seed=0)
    centred = SegmentationDataset(
        path, "train", patch=128, label="tracks", samples_per_epoch=40, seed=0, foreground=1.0
    )
    empty = [not uniform[i][1].any() for i in range(len(uniform))]
    assert sum(empty) >= 10
    for i in range(len(centred)):
        x, y = centred[i]
        assert y.any() and x.shape == (1, 128, 128), f"window {centred.window(i)} holds no cell"
    mixed = SegmentationDataset(path, "train", patch=128, label="tracks", samples_per_epoch=40, seed=0, foreground=0.5)
    assert [mixed.window(i) for i in range(40)] == [mixed.window(i) for i in range(40)]  # still seeded
    with pytest.raises(InvalidInput, match="foreground"):
        SegmentationDataset(path, "train", label="tracks", foreground=1.5)


def test_augmentation_keeps_image_and_label_aligned(built):
    path = built("dsb2018-fluo")
    plain = SegmentationDataset(path, "train", patch=96, samples_per_epoch=8, seed=5)
    aug = SegmentationDataset(path, "train", patch=96, samples_per_epoch=8, seed=5, augment=True)
    moved = 0
    for i in range(len(plain)):
        (x, y), (xa, ya) = plain[i], aug[i]
        assert plain.window(i) == aug.window(i)
        pairs = [(dx, dy) for dx, dy in zip(dihedral(x.numpy()), dihedral(y.numpy())) if np.array_equal(dx, xa.numpy())]
        assert any(np.array_equal(dy, ya.numpy()) for _, dy in pairs), f"patch {i}: label moved apart from image"
        moved += not torch.equal(x, xa)
    assert moved  # augmentation did something


def test_intensity_changes_the_inputs_of_training_windows_never_their_labels(built):
    path = built("dsb2018-fluo")
    kw = dict(patch=96, samples_per_epoch=6, seed=5)
    plain = SegmentationDataset(path, "train", **kw)
    fixed = SegmentationDataset(
        path, "train", **kw, intensity=Intensity(scale=(2, 2), shift=(0.1, 0.1), gamma=(0.5, 0.5))
    )
    drawn = SegmentationDataset(path, "train", **kw, intensity=Intensity(scale=(0.6, 2), shift=(-0.2, 0.2)))
    gains = set()
    for i in range(len(plain)):
        (x, y), (xf, yf), (xd, yd) = plain[i], fixed[i], drawn[i]
        assert plain.window(i) == fixed.window(i) == drawn.window(i)
        assert torch.equal(y, yf) and torch.equal(y, yd)
        torch.testing.assert_close(xf, 2 * torch.sign(x) * x.abs().sqrt() + 0.1)
        gain = float(np.polyfit(x.numpy().ravel(), xd.numpy().ravel(), 1)[0])  # one draw a window: a line
        torch.testing.assert_close(xd, drawn[i][0])  # seeded
        assert 0.6 <= gain <= 2
        gains.add(round(gain, 3))
    assert len(gains) == len(plain)  # each window draws its own
    with pytest.raises(ValueError, match=r"scale\n.*\[low, high\] with 0.1 <= low <= high <= 10, got \[2, 1\]"):
        Intensity(scale=(2, 1))


def test_dataloader_with_two_workers_reopens_stores(built):
    path = built("dsb2018-fluo")
    ds = SegmentationDataset(path, "train", patch=64, samples_per_epoch=8, seed=2)
    first = ds[0]  # opens zarr arrays in this process; the workers must not reuse them
    assert len(ds.reader.cache) > 0
    copy = pickle.loads(pickle.dumps(ds))  # what a spawned worker gets: no open store travels
    assert copy.reader._pid is None and "_arrays" not in vars(copy.reader)
    assert torch.equal(copy[0][0], first[0])
    batches = list(DataLoader(ds, batch_size=4, num_workers=2))
    assert [tuple(b[0].shape) for b in batches] == [(4, 1, 64, 64)] * 2
    assert [b[1].dtype for b in batches] == [torch.int64] * 2
    torch.testing.assert_close(batches[0][0][0], first[0])


def test_classification_crops(built):
    path = built("jurkat-cellcycle")
    ds = ClassificationDataset(path, "val")
    rows = [r for r in open_dataset(path).samples if r.split == "val"]
    assert len(ds) == len(rows) and ds.classes[0] == "G1"
    x, k = ds[0]
    assert x.shape == (3, 40, 40) and x.dtype == torch.float32 and k == rows[0].class_index
    dna = ClassificationDataset(path, "val", channels=["DNA"], normalize="meanstd")
    s = stats(path, "DNA")
    raw = open_dataset(path).image(rows[0].id).read()[open_dataset(path).card.channel_names.index("DNA")]
    np.testing.assert_allclose(dna[0][0][0].numpy(), (raw - s.mean) / s.std, rtol=1e-5, atol=1e-6)
    aug = ClassificationDataset(path, "val", augment=True, seed=0)
    assert any(np.array_equal(d, aug[0][0].numpy()) for d in dihedral(x.numpy()))
    images, classes = next(iter(DataLoader(Subset(ds, range(32)), batch_size=16, num_workers=2)))
    assert images.shape == (16, 3, 40, 40) and classes.tolist() == [r.class_index for r in rows[:16]]


def test_labelfree_pairs_from_card_channels(built):
    path = built("isl-condition-b")
    card = open_dataset(path).card
    ds = LabelFreeDataset(path, "train", patch=256, samples_per_epoch=4, seed=0, augment=True)
    x, y = ds[0]
    assert x.shape == (len(card.labels.inputs), 256, 256) and y.shape == (len(card.labels.targets), 256, 256)
    assert x.dtype == y.dtype == torch.float32
    plain = LabelFreeDataset(path, "train", patch=256, samples_per_epoch=4, seed=0)
    w = plain.window(0)
    raw = open_dataset(path).image(w.sample).read()  # 224 x 224: padded to the patch
    c = card.channel_names.index(card.labels.targets[0])
    s = stats(path, card.labels.targets[0])
    px, py = plain[0]
    np.testing.assert_allclose(py[0, :224, :224].numpy(), (raw[c] - s.p1) / (s.p99_8 - s.p1), rtol=1e-5)
    assert not py[:, 224:].any()
    ok = [
        i
        for i, (dx, dy) in enumerate(zip(dihedral(px.numpy()), dihedral(py.numpy())))
        if np.array_equal(dx, x.numpy()) and np.array_equal(dy, y.numpy())
    ]
    assert ok, "inputs and targets were augmented differently"
    brighter = LabelFreeDataset(
        path, "train", patch=256, samples_per_epoch=4, seed=0, intensity=Intensity(shift=(0.5, 0.5))
    )
    bx, by = brighter[0]
    torch.testing.assert_close(bx[:, :224, :224], px[:, :224, :224] + 0.5)  # the input changed before padding
    assert not bx[:, 224:].any() and torch.equal(by, py)  # the target never changes


def test_tracking_sequences_are_lazy_with_lineage(built):
    path = built("ctc-gowt1")
    ds = TrackingDataset(path, "train")
    assert len(ds) == 1
    seq = next(iter(DataLoader(ds, batch_size=None, collate_fn=lambda s: s, num_workers=2)))
    img = open_dataset(path).image("01")
    assert seq.id == "01" and len(seq.frames) == img.array(0).shape[0] == 92
    frame = seq.frames[10]
    assert frame.shape == (1, 1024, 1024) and frame.dtype == torch.float32
    assert set(seq.labels) == {"tracks", "segmentation"}
    lab = seq.labels["tracks"][10]
    assert lab.dtype == torch.int64
    np.testing.assert_array_equal(lab.numpy(), img.label("tracks")[10])
    labels = {t.label for t in seq.lineage}
    assert labels and all(t.parent == 0 or t.parent in labels for t in seq.lineage)
    assert seq.annotated_frames["segmentation"] == img.label_attrs("segmentation")["annotated_frames"]


def test_hf_export_keeps_uint16(built, tmp_path):
    path = built("isl-condition-b")
    hf = to_hf_dataset(path, "val", cache_dir=tmp_path)
    img = open_dataset(path).image(hf[0]["id"])
    assert hf.features["image"].dtype == "uint16"
    assert str(hf.data.schema.field("image").type.storage_type).endswith("uint16>>>")
    row = hf[0]
    assert row["image"].dtype == np.uint16 and row["split"] == "val"
    np.testing.assert_array_equal(row["image"], img.read())


def test_hf_export_classes_and_variable_shapes(built, tmp_path):
    hf = to_hf_dataset(built("jurkat-cellcycle"), "val", cache_dir=tmp_path)
    assert hf.features["class"].names[0] == "G1" and hf.features["image"].dtype == "uint16"
    assert hf[0]["class_name"] == hf.features["class"].names[hf[0]["class"]]
    dsb = to_hf_dataset(built("dsb2018-fluo"), "test", cache_dir=tmp_path)  # sizes differ: nested lists
    shapes = {dsb[i]["image"].shape for i in range(len(dsb))}
    assert len(shapes) > 1
    row = dsb[0]
    assert row["image"].dtype == np.uint8 and row["instances"].dtype == np.uint16
    assert row["instances"].shape == row["image"].shape


def test_bad_requests_are_clear_errors(built):
    dsb, isl = built("dsb2018-fluo"), built("isl-condition-b")
    with pytest.raises(InvalidInput, match="labels.classes"):
        ClassificationDataset(dsb, "train")
    with pytest.raises(CardError, match="inputs/targets"):
        LabelFreeDataset(dsb, "train")
    with pytest.raises(InvalidInput, match="no channel 'DAPI'"):
        SegmentationDataset(dsb, "train", channels=["DAPI"])
    with pytest.raises(InvalidInput, match="no label image 'cells'"):
        SegmentationDataset(dsb, "train", label="cells", seed=0)[0]
    with pytest.raises(InvalidInput, match="no time-lapse samples"):
        TrackingDataset(isl, "train")
    with pytest.raises(InvalidInput, match="no samples in split 'nope'"):
        to_hf_dataset(isl, "nope")
