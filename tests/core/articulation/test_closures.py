"""Lip closures (p/b/m) and tucks (f/v) on VOCA's official output (issue 18, item 2)."""
import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.csgraph as cg

from tests.core.articulation import measure as M
from voca_addon.core.animation.shapekeys import Corrections, ShapeKeyAnimation
from voca_addon.core.articulation import CORRECTION_NAMES, add_corrections, lip_line
from voca_addon.core.articulation.lipline import FLAME_INNER_LIP_LOWER, FLAME_INNER_LIP_UPPER
from voca_addon.core.character.landmarks import FLAME_IBUG68
from voca_addon.core.errors import InputError, MeshError

BILABIALS = ("P", "B", "M")
PRESS_KEEP = 0.5        # a pair VOCA already holds under its floor may be pressed to half its gap


def test_lipline_rows_are_the_template_geometry(flame):
    """The shipped rows are the shortest edge paths on FLAME_sample.ply between the iBUG inner-lip points."""
    v, f = flame.vertices.astype(np.float64), np.asarray(flame.faces)
    e = np.unique(np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1), axis=0)
    graph = sp.coo_matrix((np.linalg.norm(v[e[:, 0]] - v[e[:, 1]], axis=1), (e[:, 0], e[:, 1])),
                          shape=(len(v), len(v))).tocsr()

    def chain(landmarks):
        out = [int(FLAME_IBUG68[landmarks[0]])]
        for a, b in zip(landmarks[:-1], landmarks[1:]):
            _, pred = cg.dijkstra(graph, directed=False, indices=FLAME_IBUG68[a], return_predecessors=True)
            path = [int(FLAME_IBUG68[b])]
            while path[-1] != FLAME_IBUG68[a]:
                path.append(int(pred[path[-1]]))
            out += path[::-1][1:]
        return out

    assert chain([60, 61, 62, 63, 64]) == FLAME_INNER_LIP_UPPER.tolist()
    assert chain([60, 67, 66, 65, 64]) == FLAME_INNER_LIP_LOWER.tolist()
    line = lip_line(flame.vertices)
    assert {tuple(p) for p in M.IBUG_PAIRS.tolist()} <= {tuple(p) for p in line.pairs.tolist()}
    # The figure: 2.47 mm on the template.
    assert M.gaps_mm(flame.vertices[None], M.IBUG_PAIRS).mean() == pytest.approx(2.47, abs=0.005)
    # The pairs cover the line corner to corner: every interior vertex of both rows is in a pair.
    used = set(line.pairs.ravel().tolist())
    assert set(FLAME_INNER_LIP_UPPER[1:-1].tolist()) <= used and set(FLAME_INNER_LIP_LOWER[1:-1].tolist()) <= used


def check_closures(anim, corrected, track, offset=None):
    """The issue's checks; returns the worst excess over rest (mm) per bilabial."""
    line = lip_line(anim.template)
    pairs = line.pairs
    extra = 0.0 if offset is None else offset[None]
    before = M.gaps_mm(anim.vertices() + extra, pairs)
    after = M.gaps_mm(corrected.vertices() + extra, pairs)
    rest = M.gaps_mm(anim.template[None], pairs)[0]
    ibug_rest = M.gaps_mm(anim.template[None], M.IBUG_PAIRS)[0]
    worst = []
    for phone in track.phones:
        if phone.phone not in BILABIALS:
            continue
        a, b = M.window(phone, anim.fps, num_frames=anim.num_frames)
        excess = (after[a:b + 1] - rest).min(axis=0)          # per pair, its closest approach in the window
        worst.append(float(excess.max()))
        assert excess.max() <= M.REACH_MM, (phone, np.round(excess, 2))
    floor = M.floor_mm(rest, ibug_rest)
    allowed = np.where(before >= floor, floor, PRESS_KEEP * before)
    assert (after >= allowed - 1e-4).all(), np.round((after - allowed).min(axis=0), 3)
    # The measure (mean of the iBUG pairs) never below 1.0 mm where VOCA's was not.
    ibug_before = M.gaps_mm(anim.vertices() + extra, M.IBUG_PAIRS).mean(axis=1)
    ibug_after = M.gaps_mm(corrected.vertices() + extra, M.IBUG_PAIRS).mean(axis=1)
    assert (ibug_after[ibug_before >= M.FLOOR_MM] >= M.FLOOR_MM - 1e-4).all()
    far = M.far_frames(track, anim.num_frames, anim.fps)
    assert far.sum() > 0.3 * anim.num_frames
    moved = np.linalg.norm(corrected.vertices()[far] - anim.vertices()[far], axis=2).max() * 1e3
    assert moved <= M.UNCHANGED_MM
    return worst


