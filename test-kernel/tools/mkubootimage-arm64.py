#!/usr/bin/env python3
"""mkubootimage-arm64.py -- the arm64 subset of NetBSD's mkubootimage(1).

The evbarm (aarch64) kernel link runs

    ${TOOL_MKUBOOTIMAGE} -f arm64 -u -a LOADADDR ... netbsd.bin netbsd.img

to put the Linux arm64 Image header (Documentation/arm64/booting.rst) in
front of the kernel, which is what QEMU's -kernel boots on the virt
machine (device tree address in x0).  A tools tree built without
mkubootimage (e.g. build.sh tools with TOOLS_BUILDRUMP=yes) has no
nbmkubootimage; test-kernel/ktest.sh then passes this script as
TOOL_MKUBOOTIMAGE.

Only -f arm64 is implemented; every other format is refused.  With -u the
first 64 bytes of the input are the space that aarch64's start.S reserves
for the header and are replaced; without it the header goes in front.
Header fields: code0 "b +64" (branch over the header to the kernel's
entry), text_offset = the -a address, image_size, flags = little-endian
with 4 KiB pages, magic "ARM\\x64" at offset 56.
"""
import getopt
import struct
import sys

HEADER = 64
MAGIC = 0x644D5241  # "ARM\x64"
B_PLUS_64 = 0x14000010  # b . + 64
FLAGS_LE_4K = 1 << 1  # bit 0: little-endian (0); bits 1-2: page size 4K (1)


def image(data, load, replace):
    """Return DATA with the arm64 Image header (load address LOAD)."""
    if replace:
        if len(data) < HEADER:
            raise ValueError("input shorter than the %d-byte header space" % HEADER)
        data = data[HEADER:]
    size = HEADER + len(data)
    hdr = struct.pack("<IIQQQQQQI", B_PLUS_64, 0, load, size, FLAGS_LE_4K,
                      0, 0, 0, MAGIC)
    return hdr + b"\0" * (HEADER - len(hdr)) + data


def main(argv):
    try:
        opts, args = getopt.getopt(argv, "A:a:C:E:e:f:hm:n:O:T:t:u")
    except getopt.GetoptError as e:
        sys.exit("mkubootimage-arm64: %s" % e)
    o = dict(opts)
    if o.get("-f") != "arm64" or len(args) != 2:
        sys.exit("usage: mkubootimage-arm64.py -f arm64 [-u] [-a addr] IN OUT"
                 " (only the arm64 Image format)")
    try:
        load = int(o.get("-a", "0"), 0)
        with open(args[0], "rb") as f:
            out = image(f.read(), load, "-u" in o)
    except (OSError, ValueError) as e:
        sys.exit("mkubootimage-arm64: %s" % e)
    with open(args[1], "wb") as f:
        f.write(out)


if __name__ == "__main__":
    main(sys.argv[1:])
