"""The layer's module bundle (``_modules.bin``): files, tracebacks and fallbacks stay intact."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from support.layer import core_layer


@pytest.fixture(scope="module")
def unpacked(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The core layer unpacked (its ``python/`` folder), as Lambda mounts it under /opt."""
    folder = tmp_path_factory.mktemp("opt")
    with zipfile.ZipFile(core_layer(tmp_path_factory)) as archive:
        archive.extractall(folder)
    return folder / "python"


def _run(site: Path, code: str) -> Any:
    """Run `code` in a fresh interpreter with `site` first on the path; its last line is JSON."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "NEXS_", "AWS_"))}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    prelude = f"import sys\nsys.path.insert(0, {str(site)!r})\n"
    result = subprocess.run(
        [sys.executable, "-I", "-c", prelude + code], capture_output=True, text=True, env=env, check=True
    )
    return json.loads(result.stdout.splitlines()[-1])


# A handler traced into an in-memory exporter, for the snippets below.
TRACED_HANDLER = """
import json
from nexs_serverless import configure, traced_handler, tracer
from nexs_serverless.exporters import InMemoryExporter

exporter = InMemoryExporter()
configure(exporters=[exporter])

@traced_handler
def handler(event, context):
    with tracer.span("work"):
        return {"statusCode": 200}
"""


def test_modules_come_from_the_bundle_with_their_real_files(unpacked: Path) -> None:
    """A traced invocation runs on bundled modules; __file__, __path__ and tracebacks name the files."""
    out = _run(
        unpacked,
        TRACED_HANDLER
        + """
import traceback
from nexs_serverless.propagation import _carrier

result = handler({"rawPath": "/x", "requestContext": {"http": {"method": "GET"}}, "version": "2.0"}, None)
try:
    _carrier.hex_ids("not an int", 1)
except TypeError:
    frames = traceback.extract_tb(sys.exc_info()[2])
spans = sorted(s.name for s in exporter.get_finished_spans())
from nexs_serverless import tracing
for _ in range(tracing.COMPILED_CHECK_AFTER + 1):  # enough spans to load the compiled check
    with tracer.span("more", attributes={"k": 1}):
        pass
mods = {n: m for n, m in sys.modules.items() if n.startswith("nexs_serverless")}
print(json.dumps({
    "result": result,
    "spans": spans,
    "loaders": sorted({type(m.__spec__.loader).__name__ for n, m in mods.items()
                       if n.rpartition(".")[2] not in ("nexs_serverless", "_preload", "_speedups")}),
    "speedups": [type(mods["nexs_serverless._speedups"].__spec__.loader).__name__,
                 mods["nexs_serverless._speedups"].__file__],
    "own_loaders": [type(mods[n].__spec__.loader).__name__
                    for n in ("nexs_serverless", "nexs_serverless._preload")],
    "span_file": mods["nexs_serverless.span"].__file__,
    "span_cached": mods["nexs_serverless.span"].__cached__,
    "exporters_path": list(mods["nexs_serverless.exporters"].__path__),
    "frame_file": frames[-1].filename,
    "frame_line": frames[-1].line,
}))
""",
    )
    assert out["result"] == {"statusCode": 200}
    assert len(out["spans"]) == 2
    assert "work" in out["spans"]
    assert out["loaders"] == ["BundleFinder"]
    # The compiled attribute check, built for this machine's architecture, loads as an extension.
    assert out["speedups"] == ["ExtensionFileLoader", str(unpacked / "nexs_serverless" / "_speedups.abi3.so")]
    assert out["own_loaders"] == ["SourceFileLoader", "SourceFileLoader"]
    assert out["span_file"] == str(unpacked / "nexs_serverless" / "span.py")
    assert out["span_cached"] == str(unpacked / "nexs_serverless" / "_modules.bin")  # its code
    assert out["exporters_path"] == [str(unpacked / "nexs_serverless" / "exporters")]
    assert out["frame_file"] == str(unpacked / "nexs_serverless" / "propagation" / "_carrier.py")
    assert "%032x" in str(out["frame_line"])  # linecache found the source line through the real file


def test_a_module_outside_the_bundle_and_a_reload_use_the_files(unpacked: Path, tmp_path: Path) -> None:
    """Modules the bundle lacks load from their files; so does one reloaded after the bundle served it."""
    site = tmp_path / "python"
    shutil.copytree(unpacked, site)
    (site / "nexs_serverless" / "exporters" / "added_later.py").write_text("VALUE = 42\n")
    out = _run(
        site,
        """
