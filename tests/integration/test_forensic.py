#!/usr/bin/python3
"""The forensic views of issue 3 against independent oracles.

- stack/NN equals `umoci unpack` of the same image cut after layer NN (a new
  manifest and config naming layers 0..NN only), for every NN; stack/<top>
  equals merged/.
- deleted/ holds exactly the versions that a small Python model of the OCI
  layer rules (written here, from the spec) says are hidden, each with the
  bytes of its tar member and the user.strata.* attributes saying where it
  came from and what hid it; older versions of one path carry ";LNN".
- image/deleted.tsv lists the same versions.
- `strata inspect --json` per-layer counts (added, changed, hidden, hidden
  bytes) equal the model's.
- A remount maps merged/ from the cache (image/status says so) and shows
  exactly what the first mount built, in merged/, deleted/ and stack/NN;
  a tree file with a flipped byte, or with hostile contents behind a right
  CRC, is refused, removed and rebuilt, and the views stay the same.
- On ../shared/corpus (when present): every planted secret that answers.json
  marks deleted or shadowed is readable under deleted/ with its layer, and no
  live one is there.
"""
import glob
import hashlib
import json
import os
import shutil
import sys
import tarfile
import tempfile
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import strata_test as st  # noqa: E402

STRATA = st.strata_binary()
st.require_fuse()
st.require_root("umoci unpack and the fixture build run as root")
st.require_tools("umoci", "skopeo", "tar", "zstd")

suite = st.Suite("forensic")
FX = st.fixtures_dir()
CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "corpus")

# ---------------------------------------------------------------------------
# A model of the layer rules, written from the OCI image spec independently
# of fs/tree.c: a dict from path to the version shown there.


class Version:
    def __init__(self, layer, path, kind, size, sha, link):
        self.layer, self.path, self.kind, self.size, self.sha, self.link = layer, path, kind, size, sha, link
        self.index = 0  # position in the layer's tar


def clean(name):
    parts = []
    for c in name.split("/"):
        if c in ("", "."):
            continue
        if c == "..":
            if parts:
                parts.pop()
            continue
        parts.append(c)
    return "/".join(parts)


def layer_versions(image, i):
    """The entries of layer i in tar order: Version objects and whiteout markers."""
    out = []
    with tarfile.open(fileobj=image.layer_stream(i), mode="r|") as tf:
        for m in tf:
            p = clean(m.name)
            if not p:
                continue
            base = p.rsplit("/", 1)[-1]
            if base.startswith(".wh."):
                out.append(("whiteout", p))
                continue
            kind = "dir" if m.isdir() else "symlink" if m.issym() else "hardlink" if m.islnk() \
                else "file" if m.isfile() else "other"
            sha = None
            if kind == "file":
                sha = hashlib.sha256(tf.extractfile(m).read()).hexdigest()
            v = Version(i, p, kind, m.size if kind == "file" else 0, sha,
                        clean(m.linkname) if kind == "hardlink" else m.linkname)
            v.index = len(out)
            out.append(("entry", v))
    return out


