"""Cell tracking: the Cell Tracking Challenge measures TRA, DET, LNK, SEG, OP_CTB and division F1, on numpy masks.

Conventions follow the CTC's reference implementation ``py-ctcmetrics`` (Matula et al. 2015, Ulman et al. 2017):

- Vertices are (frame, label) of every object present in a mask frame. A predicted object *matches* a reference
  object when it covers more than half of the reference object's pixels (so a reference object matches at most
  one predicted object; a predicted object may match several).
- Edges: a *track link* joins the same label in consecutive frames t, t+1 (both present); a *parent link* joins
  the parent's last frame to each child's first frame (lineage rows with parent != 0), even across a gap.
- AOGM counts, with the official weights: NS (vertex splits, weight 5) = sum over predicted objects matching
  k >= 2 references of k - 1; FN (10) = unmatched reference objects; FP (1) = predicted objects matching none;
  on the predicted edges whose two ends each match exactly one reference object, mapped onto reference vertex
  pairs: ED (extra edges, 1) = mapped predicted edges absent from the reference, EA (missing edges, 1.5) =
  reference edges absent from the mapped predicted edges (all of them, also those at unmatched vertices),
  EC (wrong semantics, 1) = edges in both whose kind (track link / parent link) differs.
- TRA = 1 - min(AOGM, AOGM_0)/AOGM_0, AOGM_0 = 10*(reference vertices) + 1.5*(reference edges);
  DET = 1 - min(5NS + 10FN + FP, 10V)/(10V); LNK = 1 - min(ED + 1.5EA + EC, 1.5E)/(1.5E).
- SEG: on the frames with segmentation truth, Jaccard of each reference object with the predicted object covering
  more than half of it (0 when none), summed over all objects of all those frames / their number.
- OP_CTB = (SEG + TRA)/2.
- Division F1 at frame tolerance i (py-ctcmetrics' BC(i)): a division is a track with two or more children. A
  predicted division matches a reference division when they have the same number of children, the parents end
  at most i frames apart, at the earlier parent end the reference parent is matched by the predicted parent and
  that predicted object matches only it, and every reference child pairs with a distinct predicted child that
  starts at most i frames apart and, at the later of the two starts, is matched by it (matching only it); the
  children are paired greedily in lineage order. Every matching (reference, predicted) pair is a TP;
  FP = predicted divisions - TP, FN = reference divisions - TP; F1 = 2PR/max(P + R, 1e-4) with
  P = TP/max(TP + FP, 1), R = TP/max(TP + FN, 1); NaN when the reference has no division.

Frames are the positions along axis 0 of the mask arrays; lineage rows are (label, first frame, last frame,
parent) as :class:`hub.ome.Track` (CTC ``man_track.txt``). A truth or prediction whose lineage disagrees with its
masks is refused, as the CTC's validity check refuses it (:func:`hub.ome.ctc.check_lineage`).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from hub.errors import InvalidInput
from hub.metrics._inputs import check_labels, paired
from hub.metrics._overlap import overlap_table
from hub.ome.ctc import check_lineage

W_NS, W_FN, W_FP, W_ED, W_EA, W_EC = 5.0, 10.0, 1.0, 1.0, 1.5, 1.0
TOLERANCES = (0, 2)


class TrackingTruth(NamedTuple):
    """Reference of one sequence: masks (T, Y, X), lineage rows, optional segmentation truth for SEG — masks
    indexed either by frame (T, Y, X) or by position in ``seg_frames`` (len(seg_frames), Y, X)."""

    masks: Any
    lineage: Sequence
    seg_masks: Any = None
    seg_frames: Sequence[int] | None = None


class TrackingPrediction(NamedTuple):
    masks: Any
    lineage: Sequence


class _Graph(NamedTuple):
    """Vertices (per-frame sorted labels, global index offsets) and edges (u, v, kind: 0 track, 1 parent)."""

    labels: list[np.ndarray]
    offsets: np.ndarray
    u: np.ndarray
    v: np.ndarray
    kind: np.ndarray

    @property
    def n_vertices(self) -> int:
        return int(self.offsets[-1])

    def vertex(self, t: int, label: int) -> int:
        """Global index of (t, label), -1 when absent."""
        if not 0 <= t < len(self.labels):
            return -1
        lab = self.labels[t]
        k = int(np.searchsorted(lab, label))
        return int(self.offsets[t]) + k if k < lab.size and lab[k] == label else -1


def _graph(labels: list[np.ndarray], rows: np.ndarray) -> _Graph:
    offsets = np.concatenate([[0], np.cumsum([x.size for x in labels])]).astype(np.int64)
    us, vs = [], []
    for t in range(len(labels) - 1):
        _, i, j = np.intersect1d(labels[t], labels[t + 1], assume_unique=True, return_indices=True)
        us.append(offsets[t] + i)
        vs.append(offsets[t + 1] + j)
    g = _Graph(labels, offsets, np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int8))
    end_of = {int(r[0]): int(r[2]) for r in rows}
    pu, pv = [], []
    for lbl, begin, _, parent in rows.tolist():
        if parent:
            pu.append(g.vertex(end_of[parent], parent))
            pv.append(g.vertex(begin, lbl))
    u = np.concatenate(us + [np.asarray(pu, dtype=np.int64)]).astype(np.int64)
    v = np.concatenate(vs + [np.asarray(pv, dtype=np.int64)]).astype(np.int64)
    kind = np.concatenate([np.zeros(sum(x.size for x in us), np.int8), np.ones(len(pu), np.int8)])
    return g._replace(u=u, v=v, kind=kind)


def _frame_labels(masks, t: int, who: str) -> np.ndarray:
    x = check_labels(np.asarray(masks[t]), f"{who} frame {t}")
    if x.dtype == np.uint64 and x.size and x.max() > np.iinfo(np.int64).max:
        raise InvalidInput(f"{who} frame {t}: label {int(x.max())} is above 2**63-1, the largest a track file holds")
    return x


#: The AOGM counts of a sequence, in the column order of :func:`_aogm`'s per-frame table.
COUNTS = ("NS", "FN", "FP", "ED", "EA", "EC", "n_vertices", "n_edges")


def _frames_of(g: _Graph, idx: np.ndarray) -> np.ndarray:
    """The frame of each global vertex index in ``idx``."""
    return np.searchsorted(g.offsets, idx, side="right") - 1


def _aogm(ref: _Graph, comp: _Graph, m_ref: np.ndarray, m_comp: np.ndarray) -> np.ndarray:
    """AOGM operation counts from the vertex matches (global indices m_ref[k] <-> m_comp[k]), per frame: one row
    per frame, columns :data:`COUNTS`; a vertex counts in its frame, an edge in the frame of its head (the later
    end), so the rows sum to the sequence's counts and a block of frames has its own."""
    n_frames = len(ref.labels)

    def per_frame(frames: np.ndarray) -> np.ndarray:
        return np.bincount(frames, minlength=n_frames)

    hits = np.bincount(m_comp, minlength=comp.n_vertices)
    comp_frames = _frames_of(comp, np.arange(comp.n_vertices))
    tp = per_frame(_frames_of(ref, m_ref))
    n_vertices = np.diff(ref.offsets)
    to_ref = np.full(comp.n_vertices, -1, dtype=np.int64)
    unique = hits[m_comp] == 1
    to_ref[m_comp[unique]] = m_ref[unique]  # one-to-one: a reference vertex is matched at most once
    cu, cv = to_ref[comp.u], to_ref[comp.v]
    keep = (cu >= 0) & (cv >= 0)
    n = max(ref.n_vertices, 1)
    key_c, kind_c, head_c = cu[keep] * n + cv[keep], comp.kind[keep], comp.v[keep]
    key_r = ref.u * n + ref.v
    order = np.argsort(key_r)
    key_r, kind_r, head_r = key_r[order], ref.kind[order], ref.v[order]
    pos = np.searchsorted(key_r, key_c)
    found = pos < key_r.size
    found[found] = key_r[pos[found]] == key_c[found]
    missing = np.ones(key_r.size, bool)
    missing[pos[found]] = False
    changed = pos[found][kind_r[pos[found]] != kind_c[found]]
    columns = {
        "NS": tp - per_frame(comp_frames[hits >= 1]),
        "FN": n_vertices - tp,
        "FP": per_frame(comp_frames[hits == 0]),
        "ED": per_frame(_frames_of(comp, head_c[~found])),
        "EA": per_frame(_frames_of(ref, head_r[missing])),
        "EC": per_frame(_frames_of(ref, head_r[changed])),
        "n_vertices": n_vertices,
        "n_edges": per_frame(_frames_of(ref, head_r)),
    }
    return np.stack([columns[k] for k in COUNTS], axis=1).astype(np.int64)


