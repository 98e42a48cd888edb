#!/usr/bin/python3
"""The .secrets directory of a mount (issue 5).

- Mounting scans nothing: status says so before any access.
- Reading one file holding a secret through merged/ scans that file alone
  (status counts 1 file) without opening .secrets.
- Then .secrets/findings.jsonl equals `strata scan --format json` on the same
  image, line for line, and so does findings.sarif with --format sarif.
- status answers at once while a full scan of a large image runs in another
  thread, and reports progress.
- A remount reads the layers' results from the cache: status says every layer
  came from the cache and nothing was re-read; findings are the same.
- Every by-rule/RULE/NNN.file symlink resolves inside the mount to the file
  that NNN names; example findings are only under examples/.
The image is the corpus demo when ../shared is present, else the repo's demo.
"""
import json
import os
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import strata_test as st  # noqa: E402

STRATA = st.strata_binary()
st.require_fuse()
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
CORPUS = os.path.normpath(os.path.join(REPO, "..", "shared", "corpus"))
DEMO = os.path.join(REPO, "tests", "demo", "demo.tar")
suite = st.Suite("secrets")


def fresh_cache():
    """Each case gets its own index and results cache, so none sees another's."""
    d = tempfile.mkdtemp(prefix="xdg-", dir=st.cache_dir())
    os.environ["XDG_CACHE_HOME"] = d
    return d


def read(path):
    with open(path, "rb") as f:
        return f.read()


def status(mnt):
    t0 = time.time()
    text = read(os.path.join(mnt, ".secrets", "status")).decode()
    return text, time.time() - t0


def files_scanned(text):
    for line in text.splitlines():
        if line.startswith("files scanned:"):
            return int(line.split(":")[1])
    st.fail("status has no 'files scanned' line:\n" + text)


def image_and_file():
    if os.path.isdir(os.path.join(CORPUS, "demo", "oci")):
        return os.path.join(CORPUS, "demo", "oci"), "app/.env"
    return DEMO, "app/config/.env"


def t_lazy_then_full():
    fresh_cache()
    image, secret_file = image_and_file()
    with st.mounted(STRATA, image) as mnt:
        text, _ = status(mnt)
        st.check(files_scanned(text) == 0 and not text.startswith("complete"),
                 "mounting scanned something:\n" + text)
        read(os.path.join(mnt, "merged", secret_file))
        text, _ = status(mnt)
        st.check(files_scanned(text) == 1, "after reading one file, status says:\n" + text)
        jsonl = read(os.path.join(mnt, ".secrets", "findings.jsonl"))
        sarif = read(os.path.join(mnt, ".secrets", "findings.sarif"))
        text, _ = status(mnt)
        st.check(text.startswith("complete:"), "after opening .secrets, status says:\n" + text)
        st.check(any(json.loads(line)["path"] == secret_file for line in jsonl.decode().splitlines()),
                 "the file read first is in findings.jsonl")
    want = st.run([STRATA, "scan", "--format", "json", image])
    st.check(jsonl == want.out, "findings.jsonl differs from strata scan --format json:\n%s\n---\n%s" % (
        jsonl.decode()[:800], want.out.decode()[:800]))
    want = st.run([STRATA, "scan", "--format", "sarif", image])
    st.check(json.loads(sarif) == json.loads(want.out), "findings.sarif differs from strata scan --format sarif")


def t_read_in_pieces():
    """Reads are tracked per file, not per open: a file read through over
    several opens counts once its last piece has been read, not before."""
    fresh_cache()
    data = b"".join(b"line %06d of a file that is read in pieces\n" % i for i in range(3000))
    image = st.oci_layout(tempfile.mkdtemp(prefix="pieces-", dir=st.cache_dir()),
                          [st.tar_bytes([("app", "d", None), ("app/big.txt", "f", data)])])
    with st.mounted(STRATA, image) as mnt:
        path = os.path.join(mnt, "merged", "app", "big.txt")
        half = 16 * 4096

        def read_range(start, end):
            fd = os.open(path, os.O_RDONLY)
            try:
                # no readahead: the kernel asks for exactly these pages
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
                got = b""
                for off in range(start, end, 4096):
                    got += os.pread(fd, min(4096, end - off), off)
                return got
            finally:
                os.close(fd)
        got = read_range(half, len(data))
        text, _ = status(mnt)
        st.check(files_scanned(text) == 0, "after reading the second half, status says:\n" + text)
        got = read_range(0, half) + got
        st.check(got == data, "the file reads back as written")
        text, _ = status(mnt)
        st.check(files_scanned(text) == 1,
                 "after reading the first half in another open, status says:\n" + text)