class Model:
    def __init__(self):
        self.live = {}      # path -> Version (None: implied directory)
        self.hidden = []    # (Version, removed_by, how)
        self.stats = []     # per layer: dict(added, changed, hidden, hidden_bytes)

    def _remove(self, path, by, how):
        for p in [q for q in self.live if q == path or q.startswith(path + "/")]:
            v = self.live.pop(p)
            if v is not None:
                self.hidden.append((v, by, how))
                self.stats[by]["hidden"] += 1
                self.stats[by]["hidden_bytes"] += v.size

    def is_dir(self, p):
        v = self.live.get(p, "absent")
        return v is None or (v != "absent" and v.kind == "dir")

    def apply(self, i, entries):
        self.stats.append(dict(added=0, changed=0, hidden=0, hidden_bytes=0))
        # whiteouts first: they never hide their own layer's entries
        for what, x in entries:
            if what != "whiteout":
                continue
            d, _, base = x.rpartition("/")
            if d and not self.is_dir(d):
                continue
            if base == ".wh..wh..opq":
                for p in [q for q in self.live if q.startswith(d + "/" if d else "")
                          and q.count("/") == (d.count("/") + 1 if d else 0)]:
                    self._remove(p, i, "opaque")
            elif not base.startswith(".wh..wh.") and base != ".wh.":
                self._remove((d + "/" if d else "") + base[4:], i, "whiteout")
        for what, v in entries:
            if what != "entry":
                continue
            parts = v.path.split("/")
            skip = False
            for k in range(1, len(parts)):
                a = "/".join(parts[:k])
                cur = self.live.get(a, "absent")
                if cur == "absent":
                    self.live[a] = None
                elif cur is not None and cur.kind != "dir":
                    if cur.layer == i:  # a file of this layer: the entry under it is dropped
                        skip = True
                        break
                    self._remove(a, i, "shadowed")
                    self.live[a] = None
            if skip:
                continue
            if v.kind == "hardlink":
                t = self.live.get(v.link)
                if t is None or t == "absent" or t.kind == "dir":
                    continue
            cur = self.live.get(v.path, "absent")
            if cur == "absent" or cur is None:
                self.stats[i]["added"] += 1
            elif cur.layer != i:
                self.stats[i]["changed"] += 1
            if cur not in ("absent", None):
                if cur.kind == "dir" and v.kind == "dir":
                    self.live[v.path] = v
                    continue
                self._remove(v.path, i, "shadowed")
            elif cur is None and v.kind != "dir":
                self._remove(v.path, i, "shadowed")
            self.live[v.path] = v


def model_of(image, upto=None):
    m = Model()
    n = len(image.layers) if upto is None else upto + 1
    for i in range(n):
        m.apply(i, layer_versions(image, i))
    return m


# ---------------------------------------------------------------------------

def older(prefix, comp, layer, placed, dir_ok):
    """comp;LNN, then comp;LNN.2, ...: the first name free (or a directory, if dir_ok)."""
    k = 1
    while True:
        cand = comp + (";L%02d" % layer if k == 1 else ";L%02d.%d" % (layer, k))
        name = "/".join(prefix + [cand])
        if name not in placed or (dir_ok and placed[name] == "dir"):
            return cand
        k += 1


def expected_deleted(model):
    """deleted/ names, placed newest version first (README: "deleted/"): a taken name
    gives an older version NAME;LNN, also when the name a parent needs is a file."""
    placed, want = {}, {}
    for v, by, how in sorted(model.hidden, key=lambda x: (x[0].layer, x[0].index), reverse=True):
        parts, prefix = v.path.split("/"), []
        for comp in parts[:-1]:
            name = "/".join(prefix + [comp])
            if placed.get(name, "dir") != "dir":
                comp = older(prefix, comp, v.layer, placed, True)
                name = "/".join(prefix + [comp])
            placed.setdefault(name, "dir")
            prefix.append(comp)
        base = parts[-1]
        name = "/".join(prefix + [base])
        if name in placed:
            if v.kind == "dir" and placed[name] == "dir":
                want.setdefault(name, (v, by, how))  # an implied directory takes this version
                continue
            name = "/".join(prefix + [older(prefix, base, v.layer, placed, False)])
        placed[name] = "dir" if v.kind == "dir" else "file"
        want[name] = (v, by, how)
    return want


def getx(path, name):
    try:
        return os.getxattr(path, name, follow_symlinks=False).decode()
    except OSError:
        return None


