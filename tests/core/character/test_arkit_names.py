"""ARKit names: tolerant matching of rig key names; Live Link Face CSV layout and JSON curves."""
import csv
import json

import numpy as np
import pytest

from voca_addon.core.character import arkit


@pytest.mark.parametrize("name, expected", [
    ("jawOpen", "jawOpen"), ("JawOpen", "jawOpen"), ("jaw_open", "jawOpen"), ("blendShape1.jawOpen", "jawOpen"),
    ("Face:MouthSmileLeft", "mouthSmileLeft"), ("ARKit_mouthSmileLeft", "mouthSmileLeft"),
    ("Mouth_Smile_L", "mouthSmileLeft"), ("EYE_BLINK_R", "eyeBlinkRight"), ("bs_tongueOut", "tongueOut"),
    ("Basis", None), ("voca_000", None), ("jawOpenWide", None), ("smile", None)])
def test_arkit_canonical_name_is_tolerant_of_case_and_prefixes(name, expected):
    assert arkit.canonical_name(name) == expected


def test_arkit_names_are_the_52_shapes():
    assert len(arkit.ARKIT_NAMES) == 52 == len(set(n.lower() for n in arkit.ARKIT_NAMES))


def test_arkit_match_keeps_first_rig_key_per_shape():
    found = arkit.match_arkit(["Basis", "jawOpen", "JAW_OPEN", "mouthClose", "EMO happy"])
    assert found == {"jawOpen": "jawOpen", "mouthClose": "mouthClose"}


def test_arkit_live_link_csv_layout(tmp_path):
    weights = np.array([[0.25, 0.5], [1.0, 0.0], [0.0, 0.125]], np.float32)
    path = tmp_path / "take.csv"
    arkit.write_live_link_csv(path, weights, ["JawOpen", "mouth_close"], fps=60.0)
    rows = list(csv.reader(open(path)))
    header = rows[0]
    assert header[:3] == ["Timecode", "BlendShapeCount", "EyeBlinkLeft"] and len(header) == 2 + 52 + 9
    assert header[-9:] == ["HeadYaw", "HeadPitch", "HeadRoll", "LeftEyeYaw", "LeftEyePitch", "LeftEyeRoll",
                           "RightEyeYaw", "RightEyePitch", "RightEyeRoll"]
    assert header.index("JawOpen") == 2 + 17 and header[2 + 51] == "TongueOut"
    assert [r[0] for r in rows[1:]] == ["00:00:00:00.000", "00:00:00:01.000", "00:00:00:02.000"]
    assert all(r[1] == "61" for r in rows[1:])
    assert float(rows[1][header.index("JawOpen")]) == 0.25 and float(rows[3][header.index("MouthClose")]) == 0.125
    assert float(rows[2][header.index("EyeBlinkLeft")]) == 0.0


def test_arkit_timecode_rolls_over_seconds_and_minutes():
    assert arkit._timecode(61 * 60 + 3, 60.0) == "00:01:01:03.000"
    assert arkit._timecode(3600 * 30, 30.0) == "01:00:00:00.000"


def test_arkit_json_curves(tmp_path):
    path = tmp_path / "curves.json"
    arkit.write_curves_json(path, np.array([[0.5], [0.25]]), ["jawOpen"], 60.0, {"explained": 0.9})
    data = json.loads(path.read_text())
    assert data == {"fps": 60.0, "names": ["jawOpen"], "weights": [[0.5], [0.25]], "report": {"explained": 0.9}}


def test_arkit_files_written_through_the_outputs_writer(tmp_path):
    """Curve files get the usual permissions (umask), not a private temporary file's 0600, and leave no
    temporary file; an interrupted write's temporary name is one the batch's --resume cleanup removes."""
    import os
    from voca_addon.cli.batch import command as batch
    from voca_addon.core import outputs
    umask = os.umask(0o022)
    os.umask(umask)
    weights = np.zeros((3, 1), np.float32)
    arkit.write_live_link_csv(tmp_path / "clip.csv", weights, ["jawOpen"], 60.0)
    arkit.write_curves_json(tmp_path / "clip.json", weights, ["jawOpen"], 60.0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.csv", "clip.json"]
    for name in ("clip.csv", "clip.json"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~umask, name
    leftover = outputs.temp_name(tmp_path / "clip.csv")    # the name a killed batch would leave
    import subprocess
    import sys
    killed = subprocess.Popen([sys.executable, "-c", "pass"])
    killed.wait()
    leftover.with_name(leftover.name.replace(f".{os.getpid()}.", f".{killed.pid}.")).write_text("partial")
    batch._remove_leftovers(str(tmp_path), [batch.ClipSpec("clip", "clip.wav")], ("csv",))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.csv", "clip.json"]
