"""The layer zip: Lambda's layout, stripping, precompiled bytecode, reproducibility, size budget."""

from __future__ import annotations

import importlib.util
import json
import marshal
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from support.layer import CURRENT, ROOT, build, core_layer


@pytest.fixture(scope="module")
def core_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The core layer zip (shared with the runtime and template tests)."""
    return core_layer(tmp_path_factory)


def _names(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as archive:
        return archive.namelist()


def test_zip_is_named_with_version_python_and_arch(core_zip: Path) -> None:
    """The file name carries the package version, the target Python and the architecture."""
    version = build.project_version(ROOT / "pyproject.toml")
    assert core_zip.name == f"nexs-serverless-layer-{version}-python{CURRENT}-x86_64.zip"


def test_package_sits_under_python_for_the_runtime_path(core_zip: Path) -> None:
    """The package is at python/nexs_serverless/ (Lambda puts /opt/python on sys.path)."""
    names = _names(core_zip)
    assert "python/nexs_serverless/__init__.py" in names
    assert "python/nexs_serverless/wrapper.py" in names
    assert "python/nexs_serverless/extension.py" in names
    assert all(name == "nexs-handler" or name.startswith("python/") for name in names)


def test_exec_wrapper_is_at_the_root_and_executable(core_zip: Path) -> None:
    """nexs-handler lands in /opt with mode 0755 (the zip records Unix permissions)."""
    with zipfile.ZipFile(core_zip) as archive:
        info = archive.getinfo("nexs-handler")
        assert info.create_system == 3
        assert stat.S_IMODE(info.external_attr >> 16) == 0o755
        assert archive.read("nexs-handler") == (ROOT / "layer" / "nexs-handler").read_bytes()
        others = [i for i in archive.infolist() if i.filename != "nexs-handler"]
        assert {stat.S_IMODE(i.external_attr >> 16) for i in others} == {0o644}


def test_testing_kit_cli_and_fixtures_are_left_out(core_zip: Path) -> None:
    """The testing kit, the CLI and the JSON event fixtures never load in a function."""
    names = _names(core_zip)
    for part in ("testing/", "cli/", "events/"):
        assert not any(name.startswith(f"python/nexs_serverless/{part}") for name in names)
    assert "python/nexs_serverless/py.typed" not in names


def test_core_layer_ships_no_dependencies(core_zip: Path) -> None:
    """The core layer is the package alone: no boto3, botocore or anything else."""
    top_level = {name.split("/")[1] for name in _names(core_zip) if name.startswith("python/")}
    assert top_level == {"nexs_serverless"}


def test_bytecode_is_precompiled_for_the_target_with_unchecked_hashes(core_zip: Path) -> None:
    """Every module's bytecode ships for the target Python: in the bundle, or (two modules) as .pyc.

    The .pyc files are hash-based and unchecked (PEP 552); the bundle holds the other modules'
    code under the target's magic number, each module once.
    """
    tag = f"cpython-{CURRENT.replace('.', '')}"
    names = _names(core_zip)
    sources = [n for n in names if n.endswith(".py")]
    with zipfile.ZipFile(core_zip) as archive:
        bundle = archive.read("python/nexs_serverless/_modules.bin")
        index = _bundle_index(bundle)
        for source in sources:
            folder, _, file = source.rpartition("/")
            pyc = f"{folder}/__pycache__/{file[:-3]}.{tag}.pyc"
            relative = source.removeprefix("python/")
            if relative in ("nexs_serverless/__init__.py", "nexs_serverless/_preload.py"):
                assert pyc in names, pyc
                header = archive.read(pyc)
                assert header[:4] == bundle[4:8]
                assert int.from_bytes(header[4:8], "little") == 0b01  # hash-based, check_source off
            else:
                assert pyc not in names, f"{pyc} duplicates the bundle"
                assert relative in {entry[1] for entry in index.values()}, relative
    assert not [n for n in names if n.endswith(".pyc") and tag not in n]
    assert bundle[4:8] == importlib.util.MAGIC_NUMBER


def _bundle_index(bundle: bytes) -> dict[str, tuple[bool, str, int, int, tuple[str, ...]]]:
    assert bundle[:4] == b"NXB2"
    length = int.from_bytes(bundle[8:12], "little")
    index: dict[str, tuple[bool, str, int, int, tuple[str, ...]]] = marshal.loads(bundle[12 : 12 + length])
    return index


def test_the_bundle_holds_every_module_but_the_two_that_read_it(core_zip: Path) -> None:
    """Module names match their files; each code object unmarshals and names its own file."""
    with zipfile.ZipFile(core_zip) as archive:
        bundle = archive.read("python/nexs_serverless/_modules.bin")
        sources = {n.removeprefix("python/") for n in archive.namelist() if n.endswith(".py")}
    index = _bundle_index(bundle)
    base = 12 + int.from_bytes(bundle[8:12], "little")
    assert {entry[1] for entry in index.values()} == sources - {
        "nexs_serverless/__init__.py",
        "nexs_serverless/_preload.py",
    }
    assert index["nexs_serverless.exporters"][:2] == (True, "nexs_serverless/exporters/__init__.py")
    assert index["nexs_serverless.span"][:2] == (False, "nexs_serverless/span.py")
    for name, (_, relative, offset, length, _) in index.items():
        code = marshal.loads(bundle[base + offset : base + offset + length])
        assert code.co_filename == "/opt/python/" + relative, name


def test_the_bundle_records_each_module_s_module_level_imports(core_zip: Path) -> None:
    """What the bundle loads before a module's code: its bundled module-level imports, parents first."""
    with zipfile.ZipFile(core_zip) as archive:
        index = _bundle_index(archive.read("python/nexs_serverless/_modules.bin"))
    # invocation.py imports these at module level (`from .x import y`); its function-level ones
    # (triggers, tenancy...) are not loaded ahead.
    assert index["nexs_serverless.invocation"][4] == (
        "nexs_serverless._guard",
        "nexs_serverless._stats",
        "nexs_serverless._watchdog",
        "nexs_serverless.context",
        "nexs_serverless.flushing",
        "nexs_serverless.handler",
        "nexs_serverless.model",
        "nexs_serverless.platforms",
        "nexs_serverless.runtime",
        "nexs_serverless.span",
        "nexs_serverless.tracing",
    )
    # A submodule comes after its package; names the bundle lacks (the package itself) are left out.
    xray = index["nexs_serverless.platforms.aws"][4]
    assert xray.index("nexs_serverless.propagation") < xray.index("nexs_serverless.propagation._carrier")
    assert all(name in index for entry in index.values() for name in entry[4])
    assert all(name not in entry[4] for name, entry in index.items())


