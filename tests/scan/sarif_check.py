#!/usr/bin/env python3
"""sarif_check.py: validates strata's SARIF output against the SARIF 2.1.0
JSON schema, and checks what GitHub code scanning needs beyond the schema:
unique rule ids, each result's ruleId among them, relative URIs.

usage: sarif_check.py GENERATOR RULES.yaml SCHEMA.json
Exits 77 (meson: skipped) when the schema or python3-jsonschema is absent.
"""
import json
import os
import subprocess
import sys
import tempfile


def main():
    gen, rules, schema_path = sys.argv[1:4]
    if not os.path.exists(schema_path):
        print("schema %s absent: skipped" % schema_path)
        sys.exit(77)
    try:
        import jsonschema
    except ImportError:
        print("python3-jsonschema absent: skipped")
        sys.exit(77)
    with open(schema_path) as f:
        schema = json.load(f)
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "out.sarif")
        subprocess.run([gen, rules, out], check=True)
        with open(out) as f:
            doc = json.load(f)
    jsonschema.validate(doc, schema)
    run = doc["runs"][0]
    ids = [r["id"] for r in run["tool"]["driver"]["rules"]]
    assert len(ids) == len(set(ids)), "rule ids are not unique: %r" % ids
    assert run["results"], "no results"
    uris = set()
    for res in run["results"]:
        assert res["ruleId"] in ids, res["ruleId"]
        assert ids[res["ruleIndex"]] == res["ruleId"]
        loc = res["locations"][0]["physicalLocation"]
        uri = loc["artifactLocation"]["uri"]
        assert not uri.startswith("/") and "://" not in uri, uri
        assert " " not in uri and "#" not in uri, uri
        assert loc["region"]["startLine"] >= 1
        assert res["partialFingerprints"]
        uris.add(uri)
    assert "image/config.json" in uris, uris
    assert "layers/02/srv/app%20dir/%23conf%25.env" in uris, uris
    assert "usr/lib/app.jar" in uris, uris  # nested members point at their archive
    print("SARIF valid: %d results, %d rules" % (len(run["results"]), len(ids)))


if __name__ == "__main__":
    main()
