#!/usr/bin/python3
"""Self-test of the integration harness; needs no strata binary and no FUSE.

Checks that the oracle side is solid: the fixture images build, umoci unpack
and GNU tar agree on images without whiteouts, the comparator finds nothing
between a tree and itself and finds every planted difference in an altered
copy, tar_view() agrees with a GNU tar extraction of each layer, the image
reader sees the same layer diff_ids through every format and compression,
and pread_check() catches a one-byte change.
"""
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import strata_test as st  # noqa: E402

st.require_root("umoci unpack and the fixture build run as root")
st.require_tools("umoci", "skopeo", "tar", "zstd", "setfattr")

suite = st.Suite("harness")
FX = st.fixtures_dir()
ORACLE = os.path.join(FX, "oracle")
TMP = tempfile.mkdtemp(prefix="strata-harness-")


def t_fixtures_built():
    with open(os.path.join(FX, "fixtures.json")) as f:
        import json
        fx = json.load(f)
    missing = [i["path"] for i in fx["images"] if not os.path.exists(os.path.join(FX, i["path"]))]
    st.check(not missing, "fixture images missing: %s" % missing)
    return "%d images, %d refusal cases" % (len(fx["images"]), len(fx["refusals"]))


def t_compare_self():
    root = st.cached_unpack(ORACLE, "multi", "fixtures-multi")
    a = st.snapshot(root)
    b = st.snapshot(root)
    st.report(st.compare_trees(a, b), "a tree compared with itself")
    st.check(len(a) > 50, "the multi image unpacked to only %d entries" % len(a))
    st.check(st.hardlink_groups(a), "no hardlink group seen in the multi image")


def t_compare_altered():
    root = st.cached_unpack(ORACLE, "multi", "fixtures-multi")
    alt = os.path.join(TMP, "altered")
    subprocess.run(["cp", "-a", root, alt], check=True)
    A = lambda p: os.path.join(alt, p)  # noqa: E731
    with open(A("app/settings.txt"), "r+b") as f:  # same size, one byte changed
        b = f.read(1)
        f.seek(0)
        f.write(bytes([b[0] ^ 1]))
    os.utime(A("app/settings.txt"), (0, os.lstat(os.path.join(root, "app/settings.txt")).st_mtime))
    os.chmod(A("usr/local/bin/suid-helper"), 0o755)          # setuid bit lost
    os.chown(A("etc/passwd"), 1, 1, follow_symlinks=False)
    os.utime(A("etc/group"), (0, 86400))
    os.remove(A("etc/hl/b"))                                  # hardlink group broken
    shutil.copy2(A("etc/hl/a"), A("etc/hl/b"))
    os.remove(A("app/current.env"))
    os.symlink("elsewhere", A("app/current.env"))
    os.remove(A("app/data/empty.txt"))
    with open(A("app/extra.txt"), "w") as f:
        f.write("extra\n")
    os.setxattr(A("app/README.txt"), b"user.comment", b"changed")
    os.remove(A("dev/null-copy"))
    os.mknod(A("dev/null-copy"), 0o644 | 0o020000, os.makedev(1, 7))
    for d in ("app", "app/data", "dev", "etc/hl"):  # undo the directory mtime side effects
        m = os.lstat(os.path.join(root, d)).st_mtime
        os.utime(A(d), (m, m))
    a = st.snapshot(root)
    b = st.snapshot(alt)
    diffs = st.compare_trees(b, a, "altered", "orig")
    text = "\n".join(diffs)
    want = [
        "app/settings.txt: content sha256",
        "usr/local/bin/suid-helper: mode 0755 != 4755",
        "etc/passwd: uid:gid 1:1 != 0:0",
        "etc/group: mtime",
        "etc/hl/a: st_nlink 1 != 2",
        "etc/hl/b: st_nlink 1 != 2",
        "hardlink group in orig only: etc/hl/a, etc/hl/b",
        "app/current.env: symlink target b'elsewhere' != b'.env'",
        "only in orig: app/data/empty.txt",
        "only in altered: app/extra.txt",
        "app/README.txt: xattrs",
        "dev/null-copy: device (1, 7) != (1, 3)",
    ]
    missing = [w for w in want if w not in text]
    st.check(not missing, "comparator missed: %s\nit reported:\n%s" % (missing, text))
    # And nothing else.
    noise = [d for d in diffs if not any(d.startswith(w.split(":")[0]) or w in d for w in want)]
    st.check(not noise, "comparator reported unexpected differences: %s" % noise)
    # report() formats and limits.
    try:
        st.report(diffs, "altered", limit=3)
        st.fail("report() did not raise")
    except st.Failure as e:
        st.check("... and %d more" % (len(diffs) - 3) in str(e), "report() did not count the rest: %s" % e)