def test_a_dependency_that_imports_its_module_back_is_left_to_the_import_statement() -> None:
    """In an import cycle the other module must meet this one as the import system shows it."""
    graph = {"a": ("b", "c"), "b": ("a",), "c": ("d",), "d": (), "p": ("p.x",), "p.x": ("p", "d")}
    assert build.acyclic(graph) == {"a": ("c",), "b": (), "c": ("d",), "d": (), "p": (), "p.x": ("d",)}


def test_no_recorded_dependency_leads_back_to_its_module(core_zip: Path) -> None:
    """The bundle's dependency lists are cycle-free, so loading them first never changes a cycle."""
    with zipfile.ZipFile(core_zip) as archive:
        index = _bundle_index(archive.read("python/nexs_serverless/_modules.bin"))
    for name, entry in index.items():
        todo, seen = list(entry[4]), set(entry[4])
        while todo:
            current = todo.pop()
            assert current != name, f"{name} is reachable from its own dependencies"
            for following in index[current][4]:
                if following not in seen:
                    seen.add(following)
                    todo.append(following)


def test_module_dependencies_reads_only_unconditional_module_level_imports() -> None:
    """Imports in functions, ``if`` (TYPE_CHECKING) and ``try`` blocks may not run: not loaded ahead."""
    bundled = {"pkg.a", "pkg.b", "pkg.c", "pkg.sub", "pkg.sub.d", "pkg.sub.e", "pkg.f", "pkg.g"}
    source = """
from __future__ import annotations
import os
from . import a
from .b import thing
from .sub.d import other as renamed
import pkg.sub.e
from .. import outside
if TYPE_CHECKING:
    from .c import Hint
try:
    from .f import maybe
except ImportError:
    maybe = None
def later():
    from .g import lazily
"""
    assert build.module_dependencies(source, "pkg.mod", False, bundled) == (
        "pkg.a",
        "pkg.b",
        "pkg.sub",
        "pkg.sub.d",
        "pkg.sub.e",
    )
    # In a package's __init__, "." is the package itself; ".." its parent.
    assert build.module_dependencies("from . import d\nfrom .. import a\n", "pkg.sub", True, bundled) == (
        "pkg.sub.d",
        "pkg.a",
    )