def check_deleted(mnt, model):
    want = expected_deleted(model)
    root = os.path.join(mnt, "deleted")
    diffs = []
    for name, (v, by, how) in sorted(want.items()):
        p = os.path.join(root, name)
        if not os.path.lexists(p):
            diffs.append("%s (layer %02d, %s by %02d): missing" % (name, v.layer, how, by))
            continue
        if v.kind == "file":
            with open(p, "rb") as f:
                if hashlib.sha256(f.read()).hexdigest() != v.sha:
                    diffs.append("%s: content differs from layer %02d's tar member" % (name, v.layer))
        if v.kind in ("file", "dir"):
            got = (getx(p, "user.strata.layer"), getx(p, "user.strata.removed_by"), getx(p, "user.strata.how"))
            exp = ("%02d" % v.layer, "%02d" % by, how)
            if got != exp:
                diffs.append("%s: xattrs layer/removed_by/how %s, want %s" % (name, got, exp))
    # nothing else but directories that hold hidden versions
    for dirpath, dirs, files in os.walk(root):
        for f in files:
            rel = os.path.relpath(os.path.join(dirpath, f), root)
            if rel not in want:
                diffs.append("%s: in deleted/ but hidden by nobody" % rel)
    st.report(diffs, "deleted/ vs the model")

    with open(os.path.join(mnt, "image", "deleted.tsv")) as f:
        rows = [line.rstrip("\n").split("\t") for line in f][1:]
    got_rows = {(r[0], int(r[1]), int(r[2]), r[3]) for r in rows}
    exp_rows = {(n, v.layer, by, how) for n, (v, by, how) in want.items()}
    st.check(got_rows == exp_rows, "image/deleted.tsv: %d rows, want %d; extra %s, missing %s" % (
        len(got_rows), len(exp_rows), sorted(got_rows - exp_rows)[:5], sorted(exp_rows - got_rows)[:5]))