@pytest.mark.parametrize("source", ["aligned", "detected"])
def test_add_corrections_closes_every_bilabial(official, source, request):
    track = request.getfixturevalue(source)
    assert len(track.of(*BILABIALS)) == 5
    corrected = add_corrections(official, track)
    assert corrected.corrections.names == CORRECTION_NAMES
    np.testing.assert_array_equal(corrected.weights, official.weights)      # VOCA's keys stay VOCA's
    np.testing.assert_array_equal(corrected.bias, official.bias)
    check_closures(official, corrected, track)
    # Without corrections, three of five never close (the table).
    rest = M.gaps_mm(official.template[None], M.IBUG_PAIRS).mean()
    ibug = M.gaps_mm(official.vertices(), M.IBUG_PAIRS).mean(axis=1)
    open_ = [ibug[slice(*np.add(M.window(p, 60.0), (0, 1)))].min() > rest + M.REACH_MM
             for p in track.of(*BILABIALS)]
    assert sum(open_) >= 3


def test_tuck_lifts_and_retracts_the_lower_lip(official, aligned):
    """f/v: in each phone's window the middle of the lower lip rises to the upper lip's height (the gap
    along each iBUG pair's rest direction ≤ rest + 0.3 mm) and sits ≥ 2 mm further back (−z) than at rest."""
    corrected = add_corrections(official, aligned)
    template = official.template.astype(np.float64)
    rest_vec = template[M.IBUG_PAIRS[:, 0]] - template[M.IBUG_PAIRS[:, 1]]
    n = rest_vec / np.linalg.norm(rest_vec, axis=1, keepdims=True)
    tucks = aligned.of("F", "V")
    assert len(tucks) == 2
    for phone in tucks:
        a, b = M.window(phone, 60.0)
        v = corrected.vertices()[a:b + 1].astype(np.float64)
        r = v[:, M.IBUG_PAIRS[:, 0]] - v[:, M.IBUG_PAIRS[:, 1]]
        lift = (np.einsum("fpk,pk->fp", r, n) - np.linalg.norm(rest_vec, axis=1)).mean(axis=1) * 1e3
        back = (r[..., 2] - rest_vec[:, 2]).mean(axis=1) * 1e3
        k = np.argmin(lift)
        assert lift[k] <= M.REACH_MM and back[k] >= 2.0, (phone, lift[k], back[k])
    assert corrected.corrections.weights[:, 1].max() > 0


def test_add_corrections_never_twice(official, aligned):
    once = add_corrections(official, aligned)
    assert add_corrections(once, aligned) is once
    foreign = official.with_corrections(Corrections(np.zeros((1, official.num_vertices, 3), np.float32),
                                                    np.zeros((official.num_frames, 1), np.float32), ("mine",)))
    assert add_corrections(foreign, aligned) is foreign


def test_add_corrections_refuses_a_track_past_the_animation(official, aligned):
    short = ShapeKeyAnimation(official.basis, official.bias, official.weights[:120], official.fps,
                              official.template)
    with pytest.raises(InputError, match="past the animation's end"):
        add_corrections(short, aligned)


def test_add_corrections_refuses_a_non_flame_mesh(official, aligned):
    keep = np.arange(1220)
    other = ShapeKeyAnimation(official.basis[:, keep], official.bias[keep], official.weights, official.fps,
                              official.template[keep])
    with pytest.raises(MeshError, match="FLAME topology"):
        add_corrections(other, aligned)


def test_add_corrections_refuses_a_bad_offset(official, aligned):
    with pytest.raises(InputError, match="static offset"):
        add_corrections(official, aligned, offset=np.zeros((100, 3)))
    with pytest.raises(InputError, match="static offset"):
        add_corrections(official, aligned, offset=np.full((official.num_vertices, 3), np.nan))
