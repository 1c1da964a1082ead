"""``batch --target MESH --landmarks PAIRS [--target-keys FOLDER]``: every clip onto one character, fitted once.

Real data: the ARKit reference face (../shared/data/arkit: its neutral mesh, its 51 key OBJs and the 68
landmark pairs) and VOCASET speech; small-width test models. Run as a user runs it (bpy and tensorflow
blocked). Each clip's outputs are checked against the ``retarget`` command's own path on a one-clip run:
:func:`voca_addon.cli.retarget.load_character` + :func:`~voca_addon.cli.retarget.retarget_motion`.
"""
import csv
import json

import numpy as np
import pytest

from tests.core.test_batch_cli import audio_folder, dask_cluster, model_args, models, summary  # noqa: F401 (fixtures)
from tests.core.test_batch_recurrence import VERTEX_TOL
from tests.core.test_cli import assert_user_error, cli
from voca_addon.core.character import retarget as core_retarget
from voca_addon.core import engine
from voca_addon.core.articulation import add_corrections
from voca_addon.core.phonemes import phones_for_audio
from voca_addon.core.character import arkit, landmarks as lm
from voca_addon.core.flame import meshio
from voca_addon.core.models import modelfiles

CLIPS = 3


@pytest.fixture(scope="module")
def rig(shared_data, tmp_path_factory):
    folder = shared_data / "arkit"
    pairs = tmp_path_factory.mktemp("pairs") / "pairs.txt"
    lm.write_pairs(pairs, np.loadtxt(folder / "FLAME_landmarks.txt", dtype=int),
                   np.loadtxt(folder / "ARKit_landmarks.txt", dtype=int))
    return dict(target=folder / "ARKit_blendshapes" / "Neutral.obj", pairs=pairs, keys=folder / "ARKit_blendshapes")


@pytest.fixture(scope="module")
def reference(models, rig):  # noqa: F811
    """One clip alone, then the retarget command's own fit, transfer and key solve (lip closures included)."""
    ds = modelfiles.load_deepspeech(models["ds"], models["cache"])
    vm = modelfiles.load_voca(models["voca"], models["cache"])
    template = meshio.read_mesh(models["template"]).vertices
    character = core_retarget.load_character(rig["target"], rig["pairs"], rig["keys"], models["template"])

    def one(wav):
        """The clip as the batch makes it: VOCA, the lips closing on the phones PocketSphinx detects in its
        audio (closures are on by default), then onto the character."""
        anim = add_corrections(engine.run(str(wav), ds, vm, template), phones_for_audio(str(wav)))
        return core_retarget.retarget_motion(character, anim)
    return dict(one=one, character=character)


def character_args(rig, keys=True):
    return ["--target", rig["target"], "--landmarks", rig["pairs"]] + (["--target-keys", rig["keys"]] if keys else [])


def test_batch_character_own_keys_npz_and_live_link_csv(models, rig, reference, shared_data, tmp_path):  # noqa: F811
    folder = audio_folder(shared_data, tmp_path, count=CLIPS)
    out = tmp_path / "out"
    r = cli("batch", folder, "--out", out, "--format", "npz,csv", *character_args(rig), *model_args(models))
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("character 'Neutral' (") == 1 and "51 own keys" in r.stderr     # fitted once
    scale = reference["character"].fit.similarity.scale                  # target units per metre
    rows = summary(out)
    assert len(rows) == CLIPS and all(row["outcome"] == "ok" for row in rows.values())
    header = ["Timecode", "BlendShapeCount"] + [n[0].upper() + n[1:] for n in arkit.ARKIT_NAMES] + \
        list(arkit.LIVE_LINK_ROTATIONS)
    for name, row in rows.items():
        motion, solution = reference["one"](row["audio"])
        with np.load(out / f"{name}.npz") as z:
            np.testing.assert_array_equal(z["template"], meshio.read_mesh(rig["target"]).vertices.astype(np.float32))
            assert z["vertices"].shape == (row["frames"], len(z["template"]), 3)
            assert np.abs(z["vertices"] - motion.vertices()).max() <= VERTEX_TOL * scale
            assert tuple(z["key_names"]) == solution.names and len(solution.names) == 51
            np.testing.assert_allclose(z["key_weights"], solution.weights, atol=1e-4)
            weights = dict(zip(solution.names, z["key_weights"].T))
        with open(out / f"{name}.csv", newline="") as f:
            table = list(csv.reader(f))
        assert table[0] == header and len(table) == 1 + row["frames"]
        assert table[1][:2] == ["00:00:00:00.000", "61"] and table[61][0] == "00:00:01:00.000"
        values = np.array([r[2:] for r in table[1:]], float)
        for k, shape in enumerate(arkit.ARKIT_NAMES[:52]):
            if shape in weights:
                np.testing.assert_allclose(values[:, k], weights[shape], atol=1e-6)
        assert np.abs(values[:, 52:]).max() == 0                       # no head or eye rotation
        assert weights["jawOpen"].max() > 0.05                         # speech opens the jaw


