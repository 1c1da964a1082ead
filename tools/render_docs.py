"""Render the user guide's pictures headless, with the project's own code (``make docs-images``).

``python tools/render_docs.py [--data ../shared/data] [--out docs/images]`` (a Python with the ``bpy``
module, e.g. ``.venv``) writes small Workbench PNGs (each checked to be ≤ 200 KB):

* ``head-rest.png`` — the FLAME template as :func:`voca_addon.blender.speech.writer.build_head` builds it;
* ``mouth-closed-open.png`` — VOCA's official output for ``test_sentence.wav`` imported with
  :func:`voca_addon.blender.exports.sequences.import_sequence`, at its most closed and most open mouth (lip
  distance measured on FLAME's ``lips`` region);
* ``emotions.png`` — four of the seed project's emotions as :mod:`voca_addon.blender.emotion.writer` keys at
  full value;
* ``sequence-strip.png`` — the mouth in six frames of the same official sequence, 0.2 s apart;
* ``closure-myopia.png`` — the same sequence on the ``m`` of "myopia" (1.11–1.18 s), before / after the lip
  closures (:mod:`voca_addon.blender.articulation.writer`, the phones of issue 18's forced alignment), at the
  frame of that window where VOCA's own lips are closest.

``--only NAME.png`` renders one picture.

Renders go through :func:`voca_addon.blender.exports.render.render_still` (its owned camera frames the head); the
pictures are cropped to the face by projecting FLAME's ``face`` region into the camera and put side by side
with Blender's image API. Input data: the reference data folder (FLAME template, masks, official VOCA
output, emotion offsets) — never copied, only rendered.

Contract: a tool, not part of the add-on; imports ``bpy`` and the repository's ``voca_addon``.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SIZE = (400, 300)               # pixels of each render before cropping
MAX_BYTES = 200_000             # per picture
STRIP_FRAMES = 6                # pictures in the sequence strip
STRIP_STEP = 12                 # frames between them (0.2 s at 60 fps)
EMOTIONS = ("happy", "sad", "surprised", "angry")
CLOSE_SIZE = (1400, 1050)       # pixels of the closure renders (the crop is the mouth only)
MIDLINE = 0.005                 # metres: lip vertices near the symmetry plane
CLOSURE_PHONES = (("M", 1.11, 1.18, "myopia"), ("P", 1.44, 1.54, "myopia"), ("B", 2.02, 2.06, "contributed"),
                  ("M", 3.71, 3.77, "complex"), ("P", 3.77, 3.83, "complex"))   # issue 18's forced alignment


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"), help="reference data folder")
    parser.add_argument("--out", default=str(ROOT / "docs" / "images"), help="where to write the PNGs")
    parser.add_argument("--only", help="render only this picture (e.g. closure-myopia.png)")
    args = parser.parse_args(argv)
    data, out = Path(args.data), Path(args.out)
    needed = [data / "flame" / "FLAME_sample.ply", data / "flame" / "FLAME_masks.pkl",
              data / "voca_official" / "output_test_sentence_cond3.npz",
              data / "emotions" / "seed_emotion_offsets.npz"]
    missing = [str(p) for p in needed if not p.is_file()]
    if missing:
        print(f"error: reference data missing: {', '.join(missing)} (pass --data)", file=sys.stderr)
        return 2
    try:
        import bpy  # noqa: F401
    except ImportError:
        print("error: needs the bpy module (make venv)", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        pictures = Pictures(data, Path(work))
        for name, make in (("head-rest.png", pictures.head_rest), ("mouth-closed-open.png", pictures.mouth),
                           ("emotions.png", pictures.emotions), ("sequence-strip.png", pictures.strip),
                           ("closure-myopia.png", pictures.closure)):
            if args.only and name != args.only:
                continue
            path = out / name
            save_png(make(), path)
            size = path.stat().st_size
            print(f"wrote {path} ({size / 1000:.0f} KB)")
            if size > MAX_BYTES:
                print(f"error: {path} is larger than {MAX_BYTES} bytes", file=sys.stderr)
                return 1
    return 0


class Pictures:
    """Each method returns an RGBA float image [H, W, 4], rows bottom-up (Blender's order)."""

    def __init__(self, data: Path, work: Path):
        from voca_addon.core.flame import meshio
        from voca_addon.core.formats.safepickle import safe_load
        self.data, self.work = data, work
        self.template = data / "flame" / "FLAME_sample.ply"
        self.mesh = meshio.read_mesh(self.template)
        masks = safe_load(data / "flame" / "FLAME_masks.pkl")
        self.lips = np.asarray(masks["lips"], np.int64)
        self.face = np.asarray(masks["face"], np.int64)
        self.sequence = data / "voca_official" / "output_test_sentence_cond3.npz"

    def _scene(self):
        import bpy
        bpy.ops.wm.read_factory_settings(use_empty=True)
        scene = bpy.context.scene
        scene.render.fps, scene.render.fps_base = 60, 1.0
        scene.display.shading.show_cavity = True
        return scene

    def _render(self, scene, obj, frame: int, name: str, box=None, size=SIZE) -> np.ndarray:
        """Render ``frame``; crop to ``box`` (default: the face at that frame; ``False``: no crop)."""
        from voca_addon.blender.exports import render
        path = render.render_still(scene, frame, self.work / f"{name}.png", resolution=size, target=obj)
        image = load_png(path)
        if box is False:
            return image
        return crop(image, face_box(scene, obj, self.face, [frame]) if box is None else box)

    def _imported(self):
        from voca_addon.blender.exports import sequences as sequence_io
        scene = self._scene()
        return scene, sequence_io.import_sequence(scene, self.sequence, self.template).obj

    def head_rest(self) -> np.ndarray:
        from voca_addon.blender.speech import writer
        scene = self._scene()
        obj = writer.build_head("FLAME head", self.mesh.vertices, self.mesh.faces, scene.collection)
        return self._render(scene, obj, 1, "rest", box=False)

    def mouth(self) -> np.ndarray:
        with np.load(self.sequence) as z:
            opening = lip_distance(z["vertices"], self.lips, self.mesh.vertices)
        scene, obj = self._imported()
        frames = (int(opening.argmin()) + 1, int(opening.argmax()) + 1)
        return side_by_side([self._render(scene, obj, f, f"mouth{f}") for f in frames])

    def emotions(self) -> np.ndarray:
        from voca_addon.blender.emotion import writer as emotion_writer
        from voca_addon.blender.speech import writer
        from voca_addon.core.emotion import emotions
        scene = self._scene()
        obj = writer.build_head("FLAME head", self.mesh.vertices, self.mesh.faces, scene.collection)
        found = emotions.from_delta_file(self.data / "emotions" / "seed_emotion_offsets.npz", EMOTIONS)
        names = emotion_writer.add_emotion_keys(obj, found)
        pictures = []
        for name in names:
            for block in obj.data.shape_keys.key_blocks[1:]:
                block.value = 1.0 if block.name == name else 0.0
            pictures.append(self._render(scene, obj, 1, name.replace(" ", "_")))
        return side_by_side(pictures)

    def strip(self) -> np.ndarray:
        scene, obj = self._imported()
        frames = [1 + 60 + i * STRIP_STEP for i in range(STRIP_FRAMES)]
        self._render(scene, obj, frames[0], "camera", box=False)          # places the owned camera
        box = face_box(scene, obj, self.lips, frames, pad=0.35)            # one box for every frame
        return side_by_side([self._render(scene, obj, f, f"strip{f}", box) for f in frames])

    def closure(self) -> np.ndarray:
        """Before / after the lip closures on the ``m`` of "myopia", one crop for both."""
        from voca_addon.blender.articulation import phones as articulation_phones, writer as articulation_writer
        from voca_addon.blender.speech import writer
        from voca_addon.core.animation.shapekeys import factorize
        from voca_addon.core.phonemes import Phone, PhoneTrack
        import bpy
        scene = self._scene()
        if not hasattr(bpy.types.Object, "voca_articulation"):       # the knobs' properties
            import voca_addon
            voca_addon.register()
        with np.load(self.sequence) as z:
            anim = factorize(z["vertices"], self.mesh.vertices, float(z["fps"]))
        obj = writer.build_head("FLAME head", self.mesh.vertices, self.mesh.faces, scene.collection)
        written = writer.write_animation(obj, anim, scene, 1, "shape_keys", "VOCA")
        track = PhoneTrack(tuple(Phone(*row) for row in CLOSURE_PHONES), "textgrid")
        articulation_writer.write_articulation(obj, scene, anim, written, articulation_phones.PhoneOutcome(track))
        writer.set_frame_range(scene, written.frame_start, written.frame_end)
        _, start, end, _ = CLOSURE_PHONES[0]
        window = np.arange(int(np.ceil((start - 0.08) * 60)), int((end + 0.04) * 60) + 1)
        frame = 1 + int(window[lip_distance(anim.vertices(window), self.lips, self.mesh.vertices).argmin()])
        self._render(scene, obj, frame, "camera", box=False, size=CLOSE_SIZE)   # places the owned camera
        box = face_box(scene, obj, self.lips, [frame], pad=0.3, size=CLOSE_SIZE)
        obj.voca_articulation.closures = False
        before = self._render(scene, obj, frame, "before", box, CLOSE_SIZE)
        obj.voca_articulation.closures = True
        return side_by_side([before, self._render(scene, obj, frame, "after", box, CLOSE_SIZE)])


def lip_distance(vertices: np.ndarray, lips: np.ndarray, template: np.ndarray) -> np.ndarray:
    """Per frame: upper-lip midline height minus lower-lip midline height (metres)."""
    mid = lips[np.abs(template[lips, 0]) < MIDLINE]
    centre = template[mid, 1].mean()
    upper, lower = mid[template[mid, 1] > centre], mid[template[mid, 1] <= centre]
    return vertices[:, upper, 1].mean(axis=1) - vertices[:, lower, 1].mean(axis=1)


def face_box(scene, obj, indices, frames, pad: float = 0.08, size=SIZE) -> tuple:
    """Pixel box (x0, x1, y0, y1) holding the given vertices at all ``frames`` as the scene camera sees
    them, with a margin of ``pad`` × its width."""
    from bpy_extras.object_utils import world_to_camera_view
    from mathutils import Vector
    from voca_addon.blender.exports import sequences as sequence_io
    co = sequence_io.evaluated_frames(scene, obj, frames)[:, indices].reshape(-1, 3)
    view = np.array([tuple(world_to_camera_view(scene, scene.camera, obj.matrix_world @ Vector(c.tolist())))
                     for c in co])
    x, y = view[:, 0] * size[0], view[:, 1] * size[1]
    pad = pad * (x.max() - x.min())
    return (max(0, int(x.min() - pad)), min(size[0], int(x.max() + pad)),
            max(0, int(y.min() - pad)), min(size[1], int(y.max() + pad)))


def crop(image: np.ndarray, box: tuple) -> np.ndarray:
    x0, x1, y0, y1 = box
    return image[y0:y1, x0:x1]


def side_by_side(images: list, gap: int = 4) -> np.ndarray:
    """Images next to each other, bottom-aligned, ``gap`` transparent pixels apart."""
    height = max(i.shape[0] for i in images)
    width = sum(i.shape[1] for i in images) + gap * (len(images) - 1)
    out = np.zeros((height, width, 4), np.float32)
    x = 0
    for image in images:
        out[:image.shape[0], x:x + image.shape[1]] = image
        x += image.shape[1] + gap
    return out


def load_png(path) -> np.ndarray:
    import bpy
    image = bpy.data.images.load(str(path), check_existing=False)
    try:
        width, height = image.size
        pixels = np.empty(width * height * 4, np.float32)
        image.pixels.foreach_get(pixels)
    finally:
        bpy.data.images.remove(image)
    return pixels.reshape(height, width, 4)


def save_png(pixels: np.ndarray, path: Path) -> None:
    """Write RGBA pixels (rows bottom-up) as an 8-bit PNG, atomically."""
    import bpy
    height, width = pixels.shape[:2]
    image = bpy.data.images.new(path.stem, width, height, alpha=True)
    temp = path.with_name(f".{path.name}.tmp.png")
    try:
        image.pixels.foreach_set(np.ascontiguousarray(pixels, np.float32).ravel())
        image.filepath_raw, image.file_format = str(temp), "PNG"
        image.save()
        os.replace(temp, path)
    finally:
        bpy.data.images.remove(image)
        if temp.exists():
            temp.unlink()


if __name__ == "__main__":
    sys.exit(main())
