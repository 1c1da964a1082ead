# All set-up happens here: `make test` and `make demo` work on a fresh machine with Python 3.11.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SHARED_AUDIO := ../shared/data/audio/test_sentence.wav
AUDIO ?= $(if $(wildcard $(SHARED_AUDIO)),$(SHARED_AUDIO),)
OUT ?= out

.PHONY: venv venv-lts test test-blender test-fast demo bench clean

venv: $(VENV)/.installed

$(VENV)/.installed: requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

# The Blender LTS lines the add-on supports besides 5.0 (.venv's bpy): the newest 4.2.x and 4.5.x on PyPI.
BPY_LTS := 4.2.23 4.5.15
LTS_VENVS := $(foreach v,$(BPY_LTS),.venv-bpy$(v))

.venv-bpy%/.installed: requirements-blender.txt
	$(PYTHON) -m venv .venv-bpy$*
	.venv-bpy$*/bin/python -m pip install -q --upgrade pip
	.venv-bpy$*/bin/python -m pip install -q -r requirements-blender.txt bpy==$*
	touch $@

venv-lts: $(foreach v,$(LTS_VENVS),$(v)/.installed)

# Every test: core, references, training and the Blender layer on bpy 5.0 (this run also builds the
# reference models), then the Blender layer again on each LTS line, then the real-window GUI suite.
test: venv venv-lts
	$(PY) -m pytest -q --ignore=tests/gui tests
	@for v in $(LTS_VENVS); do echo "== Blender layer on $$v"; $$v/bin/python -m pytest -q tests/blender || exit 1; done
	VOCA_GUI_REQUIRED=$${CI:+1} $(PY) -m pytest -q tests/gui

# The Blender-layer tests on one version: make test-blender BPY=4.2.23 (or 4.5.15; default .venv's 5.0).
test-blender: venv $(if $(BPY),.venv-bpy$(BPY)/.installed)
	$(if $(BPY),.venv-bpy$(BPY),$(VENV))/bin/python -m pytest -q tests/blender

# Everything but the few full-size parity tests.
test-fast: venv
	$(PY) -m pytest -q -m "not fullsize" tests

# The main job: animate AUDIO with the user's model files (see docs/models.md) into a Blender scene and
# render it with its sound: out/demo.blend + out/demo.mp4 + out/demo.npz (a re-run replaces them; the old
# .blend is kept as demo.blend1).
MODEL_ARGS = $(if $(MODELS),--voca "$(MODELS)" --deepspeech "$(MODELS)/output_graph.pb" --template "$(MODELS)/FLAME_sample.ply")
demo: venv
	@test -n "$(AUDIO)" || { echo "usage: make demo AUDIO=speech.wav [MODELS=folder]" >&2; exit 2; }
	@mkdir -p $(OUT)
	$(PY) -m voca_addon animate "$(AUDIO)" $(MODEL_ARGS) --out $(OUT)/demo.blend --render $(OUT)/demo.mp4 --npz $(OUT)/demo.npz --overwrite

bench: venv
	$(PY) -m voca_addon bench

clean:
	rm -rf $(OUT) dist .pytest_cache

# The Blender extension: dist/voca_addon-<version>.zip, checked by Blender's own validator.
.PHONY: extension
extension: venv
	$(PY) tools/build_extension.py

# The user guide's pictures (docs/images/*.png), rendered headless with the add-on's own code from the
# reference data in ../shared/data (see tools/render_docs.py).
.PHONY: docs-images
docs-images: venv
	$(PY) tools/render_docs.py --out docs/images

# The real-window GUI suite (tests/gui): Debian's Blender 4.3 with a window under Xvfb, in a chroot made
# once per machine by ../shared/tools/blender-gui/setup.sh (needs root and the Debian package registry;
# without them the tests skip with the reason; VOCA_GUI_REQUIRED=1 makes that a failure, for CI).
.PHONY: test-gui
test-gui: venv
	VOCA_GUI_REQUIRED=$${CI:+1} $(PY) -m pytest -q tests/gui

# The user guide's pictures of the panel, its sub-panels, the progress bar and the messages an artist
# sees (docs/images/gui-*.png), taken by the GUI suite in the real window (no geometry in them).
.PHONY: docs-screenshots
docs-screenshots: venv
	VOCA_GUI_REQUIRED=1 VOCA_GUI_SCREENSHOTS=docs/images $(PY) -m pytest -q tests/gui
