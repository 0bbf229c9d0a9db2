"""Throw-away servers for the test session: a PostgreSQL cluster, an S3 server (moto) and a Ray cluster, on loopback.

Each is started on first use by whichever pytest process needs it first — the controller or one
of the xdist workers — under a file lock in a directory shared by all of them, and its address is
written there for the others. The controller (the process that created the directory) stops every
server it finds there when the session ends.

PostgreSQL comes from Debian's package (``make test`` installs it: ``make postgres``); when it is
missing the tests that need it fail with a message that says so. They never skip.
"""

from __future__ import annotations

import fcntl
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SHARED_ENV = "WHARF_TEST_SERVERS_DIR"
PG_SUPERUSER = "wharf"
S3_ACCESS_KEY = "wharf-test-key"
S3_SECRET_KEY = "wharf-test-secret"
S3_REGION = "us-east-1"


_RUNNING: list[subprocess.Popen[bytes]] = []


class ServerUnavailable(RuntimeError):
    """A test server could not be started; the message says why and what to do."""


def shared_directory() -> Path:
    """The directory the session's processes share (created by ``begin_session``)."""
    path = os.environ.get(SHARED_ENV)
    if not path:
        raise ServerUnavailable(f"${SHARED_ENV} is not set: tests/conftest.py sets it when the session starts")
    return Path(path)


def begin_session() -> Path | None:
    """Create the shared directory unless a parent process already did; returns it if this process owns it."""
    if os.environ.get(SHARED_ENV):
        return None
    path = Path(tempfile.mkdtemp(prefix="wharf-test-servers-"))
    os.environ[SHARED_ENV] = str(path)  # inherited by the xdist workers this process starts
    return path


def end_session(path: Path) -> None:
    """Stop every server started in this session, and remove what they left."""
    pg = path / "postgres.json"
    if pg.exists():
        info = json.loads(pg.read_text())
        _as_postgres([f"{info['bindir']}/pg_ctl", "-D", info["data"], "-m", "immediate", "-w", "stop"], check=False)
        shutil.rmtree(info["root"], ignore_errors=True)
    s3 = path / "s3.json"
    if s3.exists():
        try:
            os.killpg(json.loads(s3.read_text())["pid"], signal.SIGTERM)
        except ProcessLookupError:
            pass
    ray = path / "ray.json"
    if ray.exists():
        _stop_ray(json.loads(ray.read_text())["pid"])
    shutil.rmtree(path, ignore_errors=True)
    os.environ.pop(SHARED_ENV, None)


