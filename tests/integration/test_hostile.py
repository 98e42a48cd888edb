#!/usr/bin/python3
"""Hostile images (issue 7): each built here, each with a defined outcome.

Paths: '..', 'a/../../x', absolute names, backslashes, '.wh.' with an empty
name, '.wh..', a 300-byte name, a path over PATH_MAX, 3,000 levels of
directories. Links: symlinks out of the image stay verbatim data (and
-o contain_symlinks rewrites absolute ones inside the view); hardlinks to
missing paths, to directories, forward references and to paths outside the
root are skipped or cleaned, never followed. Sizes and counts: a gzip bomb
over --max-layer-size, a truncated layer, --max-entries, a 20 MB manifest,
1,000 layers. Digests: a changed blob is refused, --no-verify reads it with a
warning; missing blobs, malformed JSON, encrypted layers and artifacts are
refused with one clear line. Never a crash, never a hang, no path outside its
view. Signals: SIGTERM to the daemon unmounts; after SIGKILL, `strata umount`
clears the dead mount.
"""
import gzip
import io
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import strata_test as st  # noqa: E402

STRATA = st.strata_binary()
st.require_fuse()
suite = st.Suite("hostile")
WORK = tempfile.mkdtemp(prefix="hostile-", dir=st.cache_dir())
os.environ["XDG_CACHE_HOME"] = os.path.join(WORK, "xdg")


tar_bytes = st.tar_bytes


def layout(name, layers, config_extra=None, media=None, tamper=None):
    """An OCI layout with the given layer blobs under WORK; returns its path."""
    return st.oci_layout(os.path.join(WORK, name), layers, config_extra, media, tamper)


def refused(path, *args, what, expect=None):
    res = st.run([STRATA, "ls", *args, path], timeout=120)
    msg = st.check_one_line_error(res, what)
    st.check(res.rc == 2, "%s: exit %s, want 2" % (what, res.rc))
    st.check(len(msg.splitlines()) == 1, "%s: more than one line:\n%s" % (what, msg))
    if expect:
        st.check(expect in msg, "%s: message lacks %r: %s" % (what, expect, msg))
    return msg


def walk_names(root):
    """Every name of every directory under root; symlinks not followed."""
    bad = []
    for d, dirs, files in os.walk(root):
        for n in dirs + files:
            if "/" in n or n in (".", "..", ""):
                bad.append(os.path.join(d, n))
    return bad


DEEP = "/".join(["d"] * 3000) + "/bottom"
LONG = "n" * 300
OVER_PATH_MAX = "/".join(["p" * 200] * 25) + "/f"


def t_paths_and_links():
    layer0 = tar_bytes([
        ("etc/passwd", "f", "root:x:0:0\n"),
        ("../escape.txt", "f", "up\n"),
        ("a/../../x", "f", "x\n"),
        ("/abs/file", "f", "abs\n"),
        ("back\\slash", "f", "bs\n"),
        (".wh.", "f", ""),
        (".wh..", "f", ""),
        ("dir/" + LONG, "f", "long\n"),
        (OVER_PATH_MAX, "f", "deep path\n"),
        (DEEP, "f", "too deep\n"),
        ("evil", "l", "/etc/shadow"),
        ("sub/up", "l", "../../.."),
        ("sub/abs", "l", "/etc/passwd"),
        ("fwd", "h", "later"),           # forward reference: the target comes after
        ("later", "f", "later\n"),
        ("missing", "h", "no/such/file"),
        ("todir", "h", "sub"),
        ("outside", "h", "../../etc/passwd"),  # cleaned: the image's etc/passwd
    ])
    img = layout("paths", [layer0])
    with st.mounted(STRATA, img) as mnt:
        m = os.path.join(mnt, "merged")
        for p, want in (("escape.txt", "up\n"), ("x", "x\n"), ("abs/file", "abs\n"), ("back\\slash", "bs\n"),
                        ("later", "later\n"), ("outside", "root:x:0:0\n")):
            with open(os.path.join(m, p)) as f:
                st.check(f.read() == want, "%s: cleaned entry has the wrong contents" % p)
        st.check(os.readlink(os.path.join(m, "evil")) == "/etc/shadow", "symlink targets stay verbatim")
        st.check(os.readlink(os.path.join(m, "sub/up")) == "../../..", "relative symlink verbatim")
        for p in ("fwd", "missing", "todir", ".wh.", ".wh.."):
            st.check(not os.path.lexists(os.path.join(m, p)), "%s must not be in merged/" % p)
        st.check(os.path.exists(os.path.join(mnt, "layers", "00", ".wh.")), "layers/00 shows '.wh.' as stored")
        st.check(LONG not in os.listdir(os.path.join(m, "dir")), "a 300-byte name is left out of listings")
        st.check(not os.path.exists(os.path.join(m, "d")), "3,000 levels are refused (max depth)")
        for view in ("merged", "layers", "stack", "deleted"):
            st.check(not walk_names(os.path.join(mnt, view)), "%s/ lists impossible names" % view)
        st.check(os.path.realpath(os.path.join(m, "sub")).startswith(mnt), "paths stay in the mount")
    res = st.run([STRATA, "ls", img])
    err = res.err.decode()
    for needle in ("climbs with '..'", "hardlink missing to no/such/file", "hardlink todir to sub",
                   "levels, skipped"):
        st.check(needle in err, "warning %r missing from:\n%s" % (needle, err))
    with st.mounted(STRATA, img, opts="contain_symlinks") as mnt:
        m = os.path.join(mnt, "merged")
        st.check(os.readlink(os.path.join(m, "evil")) == "etc/shadow", "contain_symlinks at the root")
        st.check(os.readlink(os.path.join(m, "sub/abs")) == "../etc/passwd", "contain_symlinks one level down")
        with open(os.path.join(m, "sub/abs")) as f:
            st.check(f.read() == "root:x:0:0\n", "a contained absolute symlink reads the image's file")


