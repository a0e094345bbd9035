"""Build the Lambda layer zip: ``dist/nexs-serverless-layer-<version>-python<X.Y>-<arch>.zip``.

Layout (what Lambda extracts into ``/opt``)::

    python/nexs_serverless/...   on the Python runtimes' path (/opt/python)
    python/<dependencies>        only those the chosen extras need
    nexs-handler                 /opt/nexs-handler, the AWS_LAMBDA_EXEC_WRAPPER script (0755)

The core layer (console, OTLP/HTTP and X-Ray exporters) has no dependencies: it
is the package alone. Extras (``grpc``, ``gcp``, ``azure``, ``otel``: the
optional dependencies in pyproject.toml) are pip-installed for the target with
``--platform manylinux2014_<x86_64|aarch64> --only-binary=:all: --python-version``;
boto3/botocore (and s3transfer, jmespath) are never shipped: every Python
runtime has them. Tests, caches, ``__pycache__``, type stubs, C sources,
console scripts and dist-info clutter are stripped (dist-info keeps METADATA,
entry points and licences). Precompiling writes ``unchecked-hash`` bytecode
(PEP 552) with the target interpreter, because /opt is read-only on Lambda: the
runtime could not cache what it compiles, and would compile on every cold start.

The span start's attribute check (``nexs_serverless/_speedups.c``, one
function against the stable ABI) is compiled into ``_speedups.abi3.so`` when
this machine is Linux with glibc and has the target's architecture, a C
compiler and Python's headers (one binary for every Python 3.10+), and, when
the target interpreter is here, only if that interpreter loads it; otherwise
(or when compiling fails: a warning) the layer ships without it and the package
uses its Python loop (same results, about 0.4 us more per span). A binary left
in the source tree by ``pip install -e`` is never copied.

Reproducible: entries sorted, timestamps fixed (1980-01-01), permissions fixed
(0644, 0755 for the wrapper), bytecode with hash-based invalidation and
``PYTHONHASHSEED=0``: the same inputs give a byte-identical zip.

    python scripts/build_layer.py                       # python3.12, x86_64, core
    python scripts/build_layer.py --python 3.13 --arch arm64 --extras grpc
    python scripts/build_layer.py --all                 # 3.10-3.13 x x86_64/arm64, sizes printed
    python scripts/build_layer.py --python 3.12 --sam   # also dist/nexs-serverless-layer.zip for SAM

Also callable: ``build_layer(python_version="3.12", arch="arm64", extras=("grpc",))``.
"""

from __future__ import annotations

import argparse
import ast
import glob
import marshal
import os
import platform
import re
import shutil
import stat
import subprocess
import sys
import sysconfig
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON_VERSIONS = ("3.10", "3.11", "3.12", "3.13")
ARCHES = {"x86_64": "manylinux2014_x86_64", "arm64": "manylinux2014_aarch64"}
CORE_BUDGET_BYTES = 1024 * 1024

