"""``batch``: many clips in one run, the models read once (:mod:`.command`).

- :mod:`.inputs` — INPUT (a folder or a CSV) → the clips, and ``--format``;
- :mod:`.specs` — what crosses process boundaries: a group's task, a clip's result, its output names;
- :mod:`.worker` — one group of clips → their files (the batch process, a ``--workers`` process or Dask);
- :mod:`.processes` — Ctrl-C wherever it lands; the start of a ``--workers`` process;
- :mod:`.character` — ``--target``: every clip on one fitted character;
- :mod:`.manifest` — ``DIR/batch_manifest.json``: what ``--resume`` checks.
"""
