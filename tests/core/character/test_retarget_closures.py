"""Lips that close on the character (issue 18, item 4 for ``retarget``): the corrections made on FLAME transfer
like every other field, kept apart, and the own-keys solve reproduces the corrected motion.

Real data: the official VOCA output for "Severe myopia contributed to Ron's inferiority complex", its phones
force-aligned by PocketSphinx with that transcript or detected without it, the ARKit face and its 51 keys. The ARKit face's inner-lip
gap is measured like FLAME's in the issue: the mean distance of the iBUG inner-lip pairs 61–67, 62–66, 63–65,
here the ARKit face's own vertices for those landmarks (``ARKit_landmarks.txt``); its value at rest (the
Neutral mesh, lips touching) is the target. A p/b/m closes when some frame in [start − 80 ms, end + 40 ms]
(frames ⌈(start − 0.08)·fps⌉ … ⌊(end + 0.04)·fps⌋) reaches that rest gap + 0.3 mm.
"""
import argparse

import numpy as np
import pytest

from voca_addon.core.articulation import add_corrections
from voca_addon.core.errors import InputError
from voca_addon.core.character import keysolve, transfer
from voca_addon.core.phonemes import phones_for_audio

SENTENCE = "Severe myopia contributed to Ron's inferiority complex"
INNER_LIPS = ((61, 67), (62, 66), (63, 65))
BILABIALS = ("P", "B", "M")
TOLERANCE = 0.3e-3            # m: the rest gap + 0.3 mm


@pytest.fixture(scope="module", params=["aligned", "detected"])
def track(request, shared_data):
    """The sentence's phones: forced alignment with its transcript, or PocketSphinx detection alone."""
    text = SENTENCE if request.param == "aligned" else None
    result = phones_for_audio(str(shared_data / "audio" / "test_sentence.wav"), text)
    assert result.source == request.param
    return result


@pytest.fixture(scope="module")
def corrected(official, track):
    return add_corrections(official, track)


@pytest.fixture(scope="module")
def on_face(corrected, arkit, arkit_fit):
    return transfer.transfer(corrected, arkit_fit, arkit["mesh"].vertices, arkit["mesh"].faces)


def inner_gap(vertices, ids):
    """Mean inner-lip gap per frame, [F] in the mesh's units, of vertices [F, V, 3]."""
    return np.mean([np.linalg.norm(vertices[:, ids[a]] - vertices[:, ids[b]], axis=1) for a, b in INNER_LIPS],
                   axis=0)


def smallest_gaps(gap, track, fps):
    """[(phone, word, smallest gap in its window)] for every p/b/m of the track."""
    out = []
    for p in track.phones:
        if p.phone in BILABIALS:
            lo, hi = int(np.ceil((p.start - 0.08) * fps)), int(np.floor((p.end + 0.04) * fps))
            out.append((p.phone, p.word, float(gap[max(lo, 0):hi + 1].min())))
    return out


def _show(label, rows, rest):
    print(f"{label}: " + ", ".join(f"{p} ({w}) {g * 1e3:.2f}" for p, w, g in rows)
          + f" mm (rest {rest * 1e3:.2f} mm)")


def test_corrections_transfer_like_every_field_and_stay_apart(official, corrected, on_face, arkit, arkit_fit):
    plain = transfer.transfer(official, arkit_fit, arkit["mesh"].vertices, arkit["mesh"].faces)
    c = on_face.corrections
    assert c is not None and c.names == corrected.corrections.names
    np.testing.assert_array_equal(c.weights, corrected.corrections.weights)
    assert c.basis.shape == (len(c.names), len(arkit["mesh"].vertices), 3)
    exact = on_face.exact()                               # VOCA's transferred keys are untouched
    np.testing.assert_array_equal(exact.basis, plain.basis)
    np.testing.assert_array_equal(exact.bias, plain.bias)
    np.testing.assert_array_equal(exact.weights, plain.weights)
    # linear: the corrected character is the transfer of the corrected FLAME face, frame by frame
    frames = [60, 70, 90, 226]
    flame_disp = corrected.vertices(frames) - corrected.template[None]
    t = transfer.transfer_matrix(arkit_fit, arkit["mesh"].vertices, arkit["mesh"].faces)
    expected = transfer.transfer_fields(flame_disp, arkit_fit, t) + arkit["mesh"].vertices[None]
    np.testing.assert_allclose(on_face.vertices(frames), expected, atol=1e-6)          # metres


