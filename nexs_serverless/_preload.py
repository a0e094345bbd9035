"""This package's modules from one file, when the Lambda layer ships one (``_modules.bin``).

Why: a cold start loads about 40 of our modules, and for each one the import
system searches the path, stats and opens a ``.pyc``, checks its header and
builds a loader, in Python code, before the module's own code runs: about
0.1 ms a module on a small Lambda, a fifth of what the layer adds to a cold
start (issue 5, measured with `scripts/bench_lambda_coldstart.py`). The layer
build (`scripts/build_layer.py`) writes the compiled code of every module into
one file; the package's ``__init__`` reads its index and this finder serves
the modules from it, each read (one ``pread``) and unmarshalled only when
imported. Reading the whole file up front cost more than the search it saves.
The bundle answers through the path entry finders of the package's folders
(`PackageFolder`), so imports of other packages never ask it; and the folder
holding the package gets a `FolderFinder`, which answers their misses quickly.

The modules that ``import nexs_serverless`` itself needs are loaded at once,
in dependency order (`BundleFinder.load`), rather than one import statement
at a time: each then costs its code's run and a module object, not the import
system's search and bookkeeping in Python code (about 0.5 M of the import's
9.5 M instructions, measured under valgrind). The package's own later
``from .x import y`` lines find them in `sys.modules`.

What stays the same: ``__file__``, ``__path__`` and tracebacks name the real
``.py`` files (shipped next to the bundle; ``__cached__`` names the bundle); modules the bundle does not hold,
and every other package, load the usual way. The bundle is used only when its
bytecode version is this interpreter's; a pip-installed or source checkout has
no bundle and never loads this module.

File layout: ``NXB2``, the bytecode magic (4 bytes), the index length (4
bytes, little-endian), the index (`marshal`: module name -> (is_package,
path relative to the site folder, offset, length, dependencies)), then the
code objects. A module's dependencies are the bundled modules its code
imports unconditionally at module level, parents first (found by the layer
build); they are loaded through `BundleFinder.load` before its code runs, so
one import statement that reaches the bundle costs the import system's
search once, not once per module it pulls in.
"""

from __future__ import annotations

import _imp
import marshal
import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from importlib.machinery import ModuleSpec
    from types import CodeType, ModuleType
    from typing import Any

__all__ = [
    "FILE_NAME",
    "HEADER",
    "BundleFinder",
    "FolderFinder",
    "PackageFolder",
    "install",
    "magic_number",
    "speed_up_folder",
]

FILE_NAME = "_modules.bin"
HEADER = b"NXB2"
_ModuleSpec = type(__spec__)  # importlib.machinery.ModuleSpec, without importing importlib's Python parts
_ModuleType = type(sys)
if TYPE_CHECKING:
    # An index entry: is_package, path relative to the site folder, offset, length, dependencies.
    _Entry = tuple[bool, str, int, int, tuple[str, ...]]


def magic_number() -> bytes:
    """This interpreter's bytecode magic (what `importlib.util.MAGIC_NUMBER` re-exports)."""
    return sys.modules["_frozen_importlib_external"].MAGIC_NUMBER  # type: ignore[no-any-return]


# types.CodeType, taken from a function: `compile()` would build the ~120 `ast` node types on
# its first call, 3 ms here, when nothing else in a cold start compiles.
_CodeType = type(magic_number.__code__)