def test_bytecode_runs_from_the_unpacked_layer(core_zip: Path, tmp_path: Path) -> None:
    """The unpacked layer imports with its precompiled bytecode, without writing any."""
    with zipfile.ZipFile(core_zip) as archive:
        archive.extractall(tmp_path)
    code = (
        "import nexs_serverless, sys; print(nexs_serverless.__file__); print(nexs_serverless.__spec__.cached)"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(tmp_path / 'python')!r}); {code}"],
        capture_output=True,
        text=True,
        check=True,
    )
    module_file, cached = result.stdout.split()
    assert module_file.startswith(str(tmp_path))
    assert Path(cached).exists()


def test_same_inputs_give_a_byte_identical_zip(core_zip: Path, tmp_path: Path) -> None:
    """Building again (bytecode included) gives the same bytes: fixed dates, order and modes."""
    again = build.build_layer(python_version=CURRENT, arch="x86_64", out_dir=tmp_path, precompile=True)
    assert again.read_bytes() == core_zip.read_bytes()


def test_core_layer_fits_the_size_budget(core_zip: Path) -> None:
    """The core layer (console, OTLP/HTTP, X-Ray) is at most 1 MiB zipped."""
    assert core_zip.stat().st_size <= build.CORE_BUDGET_BYTES


def test_the_attribute_check_is_compiled_for_this_machines_arch(core_zip: Path) -> None:
    """On this x86_64 machine the core layer ships `_speedups.abi3.so`, and not its C source."""
    assert build.HOST_ARCH == "x86_64"  # the core layer the tests build is x86_64
    with zipfile.ZipFile(core_zip) as archive:
        info = archive.getinfo("python/nexs_serverless/_speedups.abi3.so")
        names = archive.namelist()
    assert (info.external_attr >> 16) & 0o777 == 0o644
    assert info.file_size > 0
    assert "python/nexs_serverless/_speedups.c" not in names
    assert [name for name in names if name.endswith(".so")] == ["python/nexs_serverless/_speedups.abi3.so"]


def test_another_arch_ships_the_pure_python_check(tmp_path: Path) -> None:
    """No compiler for the other arch here: that layer has no binary and the package uses its Python loop."""
    other = next(arch for arch in build.ARCHES if arch != build.HOST_ARCH)
    path = build.build_layer(python_version="3.12", arch=other, out_dir=tmp_path, precompile=False)
    assert not [name for name in _names(path) if name.endswith(".so")]


SPEEDUPS_SOURCE = ROOT / "nexs_serverless" / "_speedups.c"


def test_the_compiled_check_is_built_and_loaded_by_the_target_interpreter(tmp_path: Path) -> None:
    """Compiled here, for this arch, and loaded by the interpreter it is for."""
    built = build.compile_speedups(SPEEDUPS_SOURCE, tmp_path, build.HOST_ARCH, sys.executable)
    assert built == tmp_path / build.SPEEDUPS
    assert stat.S_IMODE(built.stat().st_mode) == 0o644


