# All set-up happens here: `make test` and `make demo` work on a fresh machine with Python 3.11 (the shared
# libraries the bpy module loads come from apt when missing: tools/bpy_libs.sh).
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
	tools/bpy_libs.sh $(PY)
	touch $@

# The other Blender lines the add-on is tested on besides 5.0 (.venv's bpy), the newest patch of each on
# PyPI (a newer patch is a one-line change here): 4.2 LTS and 4.5 LTS on this machine's CPython 3.11;
# 5.1, 5.2 LTS and 5.3 exist only for CPython 3.13, which tools/py313.sh runs in a Debian trixie chroot
# (made once per machine; needs root and Debian's registry, else those stages skip with the reason, and
# fail when CI is set). Each environment is requirements-blender.txt + the bpy pin.
BPY_311 := 4.2.23 4.5.15
BPY_313 := 5.1.2 5.2.4 5.3.0
# The whole Blender layer (tests/blender) runs on 5.0 (the main stage), 4.5 LTS, 5.2 LTS and 5.3; the smoke
# subset (pytest -m smoke: build + install the extension, Animate, render with sound, character Transfer) on
# 4.2 and 5.1.
BPY_FULL := 5.2.4 5.3.0 4.5.15
BPY_SMOKE := 4.2.23 5.1.2
LTS_VENVS := $(foreach v,$(BPY_311),.venv-bpy$(v))
PY313_VENVS := $(foreach v,$(BPY_313),.venv-bpy$(v))
# How to run a command in bpy VERSION's environment (inside the chroot for the CPython 3.13 ones).
in_env = $(if $(filter $(1),$(BPY_313)),tools/py313.sh )
env_python = $(call in_env,$(1)).venv-bpy$(1)/bin/python

.venv-bpy%/.installed: requirements-blender.txt
	$(if $(filter $*,$(BPY_313)),tools/py313.sh python3.13,$(PYTHON)) -m venv .venv-bpy$*
	$(call env_python,$*) -m pip install -q --upgrade pip
	$(call env_python,$*) -m pip install -q -r requirements-blender.txt bpy==$*
	$(if $(filter $*,$(BPY_313)),,tools/bpy_libs.sh .venv-bpy$*/bin/python)
	touch $@

venv-lts: $(foreach v,$(LTS_VENVS),$(v)/.installed)

# The CPython 3.13 environments where tools/py313.sh can work; else one line saying why (no failure here:
# the matrix reports the skip, and fails it under CI).
venv-py313:
	@if reason=$$(tools/py313.sh --check); then $(MAKE) --no-print-directory $(foreach v,$(PY313_VENVS),$(v)/.installed); \
	else echo "bpy $(BPY_313): no Python 3.13 environment: $$reason"; fi

# Every test: the reference models built once (tools/test_fixtures.py), then side by side on CI's two cores
# the main stage (core, references, training and the Blender layer on bpy 5.0) and the Blender-layer matrix
# on the other lines (tools/blender_matrix.sh), then the real-window GUI suite.
MAIN_STAGE := $(PY) -m pytest -q --durations=25 --ignore=tests/gui tests
test: venv venv-lts venv-py313
	$(PY) tools/test_fixtures.py
	@$(MAKE) --no-print-directory test-matrix MAIN_STAGE="$(MAIN_STAGE)"
	@$(MAKE) --no-print-directory test-gui

# The Blender layer on the other lines (whole or smoke, as above), and with MAIN_STAGE=COMMAND on make's
# command line (as `make test` does) that stage too: tools/blender_matrix.sh runs MATRIX_JOBS stages at a
# time (2: CI's cores), prints each stage's result and time, the whole output of a failed one; a stage
# whose environment cannot exist here (no Python 3.13) skips with the reason, or fails when CI is set.
.PHONY: venv-py313 test-matrix
MATRIX_JOBS ?= 2
MAIN_STAGE_RUN = $(if $(filter command line,$(origin MAIN_STAGE)),$(MAIN_STAGE))
test-matrix: venv-lts venv-py313
	@BPY_FULL="$(BPY_FULL)" BPY_SMOKE="$(BPY_SMOKE)" BPY_313="$(BPY_313)" MATRIX_JOBS=$(MATRIX_JOBS) \
	  MAIN_STAGE="$(MAIN_STAGE_RUN)" tools/blender_matrix.sh

# The Blender-layer tests on one version: make test-blender BPY=5.3.0 (any of $(BPY_311) $(BPY_313);
# default .venv's 5.0). SMOKE=1 runs the smoke subset only.
test-blender: venv $(if $(BPY),.venv-bpy$(BPY)/.installed)
	$(if $(BPY),$(call env_python,$(BPY)),$(PY)) -m pytest -q $(if $(SMOKE),-m smoke) tests/blender

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

# The real-window GUI suite (tests/gui): Debian's Blenders with a window under Xvfb, in chroots made once
# per machine by ../shared/tools/blender-gui/setup.sh (needs root and the Debian package registry; without
# them the tests skip with the reason; VOCA_GUI_REQUIRED=1, set under CI, makes that a failure): the whole
# suite in sid's Blender 5.2 LTS (Python 3.14), then the smoke subset (install, Animate, Character) in
# trixie's 4.3 (Python 3.13); each stage timed.
.PHONY: test-gui
test-gui: venv
	@failed=; for stage in "sid:" "trixie:-m smoke"; do suite=$${stage%%:*}; sel=$${stage#*:}; t0=$$(date +%s); \
	  BLENDER_GUI_SUITE=$$suite VOCA_GUI_REQUIRED=$${CI:+1} $(PY) -m pytest -q $$sel tests/gui || failed="$$failed $$suite"; \
	  echo "== GUI suite ($${sel:-whole}) in Debian $$suite's Blender: $$(( $$(date +%s) - t0 )) s"; \
	done; [ -z "$$failed" ] || { echo "GUI suite failed in:$$failed"; exit 1; }

# The user guide's pictures of the panel, its sub-panels, the progress bar and the messages an artist
# sees (docs/images/gui-*.png), taken by the GUI suite in the real window (no geometry in them): Blender
# 5.2 LTS (Debian sid) unless BLENDER_GUI_SUITE says otherwise.
.PHONY: docs-screenshots
docs-screenshots: venv
	BLENDER_GUI_SUITE=$${BLENDER_GUI_SUITE:-sid} VOCA_GUI_REQUIRED=1 VOCA_GUI_SCREENSHOTS=docs/images $(PY) -m pytest -q tests/gui