@contextmanager
def _locked(name: str) -> Iterator[Path]:
    directory = shared_directory()
    with open(directory / f"{name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield directory


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- PostgreSQL ------------------------------------------------------------------------------


def postgres_bindir() -> str:
    """The newest ``/usr/lib/postgresql/<version>/bin`` holding ``initdb``."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parent.parent.name))
    if not found:
        raise ServerUnavailable(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb); the catalog suites run against it. "
            "Run `make postgres` (as part of `make test`) or `apt-get install -y postgresql`."
        )
    return str(Path(found[-1]).parent)


def _as_postgres(command: list[str], *, check: bool = True, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run a PostgreSQL server program; as root, as the ``postgres`` user (initdb refuses root)."""
    if os.geteuid() == 0:
        kwargs.update(user="postgres", group="postgres", extra_groups=[])
        kwargs.setdefault("env", {**os.environ, "HOME": "/tmp"})
    return subprocess.run(command, check=check, capture_output=True, text=True, cwd="/", **kwargs)


def postgres_server() -> str:
    """The session's PostgreSQL server (started on first call): a URL of its ``postgres`` database."""
    with _locked("postgres") as shared:
        info_file = shared / "postgres.json"
        if info_file.exists():
            return str(json.loads(info_file.read_text())["url"])
        bindir = postgres_bindir()
        root = Path(tempfile.mkdtemp(prefix="wharf-test-pg-"))
        if os.geteuid() == 0:
            shutil.chown(root, "postgres", "postgres")
        data = root / "data"
        port = free_port()
        try:
            _as_postgres([f"{bindir}/initdb", "-D", str(data), "-U", PG_SUPERUSER, "--auth=trust", "-E", "UTF8", "--no-sync"])
            options = (
                f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "
                "-c full_page_writes=off -c max_connections=300"
            )
            _as_postgres([f"{bindir}/pg_ctl", "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "-t", "60", "start"])
        except subprocess.CalledProcessError as exc:
            log = (root / "log").read_text() if (root / "log").exists() else ""
            shutil.rmtree(root, ignore_errors=True)
            raise ServerUnavailable(f"Could not start PostgreSQL: {exc.cmd[0]} said {exc.stderr or exc.stdout}{log}") from exc
        url = f"postgresql://{PG_SUPERUSER}@127.0.0.1:{port}/postgres"
        info_file.write_text(json.dumps({"url": url, "bindir": bindir, "data": str(data), "root": str(root)}))
        return url


def create_database(server_url: str) -> str:
    """A new empty metadata database for one test; returns its URL.

    A schema of its own in the server's database, selected through the connection's
    ``search_path`` (as a user would put several lakes in one database): creating a schema takes
    a millisecond, creating a database a second. The cluster is thrown away with the session.
    """
    import psycopg

    name = f"wharf_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    return f"{server_url}?options=-csearch_path%3D{name}"


# --- S3 (moto) ---------------------------------------------------------------------------------


def s3_server() -> str:
    """The session's S3 server (moto, started on first call): its endpoint URL."""
    with _locked("s3") as shared:
        info_file = shared / "s3.json"
        if info_file.exists():
            return str(json.loads(info_file.read_text())["endpoint"])
        port = free_port()
        with open(shared / "s3.log", "w") as log:  # the server writes to its own copy of the descriptor
            process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # outlives the worker that started it; the controller stops it
            )
        _RUNNING.append(process)  # a Popen collected while its process runs warns
        endpoint = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise ServerUnavailable(f"moto's S3 server did not start: {(shared / 's3.log').read_text()}") from None
                time.sleep(0.1)
        info_file.write_text(json.dumps({"endpoint": endpoint, "pid": process.pid}))
        return endpoint


def create_bucket(endpoint: str, name: str | None = None) -> str:
    """A new empty bucket on the S3 server (``name``, or a unique one); returns its name."""
    import boto3

    name = name or f"wharf-{uuid.uuid4().hex[:12]}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=S3_ACCESS_KEY,
        aws_secret_access_key=S3_SECRET_KEY,
        region_name=S3_REGION,
    )
    client.create_bucket(Bucket=name)
    return name


# --- Ray ---------------------------------------------------------------------------------------

RAY_CPUS = 2


def ray_cluster() -> str:
    """The session's local Ray cluster (``ray start --head``, started on first call): its GCS address.

    One cluster for the whole session, whichever process asks first starts it; the others (xdist
    workers) connect to it as drivers. Two CPUs, a small object store, no dashboard, no usage
    statistics, every port chosen free; its files go to the session's shared directory.
    """
    with _locked("ray") as shared:
        info_file = shared / "ray.json"
        if info_file.exists():
            return str(json.loads(info_file.read_text())["address"])
        port = free_port()
        temp = shared / "ray"
        temp.mkdir()
        ray = str(Path(sys.executable).with_name("ray"))
        command = [
            ray, "start", "--head", "--block", "--disable-usage-stats", "--include-dashboard=false",
            "--node-ip-address=127.0.0.1", f"--port={port}", f"--num-cpus={RAY_CPUS}", "--num-gpus=0",
            "--object-store-memory=100000000", f"--temp-dir={temp}",
            f"--dashboard-agent-listen-port={free_port()}", f"--dashboard-agent-grpc-port={free_port()}",
            f"--metrics-export-port={free_port()}", f"--runtime-env-agent-port={free_port()}",
        ]  # fmt: skip
        log_path = shared / "ray.log"
        with open(log_path, "w") as log:
            process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # outlives the worker that started it; the controller stops it
                env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"},
            )
        _RUNNING.append(process)
        deadline = time.monotonic() + 120
        # `ray start` says how to connect once the head node (GCS and raylet) is up.
        while "ray.init(" not in log_path.read_text():
            if process.poll() is not None or time.monotonic() > deadline:
                _stop_ray(process.pid)
                raise ServerUnavailable(f"The Ray cluster did not start: {log_path.read_text()[-3000:]}")
            time.sleep(0.1)
        address = f"127.0.0.1:{port}"
        info_file.write_text(json.dumps({"address": address, "pid": process.pid}))
        return address


def ray_session() -> int:
    """The session id of the Ray cluster's processes (its ``ray start`` process id): to tell a Ray worker."""
    return int(json.loads((shared_directory() / "ray.json").read_text())["pid"])


def _stop_ray(pid: int) -> None:
    """Stop the cluster ``ray start --block`` (process ``pid``) runs, and anything left of its session.

    SIGTERM lets ``ray start`` stop its own processes; whatever still runs in its session after
    that (workers run in process groups of their own, but in its session) is killed. Never
    ``ray stop``: it would stop every Ray cluster on the machine.
    """
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.2)
    for member in _session_members(pid):
        try:
            os.kill(member, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def _session_members(sid: int) -> list[int]:
    """The live processes of session ``sid``."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[3]) == sid:  # state, ppid, pgrp, session
            members.append(int(stat.parent.name))
    return members