def test_every_bilabial_closes_on_the_arkit_face_and_its_own_keys(official, track, on_face, arkit):
    ids = arkit["target_ids"]
    rest = float(inner_gap(arkit["mesh"].vertices[None], ids)[0])
    fps = on_face.fps
    before = smallest_gaps(inner_gap(on_face.exact().vertices(), ids), track, fps)
    after = smallest_gaps(inner_gap(on_face.vertices(), ids), track, fps)
    _show(f"ARKit face, VOCA exact ({track.source})", before, rest)
    _show(f"ARKit face, corrected ({track.source})", after, rest)
    assert len(after) == 5
    assert max(g for *_, g in before) > rest + TOLERANCE                 # without them some stay open …
    assert all(g <= rest + TOLERANCE for *_, g in after)                 # … with them every one closes
    active = (on_face.corrections.weights != 0).any(axis=1)              # never pressed through: where the
    exact_gap, gap = inner_gap(on_face.exact().vertices(), ids), inner_gap(on_face.vertices(), ids)
    assert (gap[active] >= np.minimum(1.0e-3, exact_gap[active])).all()  # keys act, ≥ 1 mm (or VOCA's own)
    print(f"corrected frames: gap ≥ {gap[active].min() * 1e3:.2f} mm; VOCA's own smallest "
          f"{exact_gap.min() * 1e3:.2f} mm (frame {int(exact_gap.argmin())}, the pressed silence)")

    def keyed(motion):
        solution = keysolve.solve_keys(motion, arkit["keys"], arkit["names"])
        frames = arkit["mesh"].vertices[None] + np.einsum("fj,jvd->fvd", solution.weights, arkit["keys"])
        return solution, inner_gap(frames, ids)
    exact_sol, exact_gap = keyed(on_face.exact())
    sol, gap = keyed(on_face)
    keys_before, keys_after = smallest_gaps(exact_gap, track, fps), smallest_gaps(gap, track, fps)
    _show(f"its 51 keys, VOCA exact ({track.source})", keys_before, rest)
    _show(f"its 51 keys, corrected ({track.source})", keys_after, rest)
    print(f"explained {exact_sol.report['explained']:.3f} → {sol.report['explained']:.3f}")
    assert max(g for *_, g in keys_before) > rest + TOLERANCE
    assert all(g <= rest + TOLERANCE for *_, g in keys_after)
    print(f"its keys, corrected frames: gap ≥ {gap[active].min() * 1e3:.2f} mm")
    assert gap[active].min() >= 1.0e-3

    # the lips' closing goes to the keys that close them: mouthClose rises where the closure key peaks
    close = on_face.corrections.weights[:, on_face.corrections.names.index("voca_lips_close")]
    peaks = [int(np.argmax(np.where((np.arange(len(close)) >= (p.start - 0.08) * fps)
                                    & (np.arange(len(close)) <= (p.end + 0.04) * fps), close, -1)))
             for p in track.phones if p.phone in BILABIALS]
    k = arkit["names"].index("mouthClose")
    rise = sol.weights[peaks, k] - exact_sol.weights[peaks, k]
    print("mouthClose at the closures: " + ", ".join(f"{a:.2f}→{b:.2f}" for a, b in
                                                     zip(exact_sol.weights[peaks, k], sol.weights[peaks, k])))
    assert rise.mean() > 0.03 and (rise > -0.01).all()


