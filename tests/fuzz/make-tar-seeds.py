#!/usr/bin/env python3
"""Writes the hand-made tar seeds of fuzz_tar (tests/fuzz/corpus/fuzz_tar): a data directory's
shape, links that stay inside, every kind of escape the extractor must refuse, long names in
PAX and GNU form, and entry types a backup never holds. Run: tests/fuzz/make-tar-seeds.py"""
import io
import os
import tarfile

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "fuzz_tar")
D, S, H = tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE


def tar(name, entries, fmt=tarfile.GNU_FORMAT):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as archive:
        for entry in entries:
            info = tarfile.TarInfo(entry["name"])
            info.type = entry.get("type", tarfile.REGTYPE)
            info.mode = entry.get("mode", 0o600)
            info.mtime = 1796315405
            info.linkname = entry.get("link", "")
            data = entry.get("data", b"")
            if info.type == tarfile.REGTYPE:
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
            else:
                archive.addfile(info)
    with open(os.path.join(OUT, name), "wb") as out:
        out.write(buf.getvalue())


os.makedirs(OUT, exist_ok=True)
tar("datadir", [dict(name="PG_VERSION", data=b"15\n"), dict(name="global", type=D, mode=0o700),
                dict(name="global/pg_control", data=bytes(range(256)) * 2), dict(name="pg_wal", type=D, mode=0o700),
                dict(name="pg_tblspc", type=D), dict(name="pg_tblspc/16384", type=S, link="/srv/tblspc"),
                dict(name="backup_label", data=b"START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n")])
tar("links-inside", [dict(name="a", type=D), dict(name="a/file", data=b"x" * 100), dict(name="a/hard", type=H, link="a/file"),
                     dict(name="a/sym", type=S, link="file"), dict(name="b", type=S, link="a")])
tar("escapes", [dict(name="../outside", data=b"no"), dict(name="/abs", data=b"no"), dict(name="a/../../x", data=b"no"),
                dict(name="up", type=S, link="../../.."), dict(name="up/evil", data=b"no"), dict(name="h", type=H, link="../outside")])
tar("pax-long-names", [dict(name="d" * 120 + "/" + "f" * 150, data=b"long"),
                       dict(name="global/pg_filenode.map", data=b"\0" * 512)], tarfile.PAX_FORMAT)
tar("ustar-special", [dict(name="fifo", type=tarfile.FIFOTYPE), dict(name="dev", type=tarfile.CHRTYPE),
                      dict(name="ok", data=b"1")], tarfile.USTAR_FORMAT)
