"""The head's look: VOCA's texture (UVs + image) when its files are there, else a skin-like material.

:func:`apply_head_look` gives a FLAME head

* **textured** — with ``texture_mesh.obj`` / ``.png`` (VOCA's ``template/`` files): a UV map
  ``VOCA UV`` whose per-loop UVs come from the OBJ's face texture indices, matched onto the head's own
  polygons (:func:`voca_addon.core.flame.texture.loop_uvs`), and a material ``VOCA Skin (texture)``:
  Image Texture → Principled BSDF, the image node active so Workbench's *Texture* colour shows it;
* **untextured** — a material ``VOCA Skin``: a Principled BSDF of a light skin tone, the same colour as
  its viewport colour (what Workbench's *Material* colour shows).

Ownership (as :mod:`.writer`): the material and the image carry ``voca_owned``; an artist's material is
never replaced (a head that has a material not owned by the add-on is left as it is). They have no fake
user, so deleting the head leaves them unused: Blender drops the material at the next save and the image
at the save after (its orphan rule); :func:`purge_unused` removes both at once, :func:`remove_head_look`
takes them off a head that stays. The image is loaded from the file; :mod:`..packing` packs it
into the ``.blend``.

Contract: main thread only (``bpy``); version differences through :mod:`..compat`. UV arrays float32, bulk
``foreach_set``. A texture that does not fit the head raises :class:`~voca_addon.core.errors.MeshError`
before anything is created.
"""
from __future__ import annotations

import os
from typing import Optional

import bpy
import numpy as np

from ...core.errors import MeshError
from ...core.flame import texture as core_texture
from .. import compat
from .writer import OWNED

UV_NAME = "VOCA UV"
TEXTURED_NAME, SKIN_NAME = "VOCA Skin (texture)", "VOCA Skin"
SKIN_RGBA = (0.80, 0.57, 0.47, 1.0)      # linear RGB: a light skin tone
ROUGHNESS = 0.55                          # skin is neither matte nor glossy


def head_polygons(mesh) -> np.ndarray:
    """int64 [P, 3]: the mesh's triangles as vertex indices in loop order.

    Raises
    ------
    MeshError
        A polygon with other than 3 corners (FLAME heads are triangles).
    """
    totals = np.empty(len(mesh.polygons), np.int32)
    mesh.polygons.foreach_get("loop_total", totals)
    if totals.size and (totals != 3).any():
        raise MeshError(f"The mesh '{mesh.name}' has polygons with {int(totals[totals != 3][0])} corners; "
                        "VOCA's texture fits FLAME's triangles only.")
    loops = np.empty(len(mesh.loops), np.int32)
    mesh.loops.foreach_get("vertex_index", loops)
    return loops.reshape(-1, 3).astype(np.int64)


def _owned_only(mesh) -> bool:
    """True when every material of ``mesh`` (if any) is the add-on's."""
    return all(m is None or m.get(OWNED) for m in mesh.materials)


def _principled(material):
    node = next((n for n in material.node_tree.nodes if n.type == "BSDF_PRINCIPLED"), None)
    if node is None:
        node = material.node_tree.nodes.new("ShaderNodeBsdfPrincipled")
    node.inputs["Roughness"].default_value = ROUGHNESS
    return node


def _skin_material():
    material = compat.new_node_material(SKIN_NAME)
    material[OWNED] = True
    material.diffuse_color, material.roughness = SKIN_RGBA, ROUGHNESS
    _principled(material).inputs["Base Color"].default_value = SKIN_RGBA
    return material


def _textured_material(png: str):
    try:
        image = bpy.data.images.load(png, check_existing=False)
    except RuntimeError as exc:
        raise MeshError(f"Blender cannot read the texture image '{png}' ({str(exc).strip()}). Download "
                        f"texture_mesh.png again from {core_texture.TEXTURE_URL}.") from None
    image[OWNED] = True
    material = compat.new_node_material(TEXTURED_NAME)
    material[OWNED] = True
    material.diffuse_color, material.roughness = SKIN_RGBA, ROUGHNESS
    nodes = material.node_tree.nodes
    node = nodes.new("ShaderNodeTexImage")
    node.image, node.location = image, (-400, 200)
    material.node_tree.links.new(node.outputs["Color"], _principled(material).inputs["Base Color"])
    nodes.active = node                   # Workbench's Texture colour shows the active image node
    return material