import importlib, json
import nexs_serverless.exporters.added_later as added
import nexs_serverless.exporters.console as console
first = type(console.__spec__.loader).__name__
console = importlib.reload(console)
print(json.dumps({"added": [added.VALUE, type(added.__spec__.loader).__name__],
                  "console": [first, type(console.__spec__.loader).__name__]}))
""",
    )
    assert out["added"] == [42, "SourceFileLoader"]
    assert out["console"] == ["BundleFinder", "SourceFileLoader"]


@pytest.mark.parametrize("damage", ["other_python", "not_a_bundle", "truncated_index"])
def test_a_bundle_this_python_cannot_use_is_ignored(unpacked: Path, tmp_path: Path, damage: str) -> None:
    """A bundle for another Python version, or a damaged one, leaves every import to the files."""
    site = tmp_path / "python"
    shutil.copytree(unpacked, site)
    bundle = site / "nexs_serverless" / "_modules.bin"
    data = bytearray(bundle.read_bytes())
    if damage == "other_python":
        data[4:6] = (int.from_bytes(data[4:6], "little") + 1).to_bytes(2, "little")
    elif damage == "not_a_bundle":
        data[:4] = b"ZIP!"
    else:
        del data[20:]
    bundle.write_bytes(bytes(data))
    out = _run(
        site,
        """
import json
from nexs_serverless import traced_handler
import nexs_serverless.span as span
print(json.dumps({"loader": type(span.__spec__.loader).__name__,
                  "finders": sorted({type(f).__name__ for f in sys.path_importer_cache.values()})}))
""",
    )
    assert out["loader"] == "SourceFileLoader"
    assert not {"PackageFolder", "FolderFinder"} & set(out["finders"])


def test_the_bundle_keeps_the_import_lean(unpacked: Path) -> None:
    """From the standard library, importing the layer's package still adds only what the source tree does."""
    out = _run(
        unpacked,
        """
import json
before = set(sys.modules)
import nexs_serverless
from nexs_serverless import traced_handler

@traced_handler
def handler(event, context):
    return 1

print(json.dumps(sorted(m for m in set(sys.modules) - before if not m.startswith("nexs_serverless"))))
""",
    )
    assert set(out) <= {"_weakrefset", "threading"}


def test_a_module_whose_code_is_damaged_in_the_bundle_compiles_from_its_source(
    unpacked: Path, tmp_path: Path
) -> None:
    """A bundle cut short after its index still imports: the missing modules compile from the files."""
    site = tmp_path / "python"
    shutil.copytree(unpacked, site)
    bundle = site / "nexs_serverless" / "_modules.bin"
    data = bundle.read_bytes()
    code_start = 12 + int.from_bytes(data[8:12], "little")
    bundle.write_bytes(data[: code_start + 100])
    out = _run(
        site,
        TRACED_HANDLER
        + """
import nexs_serverless.span as span
print(json.dumps({"result": handler({}, None), "spans": len(exporter.get_finished_spans()),
                  "loader": type(span.__spec__.loader).__name__}))
""",
    )
    assert out == {"result": {"statusCode": 200}, "spans": 2, "loader": "BundleFinder"}


IMPORT_AUDIT = """
import json
through_import_system = []

def audit(event, args):
    if event == "import" and str(args[0]).startswith("nexs_serverless"):
        through_import_system.append(args[0])

sys.addaudithook(audit)
from nexs_serverless import traced_handler

@traced_handler
def handler(event, context):
    return 1

print(json.dumps({
    "through_import_system": through_import_system,
    "loaded": sorted(n for n in sys.modules if n.startswith("nexs_serverless")),
    "span_loader": type(sys.modules["nexs_serverless.span"].__spec__.loader).__name__,
}))
"""


