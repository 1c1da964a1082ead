"""``retarget --audio`` with the articulation flags (issue 18): each bad input → one line, exit 2, nothing
written, before any fitting. Same flags and messages as ``infer`` / ``animate`` (``voca_addon.cli.articulation``);
run with bpy and tensorflow blocked."""
import json

import numpy as np
import pytest

from tests.core.character.test_retarget_cli import case, run  # noqa: F401  (the fixture)
from tests.core.test_cli import assert_user_error


def _alignment(path, phones):
    path.write_text(json.dumps([{"phone": p, "start": a, "end": b, "word": w} for p, a, b, w in phones]))
    return path


def _bad_inputs(d, shared_data, official):
    audio = shared_data / "audio" / "test_sentence.wav"
    empty = d / "empty.txt"
    empty.write_text("  \n")
    broken = d / "broken.json"
    broken.write_text('[{"phone": "M", "start": 1.0')
    past = _alignment(d / "past.json", [("M", 1.0, 1.1, "me"), ("AA", 9.0, 9.5, "far")])
    good = _alignment(d / "good.json", [("M", 1.11, 1.18, "myopia")])
    half = d / "half.npz"                                # corrections without their weights and names
    arrays = dict(weights=official.weights, basis=official.basis, bias=official.bias, template=official.template,
                  fps=np.float64(60.0), correction_basis=np.zeros((1, 5023, 3), np.float32))
    np.savez(half, **arrays)
    return {
        "transcript without audio": (dict(transcript="Severe myopia"), ["need the audio"]),
        "alignment without audio": (dict(alignment=good), ["need the audio"]),
        "phonemes without audio": (dict(phonemes=d / "p.json"), ["need the audio"]),
        "transcript file empty": (dict(audio=audio, transcript=empty), ["empty.txt", "empty"]),
        "alignment missing": (dict(audio=audio, alignment=d / "nope.json"), ["nope.json", "not found"]),
        "alignment malformed": (dict(audio=audio, alignment=broken), ["broken.json"]),
        "alignment past the audio's end": (dict(audio=audio, alignment=past), ["past.json"]),
        "transcript and alignment": (dict(audio=audio, transcript="Severe myopia", alignment=good),
                                     ["--alignment", "not both"]),
        "phonemes extension": (dict(audio=audio, phonemes=d / "p.txt"), ["--phonemes", ".TextGrid"]),
        "phonemes onto the alignment": (dict(audio=audio, alignment=good, phonemes=good, overwrite=True),
                                        ["--phonemes", "--alignment"]),
        "source with half its corrections": (dict(source=half, audio=audio),
                                             ["half.npz", "correction_basis", "write it again"]),
    }


CASES = ["transcript without audio", "alignment without audio", "phonemes without audio", "transcript file empty",
         "alignment missing", "alignment malformed", "alignment past the audio's end", "transcript and alignment",
         "phonemes extension", "phonemes onto the alignment", "source with half its corrections"]


@pytest.mark.parametrize("which", CASES)
def test_retarget_bad_articulation_input_is_one_line_and_writes_nothing(case, shared_data, official, which):  # noqa: F811
    over, fragments = _bad_inputs(case["dir"], shared_data, official)[which]
    flags = dict(over)
    overwrite = "overwrite" in flags
    flags.pop("overwrite", None)
    before = sorted(p.name for p in case["dir"].rglob("*"))
    r = run(case, **flags) if not overwrite else run_overwrite(case, **flags)
    assert_user_error(r, *fragments)
    assert "fit:" not in r.stdout                        # refused before the fit
    assert sorted(p.name for p in case["dir"].rglob("*")) == before


def run_overwrite(case, **over):  # noqa: F811
    from tests.core.test_cli import cli
    source = over.pop("source", case["source"])
    args = dict(target=case["target"], landmarks=case["pairs"], template=case["template"], out=case["out"])
    args.update(over)
    flags = [x for k, v in args.items() if v is not None for x in (f"--{k.replace('_', '-')}", v)]
    return cli("retarget", source, *flags, "--overwrite")
