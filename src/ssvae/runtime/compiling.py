"""Compiling once: ahead-of-time compilation with a clock, and a persistent compilation cache that jobs can share.

`SharedFileCache` replaces the file cache behind JAX's persistent compilation cache (`install`):
- entries are written to a temporary file and renamed into place, so a full disk, a killed job or two jobs
  writing the same entry never leave a half-written entry (JAX's own cache writes in place, and a truncated
  entry then warns on every later run);
- every entry carries its length and SHA-256; a damaged one (from a disk error, or a copy cut short) is removed
  and compiled again, with one warning naming it;
- a job that misses an entry takes a lock on that key (fcntl, which local disks and NFS honour) while it
  compiles; a second job compiling the same program at the same time waits for the first and then loads its
  result instead of compiling it too. A job waits at most LOCK_WAIT_S, then compiles anyway;
- every compilation is cached (minimum compile time 0): the many small programs of a run add up.

The cache key is JAX's: the program without source locations, jaxlib version, XLA flags and compile options.
The training code keeps the programs of one architecture free of per-run constants (step.py), so reruns, seeds
and the evaluate stage hit the same entries.

This plugs into JAX's internal cache interface (`jax._src.compilation_cache`), pinned by the jax version range
in pyproject.toml; tests/reliability/test_engine.py checks it is in effect.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import fcntl
import hashlib
import logging
import os
import tempfile
import threading
import time
from pathlib import Path

import jax
from jax._src import compilation_cache as _jax_cache
from jax._src import monitoring as _monitoring
from jax._src.compilation_cache_interface import CacheInterface

logger = logging.getLogger("ssvae.compilation_cache")

# XLA:CPU options that about halve compilation for a small model and make its steps slightly slower
# (benchmarks/RESULTS.md has the measurement).
FAST_COMPILE = {"xla_cpu_use_fusion_emitters": False, "xla_backend_optimization_level": 1}
# A training estimated below this many FLOPs is small (compiling.small_training): its programs compile with
# FAST_COMPILE and its parameters train in the flat layout. At the ~50 GFLOP/s a small model attains here, 10%
# of such a training is under a second, less than the compile time saved.
FAST_COMPILE_BELOW_FLOP = 5e11

ENTRY_MAGIC = b"SSVAE-XLA-ENTRY\n"
ENTRY_SUFFIX = ".xla"
LOCK_WAIT_S = 600.0
_HEADER = len(ENTRY_MAGIC) + 8 + 32


class CompileClock:
    """Ahead-of-time compilation (`jax.jit(fn).lower(*args).compile()`) that adds up the seconds it takes."""

    def __init__(self):
        self.seconds = 0.0

    @contextlib.contextmanager
    def timing(self):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds += time.perf_counter() - start

    def lower(self, fn, *args):
        with self.timing():
            return jax.jit(fn).lower(*args)

    def compile(self, lowered, compiler_options=None):
        with self.timing():
            return lowered.compile(compiler_options)

    def aot(self, fn, *args, compiler_options=None):
        """`fn` compiled for the shapes of `args` (arrays or jax.ShapeDtypeStruct)."""
        return self.compile(self.lower(fn, *args), compiler_options)

    def compile_all(self, programs: list) -> list:
        """[(lowered, compiler options), ...] compiled side by side on the job's CPUs (XLA compiles without the
        GIL), in the order given."""
        workers = min(len(programs), len(os.sched_getaffinity(0)))
        with self.timing():
            if workers <= 1:
                return [lowered.compile(options) for lowered, options in programs]
            with concurrent.futures.ThreadPoolExecutor(workers) as pool:
                return list(pool.map(lambda item: item[0].compile(item[1]), programs))


def fast_compile_options() -> dict | None:
    """FAST_COMPILE on the CPU backend (programs whose run time hardly matters: passes, summaries)."""
    return dict(FAST_COMPILE) if jax.default_backend() == "cpu" else None


def small_training(cfg, num_params: int, num_train: int) -> bool:
    """Whether a training is small enough that compiling it costs more than running it: its arithmetic,
    estimated as 6·P·N·E FLOPs (forward and backward ≈ 6 per parameter and sample; P parameters, N training
    images, E = max_epochs), is below FAST_COMPILE_BELOW_FLOP. Convolutions reuse their weights, so the
    estimate counts a conv model small only for short trainings. Every shipped digits config is small; the
    mnist5k ones are not."""
    return 6.0 * num_params * num_train * cfg.max_epochs < FAST_COMPILE_BELOW_FLOP


def training_compile_options(small: bool) -> dict | None:
    """FAST_COMPILE for a small training's own programs (see small_training), XLA's defaults otherwise."""
    return fast_compile_options() if small else None


class SharedFileCache(CacheInterface):
    """A directory of compiled executables, safe for concurrent jobs (see the module docstring)."""

    def __init__(self, path: str | Path, lock_wait_s: float = LOCK_WAIT_S):
        self._path = Path(path)
        self._path.mkdir(parents=True, exist_ok=True)
        (self._path / "locks").mkdir(exist_ok=True)
        self.lock_wait_s = lock_wait_s
        self._held: dict[tuple[int, str], int] = {}  # (thread, key) -> lock fd, while that thread compiles key
        self._mutex = threading.Lock()
        self._write_warned = False
        self.stats = {"hits": 0, "misses": 0, "writes": 0, "waited": 0, "damaged": 0, "write_errors": 0}

    @property
    def path(self) -> Path:
        return self._path

    def _entry(self, key: str) -> Path:
        return self._path / f"{key}{ENTRY_SUFFIX}"

    # reading ---------------------------------------------------------------------------------------
    def _read(self, key: str) -> bytes | None:
        entry = self._entry(key)
        try:
            data = entry.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            logger.warning("cannot read compilation cache entry %s (%s); compiling instead", entry, exc)
            return None
        value = _unframe(data)
        if value is None:
            self.stats["damaged"] += 1
            logger.warning("compilation cache entry %s is damaged (truncated or corrupted); removed, compiling "
                           "it again", entry)
            with contextlib.suppress(OSError):
                entry.unlink()
        return value

    def get(self, key: str) -> bytes | None:
        self.release_locks()  # a new compilation starts: the previous one is finished
        value = self._read(key)
        if value is not None:
            self.stats["hits"] += 1
            return value
        fd = self._lock(key)
        value = self._read(key)  # written by another job while this one waited for the lock?
        if value is not None:
            self._unlock_fd(fd)
            self.stats["hits"] += 1
            self.stats["waited"] += 1
            return value
        if fd is not None:
            with self._mutex:
                self._held[threading.get_ident(), key] = fd
        self.stats["misses"] += 1
        return None

    # writing ---------------------------------------------------------------------------------------
    def put(self, key: str, value: bytes) -> None:
        try:
            self._write(key, value)
        finally:
            self._release(key)

    def _write(self, key: str, value: bytes) -> None:
        entry = self._entry(key)
        if entry.exists():
            return
        tmp = None
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{key[:40]}.", suffix=".tmp", dir=self._path)
            with os.fdopen(fd, "wb") as handle:
                handle.write(_frame(value))
            os.replace(tmp, entry)
            tmp = None
            self.stats["writes"] += 1
        except OSError as exc:
            self.stats["write_errors"] += 1
            if not self._write_warned:
                self._write_warned = True
                logger.warning("cannot write to the compilation cache %s (%s); this job compiles without caching "
                               "(nothing half-written is left behind)", self._path, exc)
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)

    # locks -----------------------------------------------------------------------------------------
    def _lock(self, key: str) -> int | None:
        """An exclusive lock on `key`, waiting at most lock_wait_s; None if it could not be had."""
        try:
            fd = os.open(self._path / "locks" / f"{key}.lock", os.O_CREAT | os.O_RDWR, 0o666)
        except OSError:
            return None
        deadline = time.monotonic() + self.lock_wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                if time.monotonic() > deadline:
                    logger.warning("waited %.0f s for another job compiling %s; compiling it here too",
                                   self.lock_wait_s, key)
                    os.close(fd)
                    return None
                time.sleep(0.05)
            except OSError:
                os.close(fd)
                return None

    @staticmethod
    def _unlock_fd(fd: int | None) -> None:
        if fd is None:
            return
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        with contextlib.suppress(OSError):
            os.close(fd)

    def _release(self, key: str) -> None:
        with self._mutex:
            fd = self._held.pop((threading.get_ident(), key), None)
        self._unlock_fd(fd)

    def release_locks(self) -> None:
        """Release the locks the calling thread holds (its compilation finished)."""
        thread = threading.get_ident()
        with self._mutex:
            mine = [k for k in self._held if k[0] == thread]
            fds = [self._held.pop(k) for k in mine]
        for fd in fds:
            self._unlock_fd(fd)


def _frame(value: bytes) -> bytes:
    return ENTRY_MAGIC + len(value).to_bytes(8, "big") + hashlib.sha256(value).digest() + value


def _unframe(data: bytes) -> bytes | None:
    """The value of a framed entry, or None if the frame is damaged."""
    if not data.startswith(ENTRY_MAGIC) or len(data) < _HEADER:
        return None
    length = int.from_bytes(data[len(ENTRY_MAGIC):len(ENTRY_MAGIC) + 8], "big")
    value = data[_HEADER:]
    if len(value) != length or hashlib.sha256(value).digest() != data[len(ENTRY_MAGIC) + 8:_HEADER]:
        return None
    return value


_installed: SharedFileCache | None = None
_listening = False


def _compile_finished(event: str, duration_secs: float, **_: str | int) -> None:
    # JAX records this after every backend compilation (a cache hit, a fresh compile, or a failure).
    if event == "/jax/core/compile/backend_compile_duration" and _installed is not None:
        _installed.release_locks()


def install(cache_dir: str | Path) -> SharedFileCache:
    """Make `cache_dir` this process's persistent compilation cache (a SharedFileCache); call before compiling."""
    global _installed, _listening
    cache = SharedFileCache(cache_dir)
    jax.config.update("jax_compilation_cache_dir", str(cache.path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    with _jax_cache._cache_initialized_mutex:
        _jax_cache._cache = cache
        _jax_cache._cache_initialized = True
    _installed = cache
    if not _listening:
        _monitoring.register_event_duration_secs_listener(_compile_finished)
        _listening = True
    return cache


def installed() -> SharedFileCache | None:
    """The cache `install` put in place, if JAX still uses it."""
    if _installed is not None and _jax_cache._cache is _installed:
        return _installed
    return None


def uninstall() -> None:
    """Back to no persistent cache (tests)."""
    global _installed
    if _installed is not None:
        with _installed._mutex:
            fds, _installed._held = list(_installed._held.values()), {}
        for fd in fds:
            _installed._unlock_fd(fd)
    _installed = None
    jax.config.update("jax_compilation_cache_dir", None)
    _jax_cache.reset_cache()
