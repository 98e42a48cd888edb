"""Helpers for strata's integration tests (python3 standard library only).

- Suite: runs small test functions, prints TAP-like lines, per-test timeouts
  enforced by a watchdog thread, exit 0 / 1 / 77 (skipped).
- run_strata / mounted(): run the binary with timeouts; mount into a fresh
  temp dir and ALWAYS unmount (strata umount, fusermount3 -u, -uz, then
  SIGKILL of the daemon found by its mount point in /proc) — also on SIGTERM
  (meson's timeout), SIGINT and at exit.
- snapshot() / compare_trees(): lstat walk of two roots; readable differences.
- tar_view(): what one layer tar holds (python tarfile), normalised.
- read_image(): an independent reader for OCI dirs, OCI archives and docker
  archives (manifest, config, layer streams), used only as a test oracle.
- pread_check(): random-offset reads compared with a reference file.
"""

import atexit
import contextlib
import gzip
import hashlib
import io
import json
import os
import random
import re
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import traceback

SKIP = 77
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SHARED = os.path.normpath(os.path.join(REPO, "..", "shared"))
FIXTURES_SRC = os.path.join(REPO, "tests", "fixtures")

MOUNT_TIMEOUT = float(os.environ.get("STRATA_ITEST_MOUNT_TIMEOUT", "120"))
CMD_TIMEOUT = float(os.environ.get("STRATA_ITEST_CMD_TIMEOUT", "60"))

# STRATA_WRAPPER: a command that prefixes every strata invocation (the mount
# daemon, the CLI commands, those a shell or mount.strata runs), e.g.
# "valgrind --leak-check=full". A valgrind wrapper gets a log file per process
# (-q --log-file, which valgrind reopens in the forked daemon too); after every
# test the logs are read and any report in them fails the test.
WRAPPER = shlex.split(os.environ.get("STRATA_WRAPPER", ""))
MEMCHECK = bool(WRAPPER) and os.path.basename(WRAPPER[0]).startswith("valgrind")
# Every timeout (commands, mounts, tests, a daemon's exit) is multiplied by
# this: 1, or 30 under a wrapper (valgrind runs strata 20-50x slower).
TIME_SCALE = float(os.environ.get("STRATA_ITEST_TIME_SCALE") or (30 if WRAPPER else 1))


# --------------------------------------------------------------------------
# Output, skipping, failing


def log(msg=""):
    print(msg, flush=True)


def diag(msg):
    for line in str(msg).splitlines() or [""]:
        print("# " + line, flush=True)


def skip_all(reason):
    """Exit 77: meson counts the test as skipped (never as passed)."""
    log("1..0 # SKIP " + reason)
    sys.stdout.flush()
    sys.exit(SKIP)


class TestTimeout(BaseException):
    pass


class Terminated(BaseException):
    pass


class Failure(Exception):
    """A check failed; the message says what and where."""


def fail(msg):
    raise Failure(msg)


def check(cond, msg):
    if not cond:
        raise Failure(msg)


def shown(path):
    """A path (bytes or str) as readable text, odd bytes escaped."""
    if isinstance(path, bytes):
        return path.decode("utf-8", "backslashreplace")
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def unescape(s):
    """'caf\\xe9' (JSON text) -> b'caf\\xe9' (bytes); used by expectation files."""
    b = s.encode("utf-8")
    return re.sub(rb"\\x([0-9a-fA-F]{2})", lambda m: bytes([int(m.group(1), 16)]), b)


# --------------------------------------------------------------------------
# Environment


def strata_binary():
    """The binary under test, from $STRATA; skip when unset. Under
    STRATA_WRAPPER: a script that runs it through the wrapper (see wrap_binary)."""
    exe = os.environ.get("STRATA", "")
    if not exe:
        skip_all("STRATA is not set (no strata binary to test yet)")
    if not (os.path.isfile(exe) and os.access(exe, os.X_OK)):
        log("Bail out! STRATA=%s is not an executable file" % exe)
        sys.exit(1)
    if WRAPPER:
        return wrap_binary(os.path.abspath(exe))
    return exe


VG_LOGS = None  # the valgrind log directory of this script, under a valgrind wrapper
_WRAP_DIR = []  # the wrapper's directory, removed at exit unless it holds reports


def wrap_binary(exe):
    """A directory holding `strata`, a script that execs STRATA_WRAPPER + exe
    (so the pid, and a signal sent to it, are strata's), and links to the other
    files beside exe (strata.1). Everything that runs strata through the path
    the tests get, also shells with that directory on PATH and mount.strata
    through $STRATA, runs it wrapped. Returns the script's path."""
    global VG_LOGS
    d = tempfile.mkdtemp(prefix="wrap-", dir=cache_dir())
    _WRAP_DIR.append(d)
    argv = list(WRAPPER)
    if MEMCHECK:
        if any(a.startswith("--log-file") or a.startswith("--log-fd") or a.startswith("--xml") for a in argv):
            log("Bail out! STRATA_WRAPPER: the harness sets valgrind's log file itself")
            sys.exit(1)
        VG_LOGS = os.path.join(d, "valgrind")
        os.makedirs(VG_LOGS)
        argv += ["-q", "--log-file=" + os.path.join(VG_LOGS, "%p.log")]
    script = os.path.join(d, "strata")
    with open(script, "w") as f:
        f.write("#!/bin/sh\nexec %s %s \"$@\"\n" % (" ".join(shlex.quote(a) for a in argv), shlex.quote(exe)))
    os.chmod(script, 0o755)
    src = os.path.dirname(exe)
    for name in os.listdir(src):
        if name != os.path.basename(exe) and os.path.isfile(os.path.join(src, name)):
            os.symlink(os.path.join(src, name), os.path.join(d, name))
    diag("strata runs under: %s" % " ".join(argv))
    return script


# Lines valgrind prints that are no finding in strata (a FUSE ioctl it does not model).
_VG_BENIGN = re.compile(r"^==\d+== (Warning: noted but unhandled ioctl|   This could cause|   See README_MISSING"
                        r"|Warning: set address range perms)")


def memcheck_reports(final=False):
    """Reports in the valgrind logs of processes that have ended (all of them
    when final): [(pid, text)]. Read logs are removed, those with a report
    are kept under VG_LOGS/reported/."""
    if not VG_LOGS:
        return []
    out = []
    for name in sorted(os.listdir(VG_LOGS)):
        if not name.endswith(".log"):
            continue
        pid = int(name[:-4])
        path = os.path.join(VG_LOGS, name)
        if not final and os.path.exists("/proc/%d" % pid) and not _is_zombie(pid):
            continue  # still running (a daemon): its leak check comes at its exit
        with open(path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
        lines = [l for l in text.splitlines() if l.strip() and not _VG_BENIGN.match(l)]
        if lines:
            out.append((pid, text))
            os.makedirs(os.path.join(VG_LOGS, "reported"), exist_ok=True)
            os.rename(path, os.path.join(VG_LOGS, "reported", name))
        else:
            os.unlink(path)
    return out


def memcheck_failure(reports):
    msg = ["valgrind memcheck reported in %d process(es) (logs kept under %s):"
           % (len(reports), os.path.join(VG_LOGS, "reported"))]
    for pid, text in reports:
        lines = text.splitlines()
        msg.append("process %d:" % pid)
        msg.extend("  " + l for l in lines[:60])
        if len(lines) > 60:
            msg.append("  ... %d more lines" % (len(lines) - 60))
    return "\n".join(msg)


def require_fuse():
    """Skip (77) unless FUSE mounts can work here."""
    if not os.path.exists("/dev/fuse"):
        skip_all("/dev/fuse is missing: cannot mount (counted as skipped, not passed)")
    if shutil.which("fusermount3") is None:
        skip_all("fusermount3 is not installed: cannot unmount safely")


def require_root(why):
    if os.geteuid() != 0:
        skip_all("needs root: " + why)


def require_tools(*tools):
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        skip_all("missing tools: " + ", ".join(missing))


def corpus_wanted(name):
    """False when STRATA_ITEST_CORPUS (e.g. "demo,realistic") leaves corpus image `name` out."""
    only = os.environ.get("STRATA_ITEST_CORPUS")
    return not only or name in only.split(",")


def cache_dir():
    d = os.environ.get("STRATA_ITEST_CACHE") or os.path.join(
        tempfile.gettempdir(), "strata-itest-cache-%d" % os.getuid()
    )
    os.makedirs(d, exist_ok=True)
    return d


# --------------------------------------------------------------------------
# Mount bookkeeping and emergency cleanup

_ACTIVE = {}  # mountpoint -> True
TERMINATED = False  # SIGTERM/SIGINT seen: stop after the current test
_LOCK = threading.RLock()


def _unescape_mountinfo(s):
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), s)


