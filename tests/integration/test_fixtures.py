#!/usr/bin/python3
"""Mount every fixture image (tests/fixtures/build-images) and compare with an
independent extraction.

Per image and format: merged/ equals the oracle named in fixtures.json
(umoci unpack, GNU tar -x, or expectations.json), plus the expectations spot
checks; layers/ holds 00..N-1 and each layers/NN lists exactly the entries of
that layer's tar (python tarfile); image/config.json, manifest.json and
history; random preads of the largest files; writes refused with EROFS;
`strata umount` alone unmounts and the daemon exits. Then tag/digest/platform
selection refusals and the `ls`/`cat` subcommands.
"""
import json
import os
import random
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import strata_test as st  # noqa: E402

STRATA = st.strata_binary()
st.require_fuse()
st.require_root("umoci unpack and the fixture build run as root")
st.require_tools("umoci", "skopeo", "tar", "zstd")

suite = st.Suite("fixtures")
FX = st.fixtures_dir()
ORACLE = os.path.join(FX, "oracle")
with open(os.path.join(FX, "fixtures.json")) as f:
    FIXTURES = json.load(f)
EXPECT = st.load_expectations()


def oracle_root(im):
    if im["oracle"] == "umoci":
        return st.cached_unpack(ORACLE, im["oracle_tag"], "fixtures-" + im["oracle_tag"])
    if im["oracle"] == "gnutar":
        img = st.read_image(ORACLE, ref=":" + im["oracle_tag"])
        return st.cached_gnu_extract(img, "fixtures-" + im["oracle_tag"])
    return None


def t_image(im):
    path = os.path.join(FX, im["path"])
    image = st.read_image(path, ref=im.get("ref"), platform=im.get("platform"))
    ref_root = oracle_root(im)
    a = st.Aspects()
    notes = []
    with st.mounted(STRATA, path, ref=im.get("ref"), platform=im.get("platform"), notes=notes) as mnt:
        with a("mount root"):
            top = set(os.listdir(mnt))
            st.check({"merged", "layers", "image"} <= top, "mount root holds %s" % sorted(top))
        merged = os.path.join(mnt, "merged")
        snap = st.snapshot(merged)
        if ref_root is not None:
            with a("merged vs %s" % im["oracle"]):
                st.report(st.compare_trees(snap, st.snapshot(ref_root), "merged", im["oracle"]),
                          "merged/ vs %s extraction" % im["oracle"])
        if "expect" in im:
            with a("merged vs expectations.json[%s]" % im["expect"]):
                st.check_expectations(snap, EXPECT[im["expect"]], merged, "merged/")
            with a("no trusted.overlay.* xattr visible"):
                full = st.snapshot(merged, hash_content=False, xattr_filter=lambda k: k.startswith(b"trusted.overlay."))
                leaks = [st.shown(p) for p, e in full.items() if e.xattrs]
                st.check(not leaks, "trusted.overlay.* shown on: %s" % leaks[:10])
        with a("layers/ lists 00..%02d" % (im["layers"] - 1)):
            st.check_layers_dir(mnt, im["layers"])
        with a("layers/NN vs the layer tars"):
            st.check_layer_views(mnt, image, im["name"])
        for n, block in EXPECT.get(im.get("expect", ""), {}).get("layers", {}).items():
            with a("layers/%02d vs expectations" % int(n)):
                root = os.path.join(mnt, "layers", "%02d" % int(n))
                st.check_expectations(st.snapshot(root), {"entries": block}, root, "layers/%02d" % int(n))
        with a("stack/NN vs the image cut after layer NN"):
            check_stack(mnt, im, image, ref_root, a)
        with a("image/config.json and manifest.json"):
            st.check_image_json(mnt, image)
        with a("image/history"):
            st.check_history(mnt, image, im["layers"])
        if ref_root is not None:
            with a("random preads in merged/"):
                st.check_preads(merged, ref_root, snap)
        with a("read-only"):
            st.check_read_only(mnt)
    with a("unmount"):
        clean, extra = st.unmount_was_clean(notes)
        st.check(clean, "`strata umount` was not enough; needed: %s" % extra)
    return a.done()


