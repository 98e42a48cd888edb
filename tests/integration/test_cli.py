#!/usr/bin/python3
"""The command as a new user meets it (issue 8).

- The README's walkthrough, followed command by command: every `$ command`
  of that section runs, and every output line the README shows must appear,
  in order ("…" stands for anything, runs of blanks for any blanks, and a
  "  # note" is the README's comment, not output).
- `strata --help` and `strata COMMAND --help` for every command: usage and an
  example; unknown commands and options fail with a one-line hint.
- strata(1) lists every command; bash completion completes commands,
  options and the tags of an image.
- mount.strata, as mount(8) runs it, mounts with strata's options and drops
  fstab-only ones.
"""
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import strata_test as st  # noqa: E402

STRATA = st.strata_binary()
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
DEMO = os.path.join(REPO, "tests", "demo", "demo.tar")
suite = st.Suite("cli")
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="xdg-cli-", dir=st.cache_dir())


def walkthrough():
    """(command, [expected lines]) from the README's walkthrough section."""
    with open(os.path.join(REPO, "README.md")) as f:
        text = f.read()
    sec = text.split("## A walkthrough on the demo image", 1)[1].split("\n## ", 1)[0]
    steps = []
    for line in sec.splitlines():
        if not line.startswith("    "):
            continue
        line = re.sub(r"\s{2,}#\s.*$", "", line[4:]).rstrip()
        if line.startswith("$ "):
            steps.append((line[2:], []))
        elif steps and line:
            steps[-1][1].append(line)
    return steps


def pattern(line):
    parts = [re.escape(p) for p in re.split(r"\s+", line.strip())]
    return re.compile(r"\s+".join(parts).replace(re.escape("…"), ".*"))


def t_readme():
    steps = walkthrough()
    st.check(len(steps) >= 6, "the walkthrough has %d commands" % len(steps))
    mnt = tempfile.mkdtemp(prefix="strata-demo-")
    env = dict(os.environ, PATH=os.path.dirname(STRATA) + ":" + os.environ["PATH"])
    try:
        res = st.run([STRATA, "mount", DEMO, mnt])
        st.check(res.rc == 0, "mounting the demo: %s" % res.text())
        for cmd, want in steps:
            cmd = cmd.replace("/tmp/strata-demo", mnt)
            p = subprocess.run(["bash", "-c", cmd], cwd=REPO, env=env, capture_output=True, text=True,
                               timeout=120 * st.TIME_SCALE)
            got = (p.stdout + p.stderr).splitlines()
            i = 0
            for w in want:
                rx = pattern(w)
                while i < len(got) and not rx.search(got[i]):
                    i += 1
                st.check(i < len(got), "README: `%s` should print a line like %r; it printed:\n%s" % (
                    cmd, w, "\n".join(got[:40])))
                i += 1
            ok = p.returncode == 0 or ("strata scan" in cmd and p.returncode == 1)
            st.check(ok, "README: `%s` exited %d:\n%s" % (cmd, p.returncode, p.stderr[-500:]))
    finally:
        st.force_unmount(mnt, STRATA)
        os.rmdir(mnt)


COMMANDS = ("mount", "umount", "ls", "cat", "images", "inspect", "scan")


def t_help():
    res = st.run([STRATA, "--help"])
    st.check(res.rc == 0, "strata --help exits 0")
    for c in COMMANDS:
        st.check(re.search(r"^  %s " % c, res.out.decode(), re.M), "strata --help lists %s" % c)
        h = st.run([STRATA, c, "--help"])
        text = h.out.decode()
        st.check(h.rc == 0 and text.startswith("usage: strata %s" % c), "strata %s --help: %s" % (c, h.text()))
        st.check("example" in text, "strata %s --help has an example" % c)

    ver = st.run([STRATA, "--version"])
    st.check(ver.rc == 0 and re.fullmatch(rb"strata \S+ \(inflate: (ISA-L \d+\.\d+\.\d+|zlib)\)\n", ver.out),
             "strata --version: %s" % ver.text())

    bad = st.run([STRATA, "frobnicate"])
    st.check(bad.rc == 2 and b"unknown command 'frobnicate'" in bad.err, "unknown command: %s" % bad.text())
    bad = st.run([STRATA, "ls", "--bogus", DEMO])
    st.check(bad.rc == 2 and b"usage: strata ls" in bad.err, "unknown option: %s" % bad.text())


