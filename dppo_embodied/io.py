"""The one I/O layer (torch-free): JSON lines, atomic writes, JSON files and the launcher's rank.

* Reading JSONL: :func:`iter_json_lines` decodes each line alone, so a line that is not UTF-8, not JSON or nested
  too deeply becomes a per-line error (``file:line: reason``) and the rest of the file is still read.
* Appending JSONL: :class:`JsonlWriter` (one flushed line per record, :meth:`~JsonlWriter.sync` fsyncs, a torn
  tail left by a killed writer is cut first) and :func:`append_jsonl` (one-shot append, fsynced).
* Atomic writes: :func:`atomic_open` (a temporary file in the same folder, ``fsync``, ``os.replace``, ``fsync`` of
  the folder), and on top of it :func:`atomic_write_bytes`, :func:`atomic_write_text`, :func:`atomic_write_json`
  and :func:`atomic_write_jsonl`. A ``kill -9`` leaves the old file or the new one, never half of one; leftovers
  of an interrupted write are named ``.<name>.tmp-<pid>-<token>``.
* JSON values: :func:`read_json` (with a default for a missing file), :func:`json_default` (the ``default=`` hook
  for paths, numpy values and sets), :func:`to_jsonable` (strict JSON: NaN/inf become strings) and
  :func:`json_line` (one JSONL line that always encodes as UTF-8).
* Ranks: :func:`rank_world_from_env` reads ``RANK``/``WORLD_SIZE`` as ``torchrun``/``accelerate launch`` set them;
  training's process-group helpers (:mod:`training.runs.distributed`) build on it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import secrets
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from dppo_embodied.errors import ConfigError, DataError

__all__ = [
    "JsonlWriter", "append_jsonl", "atomic_open", "atomic_write_bytes", "atomic_write_json", "atomic_write_jsonl",
    "atomic_write_text", "fsync_dir", "iter_json_lines", "json_default", "json_line", "rank_world_from_env",
    "read_json", "to_jsonable",
]

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]
_MISSING: Any = object()


# ------------------------------------------------------------------------------------------------ JSON values
def json_default(o: Any) -> Any:
    """The ``default=`` hook of :func:`json.dumps` for values JSON lacks: paths -> str, numpy scalars and arrays ->
    numbers and lists, sets -> sorted lists.

    Raises:
        TypeError: any other type (as :func:`json.dumps` expects).
    """
    if isinstance(o, os.PathLike):
        return os.fspath(o)
    if isinstance(o, (set, frozenset)):
        try:
            return sorted(o)
        except TypeError:  # mixed types
            return sorted(o, key=repr)
    item = getattr(o, "item", None)
    if callable(item) and getattr(o, "ndim", 1) == 0:
        return item()
    tolist = getattr(o, "tolist", None)
    if callable(tolist):
        return tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def to_jsonable(value: Any) -> Any:
    """A strict-JSON version of ``value``: tuples -> lists, numpy values -> numbers, NaN/infinity -> ``"nan"``/
    ``"inf"``, paths -> str, sets -> sorted lists, other objects -> ``repr``."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    try:
        converted = json_default(value)
    except TypeError:
        return repr(value)
    return to_jsonable(converted)


def json_line(record: Any) -> str:
    """One JSONL line (no trailing newline) of ``record`` that always encodes as UTF-8.

    Values JSON lacks go through :func:`to_jsonable`; text with a lone surrogate (read from a ``\\ud800`` escape)
    is written ASCII-escaped, which reads back identical.
    """
    try:
        line = json.dumps(record, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):
        record = to_jsonable(record)
        line = json.dumps(record, ensure_ascii=False, allow_nan=False, default=repr)
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        line = json.dumps(record, ensure_ascii=True, allow_nan=False, default=repr)
    return line


def read_json(path: PathLike, default: Any = _MISSING) -> Any:
    """The JSON value of a file; ``default`` when the file does not exist (if given).

    Raises:
        DataError: the file is missing (and no ``default``), unreadable, not UTF-8, not JSON or nested too deeply;
            the message names the file.
    """
    p = Path(path)
    if not p.is_file() and default is not _MISSING:
        return default
    try:
        return json.loads(p.read_bytes().decode("utf-8-sig"))
    except FileNotFoundError as e:
        raise DataError(f"{p}: no such JSON file") from e
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:
        raise DataError(f"{p}: cannot read JSON ({type(e).__name__}: {e}); it is corrupt or not a JSON file") from e


# --------------------------------------------------------------------------------------------------- JSONL read
def iter_json_lines(path: PathLike, *, require_newline: bool = False) -> Iterator[tuple[int, Any, str | None]]:
    """Yield ``(lineno, value, error)`` for every non-empty line of a JSONL file (1-based line numbers).

    A line that is not UTF-8 or not JSON (or too deeply nested to parse) gives ``(lineno, None, reason)`` and the
    file goes on: one bad byte never hides the other rows. A UTF-8 byte-order mark on the first line is ignored.

    Args:
        path: the JSONL file.
        require_newline: treat a last line without its ``"\\n"`` as torn (a writer killed mid-line): it gives an
            error instead of a value, even when the text happens to parse.

    Raises:
        DataError: the file cannot be opened.
    """
    path = Path(path)
    try:
        f = path.open("rb")
    except OSError as e:
        raise DataError(f"{path}: cannot open: {e}") from e
    with f:
        for lineno, raw in enumerate(f, start=1):  # "\n" never occurs inside a UTF-8 multi-byte sequence
            if require_newline and not raw.endswith(b"\n"):
                yield lineno, None, "torn last line (no newline: the writer was interrupted)"
                continue
            try:
                line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError as e:
                yield lineno, None, f"not UTF-8 text ({e})"
                continue
            if not line.strip():
                continue
            try:
                yield lineno, json.loads(line), None
            except (ValueError, RecursionError) as e:
                yield lineno, None, f"not JSON ({type(e).__name__}: {e})"


