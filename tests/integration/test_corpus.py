#!/usr/bin/python3
"""Every image and format of ../shared/corpus/corpus.json, mounted and compared.

merged/ must equal `umoci unpack` of the image's oci/ variant (cached under
the build dir): paths, types, modes, owners, sizes, symlink targets, sha256
of files, hardlink groups, devices, user.* xattrs, mtimes. Every layers/NN
must list exactly the entries of that layer's tar (python tarfile on the
format's own blobs); image/history has one line per layer and names the
right created_by; random preads of the largest files match.

Time: merged/ of the first format of each image is hashed in full. For big
images (> 20,000 files or > 50 MB) the layers/NN views and the other formats
hash a sample (one file in 20 by a hash of its path, and every file of 1 MiB
or more); every entry is still listed and compared. STRATA_ITEST_FULL=1
hashes all.
"""
import json
import os
import sys
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import strata_test as st  # noqa: E402

CORPUS = os.path.join(st.SHARED, "corpus")
if not os.path.exists(os.path.join(CORPUS, "corpus.json")):
    st.skip_all("no corpus at %s" % CORPUS)
STRATA = st.strata_binary()
st.require_fuse()
st.require_root("umoci unpack runs as root")
st.require_tools("umoci", "zstd")

FULL = os.environ.get("STRATA_ITEST_FULL") == "1"
# The sanitizer build sets this: images of more than HUGE entries are left to the
# plain build, which checks them in one format, hashing a sample (unless FULL).
QUICK = os.environ.get("STRATA_ITEST_QUICK") == "1"
HUGE = 100000
suite = st.Suite("corpus")
with open(os.path.join(CORPUS, "corpus.json")) as f:
    CORPUS_JSON = json.load(f)

_views = {}  # diff_id -> tar_view (layers shared between formats are read once)


def layer_view(image, i):
    diff_ids = image.config.get("rootfs", {}).get("diff_ids", [])
    key = diff_ids[i] if i < len(diff_ids) else None
    if key and key in _views:
        return _views[key]
    v = st.tar_view(image.layer_stream(i))
    if key:
        _views[key] = v
    return v


def oracle(entry):
    layout = os.path.join(CORPUS, entry["dir"], "oci")
    return st.cached_unpack(layout, "latest", "corpus-" + entry["dir"])


def layer_entries(entry):
    """Entries in all layers, as the image's answers.json counts them (0 if unknown)."""
    try:
        with open(os.path.join(CORPUS, entry["dir"], "answers.json")) as f:
            return sum(layer.get("entries", 0) for layer in json.load(f).get("layers", []))
    except (OSError, ValueError):
        return 0


def huge(snap):

    return len(snap) > HUGE


def sampler(big):
    if FULL or not big:
        return None

    def keep(path, size):
        return zlib.crc32(path) % 20 == 0 or size >= 1 << 20
    return keep


def t_format(entry, fmt_name, fmt, first, ref_snap, ref_root, big):
    path = os.path.join(CORPUS, entry["dir"], fmt["path"])
    image = st.read_image(path)
    n = len(image.layers)
    keep = None if first and not huge(ref_snap) else sampler(big)
    keep_layers = sampler(big)  # merged/ of the first format is hashed in full already
    a = st.Aspects()
    notes = []
    with st.mounted(STRATA, path, notes=notes) as mnt:
        merged = os.path.join(mnt, "merged")
        snap = st.snapshot(merged, content_filter=keep)
        with a("merged vs umoci unpack of oci/"):
            st.report(st.compare_trees(snap, ref_snap, "merged", "umoci"), "merged/")
        with a("layers/ lists 00..%02d" % (n - 1)):
            st.check_layers_dir(mnt, n)
        with a("layers/NN vs the layer tars"):
            out = []
            for i in range(n):
                view = layer_view(image, i)
                lsnap = st.snapshot(os.path.join(mnt, "layers", "%02d" % i), content_filter=keep_layers)
                d = st.compare_layer(lsnap, view, "layers/%02d" % i)
                if d:
                    out.append("layers/%02d: %d difference(s):\n    %s" % (i, len(d), "\n    ".join(d[:10])))
            st.check(not out, "\n  ".join(out))
        with a("image/history"):
            st.check_history(mnt, image, n)
        with a("image/config.json, manifest.json"):
            st.check_image_json(mnt, image)
        with a("random preads"):
            st.check_preads(merged, ref_root, snap, n=3, reads=200)
    with a("unmount"):
        clean, extra = st.unmount_was_clean(notes)
        st.check(clean, "`strata umount` was not enough; needed: %s" % extra)
    if keep:
        a.note("content hashed for a sample of the files (%d of %d)" % (
            sum(1 for e in snap.values() if e.sha256), sum(1 for e in snap.values() if e.type == "file")))
    return a.done()


def main():
    for entry in CORPUS_JSON["images"]:
        if not st.corpus_wanted(entry["dir"]):
            suite.run("%s: not in STRATA_ITEST_CORPUS" % entry["dir"], lambda: "SKIP not in STRATA_ITEST_CORPUS")
            continue
        ref = {}

        if QUICK and not FULL and layer_entries(entry) > HUGE:
            suite.run("%s: left to the plain build" % entry["dir"],
                      lambda n=layer_entries(entry): "SKIP %d layer entries: the plain build checks it" % n)
            continue

        def prepare(entry=entry, ref=ref):

            root = oracle(entry)
            ref["root"] = root
            ref["snap"] = st.snapshot(root)
            size = sum(e.size for e in ref["snap"].values() if e.type == "file")
            ref["big"] = len(ref["snap"]) > 20000 or size > 50 << 20
            return "umoci unpack: %d entries, %.1f MB" % (len(ref["snap"]), size / 1e6)
        suite.run("%s: independent extraction (umoci unpack oci/)" % entry["dir"], prepare, timeout=600)
        if "snap" not in ref:
            continue
        present = [(n, f) for n, f in entry["formats"].items()
                   if os.path.exists(os.path.join(CORPUS, entry["dir"], f["path"]))]
        for name, fmt in entry["formats"].items():
            if (name, fmt) not in present:
                suite.run("%s/%s" % (entry["dir"], name),
                          lambda p=fmt["path"]: "SKIP %s is listed in corpus.json but absent" % p)
        for i, (name, fmt) in enumerate(present):
            title = "%s/%s (%s, %s)" % (entry["dir"], name, fmt["kind"], fmt.get("layer_compression"))
            if huge(ref["snap"]) and not FULL and (QUICK or i > 0):
                suite.run(title, lambda: "SKIP %d entries: %s (STRATA_ITEST_FULL=1 runs it)" % (
                    len(ref["snap"]), "left to the plain build" if QUICK else "checked in its first format"))
                continue
            suite.run(title, t_format, entry, name, fmt, i == 0, ref["snap"], ref["root"], ref["big"],
                      timeout=600 if ref["big"] else 180)

        _views.clear()
    suite.finish()


main()