def test_batch_character_transferred_keys_same_weights(models, rig, reference, shared_data, tmp_path):  # noqa: F811
    """Without --target-keys: the character's animation is VOCA's weights on the transferred fields. Two
    worker processes: the fitted character travels to them (pickled) and is not fitted again."""
    folder = audio_folder(shared_data, tmp_path, count=2)
    out, flame_out = tmp_path / "out", tmp_path / "flame"
    r = cli("batch", folder, "--out", out, "--format", "npz,csv", "--workers", "2",
            *character_args(rig, keys=False), *model_args(models))
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("character 'Neutral' (") == 1
    assert cli("batch", folder, "--out", flame_out, "--workers", "2", *model_args(models)).returncode == 0
    scale = reference["character"].fit.similarity.scale
    for name, row in summary(out).items():
        motion, _ = reference["one"](row["audio"])
        with np.load(out / f"{name}.npz") as z, np.load(flame_out / f"{name}.npz") as flame:
            assert "key_weights" not in z.files
            weights = z["weights"]
            np.testing.assert_array_equal(weights, flame["weights"])               # the same weights
            # (both runs with --workers 2: a GEMM's float32 rounding depends on the BLAS thread count)
            assert z["basis"].shape == (50, len(z["template"]), 3)
            assert np.abs(z["basis"] - motion.basis).max() <= VERTEX_TOL * scale
            assert np.abs(z["vertices"] - motion.vertices()).max() <= VERTEX_TOL * scale
            closures = z["correction_weights"]                                    # the lip closures' keys
            np.testing.assert_allclose(closures, motion.corrections.weights, atol=1e-6)
        table = np.loadtxt(out / f"{name}.csv", delimiter=",", skiprows=1)
        np.testing.assert_allclose(table[:, 2:], np.c_[weights, closures], rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize("bad", ["landmarks missing", "target unreadable", "target without landmarks",
                                 "keys without target", "keys of another mesh"])
def test_batch_character_bad_input_refused_before_any_clip(bad, models, rig, shared_data, tmp_path):  # noqa: F811
    folder = audio_folder(shared_data, tmp_path, count=2)
    out = tmp_path / "out"
    flags = {"--target": rig["target"], "--landmarks": rig["pairs"]}
    expect = {"landmarks missing": "--landmarks", "target unreadable": "contains no vertices",
              "target without landmarks": "--target needs --landmarks", "keys without target": "needs --target",
              "keys of another mesh": "vertices"}[bad]
    if bad == "landmarks missing":
        flags["--landmarks"] = tmp_path / "nowhere.txt"
    elif bad == "target unreadable":
        flags["--target"] = tmp_path / "head.obj"
        flags["--target"].write_text("this is not a mesh\n")
    elif bad == "target without landmarks":
        del flags["--landmarks"]
    elif bad == "keys without target":
        flags = {"--target-keys": rig["keys"]}
    else:                                                              # OBJs of FLAME, not of the character
        keys = tmp_path / "keys"
        keys.mkdir()
        meshio.write_obj(keys / "jawOpen.obj", meshio.read_mesh(models["template"]).vertices)
        flags["--target-keys"] = keys
    r = cli("batch", folder, "--out", out, *[x for kv in flags.items() for x in kv], *model_args(models))
    assert_user_error(r, expect)
    assert not out.exists()                                            # refused before anything was written


def test_batch_character_guessed_landmarks(models, rig, shared_data, tmp_path):  # noqa: F811
    """``--landmarks auto``: the pairs are guessed once (retarget's load_character), and the batch says so."""
    folder = audio_folder(shared_data, tmp_path, count=1)
    out = tmp_path / "out"
    r = cli("batch", folder, "--out", out, "--target", rig["target"], "--landmarks", "auto", *model_args(models))
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("AUTOMATIC FIRST GUESS") == 1
    (row,) = summary(out).values()
    with np.load(out / f"{row['name']}.npz") as z:
        assert z["vertices"].shape == (row["frames"], len(meshio.read_mesh(rig["target"]).vertices), 3)


def test_batch_character_emotion_is_one_more_transferred_field(models, rig, reference,  # noqa: F811
                                                               shared_data, tmp_path):
    """A CSV row's emotion on the character: its FLAME delta transferred like VOCA's fields, eased 0 → 0.8 → 0."""
    from voca_addon.core.character import transfer
    from voca_addon.core.emotion import emotions
    source = shared_data / "emotions" / "seed_emotion_offsets.npz"
    wav = audio_folder(shared_data, tmp_path, count=1)
    (clip,) = [p for p in wav.rglob("*.wav")]
    listing = tmp_path / "clips.csv"
    listing.write_text(f"audio,emotion,strength,name\n{clip},happy,0.8,glad\n")
    out = tmp_path / "out"
    r = cli("batch", listing, "--out", out, "--emotion-source", source, *character_args(rig, keys=False),
            *model_args(models))
    assert r.returncode == 0, r.stderr
    (happy,) = emotions.from_delta_file(source, names=["happy"])
    fit = reference["character"].fit
    target = reference["character"].target
    matrix = transfer.transfer_matrix(fit, target.vertices, target.faces)
    expected = transfer.transfer_fields(happy.delta[None], fit, matrix)[0]
    motion, _ = reference["one"](clip)
    scale = fit.similarity.scale
    with np.load(out / "glad.npz") as z:
        assert str(z["names"][-1]) == "emotion_happy" and z["basis"].shape[0] == 51
        assert np.abs(z["basis"][-1] - expected).max() <= VERTEX_TOL * scale
        weight = z["weights"][:, -1]
        assert weight[0] == 0 and weight[-1] == 0 and weight.max() == pytest.approx(0.8)
        speech = motion.vertices()
        assert np.abs(z["vertices"] - speech - weight[:, None, None] * expected[None]).max() <= VERTEX_TOL * scale


def test_batch_character_on_a_dask_cluster(models, rig, reference, shared_data, tmp_path, dask_cluster):  # noqa: F811
    """--scheduler with --target: the character is fitted once on the client and sent to the cluster's
    workers with the clips; each clip equals the retarget command's one-clip run."""
    folder = audio_folder(shared_data, tmp_path, count=2)
    out = tmp_path / "out"
    r = cli("batch", folder, "--out", out, "--format", "npz", "--scheduler", dask_cluster, "--batch-size", "1",
            *character_args(rig), *model_args(models))
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("character 'Neutral' (") == 1
    scale = reference["character"].fit.similarity.scale
    rows = summary(out)
    assert len(rows) == 2 and all(row["outcome"] == "ok" for row in rows.values())
    for name, row in rows.items():
        motion, solution = reference["one"](row["audio"])
        with np.load(out / f"{name}.npz") as z:
            assert np.abs(z["vertices"] - motion.vertices()).max() <= VERTEX_TOL * scale
            np.testing.assert_allclose(z["key_weights"], solution.weights, atol=1e-4)


def listing(out):
    """Every file in ``out`` with its modification time (to show a refusal wrote nothing)."""
    return {p.name: p.stat().st_mtime_ns for p in out.iterdir()}


def test_batch_resume_refuses_outputs_made_for_another_character(models, rig, shared_data, tmp_path):  # noqa: F811
    """--resume checks DIR/batch_manifest.json: FLAME outputs are not the character's, transferred-key
    outputs are not own-key outputs (no key_weights), and outputs without a manifest are of unknown origin.
    Each refusal is one message, exit 2, before any clip, and writes nothing; the same settings still skip."""
    folder = audio_folder(shared_data, tmp_path, count=2)
    flame, char = tmp_path / "flame", tmp_path / "char"
    r = cli("batch", folder, "--out", flame, *model_args(models))
    assert r.returncode == 0, r.stderr
    made = json.loads((flame / "batch_manifest.json").read_text())["made_for"]
    assert made["character"] is None and made["formats"] == ["npz"] and made["fps"] == 60
    before = listing(flame)
    r = cli("batch", folder, "--out", flame, "--resume", *character_args(rig), *model_args(models))
    assert_user_error(r, f"the outputs in {flame} were made for the FLAME head (no --target), not the character "
                      f"{rig['target']}", "use another --out, or --overwrite instead of --resume")
    assert "character 'Neutral'" not in r.stderr and listing(flame) == before          # nothing done
    r = cli("batch", folder, "--out", flame, "--resume", "--fps", "30", *model_args(models))
    assert_user_error(r, "were made for 60 fps, not 30 fps")
    r = cli("batch", folder, "--out", flame, "--resume", *model_args(models))          # same settings
    assert r.returncode == 0, r.stderr
    assert "2 clips, 2 already done" in r.stderr
    assert all(row["outcome"] == "skipped" for row in summary(flame).values())
    (flame / "batch_manifest.json").unlink()
    before = listing(flame)
    assert_user_error(cli("batch", folder, "--out", flame, "--resume", *model_args(models)),
                      "have no batch_manifest.json")
    assert listing(flame) == before

    r = cli("batch", folder, "--out", char, *character_args(rig, keys=False), *model_args(models))
    assert r.returncode == 0, r.stderr
    before = listing(char)
    r = cli("batch", folder, "--out", char, "--resume", *character_args(rig), *model_args(models))
    assert_user_error(r, "transferred keys, no --target-keys), not the character", "own keys from")
    assert listing(char) == before


def test_batch_library_key_weights_missing_is_one_message(tmp_path):
    """An .npz made without --target-keys read for a rig library: a user error naming the file, not KeyError."""
    from voca_addon.cli.batch import worker as batch_worker
    from voca_addon.core.errors import InputError
    path = tmp_path / "clip.npz"
    np.savez(path, weights=np.zeros((2, 3), np.float32))
    with pytest.raises(InputError, match="clip.npz' holds no rig key weights"):
        batch_worker.read_key_weights(str(path))