@pytest.mark.parametrize("failure", ["compiler", "interpreter", "macos"])
def test_a_check_that_cannot_be_built_or_loaded_leaves_pure_python(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], failure: str
) -> None:
    """A failing compiler, a binary the target cannot load, or a non-Linux machine: no binary, no error."""
    interpreter = sys.executable
    if failure == "compiler":
        monkeypatch.setattr(build.shutil, "which", lambda name: "/bin/false")
    elif failure == "interpreter":
        interpreter = "/bin/false"
    else:
        monkeypatch.setattr(build.sys, "platform", "darwin")
    assert build.compile_speedups(SPEEDUPS_SOURCE, tmp_path, build.HOST_ARCH, interpreter) is None
    assert list(tmp_path.iterdir()) == []
    reported = capsys.readouterr().err
    if failure == "macos":
        assert reported == ""  # nothing to report: Lambda's binaries cannot be built there
    else:
        assert "shipping pure Python" in reported


def test_a_binary_left_in_the_source_tree_is_not_copied(tmp_path: Path) -> None:
    """`pip install -e` builds `_speedups` in place, for this machine: the layer compiles its own."""
    source = tmp_path / "src" / "nexs_serverless"
    source.mkdir(parents=True)
    (source / "__init__.py").write_text("")
    (source / "_speedups.abi3.so").write_bytes(b"in-place build")
    (source / "_speedups.cpython-311-x86_64-linux-gnu.so").write_bytes(b"another")
    build.copy_package(source, tmp_path / "out" / "nexs_serverless")
    assert [path.name for path in (tmp_path / "out" / "nexs_serverless").iterdir()] == ["__init__.py"]


def test_source_only_layer_has_no_bytecode(tmp_path: Path) -> None:
    """precompile=False ships sources only (no interpreter needed)."""
    path = build.build_layer(python_version="3.13", arch="arm64", out_dir=tmp_path, precompile=False)
    assert path.name.endswith("-python3.13-arm64.zip")
    assert not [n for n in _names(path) if "__pycache__" in n or n.endswith(".pyc")]


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("python_version", "3.9", "python_version '3.9'"),
        ("arch", "ppc64le", "arch 'ppc64le'"),
        ("extras", ("grpc", "nosuch"), "unknown extra(s) nosuch"),
        ("extras", ("dev",), "unknown extra(s) dev"),
    ],
)
def test_bad_options_are_refused_before_building(
    tmp_path: Path, option: str, value: object, message: str
) -> None:
    """An unsupported Python, architecture or extra raises LayerError naming it."""
    with pytest.raises(build.LayerError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build.build_layer(out_dir=tmp_path, precompile=False, **{option: value})
    assert not list(tmp_path.iterdir())


def test_extras_come_from_pyproject() -> None:
    """The extras table is read from pyproject.toml, by tomllib or by hand on 3.10."""
    text = (ROOT / "pyproject.toml").read_text()
    by_hand = build._optional_dependencies_by_hand(text)
    parsed = build.optional_dependencies(ROOT / "pyproject.toml")
    assert by_hand == parsed
    assert "grpcio>=1.60" in parsed["grpc"]


@pytest.mark.parametrize(
    ("requirement", "name"),
    [
        ("boto3>=1.28", "boto3"),
        ("azure-monitor-opentelemetry-exporter>=1.0.0b20", "azure-monitor-opentelemetry-exporter"),
        ("Google_Cloud.Trace[x] ; python_version>'3'", "google-cloud-trace"),
    ],
)
def test_requirement_names_are_normalised(requirement: str, name: str) -> None:
    """Requirement strings reduce to their normalised distribution name."""
    assert build.requirement_name(requirement) == name


def test_strip_removes_what_the_runtime_never_loads(tmp_path: Path) -> None:
    """Tests, caches, stubs, scripts, boto3/botocore and dist-info clutter go; licences and metadata stay."""
    site = tmp_path / "python"
    files = [
        "grpc/__init__.py",
        "grpc/_cython/cygrpc.cpython-312-x86_64-linux-gnu.so",
        "grpc/_cython/_cygrpc/grpc.pxi",
        "grpc/tests/test_x.py",
        "grpc/__pycache__/__init__.cpython-312.pyc",
        "grpc/__init__.pyi",
        "bin/some-script",
        "boto3/__init__.py",
        "botocore/__init__.py",
        "botocore-1.35.0.dist-info/METADATA",
        "grpcio-1.66.0.dist-info/METADATA",
        "grpcio-1.66.0.dist-info/RECORD",
        "grpcio-1.66.0.dist-info/WHEEL",
        "grpcio-1.66.0.dist-info/INSTALLER",
        "grpcio-1.66.0.dist-info/entry_points.txt",
        "grpcio-1.66.0.dist-info/licenses/LICENSE",
        "nexs_serverless/testing_helpers.py",
    ]
    for name in files:
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).write_text("x")
    build.strip(site)
    left = sorted(p.relative_to(site).as_posix() for p in site.rglob("*") if p.is_file())
    assert left == [
        "grpc/__init__.py",
        "grpc/_cython/cygrpc.cpython-312-x86_64-linux-gnu.so",
        "grpcio-1.66.0.dist-info/METADATA",
        "grpcio-1.66.0.dist-info/entry_points.txt",
        "grpcio-1.66.0.dist-info/licenses/LICENSE",
        "nexs_serverless/testing_helpers.py",
    ]


