#!/usr/bin/env python3
"""Check strata's built-in secret rules (scan/rules.yaml) without the C engine.

Usage:
    check_rules.py [RULES.yaml] [--markdown] [--check-markdown scan/RULES.md] [--no-pcre2] [-v]

What it verifies (each failure is listed, exit status 1 if any):
  * the file parses as YAML (libyaml via PyYAML's CSafeLoader when present),
    with no duplicate mapping keys, and every `regex:`/`path:` scalar in the
    file is single-quoted;
  * every rule has the required fields with the right types, a unique
    kebab-case id, a known severity, >= 1 keyword, a known validator name,
    no unknown fields (typos), and >= 1 match and >= 1 nomatch example;
  * generic rules (category "Generic") set `entropy`;
  * no rule regex matches the empty string;
  * every regex (rule, rule allow-rules, global allow-rules, path) compiles
    with Python `re` (bytes mode, so \\s \\w \\d are ASCII as in PCRE2 without
    UCP) AND with the real PCRE2 library (libpcre2-8 through ctypes, JIT
    compiled when available), and avoids constructs on which the two differ
    (`{,n}`, `\\z`, `\\h`, POSIX classes, `(?<name>`, `\\x{..}`, `\\K`, `\\Q`,
    branch reset, possessive quantifiers, unanchored `^`/`$` without (?m));
  * `secret-group-name`, when set, names a group of the regex; a regex with a
    group named `secret` must set it;
  * every examples.match line yields at least one *surviving* match of the
    rule: secret group non-empty, the matched text contains a keyword
    (case-insensitive, as the prefilter requires) no more than 80 bytes after
    the start of the match, entropy of the secret >=
    the rule's minimum, and neither the rule's nor a global allow rule's
    regex matches the secret;
  * every examples.nomatch line yields no surviving match of the rule;
  * Python `re` and PCRE2 find exactly the same matches (spans and secret
    group) on every example line;
  * a `path:` regex matches at least one path in a list of known credential
    file locations and does not match ordinary system files.

With --markdown it prints the rule table (scan/RULES.md) instead, after the
same checks (the table is printed only when the checks pass).
"""

import argparse
import ctypes
import ctypes.util
import math
import os
import re
import sys
from collections import Counter

try:
    import yaml
except ImportError:  # pragma: no cover
    sys.exit("check_rules.py: PyYAML is required (Debian: apt-get install python3-yaml)")

# A match may begin at most this many bytes before its first keyword (the engine
# looks back this far from a keyword hit).
MAX_KEYWORD_LEAD = 80

SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW")
VALIDATORS = ("aws-access-key-id", "github-token", "npm-token", "jwt", "private-key", "certificate")
RULE_KEYS_REQUIRED = ("id", "category", "title", "severity", "keywords", "regex", "examples")
RULE_KEYS_OPTIONAL = ("secret-group-name", "path", "allow-rules", "entropy", "validate",
                      "context-only", "description")
ALLOW_KEYS = ("id", "description", "regex", "path")
TOP_KEYS = ("rules", "allow-rules")
ID_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")

# Paths where credential files live; a rule's `path:` must match one of them.
CREDENTIAL_PATHS = [
    "root/.npmrc", "home/app/.npmrc", "app/.npmrc", "usr/local/etc/npmrc", "usr/etc/npmrc",
    "root/.yarnrc.yml", "app/.yarnrc.yml", "root/.yarnrc",
    "root/.pypirc", "home/app/.pypirc", "etc/pip.conf", "root/.config/pip/pip.conf",
    "root/.pip/pip.conf",
    "root/.netrc", "home/app/_netrc",
    "root/.git-credentials", "home/app/.config/git/credentials",
    "root/.docker/config.json", "home/app/.docker/config.json", "kaniko/.docker/config.json",
    "root/.dockercfg", "run/containers/0/auth.json", "root/.config/containers/auth.json",
    "root/.kube/config", "etc/kubernetes/admin.conf", "etc/kubernetes/kubelet.conf",
    "app/kubeconfig", "app/deploy/kubeconfig.yaml", "root/.kube/config-prod",
    "root/.aws/credentials", "root/.aws/config",
    "root/.gem/credentials", "root/.local/share/gem/credentials",
    "root/.m2/settings.xml", "root/.gradle/gradle.properties", "app/gradle.properties",
    "root/.terraform.d/credentials.tfrc.json", "root/.terraformrc",
    "root/.nuget/NuGet/NuGet.Config", "app/nuget.config",
    "root/.config/gcloud/application_default_credentials.json",
    "root/.config/gh/hosts.yml", "root/.composer/auth.json", "app/auth.json",
    "root/.cargo/credentials.toml", "root/.cargo/credentials",
    "root/.vault-token", "root/.config/hub", "root/.s3cfg", "root/.pgpass",
    "root/.my.cnf", "etc/mysql/debian.cnf", "root/.boto", "root/.oci/config",
    "root/.azure/accessTokens.json", "root/.bluemix/config.json",
    "root/.config/doctl/config.yaml", "root/.gitconfig", "etc/gitconfig",
    "root/.bundle/config", "app/.bundle/config", "root/.htpasswd", "etc/nginx/.htpasswd",
    "etc/shadow", "root/.tugboat", "root/.esmtprc", "root/.ftpconfig",
]
ORDINARY_PATHS = ["usr/bin/ls", "usr/lib/python3.11/os.py", "etc/passwd", "app/main.go",
                  "usr/share/doc/bash/README", "lib/x86_64-linux-gnu/libc.so.6"]