def t_links():
    fresh_cache()
    image, _ = image_and_file()
    diffs = []
    with st.mounted(STRATA, image) as mnt:
        sec = os.path.join(mnt, ".secrets")
        n = 0
        for top in ("by-rule", "examples"):
            for rule in sorted(os.listdir(os.path.join(sec, top))):
                d = os.path.join(sec, top, rule)
                for name in sorted(os.listdir(d)):
                    if name.endswith(".file"):
                        continue
                    n += 1
                    text = read(os.path.join(d, name)).decode()
                    fields = dict(line.split(":", 1) for line in text.splitlines() if ": " in line[:14])
                    conf = fields["confidence"].strip()
                    if (top == "examples") != (conf == "example"):
                        diffs.append("%s/%s/%s: confidence %s under %s/" % (top, rule, name, conf, top))
                    view = fields["view"].strip()
                    link = os.path.join(d, name + ".file")
                    target = os.readlink(link)
                    st.check(not os.path.isabs(target), "%s: absolute link %s" % (link, target))
                    resolved = os.path.normpath(os.path.join(d, target))
                    if not resolved.startswith(mnt + "/"):
                        diffs.append("%s leaves the mount: %s" % (link, target))
                    elif os.path.relpath(resolved, mnt) != view.split("!/")[0]:
                        diffs.append("%s -> %s, but %s names %s" % (link, target, name, view))
                    elif not os.path.exists(resolved):
                        diffs.append("%s -> %s does not exist" % (link, target))
        st.check(n > 0, "no finding files under .secrets/")
    st.report(diffs, "NNN.file symlinks")


def t_status_while_scanning():
    if not os.path.isdir(os.path.join(CORPUS, "realistic", "oci")):
        return "SKIP needs the large corpus image"
    if not st.corpus_wanted("realistic"):
        return "SKIP realistic is not in STRATA_ITEST_CORPUS"
    fresh_cache()
    image = os.path.join(CORPUS, "realistic", "oci")
    with st.mounted(STRATA, image) as mnt:
        box = {}

        def full():
            box["listing"] = os.listdir(os.path.join(mnt, ".secrets"))
        t = threading.Thread(target=full, daemon=True)
        t.start()
        seen_progress, slowest = False, 0.0
        while t.is_alive():
            text, took = status(mnt)
            slowest = max(slowest, took)
            seen_progress |= text.startswith("scanning:")
            # a full scan of this image takes a few tenths of a second on an
            # idle machine: poll often enough to catch it in progress
            time.sleep(0.002)
        t.join(600)
        st.check("summary.txt" in box.get("listing", []), "listing .secrets gave %s" % box.get("listing"))
        st.check(seen_progress, "status never showed a scan in progress")
        st.check(slowest < 2.0 * st.TIME_SCALE, "status took %.2f s to answer during the scan" % slowest)
        st.check(status(mnt)[0].startswith("complete:"), "status after the scan")


def t_remount_from_cache():
    fresh_cache()
    image, _ = image_and_file()
    with st.mounted(STRATA, image) as mnt:
        first = read(os.path.join(mnt, ".secrets", "summary.txt"))
        jsonl1 = read(os.path.join(mnt, ".secrets", "findings.jsonl"))
    with st.mounted(STRATA, image) as mnt:
        second = read(os.path.join(mnt, ".secrets", "summary.txt"))
        jsonl2 = read(os.path.join(mnt, ".secrets", "findings.jsonl"))
        text, _ = status(mnt)
    st.check("(all layers from cache)" in text.splitlines()[0], "remount status:\n" + text)
    st.check(all("from cache" in line for line in text.splitlines() if line.startswith("layer ")),
             "a layer was re-read:\n" + text)
    st.check(first == second and jsonl1 == jsonl2, "findings differ after a remount from the cache")


suite.run("lazy scan on read, then the full result equals strata scan", t_lazy_then_full, timeout=300)
suite.run("NNN.file symlinks resolve inside the mount", t_links, timeout=300)
suite.run("a file read through over several opens is scanned", t_read_in_pieces)
suite.run("status answers during a full scan", t_status_while_scanning, timeout=900)
suite.run("remount: results come from the cache", t_remount_from_cache, timeout=300)
suite.finish()