class BundleFinder:
    """Finder (asked through `PackageFolder`) and loader for the modules in one bundle file.

    Args:
        site: the folder holding ``nexs_serverless/`` (paths in the index are relative to it).
        descriptor: the bundle, open for reading (kept for the life of the process).
        index: module name -> (is_package, relative path, offset, length, dependencies),
            offsets from `base`.
        base: where the code objects start in the file.
    """

    def __init__(
        self,
        site: str,
        descriptor: int,
        index: dict[str, _Entry],
        base: int,
    ) -> None:
        self._site = site
        self._descriptor = descriptor
        self._index = index
        self._base = base
        self._bundle = site + "nexs_serverless/" + FILE_NAME

    def find_spec(
        self, name: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        """A spec for `name` when the bundle holds it (and has not served it yet), else None."""
        entry = self._index.get(name)
        if entry is None:
            return None
        is_package, relative = entry[0], entry[1]
        origin = self._site + relative
        # A loader by protocol (create_module, exec_module); `importlib.abc.Loader` costs an import.
        spec: ModuleSpec = _ModuleSpec(name, self, origin=origin, is_package=is_package)  # type: ignore[arg-type]
        spec.has_location = True  # sets __file__ (and __cached__) as a file-based module has them
        # `__cached__` names where the code came from. Left unset, importlib would derive a
        # `__pycache__` path (which the layer does not ship) in Python code for every module.
        spec.cached = self._bundle
        if is_package:
            spec.submodule_search_locations = [origin.rpartition("/")[0]]
        return spec

    def create_module(self, spec: ModuleSpec) -> None:
        """The default module object."""

    def exec_module(self, module: ModuleType) -> None:
        """Run the module's code from the bundle; its entry is dropped (a reload uses the file)."""
        spec = module.__spec__
        assert spec is not None
        assert spec.origin is not None
        entry = self._index.pop(spec.name, None)
        if entry is None:
            raise ImportError(f"{spec.name} was already loaded from the bundle", name=spec.name)
        _, _, offset, length, dependencies = entry
        if dependencies:
            self.load(dependencies)
        exec(self._code(spec.origin, offset, length), module.__dict__)  # noqa: S102 - as importlib does

    def load(self, names: Sequence[str]) -> None:
        """Import `names` (in this order) from the bundle now, as importlib would, minus its search.

        Each module is set up as `importlib` sets one up (spec, loader, file, cached,
        package, its parent's attribute) and run under importlib's lock for that
        name, so a thread importing it meanwhile waits for it, as with a normal
        import. Names already imported or not in the bundle are left to the
        import system; a module whose code raises is removed again and the
        error propagates, as from an import statement.
        """
        bootstrap = sys.modules.get("_frozen_importlib")
        lock = getattr(bootstrap, "_ModuleLockManager", None)
        if lock is None:  # pragma: no cover - an import system without it: import as usual
            return
        modules = sys.modules
        for name in names:
            if name in modules:
                continue
            spec = self.find_spec(name)
            if spec is None:
                continue
            with lock(name):
                # Another thread imported it while this one waited for the lock, or tried and
                # failed (its entry is gone): the module's own import statement will say why.
                if name in modules or name not in self._index:
                    continue
                module = _ModuleType(name)
                module.__spec__ = spec
                module.__loader__ = self  # type: ignore[assignment]
                module.__file__ = spec.origin
                module.__cached__ = spec.cached  # type: ignore[attr-defined]
                module.__package__ = spec.parent
                if spec.submodule_search_locations is not None:
                    module.__path__ = spec.submodule_search_locations
                spec._initializing = True  # type: ignore[attr-defined]  # what importlib marks a module being run with
                modules[name] = module
                try:
                    self.exec_module(module)
                except BaseException:
                    modules.pop(name, None)
                    raise
                finally:
                    spec._initializing = False  # type: ignore[attr-defined]
                parent, _, child = name.rpartition(".")
                if parent in modules:
                    setattr(modules[parent], child, modules[name])

    def _code(self, origin: str, offset: int, length: int) -> CodeType:
        """The module's code from the bundle; compiled from its source if that part is damaged."""
        try:
            data = os.pread(self._descriptor, length, self._base + offset)
            # The bundle is our own bytecode, written by the layer build next to the sources.
            code: CodeType = marshal.loads(data)  # noqa: S302
            if len(data) != length or type(code) is not _CodeType:
                raise ValueError("short or not code")
        except (OSError, EOFError, ValueError, TypeError):
            with open(origin, "rb") as source:
                return compile(source.read(), origin, "exec", dont_inherit=True)
        # Tracebacks and `inspect` name the file where the layer is unpacked, as a .pyc's code does.
        _imp._fix_co_filename(code, origin)  # type: ignore[attr-defined]
        return code


class PackageFolder:
    """The path entry finder of one of this package's folders: the bundle's modules, then the files.

    Args:
        bundle: serves the modules it holds (each only once).
        path: the folder (an entry of the package's, or a subpackage's, ``__path__``).
        files: the finder the folder had (a `FileFinder`), or None to make one on first need.
    """

    __slots__ = ("_bundle", "_files", "path")

    def __init__(self, bundle: BundleFinder, path: str, files: Any) -> None:
        self._bundle = bundle
        self._files = files
        self.path = path

    def find_spec(self, fullname: str, target: ModuleType | None = None) -> ModuleSpec | None:
        """The bundle's spec for `fullname`, else the files' (the ``.so``, modules added later)."""
        spec = self._bundle.find_spec(fullname)
        if spec is not None:
            return spec
        files = self._files_finder()
        return None if files is None else files.find_spec(fullname, target)

    def invalidate_caches(self) -> None:
        """Passed on to the files' finder (`importlib.invalidate_caches`)."""
        if self._files is not None:
            self._files.invalidate_caches()

    def iter_modules(self, prefix: str = "") -> Iterator[tuple[str, bool]]:
        """What `pkgutil.iter_modules` lists here: the folder's modules (the bundle holds the same)."""
        import pkgutil

        return pkgutil.iter_importer_modules(self._files_finder(), prefix)  # type: ignore[no-any-return,attr-defined]

    def _files_finder(self) -> Any:
        """The folder's own finder, made on first need as `sys.path_hooks` would make it, or None."""
        files = self._files
        if files is None:
            for hook in sys.path_hooks:
                try:
                    files = self._files = hook(self.path)
                    break
                except ImportError:  # the next hook, as the import system tries them
                    continue
        return files

    def __repr__(self) -> str:
        return f"PackageFolder({self.path!r})"


class FolderFinder:
    """Answers import misses for the folder that holds this package (the layer's ``/opt/python``).

    Why: that folder sits before the standard library on Lambda's `sys.path`, so
    every later import of a top-level module the folder does not have (``json``,
    ``botocore``...) asks its `FileFinder` first, and a `FileFinder` miss runs
    about 45 k instructions of the import system's Python code (five file names
    joined and tried): ``import boto3`` misses about a hundred times, 4.5 M
    instructions, of which this saves about 3 M. It answers a miss from the
    folder's names in one set lookup, after the same modification-time check
    `FileFinder` makes, and hands every other name to the `FileFinder`'s own
    search, so what imports find is unchanged.

    It is installed on that `FileFinder` (`speed_up_folder` replaces the
    instance's `find_spec` and `invalidate_caches`), so `sys.path_importer_cache`
    still holds a `FileFinder`: `pkgutil` and `pkg_resources` recognise finders
    by class, and list the folder's modules and distributions as before.

    It only helps imports made after ``import nexs_serverless`` (the zero-code
    wrapper, or a function that imports this package first).
    """

    __slots__ = ("_find", "_invalidate", "_mtime", "_names", "path")

    def __init__(self, finder: Any) -> None:
        self.path: str = finder.path
        self._find = finder.find_spec
        self._invalidate = finder.invalidate_caches
        self._mtime = -2.0
        self._names: frozenset[str] = frozenset()

    def find_spec(self, fullname: str, target: ModuleType | None = None) -> ModuleSpec | None:
        """None at once for a name the folder has no file or folder for; else the `FileFinder`'s answer."""
        try:
            mtime = os.stat(self.path).st_mtime
        except OSError:
            mtime = -1.0
        if mtime != self._mtime:
            self._refresh(mtime)
        if fullname.rpartition(".")[2] not in self._names:
            return None
        return self._find(fullname, target)  # type: ignore[no-any-return]

    def invalidate_caches(self) -> None:
        """What `importlib.invalidate_caches` calls: list the folder again on the next lookup."""
        self._mtime = -2.0
        self._invalidate()

    def _refresh(self, mtime: float) -> None:
        try:
            entries = os.listdir(self.path)
        except OSError:
            entries = []
        # A module `x` is a folder `x` or a file `x.<suffix>`; a name too many costs only a delegation.
        self._names = frozenset(entries).union(entry.partition(".")[0] for entry in entries)
        self._mtime = mtime

    def __repr__(self) -> str:
        return f"FolderFinder({self.path!r})"


def speed_up_folder(site: str) -> FolderFinder | None:
    """Install a `FolderFinder` on `site`'s `FileFinder` (in `sys.path_importer_cache`).

    Nothing changes when `site` has no `FileFinder` there (another kind of path
    entry, or not imported through yet), when one is installed already, or when
    ``PYTHONCASEOK`` asks imports to ignore case, which the exact set lookup
    would not.
    """
    finder: Any = sys.path_importer_cache.get(site)
    if type(finder).__name__ != "FileFinder" or "PYTHONCASEOK" in os.environ or "find_spec" in vars(finder):
        return None
    stand_in = FolderFinder(finder)
    finder.find_spec = stand_in.find_spec
    finder.invalidate_caches = stand_in.invalidate_caches
    return stand_in


def install(package_dir: str, now: Sequence[str] = ()) -> BundleFinder | None:
    """Serve this package's modules from ``package_dir/_modules.bin``.

    A `PackageFolder` becomes the path entry finder of the package's folder and
    of each subpackage's (`sys.path_importer_cache`), so the bundle is asked
    only for names inside the package: a finder first on `sys.meta_path` would
    be called for every later import of the process too, about 2 k instructions
    each (1.2 M for ``import boto3``). `now` names modules to load from it at
    once, in that order (`BundleFinder.load`).

    Returns None (and changes nothing) when the file is missing, malformed, or
    was compiled for another Python version, or where `os.pread` is missing.
    """
    pread = getattr(os, "pread", None)
    if pread is None:
        return None
    try:
        descriptor = os.open(package_dir + "/" + FILE_NAME, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        head = pread(descriptor, 12, 0)
        if head[:4] != HEADER or head[4:8] != magic_number():
            raise ValueError("not a bundle for this Python")
        length = int.from_bytes(head[8:12], "little")
        index = marshal.loads(pread(descriptor, length, 12))  # noqa: S302
        if type(index) is not dict:
            raise ValueError("no index")
    except (OSError, EOFError, ValueError, TypeError):
        os.close(descriptor)
        return None
    site = package_dir.rpartition("/")[0]
    finder = BundleFinder(site + "/", descriptor, index, 12 + length)
    cache = sys.path_importer_cache
    subpackages = [site + "/" + entry[1].rpartition("/")[0] for entry in index.values() if entry[0]]
    for folder in [package_dir, *subpackages]:
        cache[folder] = PackageFolder(finder, folder, cache.get(folder))
    speed_up_folder(site)
    finder.load(now)
    return finder