def t_sizes():
    zeros = io.BytesIO()
    with gzip.GzipFile(fileobj=zeros, mode="wb", compresslevel=9) as g:
        g.write(tar_bytes([("zeros", "f", b"\0" * (32 << 20))]))
    bomb = layout("bomb", [zeros.getvalue()], media="application/vnd.oci.image.layer.v1.tar+gzip")
    refused(bomb, "--no-cache", "--max-layer-size", "1000000", what="gzip bomb", expect="decompression bomb")
    res = st.run([STRATA, "cat", "--no-cache", bomb, "zeros"], timeout=120)
    st.check(res.rc == 0 and len(res.out) == 32 << 20, "the same layer reads within the default bounds")

    half = zeros.getvalue()[: len(zeros.getvalue()) // 2]
    cut = layout("truncated", [half], media="application/vnd.oci.image.layer.v1.tar+gzip")
    refused(cut, "--no-cache", what="truncated gzip layer", expect="layer 00")

    many = tar_bytes([("f%05d" % i, "f", "") for i in range(3000)])
    refused(layout("entries", [many]), "--no-cache", "--max-entries", "1000", what="entry bound",
            expect="more than 1000 entries")

    big = layout("bigmanifest", [tar_bytes([("a", "f", "a")])],
                 config_extra={"padding": "x" * (20 << 20)})
    refused(big, "--no-cache", what="a 20 MB config", expect="limit")

    layers = [tar_bytes([("l%04d" % i, "f", "%d\n" % i)]) for i in range(1000)]
    img = layout("thousand", layers)
    res = st.run([STRATA, "ls", "--no-cache", img], timeout=300)
    st.check(res.rc == 0 and len(res.out.splitlines()) == 1000, "1,000 layers: %s" % res.text()[:300])


def t_digests_and_json():
    def change_blob(root, descs):
        p = os.path.join(root, "blobs", "sha256", descs[0]["digest"].split(":")[1])
        data = bytearray(open(p, "rb").read())
        data[600] ^= 1  # inside the file's data
        open(p, "wb").write(bytes(data))
    img = layout("tampered", [tar_bytes([("a", "f", "a" * 1000)])], tamper=change_blob)
    refused(img, "--no-cache", what="a changed blob", expect="mismatch")
    res = st.run([STRATA, "ls", "--no-cache", "--no-verify", img])
    st.check(res.rc == 0 and b"mismatch" in res.err, "--no-verify reads it with a warning: %s" % res.text())

    def drop_blob(root, descs):
        os.unlink(os.path.join(root, "blobs", "sha256", descs[0]["digest"].split(":")[1]))
    refused(layout("missing", [tar_bytes([("a", "f", "a")])], tamper=drop_blob), what="a missing blob",
            expect="missing")

    def bad_json(root, descs):
        with open(os.path.join(root, "index.json"), "w") as f:
            f.write('{"manifests": [')
    refused(layout("badjson", [tar_bytes([("a", "f", "a")])], tamper=bad_json), what="malformed index.json",
            expect="JSON")
    refused(layout("encrypted", [tar_bytes([("a", "f", "a")])],
                   media="application/vnd.oci.image.layer.v1.tar+gzip+encrypted"),
            what="an encrypted layer", expect="encrypted")

    def fifo_index(root, descs):
        os.unlink(os.path.join(root, "index.json"))
        os.mkfifo(os.path.join(root, "index.json"))
    refused(layout("fifo", [tar_bytes([("a", "f", "a")])], tamper=fifo_index),
            what="a fifo for index.json (must not hang)", expect="not a regular file")
    fifo = os.path.join(WORK, "image.fifo")
    os.mkfifo(fifo)
    refused(fifo, what="a fifo as the image (must not hang)", expect="neither a file nor a directory")



def t_signals():
    img = layout("signals", [tar_bytes([("a", "f", "a\n")])])
    mnt = tempfile.mkdtemp(prefix="strata-sig-")
    try:
        p = subprocess.Popen([STRATA, "mount", "-f", img, mnt], stderr=subprocess.DEVNULL)
        deadline = time.time() + 20 * st.TIME_SCALE
        while not st.is_mounted(mnt) and time.time() < deadline:
            time.sleep(0.05)
        st.check(st.is_mounted(mnt), "foreground mount came up")
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=20 * st.TIME_SCALE)
        st.check(not st.is_mounted(mnt), "SIGTERM unmounted")

        res = st.run([STRATA, "mount", img, mnt])
        st.check(res.rc == 0 and st.is_mounted(mnt), "daemon mount: %s" % res.text())
        for pid in st.daemon_pids(mnt):
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.5)
        res = st.run([STRATA, "umount", mnt])
        st.check(res.rc == 0 and not st.is_mounted(mnt), "strata umount clears a killed mount: %s" % res.text())
    finally:
        st.force_unmount(mnt)
        os.rmdir(mnt)


suite.run("paths and links", t_paths_and_links, timeout=300)
suite.run("sizes and counts", t_sizes, timeout=600)
suite.run("digests, JSON, media types", t_digests_and_json, timeout=300)
suite.run("signals", t_signals, timeout=120)
suite.finish()
