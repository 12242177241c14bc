"""One hierarchy of typed errors for every package.

Every error says what went wrong *and what to do about it*. Library code raises these (``raise ... from e``);
only the CLI turns them into an exit code and a one-line message.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class DppoError(Exception):
    """Base class of every error raised on purpose by dppo-embodied."""


class ConfigError(DppoError, ValueError):
    """A configuration value is missing, unknown or of the wrong type. The message names the key and the file."""


class DataError(DppoError, ValueError):
    """A data file or row is malformed. The message names the file and line (or sample id)."""


class MediaError(DataError):
    """An image, mask or video referenced by a sample is missing or unreadable."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` for the closest of ``choices`` (case-insensitive), or ``""``."""
    by_lower = {c.lower(): c for c in choices}
    close = difflib.get_close_matches(str(name).lower(), list(by_lower), n=2, cutoff=0.6)
    return f" (did you mean {' or '.join(repr(by_lower[c]) for c in close)}?)" if close else ""


#: longer lists of valid choices are shortened in messages
MAX_LISTED = 25


class UnknownNameError(DppoError, KeyError):
    """A name (env id, task, robot, backend, ...) is not registered. The message suggests the closest names and
    lists the valid choices (the first :data:`MAX_LISTED` of a long list)."""

    def __init__(self, kind: str, name: str, choices: Iterable[str]) -> None:
        self.kind, self.name, self.choices = kind, name, sorted(choices)
        listed = ", ".join(self.choices[:MAX_LISTED]) if self.choices else "(none registered)"
        if len(self.choices) > MAX_LISTED:
            listed += f", ... ({len(self.choices)} in all; dppo list shows them)"
        super().__init__(f"unknown {kind} {name!r}{did_you_mean(name, self.choices)}; valid choices: {listed}")

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class DependencyNotInstalled(DppoError, ImportError):
    """An optional dependency is missing. The message gives the pip command that installs it."""

    def __init__(self, package: str, extra: str, detail: str = "") -> None:
        self.package, self.extra = package, extra
        msg = f"{package!r} is not installed; install it with: pip install 'dppo-embodied[{extra}]'"
        if detail:
            msg += f" ({detail})"
        super().__init__(msg)


class ClientError(DppoError):
    """A request to a model server failed after all retries (server down, timeouts, bad responses)."""


class ServerError(ClientError):
    """The server answered with an error status that retrying did not fix."""


class EnvError(DppoError):
    """A simulated environment was misused (bad config value, step before reset, ...)."""


class TrainingError(DppoError):
    """Training cannot go on (NaN loss, empty buffer, teacher unreachable). Saved state stays resumable."""


class SafetyError(DppoError):
    """A robot action was refused by the safety layer, or the e-stop is latched."""
