"""The linker of the tracking family: per-frame instance labels -> tracks with a CTC lineage.

Pure numpy/scipy (no torch): a detector segments each frame, :func:`link` joins the objects over time and
:func:`write_ctc_result` (:mod:`hub.ome.ctc`) writes a Cell Tracking Challenge ``<seq>_RES`` folder.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from hub.errors import InvalidInput
from hub.ome.ctc import Track, write_ctc_result
from hub.ome.ctc import check_masks as _check_masks

__all__ = ["link", "write_ctc_result"]

_FLOW_ROUNDS = 3  # frame-to-frame LAP <-> local flow re-estimation rounds
_FLOW_NEIGHBOURS = 8  # objects whose displacements are pooled (median) into one object's predicted motion
_SISTER_RATIO = 1.6  # sisters of a division differ in area by less than this factor
_ALT_FACTOR = 1.05  # birth/death (no-link) cost = 1.05 x the largest admissible link cost (Jaqaman 2008)


@dataclass
class _Objects:
    """Every object of the movie, sorted by frame then by original label; frame ``t`` is ``off[t]:off[t+1]``."""

    frame: np.ndarray  # (N,) int64
    label: np.ndarray  # (N,) original label in its frame
    area: np.ndarray  # (N,) float64, pixels
    pos: np.ndarray  # (N, 2) float64, centroid (y, x)
    off: np.ndarray  # (T+1,) int64
    pixels: list  # per frame: (flat pixel indices, object index within the frame)

    def at(self, t: int) -> slice:
        return slice(int(self.off[t]), int(self.off[t + 1]))


def link(
    masks: np.ndarray,
    *,
    max_distance: float | None = None,
    max_gap: int = 2,
    divisions: bool = True,
    area_weight: float = 1.0,
    overlap_weight: float = 1.0,
) -> tuple[np.ndarray, list[Track]]:
    """Link per-frame instance labels ``masks`` (T, Y, X; ids arbitrary per frame) into tracks.

    Returns the masks relabelled (uint16; uint32 beyond 65535 tracks) so that each track has one label, and the
    lineage as CTC ``man_track`` rows (label, first frame, last frame, parent; 0 = none). As in the CTC, a track
    has its object in every frame from first to last: an object that reappears after a closed gap of up to
    ``max_gap`` frames starts a new track whose parent is the track before the gap (a parent with one child).

    Method (after Jaqaman et al., Nat Methods 2008): frame-to-frame LAP (scipy ``linear_sum_assignment``) on the
    squared distance to the position predicted by drift + neighbours' motion, plus area change and overlap
    terms, with birth/death as the no-link alternative of the augmented cost matrix; a gap-closing LAP from track
    ends to later starts; divisions from a greedy on mother-daughter costs (two similar daughters around a mother
    that ends or shrinks). ``max_distance`` (largest residual motion per frame, pixels) defaults to the median
    equivalent diameter of the objects.
    """
    masks = _check_masks(masks)
    if max_gap < 0:
        raise InvalidInput(f"max_gap must be >= 0, got {max_gap}")
    objs = _features(masks)
    n = len(objs.frame)
    if n == 0:
        return np.zeros(masks.shape, np.uint16), []
    if max_distance is None:
        max_distance = float(2.0 * np.sqrt(np.median(objs.area) / np.pi))
    if not max_distance > 0:
        raise InvalidInput(f"max_distance must be > 0, got {max_distance}")

    nxt, vel, overlaps = _frame_to_frame(objs, masks.shape, max_distance, area_weight, overlap_weight)
    framelinked = nxt >= 0
    if max_gap > 0:
        _close_gaps(objs, nxt, vel, max_distance, max_gap, area_weight)
    parent_obj = np.full(n, -1, np.int64)
    if divisions:
        _divisions(objs, nxt, framelinked, vel, overlaps, parent_obj, max_distance, max_gap, overlap_weight)
    # CTC has no holes inside a track: the object after a closed gap starts a track whose parent (its only child)
    # is the track before the gap
    gap = np.flatnonzero((nxt >= 0) & ~framelinked)
    parent_obj[nxt[gap]] = gap
    nxt[gap] = -1
    track_of, tracks = _tracks(objs, nxt, parent_obj)
    return _relabel(masks, objs, track_of + 1, len(tracks)), tracks


# ---- features ---------------------------------------------------------------------------------------------------


def _features(masks: np.ndarray) -> _Objects:
    """Area and centroid of every object of every frame (one ``np.unique`` + ``bincount`` per frame)."""
    t_n, _, x_n = masks.shape
    frames, labels, areas, pos, off, pixels = [], [], [], [], [0], []
    for t in range(t_n):
        flat = masks[t].ravel()
        nz = np.flatnonzero(flat)
        ids, inv = np.unique(flat[nz], return_inverse=True)
        area = np.bincount(inv, minlength=len(ids)).astype(np.float64)
        y, x = np.divmod(nz, x_n)
        with np.errstate(invalid="ignore", divide="ignore"):
            cy = np.bincount(inv, weights=y, minlength=len(ids)) / area
            cx = np.bincount(inv, weights=x, minlength=len(ids)) / area
        frames.append(np.full(len(ids), t, np.int64))
        labels.append(ids)
        areas.append(area)
        pos.append(np.stack([cy, cx], axis=1))
        off.append(off[-1] + len(ids))
        pixels.append((nz, inv.astype(np.int32)))
    return _Objects(
        np.concatenate(frames),
        np.concatenate(labels),
        np.concatenate(areas),
        np.concatenate(pos).reshape(-1, 2),
        np.asarray(off, np.int64),
        pixels,
    )


# ---- linear assignment ------------------------------------------------------------------------------------------


def _solve(rows: np.ndarray, cols: np.ndarray, cost: np.ndarray, n_rows: int, n_cols: int) -> np.ndarray:
    """Jaqaman's augmented LAP on a sparse cost list: returns, for each row, its column or -1 (no link).

    The no-link alternative (death of a row, birth of a column) costs 1.05 x the largest admissible cost; the
    problem is split into connected components so that each dense matrix stays small.
    """
    match = np.full(n_rows, -1, np.int64)
    if len(cost) == 0:
        return match
    alt = _ALT_FACTOR * max(float(cost.max()), 1e-9)
    graph = coo_matrix((np.ones(len(rows)), (rows, cols + n_rows)), shape=(n_rows + n_cols,) * 2)
    _, comp = connected_components(graph, directed=False)
    edge_comp = comp[rows]
    order = np.argsort(edge_comp, kind="stable")
    bounds = np.flatnonzero(np.diff(edge_comp[order])) + 1
    for part in np.split(order, bounds):
        r, c, v = rows[part], cols[part], cost[part]
        if len(part) == 1:
            match[r[0]] = c[0]
            continue
        ur, ri = np.unique(r, return_inverse=True)
        uc, ci = np.unique(c, return_inverse=True)
        a, b = len(ur), len(uc)
        big = np.full((a + b, b + a), np.inf)
        big[ri, ci] = v
        big[np.arange(a), b + np.arange(a)] = alt  # death of a row
        big[a + np.arange(b), np.arange(b)] = alt  # birth of a column
        big[a + ci, b + ri] = float(v.min())  # lower-right block: transpose of the admissible links
        sr, sc = linear_sum_assignment(big)
        keep = (sr < a) & (sc < b)
        match[ur[sr[keep]]] = uc[sc[keep]]
    return match


def _pair_costs(
    pred: np.ndarray, pos_b: np.ndarray, area_a: np.ndarray, area_b: np.ndarray, radius: float, area_weight: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Admissible (row, col, cost) triples: residual distance <= ``radius``; cost in units of ``radius``^2."""
    if len(pred) == 0 or len(pos_b) == 0:
        e = np.zeros(0, np.int64)
        return e, e, np.zeros(0)
    sdm = cKDTree(pred).sparse_distance_matrix(cKDTree(pos_b), radius, output_type="ndarray")
    r, c, d = sdm["i"].astype(np.int64), sdm["j"].astype(np.int64), sdm["v"]
    cost = (d / radius) ** 2 + area_weight * np.log(area_b[c] / area_a[r]) ** 2
    return r, c, cost


