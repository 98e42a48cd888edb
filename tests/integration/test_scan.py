#!/usr/bin/python3
"""`strata scan` on whole images (issue 4).

- The demo image that ships in the repo: its planted secrets are found with
  layer, path and visibility; the .env.example decoys stay quiet; exit code 1.
- On ../shared/corpus (when present): every planted secret of answers.json is
  found at each of its occurrences with the right layer, path and visibility
  (live, deleted, shadowed) or config field, and no decoy is reported as
  confirmed or likely. Every format of an image gives the same findings.
- SARIF output validates against the SARIF 2.1.0 schema (when present).
- Exit codes: 1 with findings, 0 with an ignore file that drops them all,
  2 on a bad image.
- One pass and two agree: a scan of an image whose index is not cached scans
  files while indexing (secrets_stream); with the index cached it reads them
  again afterwards; with the results cached it reads nothing. All three give
  the same findings, field for field, on the demo, every fixture image and
  the corpus images.
"""
import glob
import json
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import strata_test as st  # noqa: E402

STRATA = st.strata_binary()
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
SHARED = os.path.normpath(os.path.join(REPO, "..", "shared"))
CORPUS = os.path.join(SHARED, "corpus")
DEMO = os.path.join(REPO, "tests", "demo", "demo.tar")
suite = st.Suite("scan")

VIS = {"visible": "live", "deleted_by_whiteout": "deleted", "deleted_by_whiteout_of_parent_dir": "deleted",
       "hidden_by_opaque_whiteout": "deleted", "overwritten_in_upper_layer": "shadowed"}


def scan(image, *extra):
    res = st.run([STRATA, "scan", "--format", "json", "--show-secrets", *extra, image], timeout=600)
    st.check(not res.timed_out and not res.crashed, "strata scan: %s" % res.text())
    st.check(res.rc in (0, 1), "strata scan exit %s: %s" % (res.rc, res.text()))
    return res.rc, [json.loads(line) for line in res.out.decode().splitlines() if line.strip()]


def t_demo():
    rc, found = scan(DEMO)
    st.check(rc == 1, "findings give exit 1, got %s" % rc)
    have = {(f["rule"], f["layer"], f["path"], f["visibility"]) for f in found}
    want = {
        ("aws-access-key-id", 1, "app/config/.env", "live"),
        ("aws-secret-access-key", 1, "app/config/.env", "live"),
        ("github-pat-classic", 1, "app/config/.env", "live"),
        ("slack-bot-token", 1, "app/config/settings.json", "shadowed"),
        ("private-key-openssh", 1, "root/.ssh/id_ed25519", "deleted"),
        ("github-pat-classic", None, "config.Env[0]", "config"),
    }
    st.check(want <= have, "missing: %s" % sorted(want - have, key=str))
    st.check(not [f for f in found if f["path"].endswith(".env.example")],
             "decoys in .env.example reported: %s" % [f for f in found if f["path"].endswith(".env.example")])
    with tempfile.NamedTemporaryFile("w", suffix=".ignore") as ign:
        ign.write("# every fingerprint of the first run\n")
        ign.write("".join(f["fingerprint"] + "\n" for f in found))
        ign.flush()
        rc2, rest = scan(DEMO, "--ignore", ign.name)
    st.check(rc2 == 0 and not rest, "an ignore file of all fingerprints leaves exit %s, %d findings" % (rc2, len(rest)))
    bad = st.run([STRATA, "scan", os.path.join(REPO, "README.md")])
    st.check(bad.rc == 2, "a file that is no image gives exit 2, got %s" % bad.rc)


def occurrences_ok(ans, found, fmt):
    problems = []
    for s in ans["secrets"]:
        needles = s.get("needles") or [s["value"]]

        def has(f):
            sec = f.get("secret") or ""
            return any(n in sec or (sec and sec in n) for n in needles)
        for o in s["occurrences"]:
            p = o["path"].lstrip("/")
            if not any(f["layer"] == o["layer_index"] and f["path"] == p and f["visibility"] == VIS[o["status"]]
                       and f["confidence"] != "example" and has(f) for f in found):
                problems.append("%s: layer %d %s (%s) not found" % (s["id"], o["layer_index"], p, o["status"]))
        for co in s.get("config_occurrences", []):
            if fmt not in co.get("formats", [fmt]) or co["field"].startswith("container_config"):
                continue
            if not any(f["visibility"] == "config" and f["path"] == co["field"] and has(f) for f in found):
                problems.append("%s: %s not found" % (s["id"], co["field"]))
    for d in ans["decoys"]:
        needles = d.get("needles") or [d["value"]]
        loud = [f for f in found if f["confidence"] in ("confirmed", "likely")
                and any(n in (f.get("secret") or "") for n in needles)]
        if loud:
            problems.append("decoy %s reported: %s" % (d["id"], [(f["rule"], f["path"], f["confidence"]) for f in loud]))
    return problems


