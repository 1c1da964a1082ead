"""Render the Character stage's closed/open still pair on the ARKit reference face (a check by eye).

``python tools/render_character.py [--data ../shared/data] [--out out/character-closed-open.png]`` (a
Python with ``bpy``): fits FLAME to ``arkit/ARKit_blendshapes/Neutral.obj`` with its 68 landmark pairs,
transfers VOCA's official output for ``test_sentence.wav`` and also drives the face's own 51 ARKit keys
(:mod:`voca_addon.cli.retarget`), then renders the frames where FLAME's inner lips are most closed and
most open: left pair the transferred keys, right pair the ARKit keys. Workbench, through
:func:`voca_addon.blender.exports.render.render_still`. The picture derives from licensed data: it goes to
``out/`` (git-ignored), never into the repository.

Contract: a tool, not part of the add-on; imports ``bpy`` and the repository's ``voca_addon``.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

SIZE = (320, 320)


def _args(data: Path, work: Path, keys: bool) -> argparse.Namespace:
    from voca_addon.core.character import landmarks as lm
    pairs = work / "pairs.txt"
    lm.write_pairs(pairs, np.loadtxt(data / "arkit" / "FLAME_landmarks.txt", dtype=int),
                   np.loadtxt(data / "arkit" / "ARKit_landmarks.txt", dtype=int))
    return argparse.Namespace(
        source=str(data / "voca_official" / "output_test_sentence_cond3.npz"),
        target=str(data / "arkit" / "ARKit_blendshapes" / "Neutral.obj"), landmarks=str(pairs),
        out=str(work / ("keys.blend" if keys else "transfer.blend")),
        target_keys=str(data / "arkit" / "ARKit_blendshapes") if keys else None, curves=None,
        template=str(data / "flame" / "FLAME_sample.ply"), audio=None, fps=None, overwrite=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--out", default=str(ROOT / "out" / "character-closed-open.png"))
    args = parser.parse_args(argv)
    import bpy
    from render_docs import load_png, save_png, side_by_side
    from voca_addon.cli import retarget as retarget_cli
    from voca_addon.blender.exports import render
    from voca_addon.core.character import landmarks as lm
    data, out = Path(args.data), Path(args.out)
    seq = np.load(data / "voca_official" / "output_test_sentence_cond3.npz")["vertices"]
    opening = np.linalg.norm(seq[:, lm.FLAME_IBUG68[62]] - seq[:, lm.FLAME_IBUG68[66]], axis=1)
    frames = (int(opening.argmin()), int(opening.argmax()))
    images = []
    with tempfile.TemporaryDirectory() as work:
        for keys in (False, True):
            run = _args(data, Path(work), keys)
            bpy.ops.wm.read_factory_settings(use_empty=True)
            retarget_cli.run(run)
            bpy.ops.wm.open_mainfile(filepath=run.out)
            scene = bpy.context.scene
            obj = bpy.data.objects["Neutral"]
            for f in frames:
                path = render.render_still(scene, scene.frame_start + f, Path(work) / f"{keys}{f}.png",
                                           resolution=SIZE, target=obj)
                images.append(load_png(path))
    out.parent.mkdir(parents=True, exist_ok=True)
    save_png(side_by_side(images), out)
    print(f"wrote {out}: frames {frames[0]} (lips {opening[frames[0]] * 1e3:.1f} mm) and {frames[1]} "
          f"({opening[frames[1]] * 1e3:.1f} mm); transferred keys, then the face's own ARKit keys")
    return 0


if __name__ == "__main__":
    sys.exit(main())