def _set_uvs(mesh, uvs: np.ndarray) -> None:
    layer = mesh.uv_layers.get(UV_NAME) or mesh.uv_layers.new(name=UV_NAME)
    layer.data.foreach_set("uv", np.ascontiguousarray(uvs, dtype=np.float32).ravel())
    mesh.uv_layers.active = layer


def apply_head_look(obj, texture_files=None) -> Optional[str]:
    """Give ``obj`` VOCA's texture (``texture_files`` = (obj path, png path)) or the skin material.

    Returns the material's name, or None when the head has an artist's material (left untouched).

    Raises
    ------
    MeshError
        The texture files cannot be read or do not fit the head's faces (nothing is changed then).
    """
    mesh = obj.data
    if not _owned_only(mesh):
        return None
    uvs = None
    if texture_files is not None:
        obj_path, png = (os.fspath(p) for p in texture_files)
        uvs = core_texture.loop_uvs(head_polygons(mesh), core_texture.read_texture_obj(obj_path))  # checked first
    material = _textured_material(png) if uvs is not None else _skin_material()
    name = material.name.rsplit(".", 1)[0] if material.name[-4:-3] == "." else material.name
    remove_head_look(obj)
    material.name = name                  # a re-run replaces the old material and keeps its name
    if uvs is not None:
        _set_uvs(mesh, uvs.reshape(-1, 2))
    mesh.materials.append(material)
    return material.name


def dress_owned_head(obj, template_path=None) -> Optional[str]:
    """The headless runs' rule: a head the add-on made (``voca_owned``) gets VOCA's texture, found next to
    ``template_path`` or in the model folder (:func:`voca_addon.core.flame.texture.find_texture`), else the
    skin material. Returns a warning line when texture files were found but do not fit (skin used then)."""
    from ...core.models import modelfiles
    if not obj.get(OWNED):
        return None
    folder = os.path.dirname(os.path.abspath(os.fspath(template_path))) if template_path else None
    files = core_texture.find_texture([folder, modelfiles.model_dir()])
    try:
        apply_head_look(obj, files)
    except MeshError as exc:
        apply_head_look(obj, None)
        return f"{exc} The head gets a plain skin material instead."
    return None


def is_textured(obj) -> bool:
    """Whether ``obj``'s first material shows an image through an active Image Texture node."""
    material = obj.active_material if obj is not None and obj.type == "MESH" else None
    node = material.node_tree.nodes.active if material is not None and material.node_tree else None
    return node is not None and node.type == "TEX_IMAGE" and node.image is not None


def remove_head_look(obj) -> int:
    """Take the add-on's materials and UV map off ``obj``'s mesh and delete those materials (and their owned
    images) no longer used; an artist's materials stay. Returns how many materials were deleted."""
    mesh = obj.data
    layer = mesh.uv_layers.get(UV_NAME)
    if layer is not None:
        mesh.uv_layers.remove(layer)
    owned = [m for m in mesh.materials if m is not None and m.get(OWNED)]
    for index in reversed(range(len(mesh.materials))):
        if mesh.materials[index] in owned:
            mesh.materials.pop(index=index)
    removed = 0
    for material in owned:
        if material.users == 0:
            images = [n.image for n in material.node_tree.nodes if n.type == "TEX_IMAGE" and n.image] \
                if material.node_tree else []
            bpy.data.materials.remove(material)
            removed += 1
            for image in images:
                if image.get(OWNED) and image.users == 0:
                    bpy.data.images.remove(image)
    return removed


def purge_unused() -> tuple:
    """Delete the add-on's materials, then images, that nothing uses any more (a deleted head's look).
    Returns (materials, images) deleted; an artist's data is never touched."""
    materials = [m for m in bpy.data.materials if m.get(OWNED) and m.users == 0]
    for m in materials:
        bpy.data.materials.remove(m)
    images = [i for i in bpy.data.images if i.get(OWNED) and i.users == 0]
    for i in images:
        bpy.data.images.remove(i)
    return len(materials), len(images)