def t_corpus(d):
    with open(os.path.join(CORPUS, d, "answers.json")) as f:
        ans = json.load(f)
    results = {}
    for fmt, info in sorted(ans["formats"].items()):
        path = os.path.join(CORPUS, d, info["path"])
        if not os.path.exists(path):
            continue
        _, found = scan(path, "--min-confidence", "example")
        st.report(occurrences_ok(ans, found, fmt), "%s %s: answers.json" % (d, fmt))
        results[fmt] = sorted((f["rule"], f["layer"], f["path"], f["visibility"], f["secret"])
                              for f in found if f["visibility"] != "config")
    first = next(iter(results.values()), None)
    for fmt, r in results.items():
        st.check(r == first, "%s: %s finds something else than %s" % (d, fmt, next(iter(results))))


def t_sarif():
    schema_path = os.path.join(SHARED, "schemas", "sarif-schema-2.1.0.json")
    if not os.path.exists(schema_path):
        return "SKIP no SARIF schema in ../shared/schemas"

    import jsonschema
    with open(schema_path) as f:
        schema = json.load(f)
    big = os.path.join(CORPUS, "realistic", "oci")
    for image in [DEMO] + ([big] if os.path.isdir(big) and st.corpus_wanted("realistic") else []):
        res = st.run([STRATA, "scan", "--format", "sarif", image], timeout=600)
        st.check(res.rc in (0, 1), "sarif scan: %s" % res.text())
        doc = json.loads(res.out)
        errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(doc), key=str)
        st.check(not errors, "%s: SARIF does not validate: %s" % (image, [e.message for e in errors[:3]]))
        ids = [r["id"] for r in doc["runs"][0]["tool"]["driver"]["rules"]]
        st.check(len(ids) == len(set(ids)), "SARIF rule ids are not unique")
        st.check(all(r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                     for r in doc["runs"][0]["results"]), "a SARIF result lacks an artifactLocation uri")


def scan_lines(image, cache, ref=None, platform=None):
    argv = [STRATA, "scan", "--format", "json", "--show-secrets", "--min-confidence", "example",
            "--cache-dir", cache]
    if platform:
        argv += ["--platform", platform]
    res = st.run(argv + [st.image_arg(image, ref)], timeout=600)
    st.check(not res.timed_out and not res.crashed and res.rc in (0, 1), "strata scan: %s" % res.text())
    return sorted(res.out.decode().splitlines()), res


def one_pass_images():
    out = [(DEMO, None, None)]
    if os.geteuid() == 0 and all(shutil.which(t) for t in ("umoci", "skopeo", "jq", "zstd", "setfattr")):
        fx = st.fixtures_dir()
        with open(os.path.join(fx, "fixtures.json")) as f:
            out += [(os.path.join(fx, im["path"]), im.get("ref"), im.get("platform")) for im in json.load(f)["images"]]
    for d in ("demo", "realistic"):
        if os.path.isdir(os.path.join(CORPUS, d, "oci")) and st.corpus_wanted(d):
            out.append((os.path.join(CORPUS, d, "oci"), None, None))
    return out


def t_one_pass():
    problems, images = [], one_pass_images()
    for image, ref, platform in images:
        name = "%s%s" % (os.path.relpath(image, REPO), ref or "")
        with tempfile.TemporaryDirectory(prefix="strata-scan-cache-") as cache:
            one, res = scan_lines(image, cache, ref, platform)
            if res.rc not in (0, 1):
                problems.append("%s: %s" % (name, res.text()))
                continue
            saved = glob.glob(os.path.join(cache, "*.scan"))
            if not glob.glob(os.path.join(cache, "*.idx")) or not saved:
                problems.append("%s: the first scan left no index or results in the cache" % name)
            for f in saved:
                os.unlink(f)
            two, _ = scan_lines(image, cache, ref, platform)
            cached, _ = scan_lines(image, cache, ref, platform)
        if one != two:
            problems.append("%s: scanned while indexing, %d lines; read again, %d; first difference: %s" % (
                name, len(one), len(two), next((a, b) for a, b in zip(one + [""], two + [""]) if a != b)))
        if cached != two:
            problems.append("%s: results from the cache differ from a scan" % name)
    st.report(problems, "%d images: one pass, two passes and cached results agree" % len(images))


suite.run("demo image (ships in the repo)", t_demo, timeout=120)
suite.run("one pass and two give the same findings", t_one_pass, timeout=900)
if os.path.isdir(CORPUS):
    for d in ("demo", "demo-buildkit", "demo-buildah", "demo-umoci", "realistic", "many-files"):
        if not st.corpus_wanted(d):
            suite.run("corpus %s: every answer, no decoy" % d, lambda: "SKIP not in STRATA_ITEST_CORPUS")
        elif os.path.exists(os.path.join(CORPUS, d, "answers.json")):
            suite.run("corpus %s: every answer, no decoy" % d, t_corpus, d, timeout=900)
else:
    st.log("# ../shared/corpus is absent: corpus cases skipped")
suite.run("SARIF 2.1.0 schema", t_sarif, timeout=300)
suite.finish()
