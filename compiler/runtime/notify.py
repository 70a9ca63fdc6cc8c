"""Tell a person, once, about what needs one: a dataset that ended in Fail, one that
was quarantined, one stuck (no new line for `stuck_after`), a failed cycle.

After each `padocc run` and `padocc cycle` the datasets are looked at as the compile
looks at them (the survey's index, so an unchanged status file costs one `stat`).
An event is keyed by the line that made it (its stamp): `.padocc/notify.json`
remembers the keys already told, so each event is told once, and told again only
when a new line makes a new one (a requeued dataset that fails again). The record
is read, the command run and the record rewritten (atomically, fsynced) under
`.padocc/notify.lock`, so two overlapping runs never tell one event twice. A crash
between a command's success and the record's rewrite tells that one event again
(at least once: an outside command cannot be undone). The command runs with a
bounded time; one that fails or hangs is said in one stderr line, and the events
left wait for the next run (the run itself goes on and keeps its exit status).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TextIO

from compiler.core.names import job_log
from compiler.core.safeio import NotRegularFile, read_regular
from compiler.core.statusfile import (
    ENGAGED,
    QUARANTINED,
    iso,
    parse_params,
    parse_stamp,
    read_history,
)
from compiler.core.statusindex import INDEX_FILE, Index, fold
from compiler.model.types import Notify, Workflow

RECORD = os.path.join(".padocc", "notify.json")
LOCK = os.path.join(".padocc", "notify.lock")
MAX_RECORD_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Event:
    event: str  # fail | quarantined | stuck | cycle_failed
    workflow: str
    dataset: str
    step: str
    state: str
    cause: str
    log: str | None
    time: str  # ISO UTC of the line that made the event (the cycle's end for cycle_failed)
    key: str = ""  # the stamp it is remembered by (not sent)
    path: str = ""  # the status file whose history gives the details, when told (not sent)


def dataset_events(
    wf_dir: str, status_dir: str, ids: Iterable[str], workflow: str, root: str,
    notify: Notify, now: float,
) -> list[Event]:  # fmt: skip
    """The events the datasets' status files show now (told or not)."""
    wanted = set(notify.events)
    index = Index(Path(wf_dir) / INDEX_FILE, status_dir)
    out = []
    sdir = os.path.join(status_dir, "")
    for ds in ids:
        name = f"{ds}.status"
        path = sdir + name
        try:
            st = os.stat(path)
        except OSError:
            continue  # not started: nothing to tell
        if not stat.S_ISREG(st.st_mode):
            continue  # the compile refuses it, with its own message
        sig = [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]
        brief = index.get(name, sig)
        if brief is None:
            try:
                brief = fold(read_regular(path), path)
            except OSError:
                continue
        cur, eng = brief.current, brief.engaged
        if cur is not None and eng is None and not brief.blocked:
            if cur[4] == QUARANTINED and "quarantined" in wanted:
                reason = parse_params(cur[5]).get("reason", "")
                out.append(Event("quarantined", workflow, ds, cur[3], cur[4], reason, None,
                                 iso(cur[0]) or "", cur[0], path))  # fmt: skip
                continue
            if cur[4] == "Fail" and cur[2] == root and cur[3] == root:
                if "fail" in wanted:
                    out.append(Event("fail", workflow, ds, cur[3], cur[4], "", None,
                                     iso(cur[0]) or "", cur[0], path))  # fmt: skip
                continue
            if cur[4] == "Pass" and cur[2] == root and cur[3] == root:
                continue
        if brief.blocked or not notify.stuck_after_s or "stuck" not in wanted:
            continue
        last = max((p for p in (cur, eng) if p is not None), key=lambda p: p[0], default=None)
        if last is None:
            continue
        if now - parse_stamp(last[0]).timestamp() > notify.stuck_after_s:
            age = _span(now - parse_stamp(last[0]).timestamp())
            cause = f"no progress for {age} (last: {last[3]}:{last[4]} at {iso(last[0])})"
            log = _log(wf_dir, ds, parse_params(eng[5])) if last is eng and eng else None
            out.append(Event("stuck", workflow, ds, last[3], last[4], cause, log, iso(last[0]) or "",
                             last[0]))  # fmt: skip
    return out


def _span(seconds: float) -> str:
    h, m = divmod(int(seconds) // 60, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m"


def _log(wf_dir: str, ds: str, params: dict) -> str | None:
    if not params.get("build") or not params.get("slot"):
        return None
    return os.path.join(wf_dir, job_log(params["build"], params.get("job") or ds, params["slot"]))


def _detailed(wf_dir: str, e: Event) -> Event:
    """A final Fail or a quarantine with the step that failed, its cause and its log,
    read from the history: only for an event about to be told."""
    if not e.path:
        return e
    step, state, log, cause = e.step, e.state, None, e.cause
    hist = read_history(Path(e.path)).stats
    engaged = None
    failed = None
    for s in hist:
        if s.state == ENGAGED:
            engaged = s
        elif s.state in ("Fail", QUARANTINED) and s.step != s.workflow:
            failed = (s, engaged if engaged is not None and engaged.step == s.step else None)
    if failed is not None:
        s, ran = failed
        step, state = s.step, s.state
        if not cause:
            p = s.params
            cause = (
                p.get("cause") or p.get("problem") or (f"exit {p['exit']}" if "exit" in p else "")
            )
        log = _log(wf_dir, e.dataset, ran.params) if ran is not None else None
    return replace(e, step=step, state=state, cause=cause, log=log)


def notify_after(
    notify: Notify | None, wf_dir: str, model: Workflow | None, now: float, err: TextIO,
    failed: str = "", log: str | None = None, workflow: str = "",
) -> None:  # fmt: skip
    """What `padocc run` and `padocc cycle` call at their end: the datasets' events
    (when the workflow compiled) and, if the run failed (`failed`: why), its own."""
    if notify is None:
        return
    events, ids = [], []
    try:
        if model is not None:
            ids = [d.id for d in model.datasets]
            events = dataset_events(wf_dir, model.status_dir, ids, model.name, model.graph.root,
                                    notify, now)  # fmt: skip
        if failed and "cycle_failed" in notify.events:
            events.append(cycle_event(model.name if model is not None else workflow, failed, log))
        if events or ids:
            tell(wf_dir, notify, events, err, ids)
    except OSError as e:  # a full disk, a read-only .padocc: said, and the run goes on
        where = e.filename or os.path.join(wf_dir, RECORD)
        print(f"padocc: notify: {where}: {e.strerror or e}; events left to the next run", file=err)


def cycle_event(workflow: str, cause: str, log: str | None = None) -> Event:
    return Event("cycle_failed", workflow, "", "", "", cause, log,
                 time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))  # fmt: skip


