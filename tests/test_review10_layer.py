"""Review 10 of the layer build and the SAM templates: output folders, refused options, extras.

Builds are real (``scripts/build_layer.py``, pip against the configured index,
the target interpreters of this machine); the templates go through the real
aws-sam-translator. The extras build, the slow part, runs once for the module.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from boto3.session import Session
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator
from samtranslator.yaml_helper import yaml_parse
from support.layer import CURRENT, ROOT, build

SCRIPT = ROOT / "scripts" / "build_layer.py"
CLI = (sys.executable, "-m", "nexs_serverless.cli")
ELF_MACHINES = {62: "x86_64", 183: "arm64"}  # e_machine: EM_X86_64, EM_AARCH64


def _script(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python scripts/build_layer.py ARGS`` with this interpreter."""
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env, check=False
    )


def _offline_pip_env(tmp_path: Path) -> dict[str, str]:
    """The environment with pip unable to find any package (no index, an empty find-links folder)."""
    empty = tmp_path / "no-wheels"
    empty.mkdir()
    return {
        **os.environ,
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(empty),
        "PIP_CONFIG_FILE": os.devnull,
    }


# -- the output folder ---------------------------------------------------------------


def test_an_output_folder_that_is_a_file_is_one_line_and_status_2(tmp_path: Path) -> None:
    """``--out`` naming a file prints one ``build_layer:`` line, no traceback, and exits 2."""
    afile = tmp_path / "dist"
    afile.write_text("not a folder")
    result = _script("--no-precompile", "--out", str(afile))
    assert result.returncode == 2, result.stderr
    assert result.stderr == f"build_layer: output folder {afile} is a file\n"
    assert afile.read_text() == "not a folder"


def test_an_output_folder_under_a_file_is_refused_before_pip_runs(tmp_path: Path) -> None:
    """A folder that cannot be created is reported before the extras are installed (pip cannot run here)."""
    afile = tmp_path / "file"
    afile.write_text("")
    out = afile / "dist"
    result = _script("--no-precompile", "--extras", "otel", "--out", str(out), env=_offline_pip_env(tmp_path))
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"build_layer: output folder {out}: cannot write there ("), result.stderr
    assert "pip" not in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc, where mkdir fails")
