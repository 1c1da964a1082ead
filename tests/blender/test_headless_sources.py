"""``import-sequence`` as a user runs it on a bad source (issue 19, rows 5 and 7): a truncated ``.npz``, frames
in millimetres and an ``infer`` file in millimetres are refused with one line naming the file (exit 2), nothing
written. The readers are :mod:`voca_addon.core.animation.sources` (their own tests: tests/core/animation)."""
import numpy as np
import pytest

pytest.importorskip("bpy")

from tests.blender.test_headless import run  # noqa: E402
from tests.core.test_cli import assert_user_error  # noqa: E402
from voca_addon.core.animation.shapekeys import factorize  # noqa: E402
from voca_addon.core.flame import meshio  # noqa: E402


def test_headless_import_sequence_refuses_a_truncated_or_millimetre_source(shared_data, tmp_path):
    official = shared_data / "voca_official" / "output_test_sentence_cond3.npz"
    template = shared_data / "flame" / "FLAME_sample.ply"
    frames = np.load(official)["vertices"][:30]
    cut = tmp_path / "t.npz"
    cut.write_bytes(official.read_bytes()[:100_000])                      # head -c 100000 x.npz > t.npz
    mm = tmp_path / "mm.npz"
    np.savez(mm, vertices=frames * 1000.0, fps=60.0)
    anim = factorize(frames, meshio.read_mesh(template).vertices, fps=60.0)
    infer_mm = tmp_path / "infer_mm.npz"                                  # the shape-key (infer) form, in mm
    type(anim)(anim.basis * 1000, anim.bias * 1000 + anim.template * 999, anim.weights, 60.0,
               anim.template).save_npz(infer_mm, with_vertices=False)
    out = tmp_path / "out" / "s.blend"
    out.parent.mkdir()
    expected = ((cut, "t.npz' is not a complete .npz (truncated or damaged)"),
                (mm, "mm.npz' is about 1000× the template's size"),
                (infer_mm, "infer_mm.npz' is about 1000× the template's size"))
    for source, fragment in expected:
        assert_user_error(run("import-sequence", source, "--template", template, "--out", out, cache=tmp_path),
                          fragment)
    assert not any(out.parent.iterdir())