def test_the_import_loads_its_modules_at_once_and_only_those(unpacked: Path, tmp_path: Path) -> None:
    """`import nexs_serverless` runs its modules from the bundle without the import system's search.

    The audit event ``import`` fires for every module the import system looks for: from the layer
    only the package and `_preload` (which load the usual way) may pass through it; and the
    modules loaded are exactly those a source checkout's import loads, so `__init__`'s list is
    neither short (a module would go through the search) nor long (a module loaded for nothing).
    """
    layer = _run(unpacked, IMPORT_AUDIT)
    source_site = tmp_path / "source"
    source_site.mkdir()
    shutil.copytree(Path(__file__).resolve().parents[1] / "nexs_serverless", source_site / "nexs_serverless")
    (source_site / "nexs_serverless" / "_modules.bin").unlink(missing_ok=True)
    source = _run(source_site, IMPORT_AUDIT)
    assert layer["through_import_system"] == ["nexs_serverless", "nexs_serverless._preload"]
    assert layer["span_loader"] == "BundleFinder"
    assert set(layer["loaded"]) == set(source["loaded"]) | {"nexs_serverless._preload"}
    assert "nexs_serverless.span" in source["through_import_system"]  # the audit does see submodules


def _replace_in_bundle(bundle: Path, name: str, source: str) -> None:
    """Give module `name` in `bundle` the compiled `source` (appended; the index points at it)."""
    import marshal

    data = bundle.read_bytes()
    length = int.from_bytes(data[8:12], "little")
    index = marshal.loads(data[12 : 12 + length])
    code = marshal.dumps(compile(source, index[name][1], "exec"))
    body = data[12 + length :]
    index[name] = (index[name][0], index[name][1], len(body), len(code), index[name][4])
    head = marshal.dumps(index)
    bundle.write_bytes(data[:8] + len(head).to_bytes(4, "little") + head + body + code)


def test_a_module_that_raises_while_loaded_at_once_fails_the_import_as_usual(
    unpacked: Path, tmp_path: Path
) -> None:
    """The error reaches the importer unchanged, and the half-run module is not left in sys.modules."""
    site = tmp_path / "python"
    shutil.copytree(unpacked, site)
    _replace_in_bundle(
        site / "nexs_serverless" / "_modules.bin",
        "nexs_serverless.model",
        "raise LookupError('broken model')\n",
    )
    out = _run(
        site,
        """
import json, traceback
try:
    import nexs_serverless
except LookupError as error:
    frames = traceback.extract_tb(error.__traceback__)
    print(json.dumps({
        "error": str(error),
        "last_frame": frames[-1].filename,
        "model_left": "nexs_serverless.model" in sys.modules,
        "loaded_before": "nexs_serverless.config" in sys.modules,
        "package_left": "nexs_serverless" in sys.modules,
    }))
""",
    )
    assert out == {
        "error": "broken model",
        "last_frame": str(site / "nexs_serverless" / "model.py"),
        "model_left": False,
        "loaded_before": True,
        "package_left": False,
    }


def test_a_module_another_thread_imports_meanwhile_is_not_run_twice(unpacked: Path) -> None:
    """Between `load()`'s look at sys.modules and its module lock, another thread imports the module.

    `load()` looks again under the lock and keeps that module: one module object, bound on
    the package, and no "already loaded from the bundle" error. (The interleaving is forced
    by wrapping importlib's lock manager, which `load()` takes for each module.)
    """
    out = _run(
        unpacked,
        """
import importlib, json, threading
import _frozen_importlib as bootstrap

real = bootstrap._ModuleLockManager
main = threading.main_thread()
other = []

class Interleaving:
    def __init__(self, name):
        self.name, self.inner = name, real(name)
    def __enter__(self):
        if self.name == "nexs_serverless.config" and threading.current_thread() is main and not other:
            thread = threading.Thread(target=lambda: other.append(importlib.import_module(self.name)))
            thread.start()
            thread.join()
        return self.inner.__enter__()
    def __exit__(self, *exc):
        return self.inner.__exit__(*exc)

bootstrap._ModuleLockManager = Interleaving
import nexs_serverless
config = sys.modules["nexs_serverless.config"]
print(json.dumps({"other_thread_got_it": bool(other), "same": other[0] is config,
                  "bound": nexs_serverless.config is config,
                  "loader": type(config.__spec__.loader).__name__}))
""",
    )
    assert out == {"other_thread_got_it": True, "same": True, "bound": True, "loader": "BundleFinder"}