def test_an_output_folder_that_cannot_be_made_is_a_layer_error(tmp_path: Path) -> None:
    """build_layer raises LayerError (not OSError) for a folder the system will not create."""
    out = Path("/proc/nexs-review10-no-such-folder")
    with pytest.raises(build.LayerError, match=r"output folder /proc/nexs-review10-no-such-folder: cannot"):
        build.build_layer(out_dir=out, precompile=False)


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc, where mkdir fails")
def test_the_cli_reports_an_unwritable_output_folder_without_a_traceback() -> None:
    """``nexs-serverless layer build --out`` an unwritable folder: click's one error line, status 1."""
    result = subprocess.run(
        [*CLI, "layer", "build", "--no-precompile", "--out", "/proc/nexs-review10-no-such-folder"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("Error: layer build: output folder /proc/"), result.stderr
    assert "Traceback" not in result.stderr


# -- refused options -------------------------------------------------------------------


def test_the_cli_extra_is_refused_for_the_layer(tmp_path: Path) -> None:
    """``cli`` is an extra of pyproject.toml but the CLI is not in the layer: click would be dead weight."""
    with pytest.raises(build.LayerError, match=r"unknown extra\(s\) cli: expected some of azure, gcp, grpc"):
        build.build_layer(extras=("cli",), out_dir=tmp_path, precompile=False)
    assert not list(tmp_path.iterdir())


def test_extras_given_as_a_string_are_refused_by_name(tmp_path: Path) -> None:
    """``extras="grpc"`` is named as a string, not reported as the unknown extras g, r, p and c."""
    with pytest.raises(build.LayerError, match=r"extras 'grpc': a sequence of names"):
        build.build_layer(extras="grpc", out_dir=tmp_path, precompile=False)


def test_a_missing_interpreter_names_the_command_line_way_out(tmp_path: Path) -> None:
    """Without the target's interpreter the script says ``--no-precompile``, the option it takes."""
    env = {**os.environ, "PYENV_ROOT": str(tmp_path / "no-pyenv"), "PATH": "/usr/bin:/bin"}
    missing = [
        v for v in build.PYTHON_VERSIONS if v != CURRENT and not shutil.which(f"python{v}", path=env["PATH"])
    ]
    if not missing:
        pytest.skip("every supported Python is in /usr/bin or /bin")
    other = missing[0]
    result = _script("--python", other, "--out", str(tmp_path), env=env)
    assert result.returncode == 2, result.stderr
    assert f"precompiling for Python {other} needs that interpreter" in result.stderr
    assert "--no-precompile" in result.stderr


# -- an extras layer for the other architecture ----------------------------------------------


@pytest.fixture(scope="module")
def arm64_grpc(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two arm64 builds with the grpc extra for Python 3.12, from one frozen copy of the sources."""
    source = tmp_path_factory.mktemp("source")
    shutil.copytree(ROOT / "nexs_serverless", source / "nexs_serverless")
    shutil.copytree(ROOT / "layer", source / "layer")
    shutil.copyfile(ROOT / "pyproject.toml", source / "pyproject.toml")
    precompile = "3.12" in _interpreters()
    first, second = (
        build.build_layer(
            python_version="3.12",
            arch="arm64",
            extras=("grpc",),
            out_dir=tmp_path_factory.mktemp(name),
            precompile=precompile,
            source_dir=source,
        )
        for name in ("first", "second")
    )
    return first, second


def _interpreters() -> set[str]:
    found = set()
    for version in build.PYTHON_VERSIONS:
        try:
            build.find_interpreter(version)
        except build.LayerError:
            continue
        found.add(version)
    return found


def _elf_machine(data: bytes) -> str:
    assert data[:4] == b"\x7fELF"
    return ELF_MACHINES.get(int.from_bytes(data[18:20], "little"), f"machine {data[18:20]!r}")


def test_an_arm64_extras_layer_holds_only_arm64_binaries(arm64_grpc: tuple[Path, Path]) -> None:
    """grpcio and protobuf come as aarch64 wheels, and this x86_64 machine's attribute check stays out."""
    path, _ = arm64_grpc
    assert path.name.endswith("-python3.12-arm64-grpc.zip")
    with zipfile.ZipFile(path) as archive:
        binaries = {name: _elf_machine(archive.read(name)) for name in archive.namelist() if ".so" in name}
    assert any(name.startswith("python/grpc/_cython/cygrpc.cpython-312-") for name in binaries), binaries
    assert set(binaries.values()) == {"arm64"}, binaries
    assert "python/nexs_serverless/_speedups.abi3.so" not in binaries


def test_an_extras_layer_is_stripped_like_the_core(arm64_grpc: tuple[Path, Path]) -> None:
    """No tests, console scripts, stubs, C sources, boto3/botocore or dist-info RECORDs in the extras."""
    path, _ = arm64_grpc
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    parts = {part for name in names for part in name.split("/")[:-1]}
    assert not parts & {"tests", "test", "bin", "boto3", "botocore"}, sorted(parts)
    assert not [n for n in names if n.endswith((".pyi", ".c", ".h", ".pyx", "/RECORD", "/INSTALLER"))]
    assert all(name.startswith("python/") or name == "nexs-handler" for name in names)
    assert any(name.startswith("python/grpcio-") and name.endswith("/METADATA") for name in names)


def test_the_same_inputs_give_a_byte_identical_extras_layer(arm64_grpc: tuple[Path, Path]) -> None:
    """Two builds with extras, from the same sources and wheels, are the same bytes."""
    first, second = arm64_grpc
    assert first.read_bytes() == second.read_bytes()


# -- the zero-code template ----------------------------------------------------------------


def _translated(name: str) -> dict[str, Any]:
    template: dict[str, Any] = yaml_parse((ROOT / name).read_text())
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://bucket/code.zip"
        elif resource["Type"] == "AWS::Serverless::LayerVersion":
            resource["Properties"]["ContentUri"] = "s3://bucket/layer.zip"
    translator = Translator({}, Parser(), boto_session=Session(region_name="us-east-1"))
    result: dict[str, Any] = translator.translate(copy.deepcopy(template), parameter_values={})
    return result


def _functions(template: dict[str, Any]) -> list[dict[str, Any]]:
    return [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Function"]


def test_the_zero_code_template_takes_the_exporter_and_sampler_settings_of_the_main_one() -> None:
    """OTLP headers, the sampler's ratio and the architecture are parameters there too, defined alike."""
    main, zero = _translated("template.yaml"), _translated("template-zero-code.yaml")
    (function,) = _functions(zero)
    variables = function["Environment"]["Variables"]
    for variable in ("OTEL_EXPORTER_OTLP_HEADERS", "OTEL_TRACES_SAMPLER_ARG", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        (main_value,) = {str(f["Environment"]["Variables"][variable]) for f in _functions(main)}
        assert str(variables[variable]) == main_value, variable
    assert function["Architectures"] == [{"Ref": "Architecture"}]
    for parameter in ("OtlpHeaders", "SamplerArg", "Sampler", "Architecture", "PythonRuntime"):
        ours, theirs = dict(zero["Parameters"][parameter]), dict(main["Parameters"][parameter])
        ours.pop("Description")
        theirs.pop("Description")
        assert ours == theirs, parameter