# Constructs that PCRE2 and Python `re` read differently (or only one reads).
NONPORTABLE = [  # (lint, why, applied to: "raw" pattern or "bare" = classes/escapes blanked)
    (re.compile(r"\{,"), "'{,n}' is a literal in PCRE2 10.42 but a quantifier in Python", "bare"),
    (re.compile(r"(?<!\\)(?:\\\\)*\\[zZhHvVRXKQEGNCpP]"), "escape that PCRE2 and Python read differently", "raw"),
    (re.compile(r"\[\[:|\[:[a-z]+:\]"), "POSIX class (PCRE2 only)", "raw"),
    (re.compile(r"\(\?<[A-Za-z_]"), "use (?P<name>..), not (?<name>..)", "bare"),
    (re.compile(r"(?<!\\)(?:\\\\)*\\x\{"), "\\x{..} is PCRE2 only", "raw"),
    (re.compile(r"\(\?\|"), "branch reset is PCRE2 only", "bare"),
    (re.compile(r"[*+?}]\+"), "possessive quantifier", "bare"),
    (re.compile(r"\(\?[a-z]*[mis][a-z]*-"), "flag removal groups differ", "bare"),
]


def strip_classes(pattern):
    """The pattern with escapes and character classes blanked out, for lints."""
    out, i, n = [], 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\":
            out.append("E")
            i += 2
        elif c == "[":
            j = i + 1
            if j < n and pattern[j] == "^":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 2 if pattern[j] == "\\" else 1
            out.append("C")
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def entropy(data):
    if not data:
        return 0.0
    n = len(data)
    return -sum(c / n * math.log2(c / n) for c in Counter(data).values())


# --------------------------------------------------------------------------- PCRE2

