"""``python -m voca_addon models {fetch,install,status}``: the model files in one setup step.

* ``models fetch [--folder DIR]`` — download the public files (DeepSpeech v0.1.0 ``output_graph.pb`` out
  of its release archive, ``FLAME_sample.ply``, ``texture_mesh.obj`` / ``.png``), resuming interrupted
  downloads and verifying checksums (:mod:`voca_addon.core.models.fetch`);
* ``models install ZIP [--folder DIR] [--overwrite]`` — unpack the VOCA trained-model zip downloaded
  after registering at https://voca.is.tue.mpg.de;
* ``models status [--folder DIR]`` — what is present, valid and missing, with where to get it; exits 0
  when every file is usable (present, valid or a different but loadable file) and 1 when one is missing
  or damaged, so a setup script can test it.

``--folder`` defaults to ``$VOCA_MODEL_DIR`` or ``~/voca_models``, where every command looks.

``fetch`` and ``install`` claim the model folder before any work (:mod:`voca_addon.core.claims`, the claim
file beside the folder, as ``batch`` claims its ``--out``): a second fetch or install into the same folder
while one runs is refused at once with one line naming it (two installs used to interleave their files); a
killed run's claim is cleared by the next. Folders made only to hold the claim are removed again when the
run fails.

Contract: argparse at import (stdlib); the core is imported when a command runs.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path


def add_parser(sub) -> None:
    """Add ``models`` and its three subcommands to an ``add_subparsers`` object."""
    m = sub.add_parser("models", help="get the model files: fetch the public ones, install the VOCA zip, status")
    actions = m.add_subparsers(dest="models_command", required=True)
    f = actions.add_parser("fetch", help="download DeepSpeech v0.1.0 output_graph.pb and the FLAME template "
                           "files (resumes, verifies checksums)")
    i = actions.add_parser("install", help="unpack the VOCA trained-model zip you downloaded after registering")
    i.add_argument("zip", metavar="ZIP")
    i.add_argument("--overwrite", action="store_true", help="replace different checkpoint files already there")
    s = actions.add_parser("status", help="list the model files: present and valid, damaged, or missing")
    for p in (f, i, s):
        p.add_argument("--folder", metavar="DIR", help="model folder (default: $VOCA_MODEL_DIR or ~/voca_models)")
    m.set_defaults(run=run)


def run(args) -> int:
    """Run the chosen ``models`` subcommand (user errors raise VocaError for the CLI's guard).

    Returns the exit status: 0, or 1 for ``status`` when a file is missing or damaged.
    """
    from ..core.models import fetch, status
    if args.models_command in ("fetch", "install"):
        with _folder_claimed(args.folder):
            return _write(args, fetch)
    if args.folder is not None and os.path.lexists(args.folder) and not os.path.isdir(args.folder):
        from ..core.errors import InputError
        kind = "a link to nothing (or a loop of links)" if os.path.islink(args.folder) else "a file"
        raise InputError(f"--folder '{args.folder}' is {kind}, not a folder; give the model folder.")
    rows = status.status(args.folder)
    print(status.report(args.folder, rows))
    return 0 if status.usable(rows) else 1


@contextlib.contextmanager
def _folder_claimed(folder):
    """The model folder claimed for this run (released by the CLI's guard when the run ends).

    The claim file sits in the folder's parent, which is made first if missing (``makedirs`` is safe when
    two runs make it at once; the exclusive claim then picks one). When the run fails, the folders it made
    are removed again if empty: the model folder only when this run held its claim (no other run was in
    it), the parents always (another run's claim file or folder keeps them).
    """
    from ..core import claims
    from ..core.models import modelfiles
    target = Path(os.path.abspath(os.path.expanduser(folder) if folder else modelfiles.model_dir()))
    parents = [p for p in target.parents if not os.path.lexists(p)]         # deepest first
    made = [target] if not os.path.lexists(target) else []
    modelfiles.make_folder(target.parent, target)
    try:
        claims.claim(target)
    except BaseException:
        _remove_empty(parents)
        raise
    try:
        yield target
    except BaseException:
        claims.release(target)                  # its claim file sits in a folder this run may have made
        _remove_empty(made + parents)
        raise


def _remove_empty(folders) -> None:
    for path in folders:                        # deepest first: a parent is empty once its child is gone
        with contextlib.suppress(OSError):
            path.rmdir()


def _write(args, fetch) -> int:
    """``fetch`` or ``install`` (the folder already claimed)."""
    if args.models_command == "fetch":
        from ..core.progress import ProgressPrinter
        printer = ProgressPrinter()
        try:
            lines = fetch.fetch(args.folder, progress=printer)
        finally:
            printer.close()
        print("\n".join(lines))
    else:
        for path in fetch.install_voca_zip(args.zip, args.folder, args.overwrite):
            print(f"installed {path}")
    return 0