def stack_oracle(im, image, k, ref_root):
    """The rootfs after layers 0..k: the merged oracle for the top layer, else
    umoci unpack of the build's TAG-stack-NN (GNU tar of the first layers for
    tarformats, whose oracle is GNU tar)."""
    n = im["layers"]
    if k == n - 1:
        return ref_root
    tag = im["oracle_tag"]
    if im["oracle"] == "gnutar":
        dest = os.path.join(st.cache_dir(), "gnutar", "%s-stack-%02d" % (tag, k))
        if not os.path.exists(dest + ".done"):
            st.shutil.rmtree(dest, ignore_errors=True)
            st.gnu_extract([image.layer_stream(i) for i in range(k + 1)], dest)
            open(dest + ".done", "w").close()
        return dest
    return st.cached_unpack(ORACLE, "%s-stack-%02d" % (tag, k), "fixtures-%s-stack-%02d" % (tag, k))


def check_stack(mnt, im, image, ref_root, a):
    """stack/NN (when the mount has stack/): the tree as it stood after layer NN."""
    stack = os.path.join(mnt, "stack")
    if not os.path.isdir(stack):
        a.note("no stack/ in this mount yet: not checked")
        return
    n = im["layers"]
    names = sorted(os.listdir(stack))
    st.check(names == ["%02d" % i for i in range(n)], "stack/ holds %s, expected 00..%02d" % (names, n - 1))
    if im["oracle"] == "expect" and ref_root is None:
        ref_root = st.cached_unpack(ORACLE, im["oracle_tag"], "fixtures-" + im["oracle_tag"])
    out = []
    for k in range(n):
        want = stack_oracle(im, image, k, ref_root)
        # semantics has implied parent directories: their mtime is whatever the
        # extractor picks (umoci: the time of unpacking), so skip directory mtimes.
        d = st.compare_trees(st.snapshot(os.path.join(stack, "%02d" % k)), st.snapshot(want),
                             "stack/%02d" % k, "oracle", dir_mtime=im["oracle"] != "expect")
        if d:
            out.append("stack/%02d: %d difference(s):\n    %s" % (k, len(d), "\n    ".join(d[:10])))
    st.check(not out, "\n  ".join(out))


def t_layer_preads():
    """Random reads inside layers/00 (gzip, zstd, uncompressed, archives) match the layer's own bytes."""
    base = st.cached_unpack(ORACLE, "multi", "fixtures-multi")  # app/data/big.* never change after L0
    out = []
    for name in ("multi/oci", "multi/oci-zstd", "multi/oci-uncompressed", "multi/docker-archive.tar",
                 "multi/oci-archive.tar"):
        with st.mounted(STRATA, os.path.join(FX, name)) as mnt:
            for f in ("app/data/big.bin", "app/data/big.txt", "app/keys/id_rsa"):
                d = st.pread_check(os.path.join(mnt, "layers", "00", f), os.path.join(base, f), reads=200)
                if d:
                    out.append("%s layers/00/%s: %s" % (name, f, d[:3]))
    st.check(not out, "\n".join(out))


def t_refusal(rf):
    path = os.path.join(FX, rf["path"])
    with st.try_mount(STRATA, path, ref=rf.get("ref"), platform=rf.get("platform")) as (res, mnt):
        msg = st.check_one_line_error(res, rf["name"])
        st.check(not st.is_mounted(mnt), "%s: refused but left a mount behind" % rf["name"])
    missing = [c for c in rf.get("candidates", []) if c not in msg]
    st.check(not missing, "%s: the message should list the candidates %s; it says:\n%s" % (rf["name"], missing, msg))
    lines = [l for l in msg.splitlines() if l.strip()]
    if len(lines) > 1 and not rf.get("candidates"):
        return "message has %d lines (one expected): %s" % (len(lines), msg)
    return "refused: " + lines[0][:200]