def test_retarget_compute_with_audio_closes_the_lips(shared_data, tmp_path, official, arkit):
    """``retarget --audio`` (the command's core, no Blender): the source corrected from the sound before the
    transfer (same as the core path above); --no-closures gives VOCA's exact motion; a source .npz that
    already carries corrections is not corrected again (its corrections transfer as they are)."""
    from voca_addon.cli import retarget as retarget_cli
    from voca_addon.core.character import landmarks as lm
    pairs = tmp_path / "pairs.txt"
    lm.write_pairs(pairs, arkit["flame_ids"], arkit["target_ids"])
    text = tmp_path / "sentence.txt"
    text.write_text(SENTENCE + "\n")
    base = dict(source=str(shared_data / "voca_official" / "output_test_sentence_cond3.npz"),
                target=str(shared_data / "arkit" / "ARKit_blendshapes" / "Neutral.obj"), landmarks=str(pairs),
                target_keys=None, template=str(shared_data / "flame" / "FLAME_sample.ply"), fps=None,
                audio=str(shared_data / "audio" / "test_sentence.wav"), transcript=str(text), alignment=None,
                no_closures=False, phonemes=None, overwrite=False)
    result = retarget_cli.compute(argparse.Namespace(**base))
    assert result.motion.corrections is not None and result.phones.source == "aligned"
    assert "lip closures on" in result.articulation
    ids = arkit["target_ids"]
    rest = float(inner_gap(arkit["mesh"].vertices[None], ids)[0])
    rows = smallest_gaps(inner_gap(result.motion.vertices(), ids), result.phones, result.motion.fps)
    assert len(rows) == 5 and all(g <= rest + TOLERANCE for *_, g in rows)

    exact = retarget_cli.compute(argparse.Namespace(**{**base, "no_closures": True, "transcript": None}))
    assert exact.motion.corrections is None and exact.phones is None
    np.testing.assert_array_equal(exact.motion.weights, result.motion.weights)

    stored = tmp_path / "infer.npz"
    add_corrections(official, result.phones).save_npz(stored, with_vertices=False)
    again = retarget_cli.compute(argparse.Namespace(**{**base, "source": str(stored), "transcript": None}))
    assert "not made again" in again.articulation
    np.testing.assert_allclose(again.motion.corrections.weights, result.motion.corrections.weights, atol=1e-6)
    dropped = retarget_cli.compute(argparse.Namespace(**{**base, "source": str(stored), "transcript": None,
                                                         "audio": None, "no_closures": True}))
    assert dropped.motion.corrections is None

    # Found by a trial run: an explicit --transcript / --alignment for such a source was dropped while
    # --phonemes wrote its phones, which the transferred corrections were not made from. Now: refused, and
    # --phonemes gives the source's own phones (those its corrections came from).
    from voca_addon.core import engine
    from voca_addon.core.animation import npzextras
    with_phones = tmp_path / "infer-phones.npz"
    engine.save_animation_npz(add_corrections(official, result.phones), with_phones, phones=result.phones)
    from voca_addon.core.phonemes import write_alignment
    alignment = str(write_alignment(result.phones, tmp_path / "artist.json"))
    for flag, value in (("transcript", str(text)), ("alignment", alignment)):
        with pytest.raises(InputError, match=f"already carries lip corrections.*--{flag} would not be used"):
            retarget_cli.compute(argparse.Namespace(**{**base, "source": str(with_phones), "transcript": None,
                                                       flag: value}))
    kept = retarget_cli.compute(argparse.Namespace(**{**base, "source": str(with_phones), "transcript": None,
                                                      "phonemes": str(tmp_path / "kept.json")}))
    assert "not made again" in kept.articulation
    assert kept.phones.phones == npzextras.read_phones(str(with_phones)).phones


def test_own_keys_change_only_around_the_closures(track, on_face, arkit):
    """The own-keys solve looks where the engine's exact motion moves (its region and lip openings chosen from
    it) and reproduces the corrected motion: frames away from every p/b/m/f/v keep the weights they have without
    closures. The corrections are zero from 150 ms away; the solve's temporal smoothness carries a change a few
    frames further, halving per frame (0.06, 0.02, 0.01, … past the edge of the F of "inferiority"), so from
    200 ms the weights match to 0.005. Before, with the region and openings chosen from the corrected motion,
    every frame's weights moved (region 517 vertices against 512; up to 0.02 far from any closure)."""
    with_closures = keysolve.solve_keys(on_face, arkit["keys"], arkit["names"])
    exact = keysolve.solve_keys(on_face.exact(), arkit["keys"], arkit["names"])
    np.testing.assert_array_equal(with_closures.region, exact.region)
    np.testing.assert_array_equal(with_closures.openings, exact.openings)
    t = np.arange(on_face.num_frames) / on_face.fps
    labial = [p for p in track.phones if p.phone in BILABIALS + ("F", "V")]

    def away(seconds):
        return ~np.any([(t >= p.start - seconds) & (t <= p.end + seconds) for p in labial], axis=0)
    assert (on_face.corrections.weights[away(0.15)] == 0).all()
    far = away(0.2)
    assert far.sum() >= on_face.num_frames // 3        # 153 of the 306 frames
    change = np.abs(with_closures.weights[far] - exact.weights[far]).max()
    print(f"own keys, frames ≥ 200 ms from p/b/m/f/v ({track.source}): largest change {change:.4f}")
    assert change <= 0.005