# ------------------------------------------------------------------------------------------------- JSONL append
def cut_torn_tail(path: PathLike) -> int:
    """Truncate a file after its last newline (drops a half-written last line); returns the bytes cut."""
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        return 0
    with path.open("rb+") as f:
        size = f.seek(0, os.SEEK_END)
        pos = size
        while pos > 0:
            step = min(4096, pos)
            f.seek(pos - step)
            i = f.read(step).rfind(b"\n")
            if i >= 0:
                end = pos - step + i + 1
                if end != size:
                    f.truncate(end)
                return size - end
            pos -= step
        f.truncate(0)
        return size


class JsonlWriter:
    """Append JSON lines to a file, each flushed to the OS as it is written; :meth:`sync` fsyncs.

    A killed process loses nothing flushed; :meth:`sync` (per chunk of work) makes it survive a power loss. A torn
    last line left by an earlier writer is cut on opening, so the next line starts fresh.

    Args:
        path: the JSONL file (its folder is created).
        fsync_each: fsync after every line (slower; for rare, precious lines such as a journal).
    """

    def __init__(self, path: PathLike, *, fsync_each: bool = False) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        cut = cut_torn_tail(self.path)
        if cut:
            logger.warning("%s: cut a torn last line (%d bytes) left by an interrupted writer", self.path, cut)
        self.fsync_each = fsync_each
        self._f: IO[str] = self.path.open("a", encoding="utf-8")

    def write(self, record: Any) -> None:
        """Append one record (see :func:`json_line`) and flush it."""
        self._f.write(json_line(record) + "\n")
        self._f.flush()
        if self.fsync_each:
            os.fsync(self._f.fileno())

    def write_many(self, records: Iterable[Any]) -> int:
        """Append records, then flush once; returns how many."""
        n = 0
        for r in records:
            self._f.write(json_line(r) + "\n")
            n += 1
        self._f.flush()
        if self.fsync_each:
            os.fsync(self._f.fileno())
        return n

    def sync(self) -> None:
        """fsync the file (durability across a power loss)."""
        os.fsync(self._f.fileno())

    def close(self) -> None:
        """Sync and close (idempotent)."""
        if not self._f.closed:
            self.sync()
            self._f.close()

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def append_jsonl(path: PathLike, records: Iterable[Any]) -> int:
    """Append records to a JSONL file and fsync it; returns how many were written."""
    with JsonlWriter(path) as w:
        return w.write_many(records)


# ----------------------------------------------------------------------------------------------- atomic writes
def fsync_dir(path: PathLike) -> None:
    """fsync a folder so a rename inside it survives a power loss (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(os.fspath(path), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_open(path: PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` for writing; on success it is fsynced and renamed over ``path``
    (then the folder is fsynced); on an exception it is removed and ``path`` is untouched.

    Args:
        path: the final file (its folder is created).
        mode: ``"w"`` (text) or ``"wb"`` (bytes).
        encoding: text encoding (ignored for bytes).
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    f = tmp.open(mode) if mode == "wb" else tmp.open(mode, encoding=encoding)
    try:
        with f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)


def atomic_write_bytes(path: PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_open`)."""
    with atomic_open(path, "wb") as f:
        f.write(data)


def atomic_write_text(path: PathLike, text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_open`)."""
    with atomic_open(path, "w", encoding=encoding) as f:
        f.write(text)


def atomic_write_json(path: PathLike, obj: Any, *, indent: int | None = 2, strict: bool = False) -> None:
    """Write ``obj`` as JSON atomically, with a final newline.

    Args:
        path: the file.
        obj: the value; paths, numpy values and sets are converted (:func:`json_default`).
        indent: JSON indentation (``None`` = one line).
        strict: write strict JSON (NaN/infinity as strings, other objects as ``repr``; :func:`to_jsonable`)
            instead of Python's ``NaN`` tokens.
    """
    value = to_jsonable(obj) if strict else obj
    text = json.dumps(value, indent=indent, ensure_ascii=False, allow_nan=not strict, default=json_default)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: ASCII escapes read back identical
        text = json.dumps(value, indent=indent, ensure_ascii=True, allow_nan=not strict, default=json_default)
    atomic_write_text(path, text + "\n")


def atomic_write_jsonl(path: PathLike, records: Iterable[Any]) -> int:
    """Write records as JSONL atomically (one :func:`json_line` each); returns how many."""
    n = 0
    with atomic_open(path, "w") as f:
        for r in records:
            f.write(json_line(r) + "\n")
            n += 1
    return n


# ------------------------------------------------------------------------------------------------------ ranks
def rank_world_from_env() -> tuple[int, int]:
    """``(rank, world_size)`` from ``RANK``/``WORLD_SIZE`` as ``torchrun``/``accelerate launch`` set them
    (``(0, 1)`` outside a launcher). Needs no torch.

    Raises:
        ConfigError: a variable is set but not an integer, or the rank lies outside ``0..world_size-1``.
    """
    try:
        rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError as e:
        raise ConfigError(f"RANK/WORLD_SIZE must be integers: {e}; unset them outside a launcher") from e
    world = max(1, world)
    if not 0 <= rank < world:
        raise ConfigError(f"RANK={rank} is outside 0..{world - 1} (WORLD_SIZE={world}); unset them outside a launcher")
    return rank, world