def t_umoci_agrees_with_gnu_tar():
    """tarformats has no whiteouts: umoci unpack == GNU tar -x of both layers."""
    root = st.cached_unpack(ORACLE, "tarformats", "fixtures-tarformats")
    img = st.read_image(ORACLE, ref=":tarformats")
    dest = st.gnu_extract([img.layer_stream(i) for i in range(len(img.layers))], os.path.join(TMP, "gnu-x"))
    diffs = st.compare_trees(st.snapshot(dest), st.snapshot(root), "gnu tar", "umoci")
    # Known umoci 0.4.7 bug: a year-2300 mtime comes out as 1901 (32-bit
    # overflow). That is why GNU tar, not umoci, is the oracle of tarformats.
    known = [d for d in diffs if "far-future: mtime 2300-01-01T00:00:00Z != 1901-" in d]
    st.check(len(known) == 2, "the known umoci far-future mtime bug was not seen: %s" % diffs)
    st.report([d for d in diffs if d not in known], "GNU tar extraction vs umoci unpack (tarformats)")


def t_tar_view_matches_gnu_tar():
    """tar_view() of each layer == GNU tar extraction of that layer alone."""
    out = []
    for tag in ("semantics", "tarformats", "multi"):
        img = st.read_image(ORACLE, ref=":" + tag)
        for i in range(len(img.layers)):
            dest = st.gnu_extract([img.layer_stream(i)], os.path.join(TMP, "layer-%s-%d" % (tag, i)), tolerate_conflicts=True)
            snap = st.snapshot(dest)
            view = st.tar_view(img.layer_stream(i))
            d = st.compare_layer(snap, view, "%s layer %d" % (tag, i))
            if d:
                out.append("%s layer %d:\n  %s" % (tag, i, "\n  ".join(d[:10])))
            shutil.rmtree(dest)
    st.check(not out, "tar_view disagrees with GNU tar:\n" + "\n".join(out))


def t_semantics_layers_as_written():
    """The hand-made layers hold what the expectations rely on (order, prefixes, duplicates)."""
    import tarfile
    img = st.read_image(ORACLE, ref=":semantics")
    names = []
    for i in range(len(img.layers)):
        tf = tarfile.open(fileobj=img.layer_stream(i), mode="r|")
        names.append([m.name for m in tf])
    st.check(names[0].count("dup.txt") == 2, "layer 0 must hold dup.txt twice: %s" % names[0])
    st.check("./dotted/file" in names[0] and "/abs/file" in names[0], "prefixes lost: %s" % names[0])
    st.check("implied/deep/file" in names[0] and "implied/" not in names[0] and "implied/deep/" not in names[0],
             "implied parents must have no entries: %s" % names[0])
    l1 = names[1]
    st.check(l1.index("opq/.wh..wh..opq") > l1.index("opq/upper.txt"), "opaque marker must follow opq/upper.txt")
    st.check(l1.index("same/.wh.f") > l1.index("same/f"), "same/.wh.f must follow same/f")
    st.check(names[2][:2] == ["x", "x/b"] and "/dotted/file2" in names[2], "layer 2: %s" % names[2])


