"""The run's environment: the two network namespaces, the processes started in them, and waiting for them.

Topology: a server namespace S and a client namespace C, named per run (``moqev<pid>s`` / ``moqev<pid>c``) so that
two runs, or a run and a stale leftover, never share one. Each has ``lo`` up; eval-netem adds a TUN device in each
(10.99.0.1 in S, 10.99.0.2 in C) for the length of a cell. Deleting the topology first ends every process still
inside the namespaces (``ip netns pids``): only processes this run put there can be inside them.

Supervisor: starts every process in its own session (so its own process group), keeps the Popen handles, and
stops a process by signalling its group (SIGTERM, then SIGKILL after a grace period): children a process left
behind (a browser, a shell's children) go with it, and nothing the run did not start is ever signalled.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

IP = "ip"


class ReadyTimeout(RuntimeError):
    """A condition a cell waited for did not come in time (or the process it depended on died first)."""


def in_ns(ns: str | None, argv: list[str]) -> list[str]:
    """``argv`` run inside namespace ``ns`` (``ip netns exec``, which execs: the pid is the command's own);
    unchanged for ns None (the root namespace)."""
    return [IP, "netns", "exec", ns, *argv] if ns else list(argv)


def chromium_wrapper_text(ns: str, chromium: str = "/usr/bin/chromium", extra: list[str] | None = None) -> str:
    """A /bin/sh script that runs Chromium inside ``ns`` with the caller's arguments (for eval-watch --chromium)."""
    flags = "".join(f" '{a}'" for a in (extra or []))
    return f'#!/bin/sh\nexec {IP} netns exec {ns} {chromium}{flags} "$@"\n'


def write_chromium_wrapper(path: Path, ns: str, chromium: str = "/usr/bin/chromium",
                           extra: list[str] | None = None) -> Path:
    path.write_text(chromium_wrapper_text(ns, chromium, extra))
    path.chmod(0o755)
    return path


def _run(argv: list[str], check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(argv, check=check, stdin=subprocess.DEVNULL, capture_output=True, text=True)


def ns_list() -> list[str]:
    out = _run([IP, "netns", "list"], check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def ns_pids(ns: str) -> list[int]:
    out = _run([IP, "netns", "pids", ns], check=False).stdout
    return [int(x) for x in out.split() if x.isdigit()]


def stale_namespaces(names: list[str] | None = None) -> list[str]:
    """Namespaces of earlier runs (``moqev<pid>[sc]``) whose run is gone: left by a run killed with SIGKILL."""
    out = []
    for ns in ns_list() if names is None else names:
        m = re.fullmatch(r"moqev(\d+)[sc]", ns)
        if m and not Path(f"/proc/{m.group(1)}").exists():
            out.append(ns)
    return out


class Topology:
    """The server and client namespaces of one run."""

    def __init__(self, tag: str | int | None = None):
        tag = os.getpid() if tag is None else tag
        self.server = f"moqev{tag}s"
        self.client = f"moqev{tag}c"
        self.created: list[str] = []

    def create(self) -> None:
        for ns in (self.server, self.client):
            if ns in ns_list():
                raise RuntimeError(f"network namespace {ns} exists already: delete it with `ip netns delete {ns}`")
            r = _run([IP, "netns", "add", ns], check=False)
            if r.returncode != 0:
                raise RuntimeError(f"ip netns add {ns} failed: {r.stderr.strip()} (run as root)")
            self.created.append(ns)
            _run([IP, "-n", ns, "link", "set", "lo", "up"])

    def kill_inside(self, grace: float = 2.0) -> list[int]:
        """Ends every process inside our namespaces (SIGTERM, then SIGKILL); returns the pids found."""
        found: list[int] = []
        for ns in self.created:
            found += ns_pids(ns)
        if not found:
            return found
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in found:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline and any(_alive(p) for p in found):
                time.sleep(0.05)
            if not any(_alive(p) for p in found):
                break
        return found

    def delete(self) -> None:
        """Ends what is inside, then deletes the namespaces this object created. Safe to call twice."""
        self.kill_inside()
        for ns in reversed(self.created):
            r = _run([IP, "netns", "delete", ns], check=False)
            if r.returncode != 0 and ns in ns_list():
                print(f"warning: ip netns delete {ns}: {r.stderr.strip()}", file=sys.stderr)
        self.created.clear()


def _alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def _group_alive(pgid: int) -> bool:
    """True while any non-zombie process is in process group ``pgid``."""
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    rest = f.read().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
            if rest[0] != "Z" and int(rest[2]) == pgid:
                return True
    return False


@dataclass
class Proc:
    """One process the supervisor started (the leader of its own process group)."""

    name: str
    argv: list[str]
    popen: subprocess.Popen
    log: Path | None
    out: Path | None
    cwd: str | None
    started_unix_ms: float
    stopped: bool = False

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def record(self) -> dict:
        """What cell.json keeps of it."""
        return {
            "name": self.name,
            "argv": self.argv,
            "cwd": self.cwd,
            "pid": self.pid,
            "started_unix_ms": self.started_unix_ms,
            "returncode": self.popen.returncode,
            "stderr": str(self.log) if self.log else None,
            "stdout": str(self.out) if self.out else None,
        }


@dataclass
class Supervisor:
    """Starts processes each in its own process group and ends them by group, and only them."""

    procs: list[Proc] = field(default_factory=list)

    def start(
        self,
        name: str,
        argv: list[str],
        log_dir: Path | None = None,
        stdin_from: Proc | None = None,
        pipe_stdout: bool = False,
        cwd: str | Path | None = None,
        env: dict[str, str] | None = None,
    ) -> Proc:
        """Starts ``argv``. stderr goes to ``log_dir/<name>.log``; stdout to the next process's stdin if
        ``pipe_stdout`` (pass this Proc as that one's ``stdin_from``), else to ``log_dir/<name>.out``. Without
        log_dir both are discarded."""
        log = out = None
        err_f = out_f = subprocess.DEVNULL
        if log_dir is not None:
            log_dir.mkdir(parents=True, exist_ok=True)
            log = log_dir / f"{name}.log"
            err_f = open(log, "wb")
        if pipe_stdout:
            out_f = subprocess.PIPE
        elif log_dir is not None:
            out = log_dir / f"{name}.out"
            out_f = open(out, "wb")
        stdin = subprocess.DEVNULL
        if stdin_from is not None:
            if stdin_from.popen.stdout is None:
                raise ValueError(f"{stdin_from.name} was not started with pipe_stdout")
            stdin = stdin_from.popen.stdout
        try:
            popen = subprocess.Popen(
                argv,
                stdin=stdin,
                stdout=out_f,
                stderr=err_f,
                cwd=str(cwd) if cwd else None,
                env=env,
                start_new_session=True,
                close_fds=True,
            )
        except OSError as e:
            raise RuntimeError(f"cannot start {name} ({argv[0]}): {e}") from e
        finally:
            for f in (err_f, out_f):
                if hasattr(f, "close"):
                    f.close()
        if stdin_from is not None:
            # The consumer holds the pipe now; the producer gets EPIPE when it goes.
            stdin_from.popen.stdout.close()
        proc = Proc(name, list(argv), popen, log, out, str(cwd) if cwd else None, time.time() * 1000)
        self.procs.append(proc)
        return proc

    def signal(self, proc: Proc, sig: int) -> None:
        """Signals ``proc``'s process group (a no-op once nobody is left in it)."""
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def stop(self, procs: list[Proc] | Proc, grace: float = 5.0) -> None:
        """SIGTERM to each process group, wait up to ``grace`` s for all to leave, then SIGKILL the rest."""
        procs = [procs] if isinstance(procs, Proc) else list(procs)
        live = [p for p in procs if not p.stopped]
        for p in live:
            p.popen.poll()
            self.signal(p, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            for p in live:
                p.popen.poll()
            if not any(_group_alive(p.pid) for p in live):
                break
            time.sleep(0.05)
        for p in live:
            if _group_alive(p.pid):
                self.signal(p, signal.SIGKILL)
        for p in live:
            try:
                p.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                print(f"warning: {p.name} (pid {p.pid}) survived SIGKILL", file=sys.stderr)
            p.stopped = True
            if p in self.procs:
                self.procs.remove(p)

    def teardown(self, grace: float = 5.0) -> None:
        """Stops everything still running, latest first."""
        self.stop(list(reversed(self.procs)), grace)


def tail(path: Path | None, lines: int = 15) -> str:
    if path is None or not path.exists():
        return ""
    text = path.read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:])


def wait_for(
    cond: Callable[[], object],
    timeout: float,
    what: str,
    procs: list[Proc] | None = None,
    interval: float = 0.05,
) -> object:
    """Polls ``cond`` until it returns something truthy (returned), ``timeout`` s pass, or one of ``procs``
    exits (both raise ReadyTimeout, naming ``what`` and showing that process's stderr)."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        dead = [p for p in procs or [] if p.popen.poll() is not None]
        if dead:
            # The one that failed first in the pipeline is likely the one with a non-zero status.
            dead.sort(key=lambda p: p.popen.returncode == 0)
            first = dead[0]
            others = "".join(f", {p.name} (status {p.popen.returncode})" for p in dead[1:])
            raise ReadyTimeout(
                f"{first.name} exited (status {first.popen.returncode}{others and ', also' + others[1:]}) "
                f"while waiting for {what}" + (f"\n--- {first.name} stderr:\n{tail(first.log)}" if first.log else "")
            )
        if time.monotonic() >= deadline:
            logs = "".join(f"\n--- {p.name} stderr:\n{tail(p.log)}" for p in procs or [] if p.log)
            raise ReadyTimeout(f"timed out after {timeout:g} s waiting for {what}{logs}")
        time.sleep(interval)


def line_matching(path: Path | None, pattern: str) -> Callable[[], re.Match | None]:
    """A condition for wait_for: the first line of the file at ``path`` matching ``pattern`` (a regex)."""
    rx = re.compile(pattern)

    def cond() -> re.Match | None:
        if path is None or not path.exists():
            return None
        with open(path, errors="replace") as f:
            for line in f:
                m = rx.search(line)
                if m:
                    return m
        return None

    return cond


# Fetches a URL and prints the status on the first line, then the body. Runs inside a namespace (a child
# python3 under `ip netns exec`), so that the request leaves from there. Certificates are not checked: the run's
# own self-signed ones.
_FETCH = (
    "import ssl,sys,urllib.request as u,urllib.error as e\n"
    "try:\n"
    "  r=u.urlopen(sys.argv[1],timeout=float(sys.argv[2]),context=ssl._create_unverified_context())\n"
    "  b=r.read();sys.stdout.write('%d\\n'%r.status);sys.stdout.flush();sys.stdout.buffer.write(b)\n"
    "except e.HTTPError as x:\n"
    "  print(x.code)\n"
    "except Exception as x:\n"
    "  print(0);print(x)\n"
)


def http_get(url: str, ns: str | None = None, timeout: float = 2.0) -> tuple[int, bytes]:
    """(status, body) of GET ``url`` from namespace ``ns`` (the root one for None); status 0 when it could not
    connect."""
    argv = in_ns(ns, [sys.executable, "-c", _FETCH, url, str(timeout)])
    try:
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout + 5)
    except subprocess.TimeoutExpired:
        return 0, b""
    head, _, body = r.stdout.partition(b"\n")
    try:
        return int(head), body
    except ValueError:
        return 0, r.stdout + r.stderr


def http_ok(url: str, ns: str | None = None, contains: str | None = None, min_count: int = 1):
    """A condition for wait_for: GET answers 200 (and its body has ``contains`` at least ``min_count`` times);
    returns the body."""

    def cond() -> bytes | None:
        status, body = http_get(url, ns)
        if status != 200:
            return None
        if contains is not None and body.decode(errors="replace").count(contains) < min_count:
            return None
        return body or b" "

    return cond


def write_json(path: Path, data: object) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    tmp.replace(path)


def make_cert(d: Path, ips: list[str]) -> tuple[Path, Path]:
    """A self-signed ECDSA P-256 certificate (what browsers accept for WebTransport hashes too) for ``ips`` and
    localhost, valid 14 days, for the run's HTTPS origins: (cert.pem, key.pem) in ``d``."""
    d.mkdir(parents=True, exist_ok=True)
    cert, key = d / "cert.pem", d / "key.pem"
    san = ",".join([f"IP:{ip}" for ip in ips] + ["DNS:localhost"])
    r = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-days", "14", "-subj", "/CN=moq-eval", "-addext", f"subjectAltName={san}", "-keyout", str(key),
         "-out", str(cert)], stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"openssl could not make a certificate: {r.stderr.strip()}")
    return cert, key


def spki_hash(cert: Path) -> str | None:
    """base64 SHA-256 of the certificate's public key: Chromium's --ignore-certificate-errors-spki-list value."""
    import base64
    import hashlib

    pub = subprocess.run(["openssl", "x509", "-in", str(cert), "-noout", "-pubkey"], capture_output=True)
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=pub.stdout, capture_output=True)
    if pub.returncode or der.returncode or not der.stdout:
        return None
    return base64.b64encode(hashlib.sha256(der.stdout).digest()).decode()