def test_cli_prints_the_built_zip_and_its_size(tmp_path: Path) -> None:
    """The script builds from the command line and prints the path and size of each zip."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_layer.py"), "--no-precompile", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    zip_path = next(tmp_path.glob("*.zip"))
    assert str(zip_path) in result.stdout
    assert f"{zip_path.stat().st_size:,d} bytes" in result.stdout
    assert "compiled attribute check" in result.stdout  # x86_64, this machine's arch


def test_cli_sam_option_writes_the_stable_name_the_template_uses(tmp_path: Path) -> None:
    """--sam also writes dist/nexs-serverless-layer.zip, the ContentUri of template.yaml."""
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "build_layer.py"),
            "--no-precompile",
            "--sam",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    versioned = next(p for p in tmp_path.glob("*.zip") if p.name != "nexs-serverless-layer.zip")
    assert (tmp_path / "nexs-serverless-layer.zip").read_bytes() == versioned.read_bytes()
    assert "ContentUri: dist/nexs-serverless-layer.zip" in (ROOT / "template.yaml").read_text()


def _interpreters() -> dict[str, str]:
    """The supported Pythons this machine has (pyenv's or on PATH), by version."""

    def find(version: str) -> str | None:
        try:
            return str(build.find_interpreter(version))
        except build.LayerError:
            return None

    return {version: path for version in build.PYTHON_VERSIONS if (path := find(version)) is not None}


def test_one_compiled_check_serves_every_python_it_meets(core_zip: Path, tmp_path: Path) -> None:
    """The stable-ABI binary of the core layer loads and checks attributes on each Python 3.10+ here."""
    with zipfile.ZipFile(core_zip) as archive:
        archive.extractall(tmp_path)
    site = tmp_path / "python"
    code = f"""
import json, sys
sys.path.insert(0, {str(site)!r})
from nexs_serverless import configure, tracer, tracing
from nexs_serverless.exporters import InMemoryExporter
configure(exporters=[InMemoryExporter()], environ={{}})
for _ in range(tracing.COMPILED_CHECK_AFTER + 1):
    with tracer.span("op", attributes={{"a": 1, "b": "two", "c": None}}) as span:
        pass
print(json.dumps([type(tracing._copy_plain).__name__, sys.modules["nexs_serverless._speedups"].__file__,
                  dict(span.attributes), span.dropped_attributes]))
"""
    interpreters = _interpreters()
    assert CURRENT in interpreters
    assert len(interpreters) >= 2, f"only {sorted(interpreters)}: the stable ABI needs another Python to show"
    for version, interpreter in sorted(interpreters.items()):
        out = subprocess.run([interpreter, "-I", "-c", code], capture_output=True, text=True, check=True)
        assert json.loads(out.stdout) == [
            "builtin_function_or_method",
            str(site / "nexs_serverless" / "_speedups.abi3.so"),
            {"a": 1, "b": "two"},
            1,
        ], version