def is_mounted(mnt):
    """True if mnt is a mount point (read from /proc/self/mountinfo, never touching mnt)."""
    mnt = os.path.abspath(mnt)
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                fields = line.split(" ")
                if len(fields) > 4 and _unescape_mountinfo(fields[4]) == mnt:
                    return True
    except OSError:
        pass
    return False


def mount_fstype(mnt):
    mnt = os.path.abspath(mnt)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split(" ")
            if len(fields) > 4 and _unescape_mountinfo(fields[4]) == mnt:
                rest = line.split(" - ", 1)[1].split(" ")
                return rest[0]
    return None


def daemon_pids(mnt):
    """PIDs of processes whose argv holds this exact mount point (our daemons)."""
    mnt = os.path.abspath(mnt)
    me = os.getpid()
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == me:
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if any(a and os.path.abspath(a.decode("utf-8", "surrogateescape")) == mnt for a in argv):
            # Only processes that run strata (not this test, not fusermount3),
            # also under a wrapper (valgrind's argv holds strata's after its own).
            if argv and (b"strata" in os.path.basename(argv[0]) or
                         (WRAPPER and b"valgrind" in os.path.basename(argv[0])
                          and any(os.path.basename(a) == b"strata" for a in argv[1:]))):
                pids.append(int(d))
    return pids


def _run_quiet(argv, timeout):
    timeout *= TIME_SCALE
    try:
        return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                              preexec_fn=_child_setup).returncode
    except (subprocess.TimeoutExpired, OSError):
        return -1


def force_unmount(mnt, strata=None, notes=None):
    """Unmount by every means, in order; returns the list of means that were needed."""
    used = []
    pids = daemon_pids(mnt)
    if strata and is_mounted(mnt):
        used.append("strata umount")
        _run_quiet([strata, "umount", mnt], 20)
    if is_mounted(mnt):
        used.append("fusermount3 -u")
        _run_quiet(["fusermount3", "-u", mnt], 10)
    if is_mounted(mnt):
        # Busy or hung: kill the daemon first so the kernel aborts pending requests.
        used.append("SIGKILL daemon")
        for pid in pids + daemon_pids(mnt):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        used.append("fusermount3 -uz")
        _run_quiet(["fusermount3", "-uz", mnt], 10)
    if is_mounted(mnt):
        used.append("umount -l")
        _run_quiet(["umount", "-l", mnt], 10)
    # The daemon must go away after an unmount (15 s: it may be flushing its cache).
    deadline = time.time() + 15 * TIME_SCALE
    left = [p for p in pids if os.path.exists("/proc/%d" % p)]
    while left and time.time() < deadline:
        time.sleep(0.05)
        left = [p for p in left if os.path.exists("/proc/%d" % p) and not _is_zombie(p)]
    if left:
        used.append("daemon still alive after unmount: SIGKILL %s" % left)
        for pid in left:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    if notes is not None:
        notes.extend(used)
    return used


def _is_zombie(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def emergency_cleanup(kill_first=False):
    """Unmount everything this process mounted. kill_first: a test is stuck in a
    FUSE call, so SIGKILL the daemons first (the kernel then fails the call)."""
    with _LOCK:
        mnts = list(_ACTIVE)
    for mnt in mnts:
        if kill_first:
            for pid in daemon_pids(mnt):
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
        force_unmount(mnt)


def _on_term(signum, frame):
    emergency_cleanup(kill_first=True)
    raise Terminated("signal %d" % signum)


def _on_alarm(signum, frame):
    raise TestTimeout("test timed out")


def _signal_watcher(fd):
    """Python runs signal handlers only when the main thread gets back to the
    interpreter, which a call stuck on a hung FUSE mount never does. The C-level
    handler writes every signal number to the wakeup fd at once: on SIGTERM or
    SIGINT this thread kills our daemons (the stuck call then fails with
    ENOTCONN) and unmounts, so meson's timeout never leaves a mount behind."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _TERM_SIGNALS)  # whatever mask we inherited
    while True:
        try:
            data = os.read(fd, 64)
        except OSError:
            return
        if not data:
            return
        if signal.SIGTERM in data or signal.SIGINT in data:
            global TERMINATED
            TERMINATED = True
            emergency_cleanup(kill_first=True)


def uptime():
    try:
        with open("/proc/uptime") as f:
            return float(f.read().split()[0])
    except (OSError, ValueError):
        return 0.0


_TEST_START = [0.0]  # uptime when the current test started (dmesg timestamps are uptime)


def kernel_log_tail():
    """The kernel's words about strata (segfault lines) since the test started, if dmesg is readable."""
    r = run(["dmesg"], timeout=10)
    if r.rc != 0:
        return ""
    lines = []
    for l in r.out.decode("utf-8", "replace").splitlines():
        m = re.match(r"\[\s*([0-9.]+)\]", l)
        if "strata" in l and m and float(m.group(1)) >= _TEST_START[0] - 1:
            lines.append(l)
    return ("\nkernel log:\n  " + "\n  ".join(lines[-3:])) if lines else "\n(no kernel log line about it)"


def install_handlers():
    signal.signal(signal.SIGTERM, _on_term)
    signal.signal(signal.SIGINT, _on_term)
    signal.signal(signal.SIGALRM, _on_alarm)
    r, w = os.pipe()
    os.set_blocking(w, False)
    signal.set_wakeup_fd(w, warn_on_full_buffer=False)
    threading.Thread(target=_signal_watcher, args=(r,), daemon=True).start()
    # A thread blocked in a FUSE request does not run even the C-level handler
    # until the request ends: block SIGTERM/SIGINT in the main thread so the
    # kernel hands them to the watcher thread (the Python handlers still run in
    # the main thread). Children get them unblocked again (_child_setup).
    signal.pthread_sigmask(signal.SIG_BLOCK, _TERM_SIGNALS)
    atexit.register(emergency_cleanup, True)


_TERM_SIGNALS = {signal.SIGTERM, signal.SIGINT}


def _child_setup():
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _TERM_SIGNALS)


class Watchdog:
    """Fires once after `seconds`: kills the daemons of active mounts (which
    unblocks a main thread stuck in a FUSE call) and raises TestTimeout in the
    main thread through SIGALRM."""

    def __init__(self, seconds):
        self.fired = False
        self.done = False
        self._t = threading.Timer(seconds, self._fire)
        self._t.daemon = True

    def _fire(self):
        if self.done:
            return
        self.fired = True
        os.kill(os.getpid(), signal.SIGALRM)
        for _ in range(30):  # let the main thread unwind normally if it can
            if self.done:
                return
            time.sleep(0.1)
        emergency_cleanup(kill_first=True)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self.done = True
        self._t.cancel()
        return False