def t_expectations_hold_for_umoci_images():
    """The umoci-built images satisfy the spot checks in expectations.json."""
    exp = st.load_expectations()
    root = st.cached_unpack(ORACLE, "multi", "fixtures-multi")
    st.check_expectations(st.snapshot(root), exp["multi"], root, "multi (umoci unpack)")
    # The hand-made semantics image: umoci 0.4.7 happens to apply these layers
    # as expected too, a second opinion on the hand-written expectations.
    root = st.cached_unpack(ORACLE, "semantics", "fixtures-semantics")
    st.check_expectations(st.snapshot(root), exp["semantics"], root, "semantics (umoci unpack)")
    img = st.read_image(ORACLE, ref=":tarformats")
    root = st.cached_gnu_extract(img, "fixtures-tarformats")
    block = {"entries": {k: {kk: vv for kk, vv in v.items() if kk != "no_xattrs"}
                         for k, v in exp["tarformats"]["entries"].items()}}
    st.check_expectations(st.snapshot(root), block, root, "tarformats (GNU tar -x)")


def t_reader_same_diff_ids_everywhere():
    """Every format/compression of an image decompresses to the config's diff_ids."""
    import hashlib
    import json
    with open(os.path.join(FX, "fixtures.json")) as f:
        fx = json.load(f)
    bad = []
    for im in fx["images"]:
        img = st.read_image(os.path.join(FX, im["path"]), ref=im.get("ref"), platform=im.get("platform"))
        want = img.config["rootfs"]["diff_ids"]
        got = []
        for i in range(len(img.layers)):
            h = hashlib.sha256()
            s = img.layer_stream(i)
            while True:
                b = s.read(1 << 20)
                if not b:
                    break
                h.update(b)
            got.append("sha256:" + h.hexdigest())
        if got != want:
            bad.append("%s: %s != %s" % (im["name"], got, want))
        if len(img.layers) != im["layers"]:
            bad.append("%s: %d layers, fixtures.json says %d" % (im["name"], len(img.layers), im["layers"]))
    st.check(not bad, "\n".join(bad))


def t_pread_check():
    root = st.cached_unpack(ORACLE, "multi", "fixtures-multi")
    big = os.path.join(root, "app/data/big.bin")
    st.check(not st.pread_check(big, big), "pread_check differs on the same file")
    alt = os.path.join(TMP, "big.bin")
    shutil.copy(big, alt)
    with open(alt, "r+b") as f:
        f.seek(1234567)
        b = f.read(1)
        f.seek(1234567)
        f.write(bytes([b[0] ^ 0xFF]))
    d = st.pread_check(alt, big, reads=400)
    st.check(d, "pread_check missed a changed byte at 1234567")


def t_no_strata_means_skip():
    """Every test script exits 77 (skipped) when STRATA is unset."""
    env = dict(os.environ)
    env.pop("STRATA", None)
    here = os.path.dirname(os.path.abspath(__file__))
    bad = []
    for s in ("test_fixtures.py", "test_conformance.py", "test_corpus.py"):
        r = st.run([sys.executable, os.path.join(here, s)], timeout=60, env=env)
        if r.rc != st.SKIP:
            bad.append("%s: rc=%s\n%s" % (s, r.rc, r.out.decode(errors="replace")[-500:]))
    st.check(not bad, "\n".join(bad))


# --------------------------------------------------------------------------
# Unmount safety, with fake/fake-strata (skopeo + umoci + a FUSE passthrough)
# standing in for strata and FAKEFS_HANG making one file's reads hang forever.

HERE = os.path.dirname(os.path.abspath(__file__))
FAKE = os.path.join(HERE, "fake", "fake-strata")


def fake_env():
    """Compile fakefs.c into the cache; return the env for a fake-strata run, or a SKIP reason."""
    if not os.path.exists("/dev/fuse") or shutil.which("fusermount3") is None:
        return "SKIP no /dev/fuse or fusermount3"
    if shutil.which("cc") is None or shutil.which("pkg-config") is None:
        return "SKIP no C compiler or pkg-config to build fake/fakefs.c"
    exe = os.path.join(st.cache_dir(), "fake-strata-fs")
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "fuse3"], capture_output=True, text=True)
    if flags.returncode:
        return "SKIP fuse3 development files missing"
    r = subprocess.run(["cc", "-O2", "-o", exe, os.path.join(HERE, "fake", "fakefs.c")] + flags.stdout.split(),
                       capture_output=True, text=True)
    st.check(r.returncode == 0, "cannot build fakefs.c: %s" % r.stderr)
    env = dict(os.environ)
    env.update(STRATA=FAKE, FAKE_STRATA_FS=exe, FAKEFS_HANG="app/settings.txt",
               STRATA_ITEST_CACHE=st.cache_dir())
    return env