def t_man_and_completion():
    man = os.path.join(os.path.dirname(STRATA), "strata.1")
    with open(man) as f:
        page = f.read()
    st.check(page.startswith(".TH STRATA 1"), "strata.1 is a man page")
    for c in COMMANDS:
        st.check(".SS %s\n" % c in page, "strata(1) documents %s" % c)
    comp = os.path.join(REPO, "tools", "strata.bash-completion")
    env = dict(os.environ, PATH=os.path.dirname(STRATA) + ":" + os.environ["PATH"])

    def complete(*words):
        script = ("source %s; COMP_WORDS=(%s); COMP_CWORD=%d; _strata; printf '%%s\\n' \"${COMPREPLY[@]}\""
                  % (comp, " ".join("'%s'" % w for w in words), len(words) - 1))
        return subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True).stdout.split()
    st.check("inspect" in complete("strata", "ins"), "completes commands")
    st.check("--min-confidence" in complete("strata", "scan", "--min"), "completes a command's options")
    st.check(any(t.endswith("strata/demo:latest") for t in complete("strata", "ls", DEMO + ":")),
             "completes the tags of an image: %s" % complete("strata", "ls", DEMO + ":"))


def t_mount_helper():
    helper = os.path.join(REPO, "tools", "mount.strata")
    mnt = tempfile.mkdtemp(prefix="strata-helper-")
    try:
        p = subprocess.run([helper, DEMO, mnt, "-o", "ro,nofail,noauto,show_secrets,x-systemd.automount"],
                           env=dict(os.environ, STRATA=STRATA), capture_output=True, text=True,
                           timeout=60 * st.TIME_SCALE)
        st.check(p.returncode == 0 and st.is_mounted(mnt), "mount.strata: %s" % p.stderr)
        with open(os.path.join(mnt, ".secrets", "by-rule", "github-pat-classic", "001")) as f:
            text = f.read()
        st.check(re.search(r"match:\s+ghp_[A-Za-z0-9]{36}", text), "show_secrets reached strata:\n" + text)
    finally:
        st.force_unmount(mnt, STRATA)
        os.rmdir(mnt)


st.require_fuse()
suite.run("README walkthrough, command by command", t_readme, timeout=300)
suite.run("help texts", t_help, timeout=60)
suite.run("man page and bash completion", t_man_and_completion, timeout=60)
def t_spill_options():
    def status(*extra):
        with st.mounted(STRATA, DEMO, extra=extra) as mnt:
            with open(os.path.join(mnt, "image", "status")) as f:
                return dict(l.split(": ", 1) for l in f.read().splitlines() if ": " in l)
    with tempfile.TemporaryDirectory(prefix="strata-spill-") as d:
        st.check(status("--spill-dir", d).get("spill") == d, "--spill-dir: image/status names %s" % d)
    st.check(status("--no-spill").get("spill") == "off", "--no-spill: image/status says spill: off")
    res = st.run([STRATA, "ls", "--spill-dir", "/nonexistent/strata", DEMO])
    st.check(res.rc == 0 and b"spill directory /nonexistent/strata not used" in res.err,
             "an unusable --spill-dir is a warning, not an error: %s" % res.text())


suite.run("mount.strata, as mount(8) runs it", t_mount_helper, timeout=120)
suite.run("--spill-dir and --no-spill", t_spill_options, timeout=120)
suite.finish()
