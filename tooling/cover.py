#!/usr/bin/env python3
"""Fill git format-patch's cover letter from patches/cover-letter.

usage: cover.py COVER_LETTER_FILE KERNEL_VERSION PACKAGE_VERSION

patches/cover-letter: first line is the subject, the rest the body;
@BASE@ in it becomes the base (e.g. "Linux 6.12.117, Debian linux-source-6.12
6.12.117-1~deb12u1").
"""
import os
import sys

top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
path, kver, pkg = sys.argv[1:4]
with open(os.path.join(top, "patches", "cover-letter")) as f:
    subject, _, body = f.read().partition("\n")
body = body.strip().replace("@BASE@", f"Linux {kver} (Debian {pkg})")
with open(path) as f:
    text = f.read()
for placeholder, value in (("*** SUBJECT HERE ***", subject.strip()),
                           ("*** BLURB HERE ***", body)):
    if placeholder not in text:
        sys.exit(f"error: {placeholder} not found in {path}")
    text = text.replace(placeholder, value)
with open(path, "w") as f:
    f.write(text)