def aogm_measures(counts: Mapping[str, float]) -> dict[str, float]:
    """``TRA``, ``DET`` and ``LNK`` of AOGM counts (a sequence's, or any block of its frames'), with ``AOGM`` and
    ``AOGM_0``."""
    c = counts
    aogm_d = W_NS * c["NS"] + W_FN * c["FN"] + W_FP * c["FP"]
    aogm_a = W_ED * c["ED"] + W_EA * c["EA"] + W_EC * c["EC"]
    d0, a0 = W_FN * c["n_vertices"], W_EA * c["n_edges"]
    return {
        "TRA": 1 - min(aogm_d + aogm_a, d0 + a0) / (d0 + a0) if d0 + a0 > 0 else float("nan"),
        "DET": 1 - min(aogm_d, d0) / d0 if d0 > 0 else float("nan"),
        "LNK": 1 - min(aogm_a, a0) / a0 if a0 > 0 else float("nan"),
        "AOGM": aogm_d + aogm_a,
        "AOGM_0": d0 + a0,
    }


def _divisions(rows: np.ndarray) -> list[tuple[int, int, list[tuple[int, int]]]]:
    """(parent, parent's last frame, [(child, child's first frame) in lineage order]) of every track with two or
    more children, by increasing parent label."""
    if not rows.size:
        return []
    parents, counts = np.unique(rows[rows[:, 3] > 0, 3], return_counts=True)
    end_of = {int(r[0]): int(r[2]) for r in rows}
    out = []
    for p in parents[counts > 1].tolist():
        kids = rows[rows[:, 3] == p]
        out.append((p, end_of[p], [(int(c), int(b)) for c, b in zip(kids[:, 0], kids[:, 1])]))
    return out


