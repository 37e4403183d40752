"""Which stack the command works on, and the AWS clients that reach it.

``--stack NAME`` (default ``grokvideo``) reads the CloudFormation stack's outputs and parameters
through the usual credential chain (``--profile``, ``--region``, ``AWS_PROFILE``...). ``--local``
reads ``.local/outputs.json``, which ``make local-up`` / ``make demo`` write, from the current
folder or one above it (or from ``GROKVIDEO_LOCAL_DIR``), and aims every client at that emulator
with dummy credentials, so nothing can reach a real account.

Use (needs AWS, so not a doctest)::

    deployment = Deployment.from_stack("grokvideo", region="eu-west-1")
    deployment.output("JobsTableName")   # -> 'grokvideo-jobs'
    deployment.client("sqs").get_queue_attributes(...)
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from grokvideo.cli.exits import CliError, ExitCode
from grokvideo.jobs import JobStore

DEFAULT_STACK = "grokvideo"
LOCAL_OUTPUTS = Path(".local") / "outputs.json"
LOCAL_DIR_ENV = "GROKVIDEO_LOCAL_DIR"
AWS_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=30)


@contextlib.contextmanager
def aws_errors(doing: str) -> Iterator[None]:
    """Turn what boto3 raises into a ``CliError`` that says what to do next.

    >>> with aws_errors("reading the table"):
    ...     raise NoRegionError()
    Traceback (most recent call last):
    grokvideo.cli.exits.CliError: reading the table: no AWS region: pass --region or set AWS_REGION
    """
    try:
        yield
    except NoCredentialsError:
        raise CliError(
            f"{doing}: no AWS credentials: set AWS_PROFILE, pass --profile or run `aws configure`", ExitCode.STACK
        ) from None
    except NoRegionError:
        raise CliError(f"{doing}: no AWS region: pass --region or set AWS_REGION", ExitCode.STACK) from None
    except ClientError as err:
        error = err.response.get("Error", {})
        raise CliError(f"{doing}: {error.get('Code', 'error')}: {error.get('Message', err)}", ExitCode.STACK) from None
    except BotoCoreError as err:
        raise CliError(f"{doing}: {err}", ExitCode.STACK) from None


def find_local_outputs(start: Path | None = None) -> Path:
    """``.local/outputs.json`` of the local stack: ``$GROKVIDEO_LOCAL_DIR``, else the nearest one
    at or above ``start`` (the current folder)."""
    if os.environ.get(LOCAL_DIR_ENV):
        candidates = [Path(os.environ[LOCAL_DIR_ENV]) / "outputs.json"]
    else:
        here = (start or Path.cwd()).resolve()
        candidates = [folder / LOCAL_OUTPUTS for folder in (here, *here.parents)]
    for path in candidates:
        if path.is_file():
            return path
    raise CliError(
        "no local stack here: run `make local-up` (or `make demo`) in the grokvideo repository, and run "
        f"this command from there (or set {LOCAL_DIR_ENV} to its .local folder)",
        ExitCode.STACK,
    )


@dataclass
class Deployment:
    """A deployed stack: its name, outputs and parameters, and a boto3 session to reach it."""

    name: str
    outputs: Mapping[str, str]
    parameters: Mapping[str, str]
    session: Any
    endpoint_url: str | None = None
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_stack(cls, name: str, *, region: str | None = None, profile: str | None = None) -> Deployment:
        """The CloudFormation stack ``name`` in the caller's account."""
        with aws_errors(f"reading stack {name!r}"):
            session = boto3.Session(profile_name=profile, region_name=region)
        return cls.describe(name, session)

    @classmethod
    def local(cls, outputs_file: Path | None = None) -> Deployment:
        """The stack ``make local-up`` deployed onto the local emulator."""
        path = outputs_file or find_local_outputs()
        doc = json.loads(path.read_text())
        session = boto3.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name=doc["region"])  # noqa: S106 - the emulator's dummy credentials
        try:
            return cls.describe(doc["stack_name"], session, endpoint_url=doc["endpoint_url"])
        except CliError as err:
            raise CliError(
                f"{err.message}\nIs the local stack running? Start it with `make local-up`.", ExitCode.STACK
            ) from None

    @classmethod
    def describe(cls, name: str, session: Any, *, endpoint_url: str | None = None) -> Deployment:
        cfn = session.client("cloudformation", endpoint_url=endpoint_url, config=AWS_CONFIG)
        try:
            with aws_errors(f"reading stack {name!r}"):
                stacks = cfn.describe_stacks(StackName=name)["Stacks"]
        except CliError as err:
            if "does not exist" not in err.message:
                raise
            where = endpoint_url or session.region_name
            raise CliError(
                f"no stack named {name!r} in {where}: deploy it (sam deploy) or pass --stack/--region", ExitCode.STACK
            ) from None
        stack = stacks[0]
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        parameters = {
            p["ParameterKey"]: p.get("ResolvedValue", p.get("ParameterValue", "")) for p in stack.get("Parameters", [])
        }
        return cls(name, outputs, parameters, session, endpoint_url)

    def output(self, key: str) -> str:
        """One stack output; a clear error when this stack's version does not have it."""
        try:
            return self.outputs[key]
        except KeyError:
            raise CliError(
                f"stack {self.name!r} has no output {key}: redeploy it with this version of grokvideo",
                ExitCode.STACK,
            ) from None

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(service, endpoint_url=self.endpoint_url, config=AWS_CONFIG)
        return self._clients[service]

    @cached_property
    def store(self) -> JobStore:
        """The jobs table (read side: ``get``, ``get_many``, ``newest``, ``with_ref``)."""
        return JobStore(self.output("JobsTableName"), client=self.client("dynamodb"))

    @property
    def input_buckets(self) -> list[str]:
        """The stack's ``InputBucketNames`` (where local images go), in the order given."""
        return [b.strip() for b in self.parameters.get("InputBucketNames", "").split(",") if b.strip()]
