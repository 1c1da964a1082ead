"""liveliness: settings are checked before any work; assets and tracks for a real clip; everything off is empty."""
import pytest

from voca_addon.core.errors import InputError, MeshError
from voca_addon.core.living import liveliness
from voca_addon.core.living.liveliness import LivelinessSettings
from voca_addon.core.flame.meshio import read_mesh


@pytest.fixture(scope="module")
def template(shared_data):
    return read_mesh(shared_data / "flame" / "FLAME_sample.ply").vertices


def test_liveliness_settings_are_checked_before_any_work(tmp_path):
    cases = [(LivelinessSettings(blinks=True, blink_source=(str(tmp_path / "no.npy"),)), "was not found"),
             (LivelinessSettings(rig=True), "needs the FLAME model"),
             (LivelinessSettings(head_motion=9.0), "Head-motion strength"),
             (LivelinessSettings(shape_sliders=5), "need the rig"),
             (LivelinessSettings(look_at="Target"), "add --gaze")]
    for settings, message in cases:
        with pytest.raises(InputError, match=message):
            liveliness.check_settings(settings)
    assert not LivelinessSettings().enabled and LivelinessSettings(gaze=True).enabled


def test_liveliness_all_on_from_a_real_clip(shared_data, template, flame_format):
    path, _ = flame_format
    settings = LivelinessSettings(blinks=True, head_motion=1.0, gaze=True, flame_model=str(path), rig=True,
                                  shape_sliders=4, seed=1)
    live = liveliness.compute_liveliness(settings, shared_data / "audio" / "test.wav", 30.0, 144, template)
    assert live.blink.weight.shape == (144,) and live.head.rotation.shape == (144, 3)
    assert live.gaze.rotation.shape == (144, 2, 3) and live.model.num_vertices == 5023
    assert live.blink_shape.delta.shape == (5023, 3) and "VOCA blink" in live.blink_shape.source
    assert any(line.startswith("blinks:") for line in liveliness.summary(live))


def test_liveliness_everything_off_is_empty(shared_data, template):
    live = liveliness.compute_liveliness(LivelinessSettings(), shared_data / "audio" / "test.wav", 24, 10, template)
    assert live.empty and live.num_frames == 10


def test_liveliness_model_or_blink_source_of_another_topology_is_refused(shared_data, flame_format):
    arkit = read_mesh(sorted((shared_data / "arkit" / "ARKit_blendshapes").glob("*.obj"))[0]).vertices
    with pytest.raises(MeshError, match="5023 vertices but the head has 1220"):
        liveliness.load_assets(LivelinessSettings(rig=True, flame_model=str(flame_format[0])), arkit)
    eyelid = str(shared_data / "flame" / "l_eyelid.npy")
    with pytest.raises(MeshError, match="another topology"):
        liveliness.load_assets(LivelinessSettings(blinks=True, blink_source=(eyelid,)), arkit)


def test_liveliness_parse_blink_source():
    assert liveliness.parse_blink_source("a.npy, b.npy") == ("a.npy", "b.npy")
    assert liveliness.parse_blink_source(None) == ()


def test_liveliness_runs_without_scipy(shared_data, flame_format):
    """Blender's Python has numpy but no scipy: the living face must run (and the add-on import) without it."""
    import subprocess
    import sys
    import textwrap
    from pathlib import Path
    root = Path(__file__).resolve().parents[3]
    code = textwrap.dedent(f"""
        import builtins
        _real_import = builtins.__import__
        def _blocked(name, *args, **kwargs):
            if name.split('.')[0] == 'scipy':
                raise ImportError('blocked for this test: ' + name)
            return _real_import(name, *args, **kwargs)
        builtins.__import__ = _blocked
        from voca_addon.core.living import liveliness
        from voca_addon.core.flame import meshio
        from voca_addon.core.living.liveliness import LivelinessSettings
        template = meshio.read_mesh({str(shared_data / 'flame' / 'FLAME_sample.ply')!r})
        settings = LivelinessSettings(blinks=True, head_motion=1.0, gaze=True, rig=True,
                                      flame_model={str(flame_format[0])!r})
        live = liveliness.compute_liveliness(settings, {str(shared_data / 'audio' / 'test.wav')!r}, 30.0, 144,
                                             template.vertices)
        from voca_addon.core.living import gaze
        left, right = gaze.eyeball_vertices(template.vertices, template.faces)
        print(live.blink.weight.shape, live.head.rotation.shape, live.gaze.rotation.shape, len(left), len(right))
    """)
    r = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["(144,)", "(144,", "3)", "(144,", "2,", "3)", "546", "546"]