def _division_counts(ref_div, comp_div, match: list[dict], hits: list[dict], tol: int) -> tuple[int, int, int]:
    """(TP, FP, FN) of divisions at frame tolerance ``tol`` (rule in the module docstring)."""
    if not ref_div or not comp_div:
        return 0, len(comp_div), len(ref_div)

    def pairs(t: int, ref_label: int, comp_label: int) -> bool:
        return match[t].get(ref_label) == comp_label and hits[t].get(comp_label, 0) == 1

    tp = 0
    for cp, ct, ckids in comp_div:
        for rp, rt, rkids in ref_div:
            if abs(rt - ct) > tol or len(rkids) != len(ckids) or not pairs(min(rt, ct), rp, cp):
                continue
            matched: list[int] = []
            for rc, rb in rkids:
                for cc, cb in ckids:
                    if abs(rb - cb) <= tol and pairs(max(rb, cb), rc, cc):
                        if cc not in matched:
                            matched.append(cc)
                        break
            tp += len(matched) == len(rkids)
    return tp, len(comp_div) - tp, len(ref_div) - tp


def division_f1(tp: int, fp: int, fn: int) -> float:
    """py-ctcmetrics' BC: F1 with P = TP/max(TP+FP, 1), R = TP/max(TP+FN, 1); NaN without reference divisions."""
    if tp + fn == 0:
        return float("nan")
    p, r = tp / max(tp + fp, 1), tp / max(tp + fn, 1)
    return 2 * p * r / max(p + r, 1e-4)


def _seg(seg_masks, seg_frames, pred_masks, n_frames: int) -> tuple[float, int]:
    """(summed Jaccard of the reference objects, their number) on the annotated frames."""
    frames = [int(f) for f in seg_frames] if seg_frames is not None else list(range(len(seg_masks)))
    by_position = len(seg_masks) == len(frames)
    if not by_position and len(seg_masks) != n_frames:
        raise InvalidInput(
            f"{len(seg_masks)} segmentation masks for {len(frames)} annotated frames of a {n_frames}-frame sequence"
        )
    total, n = 0.0, 0
    for k, f in enumerate(frames):
        if not 0 <= f < n_frames:
            raise InvalidInput(f"segmentation frame {f} outside the {n_frames}-frame sequence")
        ref = check_labels(np.asarray(seg_masks[k if by_position else f]), f"segmentation frame {f}")
        frame_total, frame_n = seg_jaccard(ref, _frame_labels(pred_masks, f, "prediction"))
        total += frame_total
        n += frame_n
    return total, n


def seg_jaccard(ref: np.ndarray, pred: np.ndarray) -> tuple[float, int]:
    """SEG of one frame: (summed Jaccard of the reference objects, their number). A reference object scores the
    Jaccard of the predicted object covering more than half of it, or 0."""
    ov = overlap_table(ref, pred)
    ok = 2 * ov.inter > ov.a_sizes[ov.ia]
    return float(ov.iou()[ok].sum()), int(ov.a_labels.size)