def tell(
    wf_dir: str, notify: Notify, events: list[Event], err: TextIO, scanned: Iterable[str] = ()
) -> int:
    """Run the command once for each event not told yet; returns how many were told.
    `scanned`: the datasets the events were looked for in (their record entries that
    no event holds any more are dropped)."""
    lock_path = os.path.join(wf_dir, LOCK)
    os.makedirs(os.path.dirname(lock_path), exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if not _lock(fd, 2 * notify.timeout_s + 10):
            print(f"padocc: notify: {lock_path} is held by another run past its time; "
                  f"{len(events)} events left to the next cycle", file=err)  # fmt: skip
            return 0
        record = _load(os.path.join(wf_dir, RECORD), err)
        sent: dict[str, dict[str, str]] = record.setdefault("sent", {})
        shown: dict[str, dict[str, str]] = {}
        for e in events:
            shown.setdefault(e.dataset, {})[e.event] = e.key
        before = json.dumps(sent, sort_keys=True)
        for ds in set(scanned) & sent.keys():  # moved on (requeued, unblocked): forget
            kept = {k: v for k, v in sent[ds].items() if shown.get(ds, {}).get(k) == v}
            if kept:
                sent[ds] = kept
            else:
                del sent[ds]
        todo = [e for e in events if not e.dataset or sent.get(e.dataset, {}).get(e.event) != e.key]
        told = 0
        started = time.monotonic()
        for n, e in enumerate(todo):
            if time.monotonic() - started > notify.timeout_s:
                break  # bounded: the rest are told by the next cycle
            problem = _run(wf_dir, notify, _detailed(wf_dir, e))
            if problem:
                left = len(todo) - n - 1
                print(f"padocc: notify: {problem} for {e.event}"
                      + (f" of {e.dataset}" if e.dataset else "")
                      + (f"; {left} more left to the next cycle" if left else ""), file=err)  # fmt: skip
                break
            told += 1
            if e.dataset:
                sent.setdefault(e.dataset, {})[e.event] = e.key
                _save(os.path.join(wf_dir, RECORD), record)  # after each: a crash re-tells one
        if not told and json.dumps(sent, sort_keys=True) != before:
            _save(os.path.join(wf_dir, RECORD), record)
        return told
    finally:
        os.close(fd)


def _lock(fd: int, wait_s: float) -> bool:
    end = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() > end:
                return False
            time.sleep(0.1)


def _load(path: str, err: TextIO) -> dict:
    try:
        data = json.loads(read_regular(path, MAX_RECORD_BYTES))
        if (
            isinstance(data, dict)
            and isinstance(data.get("sent"), dict)
            and all(isinstance(v, dict) for v in data["sent"].values())
        ):
            return data
        raise ValueError("not a notify record")
    except FileNotFoundError:
        return {"sent": {}}
    except (IsADirectoryError, NotRegularFile):
        raise  # not ours to replace: said by notify_after, in one line
    except (OSError, ValueError) as e:
        print(f"padocc: notify: {path}: damaged ({e}); started again: events still shown "
              "are told again", file=err)  # fmt: skip
        return {"sent": {}}


def _save(path: str, record: dict) -> None:
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".notify-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(json.dumps(record, sort_keys=True))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _run(wf_dir: str, notify: Notify, e: Event) -> str:
    """Run the command for one event: "" when it exited 0, else what went wrong."""
    facts = {k: v for k, v in asdict(e).items() if k not in ("key", "path")}
    facts["workflow_dir"] = wf_dir
    facts["host"] = socket.gethostname()
    env = {
        **os.environ, "PADOCC_EVENT": e.event, "PADOCC_WORKFLOW": e.workflow,
        "PADOCC_DATASET": e.dataset, "PADOCC_STEP": e.step, "PADOCC_STATE": e.state,
        "PADOCC_LOG": e.log or "",
    }  # fmt: skip
    with tempfile.TemporaryFile() as errf:
        try:
            proc = subprocess.Popen(
                ["bash", "-c", notify.command, "padocc-notify", e.event, e.dataset],
                cwd=wf_dir, env=env, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                stderr=errf, start_new_session=True,
            )  # fmt: skip
        except OSError as ex:
            return f"cannot start the command ({ex.strerror})"
        try:
            proc.communicate(json.dumps(facts).encode() + b"\n", timeout=notify.timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # its children too
            proc.wait()
            return f"command still running after {notify.timeout_s}s, killed"
        if proc.returncode == 0:
            return ""
        errf.seek(0, os.SEEK_END)
        errf.seek(max(0, errf.tell() - 300))
        tail = errf.read().decode("utf-8", "replace").strip().splitlines()
        said = f": {tail[-1][:200]}" if tail else ""
        return f"command exited {proc.returncode}{said}"