def test_the_bundle_is_asked_only_for_the_package_s_own_modules(unpacked: Path) -> None:
    """Its finders sit on the package's folders, not on `sys.meta_path`: other imports never call it."""
    out = _run(
        unpacked,
        """
import json
import nexs_serverless
from nexs_serverless import _preload

asked = []
original = _preload.BundleFinder.find_spec
def spy(self, name, *args):
    asked.append(name)
    return original(self, name, *args)
_preload.BundleFinder.find_spec = spy

import csv, xml.dom.minidom  # not imported yet: searched through the path
import nexs_serverless.exporters.console
from nexs_serverless.propagation import b3
folders = {path: type(finder).__name__ for path, finder in sys.path_importer_cache.items()
           if path.startswith(nexs_serverless.__path__[0])}
print(json.dumps({"asked": asked, "folders": folders,
                  "meta_path": [type(f).__name__ for f in sys.meta_path]}))
""",
    )
    assert {"nexs_serverless.exporters.console", "nexs_serverless.propagation.b3"} <= set(out["asked"])
    assert all(name.startswith("nexs_serverless.") for name in out["asked"])  # never csv, xml, ...
    assert "BundleFinder" not in out["meta_path"]
    package = str(unpacked / "nexs_serverless")
    assert out["folders"][package] == "PackageFolder"
    assert out["folders"][package + "/exporters"] == "PackageFolder"
    assert out["folders"][package + "/propagation"] == "PackageFolder"


def test_the_layer_folder_answers_misses_itself_and_still_finds_what_it_holds(
    unpacked: Path, tmp_path: Path
) -> None:
    """After the import, the folder's `FileFinder` sees only names the folder has, even ones added later."""
    site = tmp_path / "python"
    shutil.copytree(unpacked, site)
    (site / "other_layer_module.py").write_text("VALUE = 1\n")
    (site / "other_layer_package").mkdir()
    (site / "other_layer_package" / "__init__.py").write_text("VALUE = 2\n")
    (site / "namespace_part").mkdir()
    (site / "namespace_part" / "inner.py").write_text("VALUE = 3\n")
    out = _run(
        site,
        f"""
import importlib.util, json, os, time
import nexs_serverless
folder = sys.path_importer_cache[{str(site)!r}]
stand_in = folder.find_spec.__self__  # the FolderFinder installed on the folder's FileFinder
asked = []
original = stand_in._find  # the FileFinder's own search
def spy(name, target=None):
    asked.append(name)
    return original(name, target)
stand_in._find = spy

import csv, xml.dom.minidom  # misses in the layer folder: answered without the FileFinder
import other_layer_module, other_layer_package, namespace_part.inner
found = [other_layer_module.VALUE, other_layer_package.VALUE, namespace_part.inner.VALUE]
missing = importlib.util.find_spec("not_there_at_all")
with open({str(site / "added_later.py")!r}, "w") as added:
    added.write("VALUE = 4\\n")
os.utime({str(site)!r}, ns=(time.time_ns(), time.time_ns() + 10**9))  # the folder's mtime moves on
import added_later
print(json.dumps({{"finder": [type(folder).__name__, type(stand_in).__name__], "asked": asked,
                  "found": found + [added_later.VALUE], "missing": missing is None}}))
""",
    )
    assert out["finder"] == ["FileFinder", "FolderFinder"]
    assert out["found"] == [1, 2, 3, 4]
    assert out["missing"] is True
    # Only the names the folder holds reached its FileFinder: csv, xml, not_there_at_all did not.
    holds = ["added_later", "namespace_part", "other_layer_module", "other_layer_package"]
    assert sorted(out["asked"]) == holds