class Pcre2:
    """Minimal ctypes binding of libpcre2-8: compile (+JIT) and find all matches."""

    NOMATCH = -1

    def __init__(self):
        name = ctypes.util.find_library("pcre2-8")
        candidates = [name] if name else []
        candidates += ["libpcre2-8.so.0", "libpcre2-8.so", "libpcre2-8.dylib"]
        self.lib = None
        for cand in candidates:
            try:
                self.lib = ctypes.CDLL(cand)
                break
            except OSError:
                continue
        if self.lib is None:
            raise OSError("libpcre2-8 not found")
        L = self.lib
        sz = ctypes.c_size_t
        L.pcre2_compile_8.restype = ctypes.c_void_p
        L.pcre2_compile_8.argtypes = [ctypes.c_char_p, sz, ctypes.c_uint32,
                                      ctypes.POINTER(ctypes.c_int), ctypes.POINTER(sz),
                                      ctypes.c_void_p]
        L.pcre2_get_error_message_8.argtypes = [ctypes.c_int, ctypes.c_char_p, sz]
        L.pcre2_jit_compile_8.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
        L.pcre2_match_data_create_from_pattern_8.restype = ctypes.c_void_p
        L.pcre2_match_data_create_from_pattern_8.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        L.pcre2_match_8.argtypes = [ctypes.c_void_p, ctypes.c_char_p, sz, sz, ctypes.c_uint32,
                                    ctypes.c_void_p, ctypes.c_void_p]
        L.pcre2_get_ovector_pointer_8.restype = ctypes.POINTER(sz)
        L.pcre2_get_ovector_pointer_8.argtypes = [ctypes.c_void_p]
        L.pcre2_substring_number_from_name_8.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        L.pcre2_code_free_8.argtypes = [ctypes.c_void_p]
        L.pcre2_match_data_free_8.argtypes = [ctypes.c_void_p]
        self.cache = {}

    def compile(self, pattern):
        """Return (code, None) or (None, error message)."""
        if pattern in self.cache:
            return self.cache[pattern], None
        pat = pattern.encode()
        err = ctypes.c_int()
        off = ctypes.c_size_t()
        code = self.lib.pcre2_compile_8(pat, len(pat), 0, ctypes.byref(err), ctypes.byref(off), None)
        if not code:
            buf = ctypes.create_string_buffer(256)
            self.lib.pcre2_get_error_message_8(err.value, buf, 256)
            return None, "PCRE2: %s at offset %d" % (buf.value.decode(), off.value)
        self.lib.pcre2_jit_compile_8(code, 1)  # PCRE2_JIT_COMPLETE; ignore "no JIT" builds
        self.cache[pattern] = code
        return code, None

    def group_number(self, code, name):
        return self.lib.pcre2_substring_number_from_name_8(code, name.encode())

    def finditer(self, code, subject, group):
        """Yield (start, end, secret_start, secret_end) for every match."""
        md = self.lib.pcre2_match_data_create_from_pattern_8(code, None)
        try:
            pos = 0
            n = len(subject)
            while pos <= n:
                rc = self.lib.pcre2_match_8(code, subject, n, pos, 0, md, None)
                if rc == self.NOMATCH:
                    return
                if rc < 0:
                    raise RuntimeError("pcre2_match error %d" % rc)
                ov = self.lib.pcre2_get_ovector_pointer_8(md)
                s, e = ov[0], ov[1]
                if group:
                    gs, ge = ov[2 * group], ov[2 * group + 1]
                    if gs == ctypes.c_size_t(-1).value:
                        gs = ge = -1
                else:
                    gs, ge = s, e
                yield (s, e, gs, ge)
                pos = e if e > s else e + 1
        finally:
            self.lib.pcre2_match_data_free_8(md)


# --------------------------------------------------------------------------- YAML

class UniqueKeyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    pass


def _construct_mapping(loader, node, deep=False):
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, "duplicate key %r" % (key,), key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


# --------------------------------------------------------------------------- checks