# Extras of pyproject.toml that are not back ends: `dev` is the tool chain, and `cli` is click for
# `nexs_serverless.cli`, which the layer leaves out (PACKAGE_EXCLUDES), so click would be dead weight.
NOT_FOR_THE_LAYER = ("cli", "dev")
# Shipped by every Lambda Python runtime; a copy in the layer only adds size and version skew.
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath")
# Parts of the package a function never imports at run time.
PACKAGE_EXCLUDES = ("testing", "cli", "events", "__pycache__")
PACKAGE_FILE_EXCLUDES = ("py.typed",)
STRIP_DIRS = {"tests", "test", "testing", "__pycache__", "bin"}
STRIP_SUFFIXES = (".pyc", ".pyo", ".pyi", ".pyx", ".pxd", ".pxi", ".c", ".h", ".cpp", ".hpp")
DIST_INFO_KEEP = ("METADATA", "entry_points.txt", "licenses", "LICENSE", "LICENCE", "COPYING", "NOTICE")
FIXED_DATE = (1980, 1, 1, 0, 0, 0)
WRAPPER = "nexs-handler"
SPEEDUPS = "_speedups.abi3.so"  # the stable-ABI name every CPython 3.10+ on Linux loads
HOST_ARCH = {"x86_64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine())
SAM_ZIP = "nexs-serverless-layer.zip"  # the stable name template.yaml points at


class LayerError(Exception):
    """The layer cannot be built as asked (bad option, missing interpreter, pip failure)."""


def build_layer(
    *,
    python_version: str = "3.12",
    arch: str = "x86_64",
    extras: Sequence[str] = (),
    out_dir: Path | None = None,
    precompile: bool = True,
    source_dir: Path = ROOT,
) -> Path:
    """Build one layer zip and return its path.

    Args:
        python_version: the target runtime, ``3.10`` to ``3.13``.
        arch: ``x86_64`` or ``arm64``.
        extras: optional back ends from pyproject.toml (``grpc``, ``gcp``, ``azure``, ``otel``).
        out_dir: where the zip goes (default: ``dist/`` of the repository).
        precompile: write bytecode for the target Python (needs that interpreter).
        source_dir: the repository holding ``nexs_serverless/`` and ``layer/``.

    Raises:
        LayerError: for an unsupported version, arch or extra, a missing
            interpreter, an output folder that cannot be created or written
            (checked before anything is built), or a failed pip install.
    """
    if isinstance(extras, str):  # set("grpc") would be the letters g, r, p, c
        raise LayerError(f"extras {extras!r}: a sequence of names such as ('grpc',), not a string")
    if python_version not in PYTHON_VERSIONS:
        raise LayerError(f"python_version {python_version!r}: expected one of {', '.join(PYTHON_VERSIONS)}")
    if arch not in ARCHES:
        raise LayerError(f"arch {arch!r}: expected one of {', '.join(ARCHES)}")
    available = optional_dependencies(source_dir / "pyproject.toml")
    unknown = sorted(set(extras) - set(available) | (set(NOT_FOR_THE_LAYER) & set(extras)))
    if unknown:
        choices = ", ".join(sorted(set(available) - set(NOT_FOR_THE_LAYER)))
        raise LayerError(f"unknown extra(s) {', '.join(unknown)}: expected some of {choices}")
    interpreter = find_interpreter(python_version) if precompile else None
    out_dir = Path(out_dir) if out_dir is not None else source_dir / "dist"
    version = project_version(source_dir / "pyproject.toml")
    suffix = "-" + "+".join(sorted(set(extras))) if extras else ""
    target = out_dir / f"nexs-serverless-layer-{version}-python{python_version}-{arch}{suffix}.zip"
    prepare_out_dir(out_dir)  # before the build's minute of pip: a wrong --out fails at once

    with tempfile.TemporaryDirectory(prefix="nexs-layer-") as tmp:
        stage = Path(tmp) / "opt"
        site = stage / "python"
        site.mkdir(parents=True)
        copy_package(source_dir / "nexs_serverless", site / "nexs_serverless")
        requirements = [req for name in sorted(set(extras)) for req in available[name]]
        requirements = [req for req in requirements if requirement_name(req) not in RUNTIME_PROVIDED]
        if requirements:
            pip_install(requirements, site, python_version, arch)
        strip(site)
        compile_speedups(
            source_dir / "nexs_serverless" / "_speedups.c", site / "nexs_serverless", arch, interpreter
        )
        if interpreter is not None:
            compile_bytecode(interpreter, site)
            write_module_bundle(site)
        wrapper = stage / WRAPPER
        shutil.copyfile(source_dir / "layer" / WRAPPER, wrapper)
        partial = target.with_suffix(".zip.partial")
        try:
            write_zip(stage, partial, executables={WRAPPER})
            partial.replace(target)
        except OSError as exc:  # the folder went away or filled up while building
            raise LayerError(f"cannot write {target}: {exc}") from exc
        finally:
            partial.unlink(missing_ok=True)
    return target


def prepare_out_dir(out_dir: Path) -> None:
    """Create `out_dir` (and its parents) and check that a file can be written in it.

    Raises:
        LayerError: when it is a file, under a file, on a read-only file system, or not ours
            to write (the message names the folder and the system's reason).
    """
    if out_dir.exists() and not out_dir.is_dir():
        raise LayerError(f"output folder {out_dir} is a file")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out_dir):
            pass
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise LayerError(f"output folder {out_dir}: cannot write there ({reason})") from exc