def sequence_metrics(
    truth: TrackingTruth | tuple, prediction: TrackingPrediction | tuple, tolerances: Sequence[int] = TOLERANCES
) -> dict[str, Any]:
    """CTC measures of one sequence (see the module docstring): ``TRA``, ``DET``, ``LNK``, ``SEG`` and ``OP_CTB``
    (only with segmentation truth), ``division_f1@i`` per tolerance, and the AOGM counts behind them, in all and
    per frame (``frame_counts``: a row per frame, columns :data:`COUNTS`; what a bootstrap over blocks of frames
    resamples)."""
    truth, prediction = TrackingTruth(*truth), TrackingPrediction(*prediction)
    ref_masks, pred_masks = truth.masks, prediction.masks
    if tuple(ref_masks.shape) != tuple(pred_masks.shape) or len(ref_masks.shape) < 2:
        raise InvalidInput(
            f"prediction masks {tuple(pred_masks.shape)} do not match the reference {tuple(ref_masks.shape)}"
        )
    n_frames = int(ref_masks.shape[0])
    ref_labels, comp_labels, m_ref, m_comp, match, hits = [], [], [], [], [], []
    r_off = c_off = 0
    for t in range(n_frames):
        ov = overlap_table(_frame_labels(ref_masks, t, "reference"), _frame_labels(pred_masks, t, "prediction"))
        ok = 2 * ov.inter > ov.a_sizes[ov.ia]
        ia, ib = ov.ia[ok], ov.ib[ok]
        ref_labels.append(ov.a_labels)
        comp_labels.append(ov.b_labels)
        m_ref.append(r_off + ia)
        m_comp.append(c_off + ib)
        rl, cl = ov.a_labels[ia].tolist(), ov.b_labels[ib].tolist()
        match.append(dict(zip(rl, cl)))
        h: dict[int, int] = {}
        for c in cl:
            h[c] = h.get(c, 0) + 1
        hits.append(h)
        r_off += ov.a_labels.size
        c_off += ov.b_labels.size
    ref_rows = check_lineage(truth.lineage, ref_labels, who="reference")
    comp_rows = check_lineage(prediction.lineage, comp_labels, who="prediction")
    ref, comp = _graph(ref_labels, ref_rows), _graph(comp_labels, comp_rows)
    frames = _aogm(ref, comp, np.concatenate(m_ref).astype(np.int64), np.concatenate(m_comp).astype(np.int64))
    c = dict(zip(COUNTS, frames.sum(axis=0).tolist()))
    measures = aogm_measures(c)
    out: dict[str, Any] = {k: measures[k] for k in ("TRA", "DET", "LNK")}
    if truth.seg_masks is not None:
        total, n = _seg(truth.seg_masks, truth.seg_frames, pred_masks, n_frames)
        out["SEG"] = total / n if n else float("nan")
        out["OP_CTB"] = (out["SEG"] + out["TRA"]) / 2
    ref_div, comp_div = _divisions(ref_rows), _divisions(comp_rows)
    for tol in tolerances:
        tp, fp, fn = _division_counts(ref_div, comp_div, match, hits, int(tol))
        out[f"division_f1@{tol}"] = division_f1(tp, fp, fn)
        out[f"division_tp@{tol}"] = float(tp)
    out.update(
        {
            "AOGM": measures["AOGM"],
            "AOGM_0": measures["AOGM_0"],
            "divisions": float(len(ref_div)),
            "divisions_pred": float(len(comp_div)),
        }
    )
    out.update({k: float(c[k]) for k in COUNTS})
    out["frame_counts"] = frames.tolist()
    return out


_MEANED = ("TRA", "DET", "LNK", "SEG", "OP_CTB")


def tracking_metrics(
    truths: Iterable[TrackingTruth | tuple],
    predictions: Iterable[TrackingPrediction | tuple],
    tolerances: Sequence[int] = TOLERANCES,
) -> dict:
    """Dataset-level tracking metrics: each sequence scored by :func:`sequence_metrics`, ``metrics`` the mean over
    sequences (as the Cell Tracking Challenge reports a dataset; SEG/OP_CTB over the sequences with segmentation
    truth, division F1 over those with reference divisions); ``per_sample`` one dict per sequence."""
    per_sample = [sequence_metrics(t, p, tolerances) for t, p in paired(truths, predictions, "sequences")]
    names = [n for n in _MEANED if any(n in s for s in per_sample)]
    names += [f"division_f1@{tol}" for tol in tolerances]
    metrics = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for n in names:
            metrics[n] = float(np.nanmean([s.get(n, np.nan) for s in per_sample]))
    return {"metrics": metrics, "per_sample": per_sample}
