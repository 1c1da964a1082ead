# All set-up happens here: `make test` and `make demo` work on a fresh machine with Python 3.11.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SHARED_AUDIO := ../shared/data/audio/test_sentence.wav
AUDIO ?= $(if $(wildcard $(SHARED_AUDIO)),$(SHARED_AUDIO),)
OUT ?= out

.PHONY: venv test test-fast demo bench clean

venv: $(VENV)/.installed

$(VENV)/.installed: requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

# Every test (the full-size parity tests included).
test: venv
	$(PY) -m pytest -q tests

# Everything but the few full-size parity tests.
test-fast: venv
	$(PY) -m pytest -q -m "not fullsize" tests

# The main job: animate AUDIO with the user's model files (see docs/models.md) into a Blender scene and
# render it with its sound: out/demo.blend + out/demo.mp4.
MODEL_ARGS = $(if $(MODELS),--voca "$(MODELS)" --deepspeech "$(MODELS)/output_graph.pb" --template "$(MODELS)/FLAME_sample.ply")
demo: venv
	@test -n "$(AUDIO)" || { echo "usage: make demo AUDIO=speech.wav [MODELS=folder]" >&2; exit 2; }
	@mkdir -p $(OUT)
	$(PY) -m voca_addon animate "$(AUDIO)" $(MODEL_ARGS) --out $(OUT)/demo.blend --render $(OUT)/demo.mp4

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
	$(PY) -m pytest -q tests/gui

# The user guide's pictures of the panel, its sub-panels, the progress bar and the messages an artist
# sees (docs/images/gui-*.png), taken by the GUI suite in the real window (no geometry in them).
.PHONY: docs-screenshots
docs-screenshots: venv
	VOCA_GUI_REQUIRED=1 VOCA_GUI_SCREENSHOTS=docs/images $(PY) -m pytest -q tests/gui
