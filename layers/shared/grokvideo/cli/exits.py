"""Exit codes scripts can rely on (README "Exit codes"), and the error a command raises.

>>> int(ExitCode.for_outcomes([Outcome.STORED, Outcome.FAILED]))
1
>>> CliError("no stack named x", ExitCode.STACK).code
<ExitCode.STACK: 6>
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum, StrEnum


class Outcome(StrEnum):
    """How a job ended, as far as the person waiting for its video is concerned."""

    STORED = "stored"
    FAILED = "failed"
    ARCHIVE_FAILED = "archive_failed"
    TIMED_OUT = "timed_out"  # still running when the wait ran out


class ExitCode(IntEnum):
    OK = 0  # done; every job waited for is stored; every doctor check passed
    JOB_FAILED = 1  # a job failed (rejected, moderated, provider failure, expired, timed out)
    USAGE = 2  # the command line itself is wrong (argparse's own code)
    ARCHIVE_FAILED = 3  # a video was made but could not be stored in S3
    NOT_FOUND = 4  # no such job, reference, file or message
    WAIT_TIMED_OUT = 5  # --timeout ran out with a job still running
    STACK = 6  # the stack can't be found or read: credentials, region, emulator down, AWS error
    UNHEALTHY = 7  # doctor found a problem
    CHECKSUM = 8  # a downloaded video does not match its recorded sha256
    INTERRUPTED = 130  # Ctrl-C

    @classmethod
    def for_outcomes(cls, outcomes: Iterable[Outcome]) -> ExitCode:
        """The code for a set of jobs: the worst outcome wins (failed > archive failed > timed out)."""
        codes = {
            Outcome.STORED: cls.OK,
            Outcome.TIMED_OUT: cls.WAIT_TIMED_OUT,
            Outcome.ARCHIVE_FAILED: cls.ARCHIVE_FAILED,
            Outcome.FAILED: cls.JOB_FAILED,
        }
        rank = [cls.OK, cls.WAIT_TIMED_OUT, cls.ARCHIVE_FAILED, cls.JOB_FAILED]
        return max((codes[o] for o in outcomes), key=rank.index, default=cls.OK)


class CliError(Exception):
    """A failure to explain to the user: what went wrong and what to do next, and its exit code."""

    def __init__(self, message: str, code: ExitCode) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
