#!/usr/bin/env python3
"""hostile-tars.py DIR: writes small hostile layer tars into DIR, as seeds for
fuzz_layer (and fuzz_blob): climbing and odd paths, deep and long names, links
that point outside or nowhere, whiteouts and opaque markers in every
position, a file replacing a directory and back, PAX xattrs and odd numbers.
Each is a valid tar; what is hostile is the content."""
import io
import os
import sys
import tarfile


def add(t, name, kind=tarfile.REGTYPE, data=b"", link="", mode=0o644, pax=None, **kw):
    i = tarfile.TarInfo(name)
    i.type = kind
    i.mode = mode
    i.linkname = link
    i.size = len(data) if kind == tarfile.REGTYPE else 0
    i.mtime = kw.get("mtime", 1700000000)
    i.uid = kw.get("uid", 0)
    i.gid = kw.get("gid", 0)
    if pax:
        i.pax_headers = pax
    t.addfile(i, io.BytesIO(data) if i.size else None)


def write(path, fmt, entries):
    with tarfile.open(path, "w", format=fmt) as t:
        for e in entries:
            add(t, *e[0:2], **e[2]) if len(e) == 3 else add(t, *e)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    D, F, S, H, O = tarfile.DIRTYPE, tarfile.REGTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.FIFOTYPE
    write(f"{out}/paths.tar", tarfile.PAX_FORMAT, [
        ("../x", F, {"data": b"up\n"}),
        ("a/../../y", F, {"data": b"up2\n"}),
        ("/abs/z", F, {"data": b"abs\n"}),
        ("./dot/./name", F, {"data": b"dot\n"}),
        ("back\\slash", F, {"data": b"bs\n"}),
        ("dir//double", F, {"data": b"dd\n"}),
        (".wh.", F, {}),
        (".wh..", F, {}),
        ("n" * 300, F, {"data": b"long\n"}),
        ("/".join(["d"] * 300) + "/deep", F, {"data": b"deep\n"}),
        ("./", D, {"mode": 0o755}),
    ])
    write(f"{out}/links.tar", tarfile.GNU_FORMAT, [
        ("etc/", D, {"mode": 0o755}),
        ("etc/shadow-link", S, {"link": "/etc/shadow"}),
        ("etc/up-link", S, {"link": "../../../.."}),
        ("etc/forward", H, {"link": "etc/later"}),
        ("etc/later", F, {"data": b"later\n"}),
        ("etc/to-dir", H, {"link": "etc"}),
        ("etc/missing", H, {"link": "no/such/file"}),
        ("etc/outside", H, {"link": "../../etc/passwd"}),
        ("etc/chain1", H, {"link": "etc/later"}),
        ("etc/chain2", H, {"link": "etc/chain1"}),
        ("etc/self", H, {"link": "etc/self"}),
        ("etc/fifo", O, {}),
    ])
    write(f"{out}/whiteouts.tar", tarfile.USTAR_FORMAT, [
        ("a/", D, {"mode": 0o755}),
        ("a/.wh..wh..opq", F, {}),
        ("a/f", F, {"data": b"f\n"}),
        (".wh.a", F, {}),
        ("a", F, {"data": b"now a file\n"}),
        ("a/under-file", F, {"data": b"x\n"}),
        ("b", F, {"data": b"file\n"}),
        ("b/", D, {"mode": 0o755}),
        ("b/c", F, {"data": b"c\n"}),
        (".wh..wh..opq", F, {}),
        ("c/.wh.d", F, {}),
        ("c/d/e", F, {"data": b"e\n"}),
        ("dup", F, {"data": b"one\n"}),
        ("dup", F, {"data": b"two\n"}),
        ("dup", D, {"mode": 0o700}),
        (".wh..wh.plnk/1234", F, {}),
    ])
    write(f"{out}/pax.tar", tarfile.PAX_FORMAT, [
        ("x", F, {"data": b"x\n", "pax": {"SCHILY.xattr.user.a": "1",
                                          "SCHILY.xattr.security.capability": "\x01\x00",
                                          "SCHILY.xattr.trusted.overlay.opaque": "y"}}),
        ("big-ids", F, {"data": b"i\n", "uid": 2**40, "gid": 2**33, "mtime": -5}),
        ("p" * 120 + "/" + "q" * 120, F, {"data": b"pax path\n"}),
    ])


main()
