#!/usr/bin/env python3
"""Rewrites every message file under DIR (following symbolic links, writing regular files in their place) with only
the named header fields, each kept whole (its continuation lines too) and in its place; the body and every line
ending stay as they were.

    Scripts/keep-fields.py DIR FIELD[,FIELD...]

For measuring how the filter does on mail that carries few header fields: a corpus exported with the Subject alone,
or form letters wrapped in a From, To and Subject to be tested. `Scripts/half-train.sh --keep-fields` uses it."""
import os
import re
import sys


def kept(raw: bytes, fields: set) -> bytes:
    end = re.search(rb"\r?\n\r?\n", raw)
    header, rest = (raw[: end.start()], raw[end.start():]) if end else (raw, b"")
    # A field is its first line and the lines that continue it (starting with a space or tab).
    lines = re.findall(rb"[^\r\n]*(?:\r?\n|$)", header)
    out, keep = [], False
    for line in lines:
        if not line:
            continue
        if line[:1] in (b" ", b"\t"):
            if keep:
                out.append(line)
            continue
        name = line.split(b":", 1)[0].strip().lower()
        keep = name.decode("latin-1") in fields
        if keep:
            out.append(line)
    text = b"".join(out)
    if not end:
        return text
    # `rest` starts with the header's last line ending and the blank line: the kept fields' last line has its own.
    if text.endswith(b"\n"):
        text = text[:-2] if text.endswith(b"\r\n") else text[:-1]
    elif not text:  # no field kept: the message starts with the blank line
        rest = rest[2:] if rest.startswith(b"\r\n") else rest[1:]
    return text + rest


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit("usage: keep-fields.py DIR FIELD[,FIELD...]")
    root, fields = sys.argv[1], {f.strip().lower() for f in sys.argv[2].split(",") if f.strip()}
    if not fields:
        sys.exit("keep-fields.py: no field names given")
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            with open(path, "rb") as file:
                raw = file.read()
            os.unlink(path)  # a symbolic link to the sample: never write through it
            with open(path, "wb") as file:
                file.write(kept(raw, fields))


if __name__ == "__main__":
    main()