class Checker:
    def __init__(self, use_pcre2=True, verbose=False):
        self.failures = []
        self.warnings = []
        self.verbose = verbose
        self.pcre2 = None
        if use_pcre2:
            try:
                self.pcre2 = Pcre2()
            except OSError as e:
                self.warnings.append("PCRE2 cross-check skipped: %s" % e)

    def fail(self, where, msg):
        self.failures.append("%s: %s" % (where, msg))

    def compile(self, where, pattern, what="regex"):
        """Compile with Python re (bytes) and PCRE2; return (py, pcre2code) or None."""
        if not isinstance(pattern, str) or not pattern:
            self.fail(where, "%s must be a non-empty string" % what)
            return None
        bare = strip_classes(pattern)
        for lint, why, on in NONPORTABLE:
            if lint.search(pattern if on == "raw" else bare):
                self.fail(where, "%s: non-portable construct: %s" % (what, why))
        if re.search(r"[$^]", bare) and not pattern.startswith("(?m)") and what == "regex":
            self.fail(where, "%s: ^ or $ in a content regex needs (?m) (engine scans windows)" % what)
        try:
            py = re.compile(pattern.encode())
        except re.error as e:
            self.fail(where, "%s does not compile with Python re: %s" % (what, e))
            return None
        code = None
        if self.pcre2:
            code, err = self.pcre2.compile(pattern)
            if err:
                self.fail(where, "%s does not compile: %s" % (what, err))
                return None
        return py, code

    def check_allow_rules(self, where, allows, compiled_out):
        if allows is None:
            return
        if not isinstance(allows, list):
            self.fail(where, "allow-rules must be a list")
            return
        ids = set()
        for i, a in enumerate(allows):
            w = "%s allow-rules[%d]" % (where, i)
            if not isinstance(a, dict):
                self.fail(w, "must be a mapping")
                continue
            for k in a:
                if k not in ALLOW_KEYS:
                    self.fail(w, "unknown field %r" % k)
            aid = a.get("id")
            if not isinstance(aid, str) or not ID_RE.match(aid):
                self.fail(w, "id missing or not kebab-case")
            elif aid in ids:
                self.fail(w, "duplicate allow-rule id %r" % aid)
            ids.add(aid)
            if not isinstance(a.get("description"), str):
                self.fail(w, "description missing")
            if "regex" not in a and "path" not in a:
                self.fail(w, "needs regex or path")
            entry = {"id": aid}
            if "regex" in a:
                c = self.compile(w, a["regex"], "allow regex")
                if c:
                    entry["regex"] = c[0]
            if "path" in a:
                c = self.compile(w, a["path"], "allow path")
                if c:
                    entry["path"] = c[0]
            compiled_out.append(entry)

    def check_path(self, where, pattern):
        c = self.compile(where, pattern, "path")
        if not c:
            return
        py = c[0]
        hits = [p for p in CREDENTIAL_PATHS if py.search(p.encode()) or py.search(("/" + p).encode())]
        if not hits:
            self.fail(where, "path %r matches none of the known credential file paths" % pattern)
        for p in ORDINARY_PATHS:
            if py.search(p.encode()) or py.search(("/" + p).encode()):
                self.fail(where, "path %r matches ordinary file %s" % (pattern, p))

    def matches(self, rule, subject):
        """All matches of the rule on subject: list of dicts, via Python re."""
        out = []
        gname = rule.get("secret-group-name")
        for m in rule["_py"].finditer(subject):
            if gname:
                s, e = m.span(gname)
            else:
                s, e = m.span()
            out.append({"span": m.span(), "secret_span": (s, e), "text": m.group(0),
                        "secret": subject[s:e] if s >= 0 else b""})
        return out

    def survives(self, rule, m, global_allows):
        """Return None if the match survives, else the reason it is dropped."""
        secret = m["secret"]
        if not secret:
            return "secret group empty or unset"
        text = m["text"].lower()
        found = [text.find(k.lower().encode()) for k in rule["keywords"]]
        found = [f for f in found if f >= 0]
        if not found:
            return "matched text %r contains no keyword" % m["text"][:80]
        if min(found) > MAX_KEYWORD_LEAD:
            return "first keyword starts %d bytes into the match (more than %d)" % (
                min(found), MAX_KEYWORD_LEAD)
        ent = rule.get("entropy")
        if ent is not None and entropy(secret) < ent:
            return "entropy %.2f < %.2f" % (entropy(secret), ent)
        for a in rule["_allows"]:
            if "regex" in a and a["regex"].search(secret):
                return "dropped by rule allow-rule %s" % a["id"]
        for a in global_allows:
            if "regex" in a and a["regex"].search(secret):
                return "dropped by global allow-rule %s" % a["id"]
        return None

    def cross_check(self, where, rule, subject, py_matches):
        if not self.pcre2 or rule.get("_code") is None:
            return
        gname = rule.get("secret-group-name")
        group = self.pcre2.group_number(rule["_code"], gname) if gname else 0
        try:
            pc = list(self.pcre2.finditer(rule["_code"], subject, group))
        except RuntimeError as e:
            self.fail(where, str(e))
            return
        py = [(m["span"][0], m["span"][1], m["secret_span"][0], m["secret_span"][1])
              for m in py_matches]
        if pc != py:
            self.fail(where, "PCRE2 and Python re disagree on %r: pcre2=%s python=%s"
                      % (subject[:60], pc, py))

    def check(self, doc, raw_text):
        if not isinstance(doc, dict):
            self.fail("file", "top level must be a mapping")
            return []
        for k in doc:
            if k not in TOP_KEYS:
                self.fail("file", "unknown top-level key %r" % k)
        for lineno, line in enumerate(raw_text.splitlines(), 1):
            m = re.match(r"\s*(?:-\s+)?(regex|path):\s*(.*)$", line)
            if m and not m.group(2).startswith("'"):
                self.fail("line %d" % lineno, "%s must be single-quoted" % m.group(1))
        global_allows = []
        self.check_allow_rules("global", doc.get("allow-rules"), global_allows)
        rules = doc.get("rules")
        if not isinstance(rules, list) or not rules:
            self.fail("file", "rules must be a non-empty list")
            return []
        ids = set()
        for idx, rule in enumerate(rules):
            where = "rules[%d]" % idx
            if not isinstance(rule, dict):
                self.fail(where, "must be a mapping")
                continue
            rid = rule.get("id")
            if isinstance(rid, str):
                where = rid
            self.check_rule(where, rule, ids, global_allows)
        return rules

    def check_rule(self, where, rule, ids, global_allows):
        for k in RULE_KEYS_REQUIRED:
            if k not in rule:
                self.fail(where, "missing field %r" % k)
        for k in rule:
            if k not in RULE_KEYS_REQUIRED + RULE_KEYS_OPTIONAL:
                self.fail(where, "unknown field %r" % k)
        rid = rule.get("id")
        if not isinstance(rid, str) or not ID_RE.match(rid):
            self.fail(where, "id must be kebab-case")
        elif rid in ids:
            self.fail(where, "duplicate id")
        ids.add(rid)
        for k in ("category", "title"):
            if k in rule and (not isinstance(rule[k], str) or not rule[k].strip()):
                self.fail(where, "%s must be a non-empty string" % k)
        if rule.get("severity") not in SEVERITIES:
            self.fail(where, "severity %r not in %s" % (rule.get("severity"), SEVERITIES))
        kws = rule.get("keywords")
        if not isinstance(kws, list) or not kws or not all(isinstance(k, str) and k for k in kws):
            self.fail(where, "keywords must be a non-empty list of non-empty strings")
            rule["keywords"] = []
        else:
            low = [k.lower() for k in kws]
            if len(set(low)) != len(low):
                self.fail(where, "duplicate keyword")
            for k in kws:
                if len(k) < 3:
                    self.fail(where, "keyword %r too short for a useful prefilter" % k)
        if "validate" in rule and rule["validate"] not in VALIDATORS:
            self.fail(where, "validate %r not in %s" % (rule["validate"], VALIDATORS))
        if "context-only" in rule and not isinstance(rule["context-only"], bool):
            self.fail(where, "context-only must be a boolean")
        if rule.get("context-only") and rule.get("validate") != "certificate":
            self.fail(where, "context-only is meant for certificates (validate: certificate)")
        if rule.get("validate") == "certificate" and not rule.get("context-only"):
            self.fail(where, "certificate rules must be context-only")
        ent = rule.get("entropy")
        if ent is not None and (isinstance(ent, bool) or not isinstance(ent, (int, float))
                                or not 0 < ent <= 8):
            self.fail(where, "entropy must be a number in (0, 8]")
            rule["entropy"] = None
        if rule.get("category") == "Generic" and ent is None:
            self.fail(where, "generic rules must set entropy")
        if "path" in rule:
            self.check_path(where, rule["path"])
        rule["_allows"] = []
        self.check_allow_rules(where, rule.get("allow-rules"), rule["_allows"])

        c = self.compile(where, rule.get("regex"))
        if not c:
            return
        rule["_py"], rule["_code"] = c
        if rule["_py"].search(b"") or rule["_py"].search(b"\n"):
            self.fail(where, "regex matches the empty string")
        gname = rule.get("secret-group-name")
        if gname is not None:
            if gname not in rule["_py"].groupindex:
                self.fail(where, "secret-group-name %r is not a group of the regex" % gname)
                return
        elif "secret" in rule["_py"].groupindex:
            self.fail(where, "regex has a group named 'secret' but no secret-group-name")

        ex = rule.get("examples")
        if not isinstance(ex, dict):
            self.fail(where, "examples must be a mapping with match and nomatch")
            return
        for k in ex:
            if k not in ("match", "nomatch"):
                self.fail(where, "unknown examples field %r" % k)
        for kind in ("match", "nomatch"):
            lst = ex.get(kind)
            if not isinstance(lst, list) or not lst or not all(isinstance(s, str) for s in lst):
                self.fail(where, "examples.%s must be a non-empty list of strings" % kind)
                continue
            for i, s in enumerate(lst):
                w = "%s examples.%s[%d]" % (where, kind, i)
                subject = s.encode()
                ms = self.matches(rule, subject)
                self.cross_check(w, rule, subject, ms)
                verdicts = [(m, self.survives(rule, m, global_allows)) for m in ms]
                alive = [m for m, why in verdicts if why is None]
                if kind == "match" and not alive:
                    why = "; ".join(v for _, v in verdicts) or "regex does not match"
                    self.fail(w, "no surviving match (%s): %r" % (why, s[:100]))
                if kind == "nomatch" and alive:
                    self.fail(w, "unexpected match %r in %r" % (alive[0]["secret"][:60], s[:100]))
                if self.verbose:
                    print("%s: %s" % (w, [(m["secret"][:40], why) for m, why in verdicts]))