def t_index_without_platform():
    """:multi without --platform: mount the host's platform (amd64) or refuse listing platforms."""
    path = os.path.join(FX, "tags/oci")
    with st.try_mount(STRATA, path, ref=":multi") as (res, mnt):
        if res.rc == 0:
            st.check(st.is_mounted(mnt), "mount returned 0 but nothing is mounted")
            with open(os.path.join(mnt, "merged", "etc", "which-image")) as f:
                text = f.read()
            st.check(text == "linux/amd64 image\n",
                     "picked %r, expected the linux/amd64 one (never the attestation)" % text)
            return "picked the host platform"
        msg = st.check_one_line_error(res, ":multi without --platform")
    missing = [p for p in ("linux/amd64", "linux/arm64", "linux/arm/v7") if p not in msg]
    st.check(not missing, "refusal should list the platforms %s:\n%s" % (missing, msg))
    st.check("unknown" not in msg, "the attestation manifest is offered as a platform:\n" + msg)
    return "refused, listing platforms"


def t_ls_cat():
    """strata ls / cat (no FUSE) agree with the oracle, in merged and per layer."""
    root = st.cached_unpack(ORACLE, "multi", "fixtures-multi")
    out = []
    for name in ("multi/oci", "multi/docker-archive.tar", "multi/oci-zstd"):
        path = os.path.join(FX, name)
        for d in ("app", "app/opaque", "etc/hl"):
            r = st.run([STRATA, "ls", path, d])
            got = sorted(l for l in r.out.decode("utf-8", "surrogateescape").split("\n") if l)
            want = sorted(os.listdir(os.path.join(root, d)))
            if r.rc != 0 or got != want:
                out.append("%s: ls %s -> rc=%s %s, want %s" % (name, d, r.rc, got, want))
        r = st.run([STRATA, "ls", path])
        got = sorted(l for l in r.out.decode("utf-8", "surrogateescape").split("\n") if l)
        if r.rc != 0 or got != sorted(os.listdir(root)):
            out.append("%s: ls (root) -> rc=%s %s" % (name, r.rc, got))
        for f in ("app/settings.txt", "app/data/big.bin", "etc/hl/b"):
            r = st.run([STRATA, "cat", path, f])
            with open(os.path.join(root, f), "rb") as fh:
                want = fh.read()
            if r.rc != 0 or r.out != want:
                out.append("%s: cat %s -> rc=%s, %d bytes (want %d)%s" % (
                    name, f, r.rc, len(r.out), len(want), "" if r.out == want else ", content differs"))
        # Per layer: layer 0 still has the deleted file and the first settings; layer 1 its whiteouts.
        for args, want in (((path, "app/delete-me.txt", "--layer", "0"), b"to be deleted by a whiteout in layer 1\n"),
                           ((path, "app/settings.txt", "--layer", "1"), b"settings version 2\n")):
            r = st.run([STRATA, "cat"] + list(args))
            if r.rc != 0 or r.out != want:
                out.append("%s: cat %s -> rc=%s %r" % (name, " ".join(args[1:]), r.rc, r.out[:80]))
        r = st.run([STRATA, "ls", path, "app", "--layer", "1"])
        got = set(l for l in r.out.decode("utf-8", "surrogateescape").split("\n") if l)
        for w in (".wh.delete-me.txt", ".wh.olddir", "settings.txt"):
            if w not in got:
                out.append("%s: ls app --layer 1 lacks %s: %s" % (name, w, sorted(got)))
        # A deleted file is not in merged: cat must fail cleanly.
        r = st.run([STRATA, "cat", path, "app/delete-me.txt"])
        if r.rc == 0 or r.crashed or r.timed_out:
            out.append("%s: cat of a deleted file -> rc=%s (want a clean error)" % (name, r.rc))
    r = st.run([STRATA, "cat", os.path.join(FX, "tags/oci") + ":red", "red.txt"])
    if r.rc != 0 or r.out != b"red\n":
        out.append("tags/oci:red: cat red.txt -> rc=%s %r" % (r.rc, r.out[:40]))
    st.check(not out, "\n".join(out))