CHILD = r"""
import os, sys, time
sys.path.insert(0, %(here)r)
import strata_test as st
STRATA = os.environ["STRATA"]
img = %(img)r
suite = st.Suite("child")

def hang():
    with st.mounted(STRATA, img) as mnt:
        print("MOUNTED " + mnt, flush=True)
        open(os.path.join(mnt, "merged", "app", "settings.txt")).read()   # never returns

def fine():
    with st.mounted(STRATA, img) as mnt:
        print("MOUNTED " + mnt, flush=True)
        st.check(os.listdir(os.path.join(mnt, "merged")), "empty merged/")

suite.run("hung read", hang, timeout=%(timeout)d)
suite.run("next test still runs", fine, timeout=60)
suite.finish()
"""


def run_child(env, timeout, term_after=None):
    script = os.path.join(TMP, "child.py")
    with open(script, "w") as f:
        f.write(CHILD % {"here": HERE, "img": os.path.join(FX, "multi", "oci"), "timeout": timeout})
    p = subprocess.Popen([sys.executable, script], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True, preexec_fn=st._child_setup)
    out = []
    if term_after is not None:
        for line in p.stdout:
            out.append(line)
            if line.startswith("MOUNTED "):
                import time
                time.sleep(term_after)
                p.terminate()
                break
    try:
        rest, _ = p.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        p.kill()
        rest, _ = p.communicate()
        st.fail("the child hung although a hung mount must be undone:\n" + "".join(out) + rest)
    out.append(rest)
    # Only the child's own mounts (other tests may be mounting at the same time).
    mine = {l.split(" ", 1)[1].strip() for l in "".join(out).splitlines() if l.startswith("MOUNTED ")}
    leftover = {m for m in mine if st.is_mounted(m)}
    for m in leftover:  # clean up after a failure here
        subprocess.run(["fusermount3", "-uz", m])
    return p.returncode, "".join(out), leftover


def t_watchdog_unsticks_a_hung_read():
    env = fake_env()
    if isinstance(env, str):
        return env
    rc, out, leftover = run_child(env, timeout=8)
    st.check(not leftover, "mounts left behind: %s\n%s" % (leftover, out))
    st.check(rc == 1, "child exit %s, expected 1 (one failure):\n%s" % (rc, out))
    st.check("not ok 1 - hung read" in out and "timed out" in out, "no timeout reported:\n" + out)
    st.check("ok 2 - next test still runs" in out, "the next test did not run or failed:\n" + out)


def t_sigterm_unmounts_a_hung_mount():
    env = fake_env()
    if isinstance(env, str):
        return env
    import time
    t0 = time.time()
    rc, out, leftover = run_child(env, timeout=100, term_after=1)
    elapsed = time.time() - t0
    st.check("MOUNTED " in out, "the child never mounted:\n" + out)
    st.check(not leftover, "mounts left behind after SIGTERM: %s\n%s" % (leftover, out))
    st.check(rc not in (0, st.SKIP), "child exit %s after SIGTERM:\n%s" % (rc, out))
    st.check("ok 2 -" not in out, "the child went on after SIGTERM:\n" + out)
    st.check(elapsed < 30, "the child took %.0fs to stop after SIGTERM:\n%s" % (elapsed, out))


# --------------------------------------------------------------------------
# STRATA_WRAPPER under valgrind (tools/memcheck): a report fails the test