def md_escape(s):
    return str(s).replace("|", "\\|").replace("\n", " ")


def markdown(rules, path):
    cats = Counter(r["category"] for r in rules)
    sev = Counter(r["severity"] for r in rules)
    out = ["# strata built-in secret rules", "",
           "Generated by `tests/scan/check_rules.py --markdown` from `%s`; do not edit by hand."
           % path, "",
           "%d rules in %d categories; severities: %s." % (
               len(rules), len(cats), ", ".join("%s %d" % (s, sev[s]) for s in SEVERITIES if sev[s])),
           "",
           "Conventions: regexes are PCRE2 with default compile options (no MULTILINE, no",
           "CASELESS, no UTF; case-insensitive parts use `(?i:...)`), matched on raw bytes",
           "around keyword hits; keywords are literal and case-insensitive, and every true",
           "match contains one. `secret-group-name` names the group that holds the secret",
           "(the whole match otherwise); entropy is Shannon bits per byte of that secret.",
           "Allow-rule regexes are tested against the secret, allow-rule paths against the",
           "file path. Certificates (`context-only`) are never findings on their own.",
           "",
           "For the engine: match on the whole buffer with a start offset a little before",
           "the keyword hit rather than on a cut-out window, so that lookbehinds such as",
           "`(?<![A-Za-z0-9])` and `(?m)^` see the real preceding bytes; context rules",
           "start up to about 70 bytes before their keyword, and key blocks extend up to",
           "16 KiB (PGP 60 KB) after it. Generic rules leave tokens with a vendor prefix",
           "to the vendor rule; other overlaps (a generic rule and a vendor rule on the same",
           "bytes) are best merged by the engine, keeping the more specific rule.",
           "",
           "| category | rules |", "|---|---|"]
    for c, n in sorted(cats.items()):
        out.append("| %s | %d |" % (md_escape(c), n))
    out += ["", "| id | category | severity | matches | keywords | notes |",
            "|---|---|---|---|---|---|"]
    for r in rules:
        notes = []
        if r.get("path"):
            notes.append("path `%s`" % md_escape(r["path"]))
        if r.get("entropy") is not None:
            notes.append("entropy >= %s" % r["entropy"])
        if r.get("validate"):
            notes.append("validate %s" % r["validate"])
        if r.get("context-only"):
            notes.append("context only")
        if r.get("allow-rules"):
            notes.append("%d allow rule%s" % (len(r["allow-rules"]),
                                              "s" if len(r["allow-rules"]) > 1 else ""))
        out.append("| `%s` | %s | %s | %s | %s | %s |" % (
            r["id"], md_escape(r["category"]), r["severity"], md_escape(r["title"]),
            ", ".join("`%s`" % md_escape(k) for k in r["keywords"]), "; ".join(notes)))
    return "\n".join(out) + "\n"


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    default = os.path.normpath(os.path.join(here, "..", "..", "scan", "rules.yaml"))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("rules", nargs="?", default=default)
    ap.add_argument("--markdown", action="store_true", help="print the rule table (RULES.md)")
    ap.add_argument("--check-markdown", metavar="RULES.md",
                    help="also fail if this file differs from the generated table")
    ap.add_argument("--no-pcre2", action="store_true", help="skip the PCRE2 cross-check")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()

    with open(args.rules, encoding="utf-8") as f:
        raw = f.read()
    ck = Checker(use_pcre2=not args.no_pcre2, verbose=args.verbose)
    try:
        doc = yaml.load(raw, Loader=UniqueKeyLoader)
    except yaml.YAMLError as e:
        print("FAIL: %s does not parse: %s" % (args.rules, e), file=sys.stderr)
        return 1
    rules = ck.check(doc, raw)
    for w in ck.warnings:
        print("warning: %s" % w, file=sys.stderr)
    if ck.failures:
        print("FAIL: %d problem(s) in %s:" % (len(ck.failures), args.rules), file=sys.stderr)
        for f in ck.failures:
            print("  - " + f, file=sys.stderr)
        return 1
    rel = os.path.relpath(args.rules, os.path.join(here, "..", ".."))
    if args.check_markdown:
        with open(args.check_markdown, encoding="utf-8") as f:
            if f.read() != markdown(rules, rel):
                print("FAIL: %s is stale; regenerate it with --markdown" % args.check_markdown,
                      file=sys.stderr)
                return 1
    if args.markdown:
        sys.stdout.write(markdown(rules, rel))
    else:
        nex = sum(len(r["examples"]["match"]) + len(r["examples"]["nomatch"]) for r in rules)
        print("ok: %d rules, %d examples, %d global allow rules%s" % (
            len(rules), nex, len(doc.get("allow-rules") or []),
            "" if ck.pcre2 else " (PCRE2 cross-check skipped)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