def _local_flow(pos: np.ndarray, known: np.ndarray, disp: np.ndarray, radius: float) -> np.ndarray:
    """Predicted displacement of every object: the median displacement of the (up to 8) nearest objects with a
    known one within ``radius`` (zero where none): colonies drift and expand coherently."""
    flow = np.zeros_like(pos)
    n_known = int(known.sum())
    if n_known == 0:
        return flow
    k = min(_FLOW_NEIGHBOURS, n_known)
    dist, idx = cKDTree(pos[known]).query(pos, k=k, distance_upper_bound=radius)
    dist, idx = dist.reshape(len(pos), k), idx.reshape(len(pos), k)
    count = np.isfinite(dist).sum(axis=1)  # neighbours come sorted by distance: the valid ones first
    has = count > 0
    vals = np.sort(np.where(np.isfinite(dist)[..., None], disp[known][np.minimum(idx, n_known - 1)], np.inf), axis=1)[
        has
    ]
    c = count[has]
    rows = np.arange(len(c))
    flow[has] = (vals[rows, (c - 1) // 2] + vals[rows, c // 2]) / 2
    return flow


def _global_shift(pa: np.ndarray, pb: np.ndarray, radius: float, bin_size: float) -> np.ndarray:
    """The most common displacement between the objects of two frames (stage drift, a colony's shift): the
    smoothed 2-D histogram of all displacements up to ``radius``, its peak refined by a local mean."""
    sdm = cKDTree(pa).sparse_distance_matrix(cKDTree(pb), radius, output_type="ndarray")
    if len(sdm) == 0:
        return np.zeros(2)
    d = pb[sdm["j"]] - pa[sdm["i"]]
    n_bins = int(np.ceil(radius / bin_size))
    edges = np.linspace(-radius, radius, 2 * n_bins + 1)
    hist, _, _ = np.histogram2d(d[:, 0], d[:, 1], bins=(edges, edges))
    hist = ndi.gaussian_filter(hist, 1.0)
    iy, ix = np.unravel_index(int(np.argmax(hist)), hist.shape)
    peak = np.array([edges[iy] + edges[iy + 1], edges[ix] + edges[ix + 1]]) / 2
    near = np.linalg.norm(d - peak, axis=1) <= 2 * bin_size
    return d[near].mean(axis=0) if near.any() else peak


# ---- the three linking steps ------------------------------------------------------------------------------------


def _frame_to_frame(
    objs: _Objects, shape: tuple[int, ...], max_distance: float, area_weight: float, overlap_weight: float
) -> tuple[np.ndarray, np.ndarray, dict[int, float]]:
    """Frame-to-frame LAP. Returns the successor (object index or -1) of every object, its predicted velocity,
    and the overlaps (key ``i * N + j`` -> overlap / smaller area) of objects ``i`` moved by their predicted
    motion onto objects ``j`` of the next frame."""
    n = len(objs.frame)
    nxt = np.full(n, -1, np.int64)
    vel = np.zeros((n, 2))
    overlaps: dict[int, float] = {}
    flow_radius = 3.0 * max_distance
    t_n, y_n, x_n = shape
    index_img = np.full(y_n * x_n, -1, np.int64)
    pix_b = objs.pixels[0]
    prev_disp = prev_shift = None  # displacement from t-1 of the objects of frame t (NaN: not linked)
    for t in range(t_n - 1):
        sa, sb = objs.at(t), objs.at(t + 1)
        pa, pb = objs.pos[sa], objs.pos[sb]
        pix_a, pix_b = pix_b, objs.pixels[t + 1]
        if len(pa) == 0 or len(pb) == 0:
            prev_disp = None
            continue
        # prediction: the most common displacement (drift) plus the neighbours' motion of the previous step
        shift = _global_shift(pa, pb, 4.0 * max_distance, max_distance / 4.0)
        flow = np.broadcast_to(shift, pa.shape).copy()
        if prev_disp is not None and len(prev_disp) == len(pa):
            known = ~np.isnan(prev_disp[:, 0])
            flow += _local_flow(pa, known, np.nan_to_num(prev_disp - prev_shift), flow_radius)
        prev_shift = shift
        index_img[pix_b[0]] = pix_b[1]
        area_a, area_b = objs.area[sa], objs.area[sb]
        match = np.full(len(pa), -1, np.int64)
        for _ in range(_FLOW_ROUNDS):
            ov_key, ov_frac = _overlap(pix_a, index_img, flow, (y_n, x_n), area_a, area_b)
            r, c, cost = _pair_costs(pa + flow, pb, area_a, area_b, max_distance, area_weight)
            if overlap_weight:
                cost = cost + overlap_weight * (1.0 - _lookup(ov_key, ov_frac, r * len(pb) + c))
            new = _solve(r, c, cost, len(pa), len(pb))
            known = new >= 0
            disp = np.zeros_like(pa)
            disp[known] = pb[new[known]] - pa[known]
            converged = np.array_equal(new, match)
            match, used_flow, flow = new, flow, _local_flow(pa, known, disp, flow_radius)
            if converged:
                break
        index_img[pix_b[0]] = -1
        vel[sa] = used_flow
        rows, cols = np.divmod(ov_key, len(pb))
        overlaps.update(zip(((sa.start + rows) * n + sb.start + cols).tolist(), ov_frac.tolist()))
        linked = match >= 0
        nxt[sa.start + np.flatnonzero(linked)] = sb.start + match[linked]
        prev_disp = np.full((len(pb), 2), np.nan)
        prev_disp[match[linked]] = pb[match[linked]] - pa[linked]
    return nxt, vel, overlaps


def _lookup(keys: np.ndarray, values: np.ndarray, query: np.ndarray) -> np.ndarray:
    """``values`` at ``query`` in the sorted ``keys``; 0 where absent."""
    if len(keys) == 0:
        return np.zeros(len(query))
    i = np.minimum(np.searchsorted(keys, query), len(keys) - 1)
    return np.where(keys[i] == query, values[i], 0.0)


def _overlap(
    pix_a: tuple[np.ndarray, np.ndarray],
    index_img: np.ndarray,
    flow: np.ndarray,
    shape: tuple[int, int],
    area_a: np.ndarray,
    area_b: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Overlap of every object of frame A, moved by its predicted motion, with the objects of frame B: sorted
    keys ``a * nB + b`` and overlap / smaller area."""
    y_n, x_n = shape
    nz, oi = pix_a
    step = np.rint(flow).astype(np.int64)[oi]
    y, x = np.divmod(nz, x_n)
    y, x = y + step[:, 0], x + step[:, 1]
    inside = (y >= 0) & (y < y_n) & (x >= 0) & (x < x_n)
    b = np.full(len(nz), -1, np.int64)
    b[inside] = index_img[y[inside] * x_n + x[inside]]
    hit = b >= 0
    key, count = np.unique(oi[hit] * len(area_b) + b[hit], return_counts=True)
    ra, cb = np.divmod(key, len(area_b))
    return key, count / np.minimum(area_a[ra], area_b[cb])


def _close_gaps(
    objs: _Objects, nxt: np.ndarray, vel: np.ndarray, max_distance: float, max_gap: int, area_weight: float
) -> None:
    """Link track ends to track starts 2..max_gap+1 frames later (one LAP over the movie); updates ``nxt``."""
    has_prev = np.zeros(len(nxt), bool)
    has_prev[nxt[nxt >= 0]] = True
    t_last = len(objs.off) - 2
    ends = np.flatnonzero((nxt < 0) & (objs.frame < t_last - 1))
    starts = np.flatnonzero(~has_prev & (objs.frame > 1))
    if len(ends) == 0 or len(starts) == 0:
        return
    rows, cols, costs = [], [], []
    for gap in range(2, max_gap + 2):
        radius = max_distance * np.sqrt(gap)
        for t in np.unique(objs.frame[ends]):
            e = ends[objs.frame[ends] == t]
            s = starts[objs.frame[starts] == t + gap]
            if len(s) == 0:
                continue
            r, c, cost = _pair_costs(
                objs.pos[e] + gap * vel[e], objs.pos[s], objs.area[e], objs.area[s], radius, area_weight
            )
            rows.append(np.searchsorted(ends, e[r]))
            cols.append(np.searchsorted(starts, s[c]))
            costs.append(cost + 0.1 * (gap - 1))  # a shorter gap wins a tie
    if not rows:
        return
    match = _solve(np.concatenate(rows), np.concatenate(cols), np.concatenate(costs), len(ends), len(starts))
    ok = match >= 0
    nxt[ends[ok]] = starts[match[ok]]


def _divisions(
    objs: _Objects,
    nxt: np.ndarray,
    framelinked: np.ndarray,
    vel: np.ndarray,
    overlaps: dict[int, float],
    parent_obj: np.ndarray,
    max_distance: float,
    max_gap: int,
    overlap_weight: float,
) -> None:
    """Give two new objects a mother: a track end up to ``max_gap`` frames before them, or a track that continues
    into one of them while shrinking. Cuts the mother's link and fills ``parent_obj`` of both daughters."""
    has_prev = np.zeros(len(nxt), bool)
    has_prev[nxt[nxt >= 0]] = True
    t_n = len(objs.off) - 1
    cands = []  # (cost, mother, daughter1, daughter2)
    for td in range(1, t_n):
        sd = objs.at(td)
        free = np.flatnonzero(~has_prev[sd]) + sd.start
        if len(free) == 0:
            continue
        # mothers: ends in frames td-1-max_gap .. td-1, and objects of td-1 frame-linked into td
        lo = objs.off[max(0, td - 1 - max_gap)]
        hi = objs.off[td]
        m_all = np.arange(lo, hi)
        mothers = m_all[(nxt[m_all] < 0) | ((objs.frame[m_all] == td - 1) & framelinked[m_all])]
        if len(mothers) == 0:
            continue
        gap = td - objs.frame[mothers]
        pred = objs.pos[mothers] + gap[:, None] * vel[mothers]
        near = cKDTree(objs.pos[free]).query_ball_point(pred, 2.0 * max_distance)
        for k, (m, ids) in enumerate(zip(mothers, near)):
            cont = int(nxt[m]) if nxt[m] >= 0 else -1
            options = free[ids]
            if cont >= 0:
                pairs = [(cont, int(s)) for s in options]
            else:
                pairs = [(int(a), int(b)) for i, a in enumerate(options) for b in options[i + 1 :]]
            for d1, d2 in pairs:
                cost = _division_cost(
                    objs, int(m), d1, d2, pred[k], max_distance, overlaps, overlap_weight, continuing=cont >= 0
                )
                if cost is not None:
                    cands.append((cost, int(m), d1, d2))
    mothers_used, daughters_used = set[int](), set[int]()
    for _, m, d1, d2 in sorted(cands):
        if m in mothers_used or d1 in daughters_used or d2 in daughters_used:
            continue
        mothers_used.add(m)
        daughters_used.update((d1, d2))
        nxt[m] = -1
        parent_obj[d1] = parent_obj[d2] = m


def _division_cost(
    objs: _Objects,
    m: int,
    d1: int,
    d2: int,
    pred: np.ndarray,
    max_distance: float,
    overlaps: dict[int, float],
    overlap_weight: float,
    continuing: bool,
) -> float | None:
    """Mother-daughter cost: the daughters' joint centroid near the mother's predicted position, similar daughter
    areas and, when the mother's track continued into a daughter, a summed area close to the mother's."""
    a1, a2, am = objs.area[d1], objs.area[d2], objs.area[m]
    sym = abs(np.log(a1 / a2))
    if sym > np.log(_SISTER_RATIO):
        return None
    total = np.log((a1 + a2) / am)
    if continuing:
        # the continuation must have shrunk and the two must add up to about the mother (plus some growth)
        if objs.area[d1] > 0.8 * am or not np.log(0.6) <= total <= np.log(1.8):
            return None
    elif not np.log(0.5) <= total <= np.log(6.0):  # mitotic nuclei may swell several-fold after division
        return None
    joint = (a1 * objs.pos[d1] + a2 * objs.pos[d2]) / (a1 + a2)
    spread = np.linalg.norm(objs.pos[d1] - objs.pos[d2])
    off = np.linalg.norm(joint - pred) / max_distance
    if spread > 2.5 * max_distance or off > 1.0:
        return None
    n = len(objs.frame)
    if objs.frame[d1] == objs.frame[m] + 1:  # daughters lie inside the mother's (motion-compensated) footprint
        inside = (overlaps.get(m * n + d1, 0.0) + overlaps.get(m * n + d2, 0.0)) / 2
    else:  # across a gap the overlap is unknown: neutral
        inside = 0.5
    return float(off**2 + sym**2 + 0.25 * total**2 + overlap_weight * (1.0 - inside))


# ---- tracks and output --------------------------------------------------------------------------------------------


def _tracks(objs: _Objects, nxt: np.ndarray, parent_obj: np.ndarray) -> tuple[np.ndarray, list[Track]]:
    """Follow the links: track index of every object and the lineage (labels = track index + 1, numbered in
    order of first frame)."""
    n = len(nxt)
    has_prev = np.zeros(n, bool)
    has_prev[nxt[nxt >= 0]] = True
    heads = np.flatnonzero(~has_prev)  # objects are sorted by frame, so heads are in order of first frame
    track_of = np.full(n, -1, np.int64)
    tails = np.empty(len(heads), np.int64)
    for k, h in enumerate(heads):
        i = int(h)
        while True:
            track_of[i] = k
            if nxt[i] < 0:
                break
            i = int(nxt[i])
        tails[k] = i
    tracks = []
    for k, (h, tail) in enumerate(zip(heads, tails)):
        p = parent_obj[h]
        tracks.append(Track(k + 1, int(objs.frame[h]), int(objs.frame[tail]), int(track_of[p] + 1) if p >= 0 else 0))
    return track_of, tracks


def _relabel(masks: np.ndarray, objs: _Objects, new_label: np.ndarray, n_tracks: int) -> np.ndarray:
    """Write ``new_label`` of every object into a fresh label array (the original ids are per-frame)."""
    dtype = np.uint16 if n_tracks <= np.iinfo(np.uint16).max else np.uint32
    out = np.zeros(masks.shape, dtype)
    flat = out.reshape(masks.shape[0], -1)
    for t, (nz, inv) in enumerate(objs.pixels):
        flat[t, nz] = new_label[objs.off[t] + inv]
    return out