LEAKY = r"""
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
static void leak(void) { char *volatile p = malloc(77); p[0] = 1; p = NULL; }
int main(int argc, char **argv)
{
	int *u = malloc(sizeof *u), status;
	pid_t pid;
	if (argc > 1 && argv[1][0] == 'u' && *u == 12345) /* an uninitialised read */
		puts("?");
	free(u);
	pid = fork(); /* a leak in a forked child, as in the mount daemon */
	if (pid == 0) {
		if (argc > 1 && argv[1][0] == 'l')
			leak();
		exit(0);
	}
	waitpid(pid, &status, 0);
	return 0;
}
"""

WRAPPED_CHILD = r"""
import os, sys
sys.path.insert(0, %(here)r)
import strata_test as st
STRATA = st.strata_binary()

def case(arg):
    r = st.run([STRATA, arg])
    st.check(r.rc in (0, 99), "rc %%s" %% r.rc)

suite = st.Suite("wrapped")
suite.run("clean", case, "c")
suite.run("uninitialised", case, "u")
suite.run("leak in a forked child", case, "l")
suite.finish()
"""


def t_valgrind_wrapper_fails_tests():
    if shutil.which("valgrind") is None or shutil.which("cc") is None:
        return "SKIP no valgrind or cc"
    d = tempfile.mkdtemp(prefix="wrapped-", dir=TMP)
    exe = os.path.join(d, "strata")
    with open(exe + ".c", "w") as f:
        f.write(LEAKY)
    r = subprocess.run(["cc", "-g", "-O0", "-o", exe, exe + ".c"], capture_output=True, text=True)
    st.check(r.returncode == 0, "cannot build the leaky program: %s" % r.stderr)
    script = os.path.join(d, "child.py")
    with open(script, "w") as f:
        f.write(WRAPPED_CHILD % {"here": HERE})
    env = dict(os.environ, STRATA=exe, STRATA_ITEST_CACHE=d, STRATA_ITEST_TIME_SCALE="1",
               STRATA_WRAPPER="valgrind --leak-check=full --show-leak-kinds=definite "
                              "--errors-for-leak-kinds=definite")
    r = st.run([sys.executable, script], timeout=120, env=env)
    out = r.out.decode("utf-8", "replace")
    st.check(r.rc == 1, "the wrapped suite exits %s, expected 1:\n%s" % (r.rc, out))
    st.check("\nok 1 - clean" in out, "a clean run was reported:\n" + out)
    st.check("not ok 2 - uninitialised" in out and "Conditional jump" in out,
             "the uninitialised read was not reported:\n" + out)
    st.check("not ok 3 - leak in a forked child" in out and "definitely lost" in out,
             "the forked child's leak was not reported:\n" + out)


suite.run("fixture images built", t_fixtures_built, timeout=300)
suite.run("comparator: a tree equals itself", t_compare_self, timeout=120)
suite.run("comparator: every planted difference is found", t_compare_altered, timeout=120)
suite.run("umoci unpack agrees with GNU tar (tarformats)", t_umoci_agrees_with_gnu_tar, timeout=120)
suite.run("tar_view agrees with GNU tar for every fixture layer", t_tar_view_matches_gnu_tar, timeout=120)
suite.run("hand-made layers hold the intended tricky entries", t_semantics_layers_as_written, timeout=60)
suite.run("expectations hold for umoci extractions", t_expectations_hold_for_umoci_images, timeout=60)
suite.run("image reader: same diff_ids in every format", t_reader_same_diff_ids_everywhere, timeout=120)
suite.run("pread_check finds a changed byte", t_pread_check, timeout=60)
suite.run("scripts skip (77) without STRATA", t_no_strata_means_skip, timeout=200)
suite.run("a hung FUSE read: the watchdog unmounts, the next test runs", t_watchdog_unsticks_a_hung_read, timeout=180)
suite.run("SIGTERM (meson's timeout) during a hung read unmounts", t_sigterm_unmounts_a_hung_mount, timeout=180)
suite.run("STRATA_WRAPPER=valgrind: a report fails the test", t_valgrind_wrapper_fails_tests, timeout=180)
shutil.rmtree(TMP, ignore_errors=True)
suite.finish()