def cut_layout(image, n, work):
    """An OCI layout holding the image cut after layer n-1, tagged "cut"."""
    lay = os.path.join(work, "cut%02d" % n)
    os.makedirs(os.path.join(lay, "blobs", "sha256"))

    def put(data):
        d = hashlib.sha256(data).hexdigest()
        with open(os.path.join(lay, "blobs", "sha256", d), "wb") as f:
            f.write(data)
        return "sha256:" + d, len(data)

    layers = []
    for i in range(n):
        with image.store.open(image.layers[i]) as src:
            data = src.read()
        d, size = put(data)
        mt = "application/vnd.oci.image.layer.v1.tar"
        if data[:2] == b"\x1f\x8b":
            mt += "+gzip"
        elif data[:4] == b"\x28\xb5\x2f\xfd":
            mt += "+zstd"
        layers.append({"mediaType": mt, "digest": d, "size": size})
    cfg = dict(image.config)
    cfg["rootfs"] = {"type": "layers", "diff_ids": image.config["rootfs"]["diff_ids"][:n]}
    cfg.pop("history", None)
    cd, cs = put(json.dumps(cfg).encode())
    man = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
           "layers": layers}
    md, ms = put(json.dumps(man).encode())
    with open(os.path.join(lay, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms,
            "annotations": {"org.opencontainers.image.ref.name": "cut"}}]}, f)
    with open(os.path.join(lay, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    return lay


def check_stacks(mnt, image, work):
    n = len(image.layers)
    for k in range(n):
        lay = cut_layout(image, k + 1, work)
        dest = os.path.join(work, "unpack%02d" % k)
        st.umoci_unpack(lay, "cut", dest)
        diffs = st.compare_trees(st.snapshot(os.path.join(mnt, "stack", "%02d" % k)),
                                 st.snapshot(os.path.join(dest, "rootfs")), "stack/%02d" % k, "umoci",
                                 dir_mtime=False)
        st.report(diffs, "stack/%02d vs umoci unpack of layers 00..%02d" % (k, k))
        shutil.rmtree(dest, ignore_errors=True)
    top = st.compare_trees(st.snapshot(os.path.join(mnt, "stack", "%02d" % (n - 1))),
                           st.snapshot(os.path.join(mnt, "merged")), "stack/top", "merged")
    st.report(top, "stack/%02d vs merged/" % (n - 1))


def check_inspect(path, model, ref=None):
    res = st.run([STRATA, "inspect", "--json", st.image_arg(path, ref)])
    st.check(res.rc == 0, "strata inspect failed: %s" % res.text())
    got = json.loads(res.out)
    diffs = []
    for i, (row, exp) in enumerate(zip(got["layers"], model.stats)):
        for k in ("added", "changed", "hidden", "hidden_bytes"):
            if row[k] != exp[k]:
                diffs.append("layer %02d %s: %d, model says %d" % (i, k, row[k], exp[k]))
    st.check(len(got["layers"]) == len(model.stats), "inspect: %d layers, want %d" % (
        len(got["layers"]), len(model.stats)))
    visible = sum(v.size for v in model.live.values() if v is not None and v.kind == "file")
    if got["totals"]["visible_bytes"] != visible:
        diffs.append("visible bytes %d, model says %d" % (got["totals"]["visible_bytes"], visible))
    st.report(diffs, "strata inspect vs the model")


def t_image(path, ref=None, stacks=True):
    image = st.read_image(path, ref=ref)
    model = model_of(image)
    a = st.Aspects()
    with tempfile.TemporaryDirectory(dir=st.cache_dir()) as work:
        with st.mounted(STRATA, path, ref=ref) as mnt:
            with a("deleted/"):
                check_deleted(mnt, model)
            if stacks:
                with a("stack/NN"):
                    check_stacks(mnt, image, work)
        with a("inspect"):
            check_inspect(path, model, ref)
    a.done()


def views_of(mnt, nlayers):
    """Every view a cached tree feeds, and whether image/status says the tree came from the cache."""
    out = {v: st.snapshot(os.path.join(mnt, v), xattr_filter=st.all_xattrs)
           for v in ["merged", "deleted"] + ["stack/%02d" % i for i in range(nlayers)]}
    with open(os.path.join(mnt, "image", "status")) as f:
        cached = "and the merged tree" in f.read()
    return out, cached


def t_cached_tree(path):
    nlayers = len(st.read_image(path).layers)
    old = os.environ.get("XDG_CACHE_HOME")
    with tempfile.TemporaryDirectory(dir=st.cache_dir()) as xdg:
        os.environ["XDG_CACHE_HOME"] = xdg  # the mount's daemon inherits it
        try:
            def remount(what, want_cached):
                with st.mounted(STRATA, path) as mnt:
                    got, cached = views_of(mnt, nlayers)
                st.check(cached == want_cached, "%s: merged tree %s the cache" % (
                    what, "not from" if want_cached else "from"))
                diffs = []
                for v in built:
                    diffs += st.compare_trees(got[v], built[v], what, "first mount")
                st.report(diffs, "%s: views" % what)

            with st.mounted(STRATA, path) as mnt:
                built, cached = views_of(mnt, nlayers)
            st.check(not cached, "a first mount cannot have its tree from the cache")
            trees = glob.glob(os.path.join(xdg, "strata", "tree-*.tree"))
            st.check(len(trees) == 1, "one tree file written, found %s" % trees)
            remount("remount", True)

            with open(trees[0], "r+b") as f:  # a flipped byte: the CRC refuses it
                data = bytearray(f.read())
                data[len(data) // 2] ^= 0x10
                f.seek(0)
                f.write(data)
            remount("remount after a flipped byte", False)
            st.check(os.path.exists(trees[0]), "the refused tree was rebuilt")
            remount("remount after the rebuild", True)

            # hostile behind a right CRC: node 1 claims the root's children
            # (layout: fs/cache.c tree_cache_header, fs/tree_io.c, fs/tree_int.h)
            with open(trees[0], "r+b") as f:
                data = bytearray(f.read())
                body = 32 + ((int.from_bytes(data[24:32], "little") + 7) & ~7)  # header, key
                nodes = body + 72 + ((4 * nlayers + 7) & ~7) + 24 * nlayers
                data[nodes + 16 + 12:nodes + 16 + 16] = (0).to_bytes(4, "little")
                data[12:16] = zlib.crc32(bytes(data[32:])).to_bytes(4, "little")
                f.seek(0)
                f.write(data)
            remount("remount after hostile contents", False)
            remount("remount after the second rebuild", True)
        finally:
            if old is None:
                os.environ.pop("XDG_CACHE_HOME", None)
            else:
                os.environ["XDG_CACHE_HOME"] = old


def t_corpus_secrets(d):
    with open(os.path.join(CORPUS, d, "answers.json")) as f:
        ans = json.load(f)
    path = os.path.join(CORPUS, d, "oci")
    diffs = []
    with st.mounted(STRATA, path) as mnt:
        root = os.path.join(mnt, "deleted")
        for s in ans["secrets"]:
            needle = (s.get("needles") or [s["value"]])[0].encode()
            for o in s["occurrences"]:
                p = o["path"].lstrip("/")
                cands = [os.path.join(root, p)] + [os.path.join(root, "%s;L%02d" % (p, k)) for k in range(64)]
                found = [c for c in cands if os.path.lexists(c) and getx(c, "user.strata.layer") == "%02d" % o["layer_index"]]
                if o["status"] == "visible":
                    if found:
                        diffs.append("%s: live %s (layer %d) is under deleted/" % (s["id"], p, o["layer_index"]))
                    continue
                if not found:
                    diffs.append("%s: %s of layer %d (%s) not under deleted/" % (s["id"], p, o["layer_index"], o["status"]))
                    continue
                if o.get("via_hardlink_to"):
                    continue
                with open(found[0], "rb") as f:
                    if needle not in f.read():
                        diffs.append("%s: deleted/%s lacks the secret" % (s["id"], p))
                how = getx(found[0], "user.strata.how")
                want_how = "shadowed" if o["status"] == "overwritten_in_upper_layer" else \
                    "opaque" if o["status"] == "hidden_by_opaque_whiteout" else "whiteout"
                if how != want_how:
                    diffs.append("%s: deleted/%s how=%s, want %s" % (s["id"], p, how, want_how))
                if o.get("hidden_by_layer") is not None and \
                        getx(found[0], "user.strata.removed_by") != "%02d" % o["hidden_by_layer"]:
                    diffs.append("%s: deleted/%s removed_by=%s, want %02d" % (
                        s["id"], p, getx(found[0], "user.strata.removed_by"), o["hidden_by_layer"]))
    st.report(diffs, "corpus secrets under deleted/")


with open(os.path.join(FX, "fixtures.json")) as f:
    FIXTURES = json.load(f)
# umoci is the stack oracle where it agrees with the spec: not for the hand-made
# semantics layers (tar order games) nor tarformats (umoci 0.4.7 wraps year 2300)
for name, stacks in (("multi/oci", True), ("semantics/oci", False), ("tarformats/oci", False)):
    suite.run("fixture %s" % name, t_image, os.path.join(FX, name), stacks=stacks, timeout=300)
suite.run("fixture multi/oci: the cached merged tree", t_cached_tree, os.path.join(FX, "multi/oci"),
          timeout=300)


if os.path.isdir(CORPUS):
    for d in ("demo", "demo-buildkit", "demo-buildah", "demo-umoci", "realistic"):
        if not st.corpus_wanted(d):
            suite.run("corpus %s: views, secrets under deleted/" % d, lambda: "SKIP not in STRATA_ITEST_CORPUS")
        elif os.path.isdir(os.path.join(CORPUS, d, "oci")):
            suite.run("corpus %s/oci: views" % d, t_image, os.path.join(CORPUS, d, "oci"),
                      stacks=d != "realistic", timeout=600)
            suite.run("corpus %s: secrets under deleted/" % d, t_corpus_secrets, d, timeout=300)
else:
    st.log("# ../shared/corpus is absent: corpus cases skipped")

suite.finish()
