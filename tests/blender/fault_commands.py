"""The Blender commands of the kill test (:mod:`tests.core.fault_harness`): animate (the ``.blend``, its
``--npz`` and ``--phonemes`` committed together), animate ``--render`` (the ``.blend`` and a 3-frame 64×64
video, frame by frame then encoded), import-sequence (the ``.blend`` and the phone track) and
retarget (the character's ``.blend``), run with the bpy module of this Python."""
from __future__ import annotations

from pathlib import Path
from typing import List

import numpy as np

from tests.core.fault_harness import Command


def blender_commands(m: dict, shared_data: Path, work: Path) -> List[Command]:
    """``m``: :func:`tests.core.fault_harness.core_inputs`; ``work``: where the landmark pairs are written."""
    from voca_addon.core.character import landmarks
    pairs = work / "pairs.txt"
    if not pairs.exists():
        landmarks.write_pairs(pairs, np.loadtxt(shared_data / "arkit" / "FLAME_landmarks.txt", dtype=int),
                              np.loadtxt(shared_data / "arkit" / "ARKit_landmarks.txt", dtype=int))
    source = shared_data / "voca_official" / "output_test_sentence_cond3.npz"      # real VOCA output
    env = (("VOCA_CACHE_DIR", str(m["cache"])), ("VOCA_MODEL_DIR", str(work / "no-models")))
    short = shared_data / "audio" / "test.wav"
    return [
        Command("animate", lambda out: ["animate", short, "--voca", m["voca"], "--deepspeech", m["ds"],
                                        "--template", m["template"], "--alignment", m["align"],
                                        "--out", out / "anim.blend", "--npz", out / "anim.npz",
                                        "--phonemes", out / "anim.json"], blocked=False, env=env),
        Command("render", lambda out: ["animate", short, "--voca", m["voca"], "--deepspeech", m["ds"],
                                       "--template", m["template"], "--no-closures", "--out", out / "video.blend",
                                       "--render", out / "video.mp4", "--frames", "1-3", "--resolution", "64x64"],
                blocked=False, env=env),
        Command("import-sequence", lambda out: ["import-sequence", source, "--template", m["template"],
                                                "--audio", m["wav"], "--alignment", m["align"],
                                                "--out", out / "seq.blend", "--phonemes", out / "seq.json"],
                blocked=False, env=env),
        Command("retarget", lambda out: ["retarget", source, "--target",
                                         shared_data / "arkit" / "ARKit_blendshapes" / "Neutral.obj",
                                         "--landmarks", pairs, "--template", m["template"],
                                         "--out", out / "character.blend"], blocked=False, env=env),
    ]
