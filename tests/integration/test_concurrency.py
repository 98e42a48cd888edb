#!/usr/bin/python3
"""32 threads against one mount (issue 7): random-offset reads of odd sizes
and directory walks over every view (merged/, layers/NN/, stack/NN/,
deleted/) of a multi-layer gzip image, each byte compared with an
independent extraction (umoci unpack for merged/ and the stack, python
tarfile for the layers and deleted/). Zero mismatches, zero errors.
STRATA_CONCURRENCY_SECONDS sets the duration (default 60; the sanitizer run
of tools/check uses 15).
"""
import hashlib
import os
import random
import sys
import tarfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import strata_test as st  # noqa: E402

STRATA = st.strata_binary()
st.require_fuse()
SECONDS = float(os.environ.get("STRATA_CONCURRENCY_SECONDS", "60"))
THREADS = 32
suite = st.Suite("concurrency")


def layer_files(image, i):
    """path -> bytes of the regular files of layer i, from python tarfile."""
    out = {}
    with tarfile.open(fileobj=image.layer_stream(i), mode="r|") as tf:
        for m in tf:
            if m.isfile():
                out[st.norm_tar_path(m.name).decode("utf-8", "surrogateescape")] = tf.extractfile(m).read()
    # an entry under a file of its own layer is dropped (README: "What the mount shows")
    return {p: d for p, d in out.items()
            if not any("/".join(p.split("/")[:k]) in out for k in range(1, p.count("/") + 1))}



def tree_files(root):
    """path -> bytes of the regular files under an extracted tree."""
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            if os.path.isfile(p) and not os.path.islink(p):
                with open(p, "rb") as fh:
                    out[os.path.relpath(p, root)] = fh.read()
    return out


def t_hammer():
    fx = st.fixtures_dir()
    path = os.path.join(fx, "multi", "oci")
    image = st.read_image(path)
    n = len(image.layers)
    refs = {"merged": tree_files(st.cached_unpack(os.path.join(fx, "oracle"), "multi", "fixtures-multi"))}
    for i in range(n):
        refs["layers/%02d" % i] = layer_files(image, i)
    top = "stack/%02d" % (n - 1)
    refs[top] = refs["merged"]
    # deleted/: every file there is some layer's version of that path
    versions = {}
    for i in range(n):
        for p, data in refs["layers/%02d" % i].items():
            versions.setdefault(p, set()).add(hashlib.sha256(data).hexdigest())
    errors, reads, walks = [], [0], [0]
    stop = time.time() + SECONDS
    lock = threading.Lock()

    with st.mounted(STRATA, path) as mnt:
        deleted = {}
        for d, _, files in os.walk(os.path.join(mnt, "deleted")):
            for f in files:
                rel = os.path.relpath(os.path.join(d, f), os.path.join(mnt, "deleted"))
                base = rel.split(";L")[0]
                if base in versions and os.path.isfile(os.path.join(d, f)):
                    with open(os.path.join(d, f), "rb") as fh:
                        data = fh.read()
                    if hashlib.sha256(data).hexdigest() not in versions[base]:
                        errors.append("deleted/%s is no version of %s" % (rel, base))
                    deleted[rel] = data
        refs["deleted"] = deleted
        views = [(v, sorted(files)) for v, files in refs.items() if files]

        def worker(seed):
            rnd = random.Random(seed)
            while time.time() < stop:
                view, files = rnd.choice(views)
                try:
                    if rnd.random() < 0.1:
                        for _ in os.walk(os.path.join(mnt, view)):
                            pass
                        with lock:
                            walks[0] += 1
                        continue
                    rel = rnd.choice(files)
                    want = refs[view][rel]
                    off = rnd.randrange(0, len(want) + 1)
                    size = rnd.choice((1, 7, 511, 4096, 4097, 65537, 1 << 20))
                    fd = os.open(os.path.join(mnt, view, rel), os.O_RDONLY)
                    try:
                        got = os.pread(fd, size, off)
                    finally:
                        os.close(fd)
                    if got != want[off:off + size]:
                        with lock:
                            errors.append("%s/%s: %d bytes at %d differ" % (view, rel, size, off))
                    with lock:
                        reads[0] += 1
                except OSError as e:
                    with lock:
                        errors.append("%s: %s" % (view, e))
        threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(SECONDS + 120)
        st.check(not any(t.is_alive() for t in threads), "a reader hung")
    st.check(not errors, "%d errors, first: %s" % (len(errors), errors[:5]))
    st.check(reads[0] > 0 and walks[0] > 0, "nothing happened")
    return "%d threads, %.0f s: %d reads, %d walks, 0 mismatches over %d views" % (
        THREADS, SECONDS, reads[0], walks[0], len(views))


suite.run("32 threads over every view", t_hammer, timeout=SECONDS + 600)
suite.finish()