# --------------------------------------------------------------------------
# Running strata


class Result:
    def __init__(self, argv, rc, out, err, elapsed, timed_out=False):
        self.argv, self.rc, self.out, self.err = argv, rc, out, err
        self.elapsed, self.timed_out = elapsed, timed_out

    @property
    def crashed(self):
        # Negative: killed by a signal; >= 128: a shell-style signal exit.
        return self.rc is None or self.rc < 0 or self.rc >= 128

    def text(self):
        return "%s -> rc=%s%s (%.1fs)\nstderr: %s" % (
            " ".join(shown(a) for a in self.argv),
            self.rc,
            " TIMEOUT" if self.timed_out else "",
            self.elapsed,
            shown(self.err[-2000:]).strip(),
        )


def run(argv, timeout=CMD_TIMEOUT, stdin=subprocess.DEVNULL, env=None):
    """Run argv with a timeout (times TIME_SCALE); never raises on failure (see Result)."""
    timeout *= TIME_SCALE
    t0 = time.time()
    p = subprocess.Popen(argv, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                         start_new_session=True, preexec_fn=_child_setup)
    try:
        out, err = p.communicate(timeout=timeout)
        return Result(argv, p.returncode, out, err, time.time() - t0)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(OSError):
            os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        return Result(argv, None, out, err, time.time() - t0, timed_out=True)
    except BaseException:
        # A test timeout or SIGTERM while waiting: never leave the child running.
        with contextlib.suppress(OSError):
            os.killpg(p.pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            p.wait(timeout=5)
        raise


def image_arg(image, ref=None):
    return image + (ref or "")


def strata_cmd(strata, sub, image, *rest, ref=None, platform=None, opts=None, timeout=CMD_TIMEOUT, extra=()):
    argv = [strata, sub] + list(extra)
    if opts:
        argv += ["-o", opts]
    if platform:
        argv += ["--platform", platform]
    argv.append(image_arg(image, ref))
    argv += list(rest)
    return run(argv, timeout=timeout)


def check_one_line_error(res, what):
    """A refusal: non-zero exit, no crash, no hang, a one-line message."""
    check(not res.timed_out, "%s: hung (killed after timeout)\n%s" % (what, res.text()))
    check(not res.crashed, "%s: crashed (rc=%s)\n%s" % (what, res.rc, res.text()))
    check(res.rc != 0, "%s: expected a refusal, got exit 0\n%s" % (what, res.text()))
    msg = res.err.decode("utf-8", "replace").strip()
    check(msg != "", "%s: refused without any message on stderr\n%s" % (what, res.text()))
    return msg


@contextlib.contextmanager
def mounted(strata, image, ref=None, platform=None, opts=None, timeout=MOUNT_TIMEOUT, notes=None, extra=()):
    """Mount image into a fresh temp dir; yield the mount point; always unmount.

    Raises Failure if the mount command fails, hangs or does not leave a
    FUSE mount behind. `notes` (a list) collects the unmount means needed."""
    mnt = tempfile.mkdtemp(prefix="strata-mnt-")
    with _LOCK:
        _ACTIVE[mnt] = True
    try:
        res = strata_cmd(strata, "mount", image, mnt, ref=ref, platform=platform, opts=opts, timeout=timeout,
                         extra=extra)
        if res.timed_out or res.rc != 0:
            fail("mount failed: %s" % res.text())
        if not is_mounted(mnt):
            fail("mount returned 0 but %s is not a mount point\n%s" % (mnt, res.text()))
        fstype = mount_fstype(mnt) or ""
        check(fstype.startswith("fuse"), "mount point has fs type %r, expected fuse*" % fstype)
        yield mnt
    finally:
        used = force_unmount(mnt, strata)
        if notes is not None:
            notes.extend(used)
        with _LOCK:
            _ACTIVE.pop(mnt, None)
        if not is_mounted(mnt):
            with contextlib.suppress(OSError):
                os.rmdir(mnt)


def unmount_was_clean(notes):
    """strata umount alone should be enough."""
    extra = [n for n in notes if n != "strata umount"]
    return not extra, extra


# --------------------------------------------------------------------------
# Suite


class Suite:
    """Runs test functions; prints 'ok N - name' / 'not ok N - name' + diagnostics."""

    def __init__(self, name):
        self.name = name
        self.n = 0
        self.failed = []
        self.skipped = 0
        self.t0 = time.time()
        install_handlers()

    def run(self, name, fn, *args, timeout=120, **kw):
        self.n += 1
        t0 = time.time()
        _TEST_START[0] = uptime()
        timeout *= TIME_SCALE
        try:
            with Watchdog(timeout) as wd:
                try:
                    ret = fn(*args, **kw)
                except TestTimeout:
                    raise Failure("timed out after %ds (the mount may hang)" % timeout)
                except Failure:
                    if wd.fired:
                        raise Failure("timed out after %ds" % timeout)
                    raise
                except OSError as e:
                    if wd.fired:
                        raise Failure("timed out after %ds (then: %s)" % (timeout, e))
                    if e.errno in (107, 103):  # ENOTCONN, ECONNABORTED
                        raise Failure("the strata daemon died under the test (%s)%s" % (e, kernel_log_tail()))
                    raise Failure("unexpected OS error: %s\n%s" % (e, traceback.format_exc(limit=4)))
            reports = memcheck_reports()
            if reports:
                raise Failure(memcheck_failure(reports))
            if isinstance(ret, str) and ret.startswith("SKIP"):
                self.skipped += 1
                log("ok %d - %s # %s" % (self.n, name, ret))
            else:
                log("ok %d - %s (%.1fs)" % (self.n, name, time.time() - t0))
                if isinstance(ret, str) and ret:
                    diag(ret)
        except Failure as e:
            self.failed.append(name)
            log("not ok %d - %s (%.1fs)%s" % (self.n, name, time.time() - t0, " (terminated)" if TERMINATED else ""))
            diag(str(e))
            reports = memcheck_reports()
            if reports:
                diag(memcheck_failure(reports))
        except Terminated:
            self.failed.append(name)
            log("not ok %d - %s (terminated)" % (self.n, name))
            self.finish()
        except Exception as e:  # a bug in the test itself: report, keep going
            self.failed.append(name)
            log("not ok %d - %s (test error: %s)" % (self.n, name, e))
            diag(traceback.format_exc())
        if TERMINATED:
            diag("terminated by a signal: stopping")
            self.finish()

    def finish(self):
        emergency_cleanup(kill_first=True)
        reports = memcheck_reports(final=True)
        if reports:
            self.failed.append("memcheck after the last test")
            diag(memcheck_failure(reports))
        log("1..%d" % self.n)
        took = time.time() - self.t0
        if TERMINATED and not self.failed:
            diag("%s: terminated by a signal after %d test(s)" % (self.name, self.n))
            sys.exit(1)
        if self.failed:
            diag("%s: %d of %d failed (%.0fs): %s" % (self.name, len(self.failed), self.n, took,
                                                    ", ".join(self.failed)))
            sys.exit(1)
        if self.n and self.skipped == self.n:
            self._remove_wrapper()
            diag("%s: every test skipped" % self.name)
            sys.exit(SKIP)
        diag("%s: all %d passed (%.0fs)" % (self.name, self.n, took))
        self._remove_wrapper()
        sys.exit(0)

    @staticmethod
    def _remove_wrapper():
        for d in _WRAP_DIR:
            if not os.path.isdir(os.path.join(d, "valgrind", "reported")):
                shutil.rmtree(d, ignore_errors=True)


# --------------------------------------------------------------------------
# Tree snapshots and comparison

TYPES = {
    stat.S_IFREG: "file",
    stat.S_IFDIR: "dir",
    stat.S_IFLNK: "symlink",
    stat.S_IFIFO: "fifo",
    stat.S_IFCHR: "chr",
    stat.S_IFBLK: "blk",
    stat.S_IFSOCK: "sock",
}


def sha256_file(path, bufsize=1 << 20):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(bufsize)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def user_xattrs(name):
    # user.strata.* is strata's own provenance (layer, digest), not image content
    return name.startswith(b"user.") and not name.startswith(b"user.strata.")



def all_xattrs(name):
    return True


class Entry:
    __slots__ = ("type", "mode", "uid", "gid", "size", "mtime", "target", "sha256", "rdev",
                 "ino", "nlink", "xattrs")

    def as_dict(self):
        return {k: getattr(self, k) for k in self.__slots__}


def snapshot(root, hash_content=True, xattr_filter=user_xattrs, content_filter=None):
    """{relative path (bytes): Entry} for everything under root (root itself excluded).

    content_filter(relpath, size) -> bool limits which files are hashed."""
    root_b = os.fsencode(root)
    out = {}
    stack = [b""]
    while stack:
        rel = stack.pop()
        d = os.path.join(root_b, rel) if rel else root_b
        with os.scandir(d) as it:
            names = [e.name for e in it]
        for name in names:
            r = os.path.join(rel, name) if rel else name
            p = os.path.join(root_b, r)
            st = os.lstat(p)
            e = Entry()
            e.type = TYPES.get(stat.S_IFMT(st.st_mode), "unknown")
            e.mode = stat.S_IMODE(st.st_mode)
            e.uid, e.gid, e.size = st.st_uid, st.st_gid, st.st_size
            e.mtime = int(st.st_mtime)
            e.ino, e.nlink = st.st_ino, st.st_nlink
            e.target = os.readlink(p) if e.type == "symlink" else None
            e.rdev = (os.major(st.st_rdev), os.minor(st.st_rdev)) if e.type in ("chr", "blk") else None
            e.sha256 = None
            if e.type == "file" and hash_content and (content_filter is None or content_filter(r, st.st_size)):
                e.sha256 = sha256_file(p)
            e.xattrs = {}
            if xattr_filter is not None:
                try:
                    for k in os.listxattr(p, follow_symlinks=False):
                        kb = os.fsencode(k)
                        if xattr_filter(kb):
                            e.xattrs[kb] = os.getxattr(p, k, follow_symlinks=False)
                except OSError as ex:
                    if ex.errno not in (95,):  # ENOTSUP: no xattrs here
                        raise
            out[r] = e
            if e.type == "dir":
                stack.append(r)
    return out


def hardlink_groups(snap):
    """Partition of regular-file paths by inode number (groups of 2+ only)."""
    by_ino = {}
    for p, e in snap.items():
        if e.type == "file":
            by_ino.setdefault(e.ino, []).append(p)
    return {frozenset(v) for v in by_ino.values() if len(v) > 1}


def compare_trees(a, b, label_a="got", label_b="want", dir_mtime=True, check_nlink=True,
                  check_xattrs=True, limit=20):
    """Differences between two snapshots, as readable lines (at most `limit`, then a count)."""
    diffs = []
    pa, pb = set(a), set(b)
    for p in sorted(pb - pa):
        diffs.append("only in %s: %s (%s)" % (label_b, shown(p), b[p].type))
    for p in sorted(pa - pb):
        diffs.append("only in %s: %s (%s)" % (label_a, shown(p), a[p].type))
    for p in sorted(pa & pb):
        x, y = a[p], b[p]
        where = shown(p)
        if x.type != y.type:
            diffs.append("%s: type %s != %s" % (where, x.type, y.type))
            continue
        if x.type != "symlink" and x.mode != y.mode:
            diffs.append("%s: mode %04o != %04o" % (where, x.mode, y.mode))
        if (x.uid, x.gid) != (y.uid, y.gid):
            diffs.append("%s: uid:gid %d:%d != %d:%d" % (where, x.uid, x.gid, y.uid, y.gid))
        if x.type in ("file", "symlink") and x.size != y.size:
            diffs.append("%s: size %d != %d" % (where, x.size, y.size))
        if x.type == "symlink" and x.target != y.target:
            diffs.append("%s: symlink target %r != %r" % (where, x.target, y.target))
        if x.type == "file" and x.sha256 and y.sha256 and x.sha256 != y.sha256:
            diffs.append("%s: content sha256 %s != %s" % (where, x.sha256[:16], y.sha256[:16]))
        if x.rdev != y.rdev:
            diffs.append("%s: device %s != %s" % (where, x.rdev, y.rdev))
        if (dir_mtime or x.type != "dir") and x.mtime != y.mtime:
            diffs.append("%s: mtime %s != %s" % (where, fmt_time(x.mtime), fmt_time(y.mtime)))
        if check_nlink and x.type == "file" and x.nlink != y.nlink:
            diffs.append("%s: st_nlink %d != %d" % (where, x.nlink, y.nlink))
        if check_xattrs and x.xattrs != y.xattrs:
            diffs.append("%s: xattrs %s != %s" % (where, fmt_xattrs(x.xattrs), fmt_xattrs(y.xattrs)))
    ga, gb = hardlink_groups(a), hardlink_groups(b)
    for g in sorted(gb - ga, key=sorted):
        diffs.append("hardlink group in %s only: %s" % (label_b, ", ".join(shown(p) for p in sorted(g))))
    for g in sorted(ga - gb, key=sorted):
        diffs.append("hardlink group in %s only: %s" % (label_a, ", ".join(shown(p) for p in sorted(g))))
    return diffs


def fmt_time(t):
    try:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
    except (OverflowError, ValueError, OSError):
        return str(t)


def fmt_xattrs(x):
    return "{" + ", ".join("%s=%r" % (shown(k), v) for k, v in sorted(x.items())) + "}"


def parse_time(s):
    import calendar
    return calendar.timegm(time.strptime(s, "%Y-%m-%dT%H:%M:%SZ"))


def report(diffs, what, limit=20):
    """Raise Failure listing the first `limit` differences."""
    if diffs:
        more = "" if len(diffs) <= limit else "\n... and %d more" % (len(diffs) - limit)
        fail("%s: %d difference(s):\n  %s%s" % (what, len(diffs), "\n  ".join(diffs[:limit]), more))


def check_expectations(snap, exp, root, what):
    """Check a snapshot against an expectations.json block (see tests/fixtures/expectations.json)."""
    diffs = []
    entries = {unescape(k): v for k, v in exp.get("entries", {}).items()}
    for p, want in sorted(entries.items()):
        e = snap.get(p)
        if e is None:
            diffs.append("missing: %s" % shown(p))
            continue
        diffs += _check_entry(p, e, want, root)
    for a in exp.get("absent", []):
        if unescape(a) in snap:
            diffs.append("must be absent: %s" % a)
    if exp.get("exact"):
        for p in sorted(set(snap) - set(entries)):
            diffs.append("unexpected entry: %s (%s)" % (shown(p), snap[p].type))
    report(diffs, what)


def _check_entry(p, e, want, root):
    d = []
    w = shown(p)
    if e.type != want["type"]:
        return ["%s: type %s, expected %s" % (w, e.type, want["type"])]
    if "content" in want:
        with open(os.path.join(os.fsencode(root), p), "rb") as f:
            data = f.read()
        if data != unescape(want["content"]):
            d.append("%s: content %r, expected %r" % (w, data[:80], want["content"][:80]))
    if "mode" in want and e.mode != int(want["mode"], 8):
        d.append("%s: mode %04o, expected %s" % (w, e.mode, want["mode"]))
    for k in ("uid", "gid", "nlink"):
        if k in want and getattr(e, k) != want[k]:
            d.append("%s: %s %s, expected %s" % (w, k, getattr(e, k), want[k]))
    if "mtime" in want and e.mtime != parse_time(want["mtime"]):
        d.append("%s: mtime %s, expected %s" % (w, fmt_time(e.mtime), want["mtime"]))
    if "target" in want and e.target != unescape(want["target"]):
        d.append("%s: target %r, expected %r" % (w, e.target, want["target"]))
    if "rdev" in want and e.rdev != tuple(want["rdev"]):
        d.append("%s: device %s, expected %s" % (w, e.rdev, want["rdev"]))
    if "xattrs" in want or "no_xattrs" in want:
        full = os.path.join(os.fsencode(root), p)
        names = {os.fsencode(n) for n in os.listxattr(full, follow_symlinks=False)}
        for k, v in want.get("xattrs", {}).items():
            kb = k.encode()
            if kb not in names:
                d.append("%s: xattr %s missing" % (w, k))
            elif os.getxattr(full, kb, follow_symlinks=False) != unescape(v):
                d.append("%s: xattr %s = %r, expected %r" % (w, k, os.getxattr(full, kb, follow_symlinks=False), v))
        for k in want.get("no_xattrs", []):
            if k.encode() in names:
                d.append("%s: xattr %s must be hidden" % (w, k))
    return d


# --------------------------------------------------------------------------
# Layer tars (python tarfile as the second, independent reader)


GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class _ZstdStream(io.RawIOBase):
    """Decompress with the zstd CLI (python 3.11 has no zstd module)."""

    def __init__(self, raw):
        self._p = subprocess.Popen(["zstd", "-dc", "-q"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self._raw = raw
        self._feeder = threading.Thread(target=self._feed, daemon=True)
        self._feeder.start()

    def _feed(self):
        try:
            while True:
                b = self._raw.read(1 << 20)
                if not b:
                    break
                self._p.stdin.write(b)
        except (BrokenPipeError, ValueError):
            pass
        finally:
            with contextlib.suppress(OSError):
                self._p.stdin.close()

    def readable(self):
        return True

    def readinto(self, buf):
        n = self._p.stdout.readinto(buf)
        return n

    def close(self):
        with contextlib.suppress(Exception):
            self._p.stdout.close()
            self._p.kill()
            self._p.wait()
        super().close()


def decompressed(f):
    """A readable stream of f's decompressed bytes (gzip / zstd / none, by magic)."""
    head = f.read(4)
    rest = _Prepend(head, f)
    if head[:2] == GZIP_MAGIC:
        return gzip.GzipFile(fileobj=rest, mode="rb")
    if head[:4] == ZSTD_MAGIC:
        return io.BufferedReader(_ZstdStream(rest), 1 << 20)
    return rest


class _Prepend(io.RawIOBase):
    def __init__(self, head, f):
        self._head, self._f = head, f

    def readable(self):
        return True

    def read(self, n=-1):
        if self._head:
            if n is None or n < 0:
                b, self._head = self._head + self._f.read(), b""
                return b
            b, self._head = self._head[:n], self._head[n:]
            if len(b) < n:
                b += self._f.read(n - len(b))
            return b
        return self._f.read(n)

    def readinto(self, buf):
        b = self.read(len(buf))
        buf[: len(b)] = b
        return len(b)


def norm_tar_path(name):
    """Tar member name -> normalised relative path (bytes): strip '/', './', trailing '/'."""
    b = name.encode("utf-8", "surrogateescape") if isinstance(name, str) else name
    parts = [c for c in b.split(b"/") if c not in (b"", b".")]
    return b"/".join(parts)


TAR_TYPES = {
    tarfile.REGTYPE: "file", tarfile.AREGTYPE: "file", tarfile.CONTTYPE: "file",
    tarfile.DIRTYPE: "dir", tarfile.SYMTYPE: "symlink", tarfile.LNKTYPE: "hardlink",
    tarfile.FIFOTYPE: "fifo", tarfile.CHRTYPE: "chr", tarfile.BLKTYPE: "blk",
    tarfile.GNUTYPE_SPARSE: "file",
}


def tar_view(stream, hash_content=True, hash_limit=None):
    """{path: dict(type, mode, uid, gid, size, mtime, target, sha256, rdev, xattrs, implied, link)}
    for one layer tar stream: duplicates last-wins, hardlinks resolved to their
    target's content, implied parent directories added with implied=True."""
    view = {}
    tf = tarfile.open(fileobj=stream, mode="r|", errors="surrogateescape")
    for m in tf:
        p = norm_tar_path(m.name)
        if not p:
            continue
        t = TAR_TYPES.get(m.type, "other:%r" % m.type)
        e = {"type": t, "mode": m.mode & 0o7777, "uid": m.uid, "gid": m.gid, "size": m.size,
             "mtime": int(m.mtime), "target": None, "sha256": None, "rdev": None, "implied": False,
             "link": None,
             "xattrs": {k[len("SCHILY.xattr."):].encode("utf-8", "surrogateescape"):
                        v.encode("utf-8", "surrogateescape")
                        for k, v in m.pax_headers.items() if k.startswith("SCHILY.xattr.")}}
        if t == "symlink":
            e["target"] = m.linkname.encode("utf-8", "surrogateescape")
            e["size"] = len(e["target"])
        elif t == "hardlink":
            e["link"] = norm_tar_path(m.linkname)
            tgt = view.get(e["link"])
            e["type"] = "file"
            if tgt is not None:
                e["sha256"], e["size"] = tgt["sha256"], tgt["size"]
            else:  # target in a lower layer (or missing): content unknown here
                e["size"] = None
        elif t in ("chr", "blk"):
            e["rdev"] = (m.devmajor, m.devminor)
        elif t == "file" and hash_content and (hash_limit is None or m.size < hash_limit):
            h = hashlib.sha256()
            f = tf.extractfile(m)
            while True:
                b = f.read(1 << 20)
                if not b:
                    break
                h.update(b)
            e["sha256"] = h.hexdigest()
        if t == "dir":
            e["size"] = 0
        view.pop(p, None)  # last wins, and keeps the order of the last one
        view[p] = e
    # Implied parents; entries below a non-directory of this same layer (umoci
    # writes "a/to-file" then "a/to-file/.wh.x") cannot be shown in a tree:
    # they are marked conflict=True and compare_layer() accepts either way.
    for p in list(view):
        parent = p.rsplit(b"/", 1)[0] if b"/" in p else b""
        while parent:
            if parent not in view:
                view[parent] = {"type": "dir", "implied": True, "xattrs": {}}
            elif view[parent]["type"] != "dir":
                view[p]["conflict"] = True
            parent = parent.rsplit(b"/", 1)[0] if b"/" in parent else b""
    return view


def compare_layer(snap, view, what, hide_xattr=lambda k: k.startswith(b"trusted.overlay."), limit=20,
                  check_meta=True):
    """A layers/NN snapshot against the tar's view; returns difference lines."""
    diffs = []
    for p in sorted(set(view) - set(snap)):
        if not view[p].get("conflict"):
            diffs.append("in the tar, not in the layer view: %s (%s)" % (shown(p), view[p]["type"]))
    for p in sorted(set(snap) - set(view)):
        diffs.append("in the layer view, not in the tar: %s (%s)" % (shown(p), snap[p].type))
    for p in sorted(set(snap) & set(view)):
        e, t = snap[p], view[p]
        w = shown(p)
        if t.get("conflict"):
            continue
        if e.type != t["type"]:
            diffs.append("%s: type %s, tar says %s" % (w, e.type, t["type"]))
            continue
        if t.get("implied"):
            continue
        if e.type == "file" and t["sha256"] and e.sha256 and e.sha256 != t["sha256"]:
            diffs.append("%s: content differs from the tar" % w)
        if e.type in ("file", "symlink") and t["size"] is not None and e.size != t["size"]:
            diffs.append("%s: size %d, tar says %d" % (w, e.size, t["size"]))
        if e.type == "symlink" and e.target != t["target"]:
            diffs.append("%s: target %r, tar says %r" % (w, e.target, t["target"]))
        if e.rdev != t["rdev"]:
            diffs.append("%s: device %s, tar says %s" % (w, e.rdev, t["rdev"]))
        if check_meta:
            if e.type != "symlink" and e.mode != t["mode"]:
                diffs.append("%s: mode %04o, tar says %04o" % (w, e.mode, t["mode"]))
            if (e.uid, e.gid) != (t["uid"], t["gid"]):
                diffs.append("%s: uid:gid %d:%d, tar says %d:%d" % (w, e.uid, e.gid, t["uid"], t["gid"]))
            if e.mtime != t["mtime"]:
                diffs.append("%s: mtime %s, tar says %s" % (w, fmt_time(e.mtime), fmt_time(t["mtime"])))
            want_x = {k: v for k, v in t["xattrs"].items() if k.startswith(b"user.") and not hide_xattr(k)}
            if e.xattrs != want_x:
                diffs.append("%s: xattrs %s, tar says %s" % (w, fmt_xattrs(e.xattrs), fmt_xattrs(want_x)))
    # Hardlinks inside one layer share an inode there.
    for p, t in view.items():
        if t.get("link") and t["link"] in snap and p in snap and snap[p].ino != snap[t["link"]].ino:
            diffs.append("%s: hardlink to %s but a different inode" % (shown(p), shown(t["link"])))
    return diffs


# --------------------------------------------------------------------------
# Independent image reader (oracle side only)

INDEX_TYPES = ("application/vnd.oci.image.index.v1+json",
               "application/vnd.docker.distribution.manifest.list.v2+json")
REF_NAME = "org.opencontainers.image.ref.name"


class _DirStore:
    def __init__(self, root):
        self.root = root

    def open(self, name):
        return open(os.path.join(self.root, name), "rb")

    def read(self, name):
        with self.open(name) as f:
            return f.read()

    def exists(self, name):
        return os.path.exists(os.path.join(self.root, name))


class _TarStore:
    def __init__(self, path):
        self.tf = tarfile.open(path, "r:")
        self.names = {norm_tar_path(m.name).decode("utf-8", "surrogateescape"): m for m in self.tf.getmembers()}

    def open(self, name):
        m = self.names[norm_tar_path(name).decode("utf-8", "surrogateescape")]
        return self.tf.extractfile(m)

    def read(self, name):
        with self.open(name) as f:
            return f.read()

    def exists(self, name):
        return norm_tar_path(name).decode("utf-8", "surrogateescape") in self.names


class Image:
    """manifest (dict), config_bytes, layer_names (blob paths in store), store."""

    def __init__(self, store, manifest, manifest_bytes, config_bytes, layers):
        self.store, self.manifest, self.manifest_bytes = store, manifest, manifest_bytes
        self.config_bytes, self.layers = config_bytes, layers
        self.config = json.loads(config_bytes)

    def layer_stream(self, i):
        return decompressed(self.store.open(self.layers[i]))

    def history_created_by(self):
        """created_by of the history entries that own a layer (empty_layer skipped)."""
        return [h.get("created_by", "") for h in self.config.get("history", []) if not h.get("empty_layer")]


def _blob(digest):
    algo, hexd = digest.split(":", 1)
    return "blobs/%s/%s" % (algo, hexd)


def read_image(path, ref=None, platform=None):
    """Open an OCI dir, OCI archive or docker archive; pick by ':tag', '@digest', platform."""
    if os.path.isdir(path):
        store = _DirStore(path)
    else:
        store = _TarStore(path)
    if store.exists("index.json") and not store.exists("manifest.json"):
        return _read_oci(store, ref, platform)
    if store.exists("manifest.json"):
        return _read_docker(store, ref)
    if store.exists("index.json"):
        return _read_oci(store, ref, platform)
    raise ValueError("%s: neither index.json nor manifest.json" % path)


def _read_oci(store, ref, platform):
    index = json.loads(store.read("index.json"))
    descs = index.get("manifests", [])
    if ref and ref.startswith(":"):
        descs = [d for d in descs if d.get("annotations", {}).get(REF_NAME) == ref[1:]]
    elif ref and ref.startswith("@"):
        descs = [d for d in descs if d["digest"] == ref[1:]]
    if len(descs) != 1:
        raise ValueError("oracle: %d candidates for ref %r" % (len(descs), ref))
    d = descs[0]
    seen = set()
    while d["mediaType"] in INDEX_TYPES:
        if d["digest"] in seen:
            raise ValueError("index loop")
        seen.add(d["digest"])
        idx = json.loads(store.read(_blob(d["digest"])))
        cands = idx["manifests"]
        if platform:
            parts = platform.split("/")
            cands = [c for c in cands if c.get("platform", {}).get("os") == parts[0]
                     and c.get("platform", {}).get("architecture") == parts[1]
                     and (len(parts) < 3 or c.get("platform", {}).get("variant") == parts[2])]
        if len(cands) != 1:
            raise ValueError("oracle: %d platform candidates" % len(cands))
        d = cands[0]
    mb = store.read(_blob(d["digest"]))
    m = json.loads(mb)
    cfg = store.read(_blob(m["config"]["digest"]))
    return Image(store, m, mb, cfg, [_blob(l["digest"]) for l in m["layers"]])


def _read_docker(store, ref):
    mf = json.loads(store.read("manifest.json"))
    if ref and ref.startswith(":"):
        mf = [x for x in mf if any(t.endswith(ref) for t in (x.get("RepoTags") or []))]
    if len(mf) != 1:
        raise ValueError("oracle: %d docker-archive candidates for %r" % (len(mf), ref))
    x = mf[0]
    cfg = store.read(x["Config"])
    return Image(store, None, None, cfg, list(x["Layers"]))


# --------------------------------------------------------------------------
# umoci extraction (the independent extraction of merged/)


def umoci_unpack(layout, tag, dest):
    """umoci unpack --image layout:tag dest (as root); returns dest/rootfs."""
    if os.path.exists(dest):
        shutil.rmtree(dest)
    res = run(["umoci", "unpack", "--image", "%s:%s" % (layout, tag), dest], timeout=600)
    check(res.rc == 0, "umoci unpack failed: %s" % res.text())
    return os.path.join(dest, "rootfs")


def gnu_extract(layer_streams, dest, tolerate_conflicts=False):
    """Extract decompressed layer tar streams in order with GNU tar -x (as root:
    owners, modes, devices, user.* xattrs). No whiteout handling: only an
    oracle for images without whiteouts, or for one layer on its own."""
    os.makedirs(dest, exist_ok=True)
    for s in layer_streams:
        p = subprocess.Popen(["tar", "-x", "-p", "--numeric-owner", "--xattrs", "--xattrs-include=user.*",
                              "--delay-directory-restore", "-C", dest, "-f", "-"],
                             stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        err = []
        t = threading.Thread(target=lambda: err.append(p.stderr.read()), daemon=True)
        t.start()
        try:
            while True:
                b = s.read(1 << 20)
                if not b:
                    break
                p.stdin.write(b)
        finally:
            p.stdin.close()
        rc = p.wait()
        t.join()
        msgs = [l for l in err[0].decode("utf-8", "replace").splitlines()
                if l and "Exiting with failure status" not in l]
        if tolerate_conflicts:
            msgs = [l for l in msgs if not l.endswith("Cannot open: Not a directory")]
        check(rc == 0 or (tolerate_conflicts and not msgs), "GNU tar -x failed (rc=%d): %s" % (rc, msgs))
    return dest


def cached_gnu_extract(image, key):
    """GNU tar extraction of all layers of an Image, cached by its diff_ids."""
    import fcntl
    ids = hashlib.sha256(json.dumps(image.config["rootfs"]["diff_ids"]).encode()).hexdigest()[:16]
    base = os.path.join(cache_dir(), "gnutar")
    os.makedirs(base, exist_ok=True)
    dest = os.path.join(base, "%s-%s" % (key, ids))
    with open(os.path.join(base, ".lock-" + key), "w") as lk:
        fcntl.flock(lk, fcntl.LOCK_EX)
        if not os.path.exists(dest + ".done"):
            if os.path.exists(dest):
                shutil.rmtree(dest)
            gnu_extract([image.layer_stream(i) for i in range(len(image.layers))], dest)
            open(dest + ".done", "w").close()
    return dest


def skopeo_to_oci(src_transport, dest_layout, tag="latest"):
    res = run(["skopeo", "--insecure-policy", "copy", "-q", src_transport, "oci:%s:%s" % (dest_layout, tag)],
              timeout=600)
    check(res.rc == 0, "skopeo copy failed: %s" % res.text())


# --------------------------------------------------------------------------
# Random-offset reads


def pread_check(path, ref_path, reads=200, seed=1):
    """pread() of odd sizes at odd offsets in path must equal ref_path's bytes."""
    rnd = random.Random("%s:%d" % (os.path.basename(ref_path), seed))
    with open(ref_path, "rb") as f:
        ref = f.read()
    size = len(ref)
    diffs = []
    fd = os.open(path, os.O_RDONLY)
    try:
        st = os.fstat(fd)
        if st.st_size != size:
            return ["%s: st_size %d != %d" % (path, st.st_size, size)]
        offsets = [0, 1, size // 2 + 1, max(size - 1, 0), size, size + 4097]
        while len(offsets) < reads:
            offsets.append(rnd.randrange(0, max(size, 1)) | 1)
        for i, off in enumerate(offsets):
            n = rnd.choice([1, 3, 511, 4095, 4097, 65537, 131071, 1 << 20]) + (i % 7) * 2
            got = os.pread(fd, n, off)
            want = ref[off:off + n]
            if got != want:
                diffs.append("pread(%d bytes at %d): %d bytes back, %s" % (
                    n, off, len(got), "content differs" if len(got) == len(want) else "want %d" % len(want)))
                if len(diffs) >= 10:
                    break
    finally:
        os.close(fd)
    return diffs


def largest_files(snap, n=3, min_size=1):
    files = [(e.size, p) for p, e in snap.items() if e.type == "file" and e.size >= min_size]
    files.sort(reverse=True)
    return [p for _, p in files[:n]]


# --------------------------------------------------------------------------
# Fixture images (tests/fixtures/build-images), built once per source state


def _fixture_sources_hash():
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(FIXTURES_SRC):
        dirnames.sort()
        for fn in sorted(filenames):
            p = os.path.join(dirpath, fn)
            h.update(os.path.relpath(p, FIXTURES_SRC).encode() + b"\0")
            with open(p, "rb") as f:
                h.update(hashlib.sha256(f.read()).digest())
    return h.hexdigest()[:16]


def fixtures_dir():
    """Build the fixture images under the cache dir (once per source state); return the dir."""
    import fcntl
    require_root("build-images uses mknod and chown")
    require_tools("umoci", "skopeo", "tar", "jq", "openssl", "setfattr", "zstd")
    base = os.path.join(cache_dir(), "fixtures")
    os.makedirs(base, exist_ok=True)
    stamp = _fixture_sources_hash()
    out = os.path.join(base, stamp)
    with open(os.path.join(base, ".lock"), "w") as lk:
        fcntl.flock(lk, fcntl.LOCK_EX)
        if not os.path.exists(os.path.join(out, ".done")):
            for old in os.listdir(base):
                if old != ".lock":
                    shutil.rmtree(os.path.join(base, old), ignore_errors=True)
            res = run([os.path.join(FIXTURES_SRC, "build-images"), out], timeout=300)
            if res.rc != 0:
                log("Bail out! build-images failed:\n" + res.text() + "\n" + shown(res.out[-2000:]))
                sys.exit(1)
            open(os.path.join(out, ".done"), "w").close()
    return out


def load_expectations():
    with open(os.path.join(FIXTURES_SRC, "expectations.json")) as f:
        return json.load(f)


def cached_unpack(layout, tag, key):
    """umoci unpack layout:tag once into the cache (keyed by manifest digest); return rootfs."""
    import fcntl
    with open(os.path.join(layout, "index.json")) as f:
        idx = json.load(f)
    dg = [d["digest"] for d in idx["manifests"] if d.get("annotations", {}).get(REF_NAME) == tag]
    check(len(dg) == 1, "%s: tag %s not found once in index.json" % (layout, tag))
    base = os.path.join(cache_dir(), "unpack")
    os.makedirs(base, exist_ok=True)
    dest = os.path.join(base, "%s-%s" % (key, dg[0].split(":")[1][:16]))
    with open(os.path.join(base, ".lock-" + key), "w") as lk:
        fcntl.flock(lk, fcntl.LOCK_EX)
        if not os.path.exists(dest + ".done"):
            umoci_unpack(layout, tag, dest)
            open(dest + ".done", "w").close()
    return os.path.join(dest, "rootfs")


class Aspects:
    """Several independent checks on one mount: each failure is kept, the rest still run.

        a = Aspects()
        with a("merged"): ...
        a.done()   # raises Failure listing every failed aspect
    """

    def __init__(self):
        self.failures = []
        self.notes = []

    @contextlib.contextmanager
    def __call__(self, name):
        try:
            yield
        except Failure as e:
            self.failures.append("[%s] %s" % (name, e))
        except OSError as e:
            if e.errno in (107, 103):  # ENOTCONN, ECONNABORTED: no point going on
                raise Failure("[%s] the strata daemon died under the test (%s)%s"
                              % (name, e, kernel_log_tail()))
            self.failures.append("[%s] OS error: %s" % (name, e))

    def note(self, msg):
        self.notes.append(msg)

    def done(self):
        if self.failures:
            fail("\n".join(self.failures + ["note: " + n for n in self.notes]))
        return "\n".join(self.notes)


def list_layers_dir(mnt):
    """layers/ must hold exactly 00..N-1 (two digits)."""
    names = sorted(os.listdir(os.path.join(mnt, "layers")))
    return names


def check_layers_dir(mnt, n):
    names = list_layers_dir(mnt)
    want = ["%02d" % i for i in range(n)]
    check(names == want, "layers/ holds %s, expected %s" % (names, want))


def check_history(mnt, image, n):
    """image/history: one line per layer, index first, digest, created_by of the
    history entry owning that layer (empty_layer entries skipped)."""
    with open(os.path.join(mnt, "image", "history"), "rb") as f:
        lines = [l for l in f.read().decode("utf-8", "replace").split("\n") if l.strip()]
    check(len(lines) == n, "image/history has %d lines for %d layers:\n%s" % (len(lines), n, "\n".join(lines)))
    created = image.history_created_by()
    diff_ids = image.config.get("rootfs", {}).get("diff_ids", [])
    mdigests = [l["digest"] for l in image.manifest["layers"]] if image.manifest else []
    bad = []
    for i, line in enumerate(lines):
        first = re.split(r"[\s:]+", line.strip(), 1)[0]
        if not first.isdigit() or int(first) != i:
            bad.append("line %d does not start with its index: %r" % (i, line))
        hexes = [d.split(":")[-1][:12] for d in ([mdigests[i]] if i < len(mdigests) else [])
                 + ([diff_ids[i]] if i < len(diff_ids) else [])]
        if hexes and not any(h in line for h in hexes):
            bad.append("line %d names neither the layer digest nor the diff_id (%s): %r" % (i, hexes, line))
        want = " ".join(created[i].split("\n", 1)[0].split())[:40] if i < len(created) else ""
        if want and want not in " ".join(line.split()):
            bad.append("line %d lacks created_by %r: %r" % (i, want, line))
    check(not bad, "image/history:\n  " + "\n  ".join(bad))


def check_image_json(mnt, image):
    """image/config.json equals the image's config; image/manifest.json lists the layers."""
    with open(os.path.join(mnt, "image", "config.json"), "rb") as f:
        cfg = f.read()
    try:
        got = json.loads(cfg)
    except ValueError as e:
        fail("image/config.json is not JSON: %s" % e)
    check(got == image.config, "image/config.json differs from the image's config")
    if image.manifest is not None:
        want_digest = image.manifest["config"]["digest"]
        have = "sha256:" + hashlib.sha256(cfg).hexdigest()
        check(have == want_digest, "image/config.json: sha256 %s, manifest says %s (not the original bytes?)"
              % (have, want_digest))
    with open(os.path.join(mnt, "image", "manifest.json"), "rb") as f:
        try:
            m = json.loads(f.read())
        except ValueError as e:
            fail("image/manifest.json is not JSON: %s" % e)
    if image.manifest is not None:
        check(m == image.manifest, "image/manifest.json differs from the image's manifest")
    else:
        layers = m.get("layers") if isinstance(m, dict) else None
        if layers is None and isinstance(m, list) and m:
            layers = m[0].get("Layers")
        check(layers is not None and len(layers) == len(image.layers),
              "image/manifest.json: cannot find %d layers in it" % len(image.layers))


def check_read_only(mnt):
    import errno
    bad = []
    for what, fn in (("create a file", lambda: open(os.path.join(mnt, "merged", "strata-itest-new"), "wb")),
                     ("mkdir", lambda: os.mkdir(os.path.join(mnt, "merged", "strata-itest-dir")))):
        try:
            f = fn()
            if hasattr(f, "close"):
                f.close()
            bad.append("%s in merged/ succeeded" % what)
        except OSError as e:
            if e.errno not in (errno.EROFS, errno.EACCES, errno.EPERM):
                bad.append("%s: errno %s, expected EROFS" % (what, errno.errorcode.get(e.errno, e.errno)))
            elif e.errno != errno.EROFS:
                bad.append("%s: %s, the issue asks for EROFS" % (what, errno.errorcode[e.errno]))
    check(not bad, "; ".join(bad))


def check_layer_views(mnt, image, what, check_meta=True):
    out = []
    for i in range(len(image.layers)):
        view = tar_view(image.layer_stream(i))
        snap = snapshot(os.path.join(mnt, "layers", "%02d" % i), xattr_filter=user_xattrs)
        d = compare_layer(snap, view, "%s layers/%02d" % (what, i), check_meta=check_meta)
        if d:
            out.append("layers/%02d: %d difference(s):\n    %s%s" % (
                i, len(d), "\n    ".join(d[:12]), "" if len(d) <= 12 else "\n    ... and %d more" % (len(d) - 12)))
    check(not out, "\n  ".join(out))


def check_preads(mnt_root, ref_root, snap, n=3, reads=200):
    out = []
    for p in largest_files(snap, n):
        d = pread_check(os.path.join(os.fsencode(mnt_root), p), os.path.join(os.fsencode(ref_root), p), reads)
        if d:
            out.append("%s:\n    %s" % (shown(p), "\n    ".join(d)))
    check(not out, "random reads differ:\n  " + "\n  ".join(out))


@contextlib.contextmanager
def try_mount(strata, image, ref=None, platform=None, opts=None, timeout=MOUNT_TIMEOUT):
    """Run `strata mount` without expecting success; yield (Result, mountpoint).
    Whatever happened, everything is unmounted and the temp dir removed after."""
    mnt = tempfile.mkdtemp(prefix="strata-mnt-")
    with _LOCK:
        _ACTIVE[mnt] = True
    try:
        res = strata_cmd(strata, "mount", image, mnt, ref=ref, platform=platform, opts=opts, timeout=timeout)
        yield res, mnt
    finally:
        force_unmount(mnt, strata)
        with _LOCK:
            _ACTIVE.pop(mnt, None)
        if not is_mounted(mnt):
            with contextlib.suppress(OSError):
                os.rmdir(mnt)


# ---- images built by the tests themselves ----

def tar_bytes(entries, fmt=tarfile.PAX_FORMAT):
    """entries: (name, kind, data/linkname). kind: f, d, l (symlink), h (hardlink)."""
    bio = io.BytesIO()
    with tarfile.open(fileobj=bio, mode="w", format=fmt) as tf:
        for name, kind, data in entries:
            ti = tarfile.TarInfo(name)
            ti.mtime = 1600000000
            if kind == "d":
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                tf.addfile(ti)
            elif kind == "l":
                ti.type, ti.linkname = tarfile.SYMTYPE, data
                tf.addfile(ti)
            elif kind == "h":
                ti.type, ti.linkname = tarfile.LNKTYPE, data
                tf.addfile(ti)
            else:
                raw = data.encode() if isinstance(data, str) else data
                ti.size, ti.mode = len(raw), 0o644
                tf.addfile(ti, io.BytesIO(raw))
    return bio.getvalue()


def oci_layout(root, layers, config_extra=None, media=None, tamper=None):
    """An OCI layout at root with the given layer blobs (tar or tar.gz bytes);
    returns root. tamper(root, layer descriptors) may damage it afterwards."""
    os.makedirs(os.path.join(root, "blobs", "sha256"), exist_ok=True)

    def put(b):
        d = hashlib.sha256(b).hexdigest()
        with open(os.path.join(root, "blobs", "sha256", d), "wb") as f:
            f.write(b)
        return "sha256:" + d, len(b)
    descs, diff_ids = [], []
    for blob in layers:
        try:
            raw = gzip.decompress(blob) if blob[:2] == b"\x1f\x8b" else blob
        except (EOFError, OSError):
            raw = b""  # a broken layer: its diff_id cannot match anyway
        diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())

        d, n = put(blob)
        descs.append({"mediaType": media or "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": n})
    cfg = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    cfg.update(config_extra or {})
    cd, cs = put(json.dumps(cfg).encode())
    man = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
           "layers": descs}
    md, ms = put(json.dumps(man).encode())
    with open(os.path.join(root, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms}]}, f)
    with open(os.path.join(root, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    if tamper:
        tamper(root, descs)
    return root
