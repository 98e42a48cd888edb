#!/usr/bin/python3
"""Writes strata(1) from the help texts of the built binary, so the manual and
`strata COMMAND --help` never disagree. Usage: mkman.py STRATA OUTPUT VERSION"""
import re
import subprocess
import sys

strata, out, version = sys.argv[1:4]


def helptext(*args):
    return subprocess.run([strata, *args, "--help"], capture_output=True, text=True, check=True).stdout


def roff(text):
    text = text.replace("\\", "\\e")
    return "\n".join(("\\&" + line) if line.startswith((".", "'")) else line for line in text.splitlines())


main = helptext()
cmds = re.findall(r"^  ([a-z]+) ", main.split("commands:", 1)[1], re.M)
page = [
    '.TH STRATA 1 "" "strata %s" "User Commands"' % version,
    ".SH NAME",
    "strata \\- mount a container image read\\-only for inspection, and find the secrets it leaks",
    ".SH SYNOPSIS",
    ".nf",
    roff("\n".join(l for l in main.splitlines() if l.startswith("usage:")).replace("usage: ", "")),
    ".fi",
    ".SH DESCRIPTION",
    ".nf",
    roff(main.split("\n", 1)[1].strip()),
    ".fi",
    ".SH COMMANDS",
]
for c in cmds:
    page += [".SS %s" % c, ".nf", roff(helptext(c).strip()), ".fi"]
page += [
    ".SH THE MOUNT",
    ".nf",
    roff("merged/      the root filesystem a container would see\n"
         "layers/NN/   each layer as stored, whiteout markers included\n"
         "stack/NN/    the root filesystem right after layer NN\n"
         "deleted/     every hidden version; older ones named NAME;LNN\n"
         "image/       manifest.json, config.json, history, deleted.tsv, status\n"
         ".secrets/    status, summary.txt, findings.jsonl, findings.sarif, by-rule/, examples/"),
    ".fi",
    "Every entry carries the extended attributes user.strata.layer and user.strata.digest;"
    " entries of deleted/ also user.strata.removed_by and user.strata.how.",
    ".SH EXIT STATUS",
    "0 on success; strata scan exits 1 when it reports findings; 2 on usage or runtime errors.",
    ".SH FILES",
    ".TP",
    "$XDG_CACHE_HOME/strata/ (~/.cache/strata/)",
    "layer indexes and scan results, one file per layer digest; safe to delete.",
    ".SH SEE ALSO",
    "fusermount3(1), skopeo(1), umoci(1), mount(8)",
]
with open(out, "w") as f:
    f.write("\n".join(page) + "\n")