def test_the_layer_folder_finder_refreshes_on_invalidate_caches(tmp_path: Path) -> None:
    """`importlib.invalidate_caches()` makes it list the folder again, as it does a `FileFinder`."""
    import importlib.machinery

    from nexs_serverless._preload import FolderFinder

    folder = tmp_path / "site"
    folder.mkdir()
    (folder / "first.py").write_text("")
    loaders = importlib.machinery.FileFinder.path_hook(
        (importlib.machinery.SourceFileLoader, importlib.machinery.SOURCE_SUFFIXES)
    )
    finder = FolderFinder(loaders(str(folder)))
    assert finder.find_spec("first") is not None
    assert finder.find_spec("second") is None
    mtime = os.stat(folder).st_mtime_ns
    (folder / "second.py").write_text("")
    os.utime(folder, ns=(mtime, mtime))  # the same mtime: only an invalidation can reveal the file
    assert finder.find_spec("second") is None
    finder.invalidate_caches()
    spec = finder.find_spec("second")
    assert spec is not None
    assert spec.origin == str(folder / "second.py")


def test_pkgutil_and_pkg_resources_still_list_the_layer_folder_and_the_package(
    unpacked: Path, tmp_path: Path
) -> None:
    """The finders that tools recognise by class stay `FileFinder`s or answer `iter_modules` themselves."""
    site = tmp_path / "python"
    shutil.copytree(unpacked, site)
    (site / "other_layer_module.py").write_text("")
    (site / "demo-1.0.dist-info").mkdir()
    (site / "demo-1.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n")
    out = _run(
        site,
        f"""
import json, pkgutil, warnings
import nexs_serverless, nexs_serverless.exporters
warnings.simplefilter("ignore")
import pkg_resources
print(json.dumps({{
    "site": sorted(name for _, name, _ in pkgutil.iter_modules([{str(site)!r}])),
    "package": sorted(name for _, name, _ in pkgutil.iter_modules(nexs_serverless.__path__)),
    "exporters": sorted(name for _, name, _ in pkgutil.walk_packages(nexs_serverless.exporters.__path__)),
    "distributions": sorted(d.project_name for d in pkg_resources.find_distributions({str(site)!r})),
}}))
""",
    )
    assert out["site"] == ["nexs_serverless", "other_layer_module"]
    assert {"handler", "span", "tracing", "propagation", "exporters"} <= set(out["package"])
    assert {"otlp_http", "console", "resilient"} <= set(out["exporters"])
    assert out["distributions"] == ["demo"]


def test_a_module_another_thread_failed_to_load_is_left_to_the_import_system(unpacked: Path) -> None:
    """`load` finds the entry gone (a failed load elsewhere): it skips, and an import reads the file."""
    out = _run(
        unpacked,
        """
import json
import nexs_serverless
finder = sys.path_importer_cache[nexs_serverless.__path__[0]]._bundle
name = "nexs_serverless.exporters.console"
finder.load(["nexs_serverless.exporters"])
finder._index.pop(name)  # what a load that raised in another thread leaves behind
finder.load([name])  # no "already loaded from the bundle" error
skipped = name not in sys.modules
import nexs_serverless.exporters.console as console
print(json.dumps([skipped, type(console.__spec__.loader).__name__]))
""",
    )
    assert out == [True, "SourceFileLoader"]


def test_the_folder_finder_is_installed_once_and_not_where_case_is_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second install leaves the first in place; ``PYTHONCASEOK`` keeps the plain `FileFinder`."""
    import importlib.machinery

    from nexs_serverless._preload import FolderFinder, speed_up_folder

    (tmp_path / "module_here.py").write_text("")
    site = str(tmp_path)
    hook = importlib.machinery.FileFinder.path_hook(
        (importlib.machinery.SourceFileLoader, importlib.machinery.SOURCE_SUFFIXES)
    )
    monkeypatch.setitem(sys.path_importer_cache, site, hook(site))
    monkeypatch.setenv("PYTHONCASEOK", "1")
    assert speed_up_folder(site) is None
    monkeypatch.delenv("PYTHONCASEOK")
    first = speed_up_folder(site)
    assert isinstance(first, FolderFinder)
    assert speed_up_folder(site) is None  # already installed: not wrapped twice
    finder = sys.path_importer_cache[site]
    assert type(finder) is importlib.machinery.FileFinder
    assert finder.find_spec("not_here") is None
    spec = finder.find_spec("module_here")
    assert spec is not None
    assert spec.origin == str(tmp_path / "module_here.py")
    monkeypatch.setitem(sys.path_importer_cache, "/no/such/entry", None)
    assert speed_up_folder("/no/such/entry") is None  # not a FileFinder: nothing to do