def t_parallel_reads():
    """8 threads read every file of merged/ and layers/ at once, in different orders
    and chunk sizes: the content must not change (the FUSE side is multi-threaded)."""
    import random
    import threading
    root = st.cached_unpack(ORACLE, "multi", "fixtures-multi")
    want = {p: e.sha256 for p, e in st.snapshot(root).items() if e.type == "file"}
    out = []
    for name in ("multi/oci", "multi/oci-zstd", "multi/docker-archive.tar"):
        with st.mounted(STRATA, os.path.join(FX, name)) as mnt:
            merged = os.fsencode(os.path.join(mnt, "merged"))
            errors = []

            def worker(seed):
                rnd = random.Random(seed)
                paths = list(want) * 2
                rnd.shuffle(paths)
                for p in paths:
                    try:
                        h = st.hashlib.sha256()
                        with open(os.path.join(merged, p), "rb", buffering=0) as f:
                            while True:
                                b = f.read(rnd.choice([1, 4095, 65536, 1 << 20]))
                                if not b:
                                    break
                                h.update(b)
                        if h.hexdigest() != want[p]:
                            errors.append("%s: content differs" % st.shown(p))
                    except OSError as e:
                        errors.append("%s: %s" % (st.shown(p), e))
                        if e.errno in (103, 107):
                            return
            threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            if errors:
                out.append("%s: %d error(s): %s" % (name, len(errors), errors[:5]))
    st.check(not out, "\n".join(out))


def t_remount_same_point():
    """Mount, unmount, mount again: both mounts work (no stale state)."""
    path = os.path.join(FX, "multi/oci")
    for i in range(2):
        with st.mounted(STRATA, path) as mnt:
            with open(os.path.join(mnt, "merged", "app", "settings.txt")) as f:
                st.check(f.read() == "settings version 3 (final)\n", "mount %d: wrong settings.txt" % i)


def t_zstd_spill():
    """A single-frame zstd layer (skopeo's): far reads come through the spill, byte-exact."""
    work = tempfile.mkdtemp(prefix="strata-spill-")
    try:
        root = os.path.join(work, "root")
        os.makedirs(os.path.join(root, "app"))
        huge = os.path.join(root, "app", "huge.bin")
        with open(huge, "wb") as f:  # incompressible, 12 MiB: far past the 4 MiB spill gap
            f.write(random.Random(12).randbytes(12 << 20))
        tar = os.path.join(work, "layer.tar")
        st.check(st.run(["tar", "-cf", tar, "-C", root, "app"]).rc == 0, "tar failed")
        lay = os.path.join(work, "umoci")
        for argv in (["umoci", "init", "--layout", lay],
                     ["umoci", "new", "--image", lay + ":spill"],
                     ["umoci", "raw", "add-layer", "--image", lay + ":spill", tar],
                     ["skopeo", "--insecure-policy", "copy", "-q", "--dest-compress-format", "zstd",
                      "oci:%s:spill" % lay, "oci:%s:spill" % os.path.join(work, "zst")]):
            res = st.run(argv, timeout=120)
            st.check(res.rc == 0, "%s failed: %s" % (argv[0], res.text()))
        with st.mounted(STRATA, os.path.join(work, "zst")) as mnt:
            with open(os.path.join(mnt, "image", "status")) as f:
                status = f.read()
            st.check("\nspill: /" in status, "image/status names no spill directory:\n" + status)
            out = []
            for view in ("layers/00", "merged"):
                d = st.pread_check(os.path.join(mnt, view, "app", "huge.bin"), huge, reads=120)
                if d:
                    out.append("%s/app/huge.bin: %s" % (view, d[:3]))
            st.check(not out, "\n".join(out))
            spills = []
            for pid in st.daemon_pids(mnt):
                for fd in os.listdir("/proc/%d/fd" % pid):
                    try:
                        target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
                    except OSError:
                        continue
                    if "/spill/" in target:
                        spills.append(target)
            st.check(spills, "the daemon holds no spill file after reads 4-12 MiB into a "
                     "single-frame zstd layer")
        return "%d spill file(s) open" % len(spills)
    finally:
        st.run(["rm", "-rf", work])


for im in FIXTURES["images"]:
    suite.run("mount %s" % im["name"], t_image, im, timeout=180)
suite.run("random reads in layers/00 of every format", t_layer_preads, timeout=180)
for rf in FIXTURES["refusals"]:
    suite.run("refuse: %s" % rf["name"], t_refusal, rf, timeout=60)
suite.run("index without --platform", t_index_without_platform, timeout=60)
suite.run("strata ls / cat", t_ls_cat, timeout=180)
suite.run("parallel reads (8 threads)", t_parallel_reads, timeout=240)
suite.run("mount twice", t_remount_same_point, timeout=60)
suite.run("single-frame zstd: far reads through the spill", t_zstd_spill, timeout=240)
suite.finish()