def optional_dependencies(pyproject: Path) -> dict[str, list[str]]:
    """``[project.optional-dependencies]`` of pyproject.toml."""
    text = pyproject.read_text()
    try:
        import tomllib
    except ImportError:  # Python 3.10: the table is simple enough to read by hand
        return _optional_dependencies_by_hand(text)
    data = tomllib.loads(text)
    extras: dict[str, list[str]] = data.get("project", {}).get("optional-dependencies", {})
    return extras


def _optional_dependencies_by_hand(text: str) -> dict[str, list[str]]:
    match = re.search(r"^\[project\.optional-dependencies\]\s*$(.*?)(?=^\[)", text, re.M | re.S)
    body = re.sub(r"#[^\n\"]*$", "", match.group(1) if match else "", flags=re.M)
    return {
        name: re.findall(r'"([^"]+)"', items)
        for name, items in re.findall(r"^([\w-]+)\s*=\s*\[(.*?)\]\s*$", body, re.M | re.S)
    }


def project_version(pyproject: Path) -> str:
    """``version`` of the ``[project]`` table."""
    match = re.search(r'^version\s*=\s*"([^"]+)"', pyproject.read_text(), re.M)
    if not match:
        raise LayerError(f"no version in {pyproject}")
    return match.group(1)


def requirement_name(requirement: str) -> str:
    """The normalised distribution name of a requirement string (``grpcio>=1.60`` -> ``grpcio``)."""
    name = re.split(r"[\s\[<>=!~;]", requirement.strip(), maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def find_interpreter(python_version: str) -> str:
    """An interpreter of the target version: pyenv's, ``pythonX.Y`` on PATH, or this one.

    Each candidate is asked for its version, so a shim that is not set up is skipped.
    """
    root = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    candidates = sorted(glob.glob(f"{root}/versions/{python_version}.*/bin/python"), reverse=True)
    on_path = shutil.which(f"python{python_version}")
    if on_path:
        candidates.append(on_path)
    candidates.append(sys.executable)
    for candidate in candidates:
        result = subprocess.run(
            [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode == 0 and result.stdout.strip() == python_version:
            return candidate
    raise LayerError(
        f"precompiling for Python {python_version} needs that interpreter "
        f"(pyenv's, or python{python_version} on PATH); or build without bytecode "
        "(--no-precompile, or precompile=False from code)"
    )


def copy_package(source: Path, destination: Path) -> None:
    """The package's sources, without the parts a function never imports."""
    # "*.so": an in-place build's binary is for this machine, not the target (see `compile_speedups`).
    ignore = shutil.ignore_patterns(*PACKAGE_EXCLUDES, *PACKAGE_FILE_EXCLUDES, "*.pyc", "*.so", "*.pyd")

    def ignore_top_level_only(directory: str, names: list[str]) -> set[str]:
        ignored = set(ignore(directory, names))
        if Path(directory) != source:  # `testing`, `cli` and `events` are excluded at the top only
            ignored -= {"testing", "cli", "events"}
        return ignored

    shutil.copytree(source, destination, ignore=ignore_top_level_only)


def compile_speedups(source: Path, package: Path, arch: str, interpreter: str | None = None) -> Path | None:
    """Compile the attribute check into ``package/_speedups.abi3.so`` when this machine can, for `arch`.

    Only on Linux with glibc, the platform Lambda runs (a macOS or musl binary would not
    load there), for the target's architecture when it is this machine's, and with a C
    compiler and ``Python.h``. When `interpreter` (the target's) is given, the binary must
    load in it. Otherwise, or when compiling fails, returns None: the layer ships pure
    Python, the same spans a little slower, and a failure is reported on stderr. Flags are
    fixed and nothing path-dependent is kept (no debug information, symbols stripped), so
    on a given machine the binary, like the zip, is the same from one build to the next.
    """
    compiler = shutil.which("cc") or shutil.which("gcc")
    include = sysconfig.get_paths()["include"]
    linux_glibc = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    if not linux_glibc or arch != HOST_ARCH or compiler is None or not (Path(include) / "Python.h").is_file():
        return None
    target = package / SPEEDUPS
    command = [compiler, "-shared", "-fPIC", "-O2", "-g0", "-s", "-DNDEBUG", f"-I{include}"]
    command += [str(source), "-o", str(target)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        target.unlink(missing_ok=True)
        print(
            f"build_layer: compiling {source.name} failed, shipping pure Python:\n{result.stderr}",
            file=sys.stderr,
        )
        return None
    if interpreter is not None:
        check = (
            "import importlib.util as u; s = u.spec_from_file_location('nexs_serverless._speedups', "
            f"{str(target)!r}); m = u.module_from_spec(s); s.loader.exec_module(m); "
            "assert m.copy_plain({}, {'a': 1}) is True"
        )
        loaded = subprocess.run([interpreter, "-I", "-c", check], capture_output=True, text=True, check=False)
        if loaded.returncode != 0:
            target.unlink()
            print(
                f"build_layer: {SPEEDUPS} does not load in {interpreter}, shipping pure Python:\n"
                f"{loaded.stderr}",
                file=sys.stderr,
            )
            return None
    target.chmod(0o644)
    return target


def pip_install(requirements: Iterable[str], target: Path, python_version: str, arch: str) -> None:
    """Install wheels for the target platform and Python into `target` (no bytecode, no scripts)."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
        "--target",
        str(target),
        "--platform",
        ARCHES[arch],
        "--implementation",
        "cp",
        "--python-version",
        python_version,
        "--only-binary=:all:",
        *requirements,
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise LayerError(f"pip install failed:\n{result.stdout}\n{result.stderr}")


def strip(site: Path) -> None:
    """Remove what the runtime never loads: tests, caches, stubs, sources, scripts, dist-info clutter."""
    for name in RUNTIME_PROVIDED:
        for path in [site / name, *site.glob(f"{name}-*.dist-info")]:
            _remove(path)
    for path in sorted(site.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if not path.exists():
            continue
        relative = path.relative_to(site)
        inside_dist_info = any(part.endswith(".dist-info") for part in relative.parts[:1])
        if inside_dist_info:
            if len(relative.parts) > 1 and not relative.parts[1].startswith(DIST_INFO_KEEP):
                _remove(path)
        elif path.is_dir():
            if path.name == "__pycache__" or (
                path.name in STRIP_DIRS and relative.parts[0] != "nexs_serverless"
            ):
                _remove(path)
        elif path.name.endswith(STRIP_SUFFIXES):
            _remove(path)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def compile_bytecode(interpreter: str, site: Path) -> None:
    """Write ``unchecked-hash`` .pyc files next to the sources, with paths as Lambda sees them."""
    command = [
        interpreter,
        "-m",
        "compileall",
        "-q",
        "--invalidation-mode",
        "unchecked-hash",
        "-s",
        str(site),
        "-p",
        "/opt/python",
        str(site),
    ]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    env.pop("PYTHONPATH", None)
    result = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    if result.returncode != 0:
        raise LayerError(f"compileall failed:\n{result.stdout}\n{result.stderr}")


# The package's own loader and what runs it: they load the usual way, before the bundle can.
_LOADED_AS_FILES = ("nexs_serverless/__init__.py", "nexs_serverless/_preload.py")


def write_module_bundle(site: Path) -> Path:
    """Put the compiled code of the package's modules into one file, ``nexs_serverless/_modules.bin``.

    The package's ``__init__`` serves its modules from it (``nexs_serverless/_preload.py`` has
    the why and the layout), saving the import system's per-module search and file handling at
    every cold start. The code is the .pyc files' own, so the bundle is as reproducible as they
    are; those .pyc files are then removed (they would only double the layer's size: a Python
    that cannot use the bundle cannot use them either). ``__init__`` and ``_preload`` keep theirs
    and load the usual way.

    Raises:
        LayerError: when a module has no bytecode or two disagree on the Python version.
    """
    package = site / "nexs_serverless"
    index: dict[str, tuple[bool, str, int, int, tuple[str, ...]]] = {}
    blobs: list[bytes] = []
    magic: bytes | None = None
    offset = 0
    sources = {
        _module_name(source.relative_to(site)): source
        for source in sorted(package.rglob("*.py"), key=lambda path: path.relative_to(site).as_posix())
        if source.relative_to(site).as_posix()
        not in ("nexs_serverless/__init__.py", "nexs_serverless/_preload.py")
    }
    graph = acyclic(
        {
            name: module_dependencies(
                source.read_text(encoding="utf-8"), name, source.name == "__init__.py", set(sources)
            )
            for name, source in sources.items()
        }
    )
    for name, source in sources.items():
        relative = source.relative_to(site)
        compiled = sorted((source.parent / "__pycache__").glob(f"{source.stem}.*.pyc"))
        if len(compiled) != 1:
            raise LayerError(f"expected one .pyc for {relative}, found {len(compiled)}")
        data = compiled[0].read_bytes()
        if magic is None:
            magic = data[:4]
        elif data[:4] != magic:
            raise LayerError(f"{compiled[0]} is compiled for another Python version")
        is_package = source.name == "__init__.py"
        code = data[16:]  # after the .pyc header: magic, flags, hash or date and size
        index[name] = (is_package, relative.as_posix(), offset, len(code), graph[name])
        blobs.append(code)
        offset += len(code)
        compiled[0].unlink()
    if magic is None:
        raise LayerError("no bytecode to bundle")
    for cache in package.rglob("__pycache__"):
        if not any(cache.iterdir()):
            cache.rmdir()
    head = marshal.dumps(index)
    bundle = package / "_modules.bin"
    # The layout `nexs_serverless._preload.install` reads: header, magic, index length, index, code.
    bundle.write_bytes(b"NXB2" + magic + len(head).to_bytes(4, "little") + head + b"".join(blobs))
    return bundle


def _module_name(relative: Path) -> str:
    """``nexs_serverless.exporters`` for ``nexs_serverless/exporters/__init__.py``, and so on.

    Interned: the index names a module once as a key and again in others' dependencies, and
    `marshal` writes a repeated object as a back-reference, so the same object keeps the index
    (read at every cold start) half the size.
    """
    parts = relative.parent.parts if relative.name == "__init__.py" else relative.with_suffix("").parts
    return sys.intern(".".join(parts))


def acyclic(graph: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    """`graph` without the dependencies that lead back to their module (import cycles).

    Loading a dependency before its module's code runs is what an import at the
    top would do, except in a cycle: there the other module would meet this one
    empty, where the import system would show it everything defined above the
    import line. Such a dependency is left to the module's own import statement.
    """

    def reaches(start: str, goal: str) -> bool:
        seen, todo = {start}, [start]
        while todo:
            for following in graph.get(todo.pop(), ()):
                if following == goal:
                    return True
                if following not in seen:
                    seen.add(following)
                    todo.append(following)
        return False

    return {name: tuple(dep for dep in deps if not reaches(dep, name)) for name, deps in graph.items()}


def module_dependencies(source: str, name: str, is_package: bool, bundled: set[str]) -> tuple[str, ...]:
    """The bundled modules `source` imports unconditionally at module level, parents first, in order.

    What the bundle loads before running a module's code (`_preload.BundleFinder`), without
    the import system's search; imports inside functions, ``if`` and ``try`` blocks are left
    to run as written, since they may not happen.
    """
    package = name if is_package else name.rpartition(".")[0]
    found: list[str] = []
    for node in ast.parse(source).body:
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            candidates = [target] + [f"{target}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        else:
            continue
        for candidate in candidates:
            parts = candidate.split(".")
            for end in range(1, len(parts) + 1):
                module = ".".join(parts[:end])
                if module in bundled and module != name and module not in found:
                    found.append(sys.intern(module))
    return tuple(found)


def unpack(archive: Path, destination: Path) -> None:
    """Extract `archive` as Lambda does: each file under `destination` with the mode the zip records.

    `zipfile.extractall` drops the modes, and ``/opt/nexs-handler`` must stay executable.
    """
    with zipfile.ZipFile(archive) as layer:
        for info in layer.infolist():
            target = destination / info.filename
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(layer.read(info))
            target.chmod(stat.S_IMODE(info.external_attr >> 16) or 0o644)


def write_zip(stage: Path, target: Path, *, executables: Iterable[str] = ()) -> None:
    """Zip `stage` reproducibly: sorted entries, fixed dates and permissions, no directory entries."""
    executable = set(executables)
    files = sorted(path for path in stage.rglob("*") if path.is_file())
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in files:
            name = path.relative_to(stage).as_posix()
            info = zipfile.ZipInfo(name, date_time=FIXED_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, so Lambda applies the permissions below
            info.external_attr = (0o100755 if name in executable else 0o100644) << 16
            archive.writestr(info, path.read_bytes(), compresslevel=9)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--python", default="3.12", choices=PYTHON_VERSIONS, dest="python_version")
    parser.add_argument("--arch", default="x86_64", choices=sorted(ARCHES))
    parser.add_argument("--extras", default="", help="comma list: grpc, gcp, azure, otel")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: dist/)")
    parser.add_argument("--no-precompile", action="store_true", help="ship sources only")
    parser.add_argument("--all", action="store_true", help="every supported Python and arch")
    parser.add_argument(
        "--sam", action="store_true", help=f"also write {SAM_ZIP}, the ContentUri of template.yaml"
    )
    args = parser.parse_args(argv)
    if args.sam and args.all:
        parser.error("--sam takes one Python and arch, not --all")
    extras = tuple(item.strip() for item in args.extras.split(",") if item.strip())
    matrix = (
        [(v, a) for v in PYTHON_VERSIONS for a in sorted(ARCHES)]
        if args.all
        else [(args.python_version, args.arch)]
    )
    try:
        for python_version, arch in matrix:
            path = build_layer(
                python_version=python_version,
                arch=arch,
                extras=extras,
                out_dir=args.out,
                precompile=not args.no_precompile,
            )
            size = path.stat().st_size
            with zipfile.ZipFile(path) as archive:
                compiled = f"python/nexs_serverless/{SPEEDUPS}" in archive.namelist()
            part = "compiled attribute check" if compiled else "pure Python (no compiler for this arch here)"
            print(f"{path}  {size:>10,d} bytes  {size / 1024 / 1024:6.2f} MiB  {part}")
            if args.sam:
                try:
                    shutil.copyfile(path, path.parent / SAM_ZIP)
                except OSError as exc:
                    raise LayerError(f"cannot write {path.parent / SAM_ZIP}: {exc}") from exc
                print(f"{path.parent / SAM_ZIP}  (for sam build / sam deploy)")
    except LayerError as exc:
        print(f"build_layer: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
