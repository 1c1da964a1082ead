"""The core and the CLI run where importing bpy or tensorflow fails."""
import subprocess
import sys
import textwrap
from pathlib import Path


ROOT = Path(__file__).resolve().parents[2]

BLOCKER = textwrap.dedent("""
    import builtins, sys
    _real_import = builtins.__import__
    def _blocked(name, *args, **kwargs):
        if name.split('.')[0] in ('bpy', 'tensorflow', 'tf_keras', 'keras', 'mathutils', 'aud'):
            raise ImportError('blocked for this test: ' + name)
        return _real_import(name, *args, **kwargs)
    builtins.__import__ = _blocked
""")


def run_blocked(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCKER + textwrap.dedent(code), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)


def core_modules():
    """Dotted names below ``voca_addon.core`` of every core module, stage packages included."""
    core = ROOT / "voca_addon" / "core"
    return sorted(".".join(p.relative_to(core).with_suffix("").parts).removesuffix(".__init__")
                  for p in core.rglob("*.py") if p.name != "__init__.py" or p.parent != core)


def test_isolation_every_core_module_imports_without_bpy_or_tensorflow():
    mods = core_modules()
    assert {"speech.audio", "speech.features", "speech.deepspeech", "face.voca", "animation.shapekeys",
            "engine", "models.modelfiles", "models", "speech", "face", "animation"} <= set(mods)
    r = run_blocked("""
        import importlib, sys
        for m in sys.argv[1:]:
            importlib.import_module('voca_addon.core.' + m)
        importlib.import_module('voca_addon.cli.main')
        loaded = [m for m in sys.modules if m.split('.')[0] in ('bpy', 'tensorflow')]
        assert not loaded, loaded
        print('ok', len(sys.argv) - 1)
    """, *mods)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"ok {len(mods)}"


def test_isolation_blocker_really_blocks():
    r = run_blocked("import tensorflow")
    assert r.returncode != 0 and "blocked for this test" in r.stderr


def test_isolation_cli_help_runs_without_bpy_or_tensorflow():
    r = run_blocked("""
        import sys
        from voca_addon.cli.main import main
        sys.argv = ['voca_addon', 'infer', '--help']
        try:
            main(['infer', '--help'])
        except SystemExit as e:
            print('exit', e.code)
    """)
    assert r.returncode == 0, r.stderr
    assert "--condition" in r.stdout and "exit 0" in r.stdout
