"""Unit tests of mkubootimage-arm64.py (no NetBSD tree needed)."""
import os
import struct
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
TOOL = os.path.join(HERE, "mkubootimage-arm64.py")


def run(args, data):
    with tempfile.TemporaryDirectory() as d:
        src, dst = os.path.join(d, "netbsd.bin"), os.path.join(d, "netbsd.img")
        with open(src, "wb") as f:
            f.write(data)
        p = subprocess.run([sys.executable, TOOL] + args + [src, dst],
                           capture_output=True, text=True)
        out = open(dst, "rb").read() if os.path.exists(dst) else None
        return p, out


class Arm64Image(unittest.TestCase):
    def header(self, img):
        return struct.unpack_from("<IIQQQQQQI", img)

    def test_replace_reserved_space(self):
        # As the evbarm link calls it: start.S reserves the 64 bytes.
        body = b"R" * 64 + b"kernel text"
        p, img = run(["-f", "arm64", "-u", "-a", "0x200000", "-n", "x"], body)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(img), len(body))
        code0, code1, text, size, flags, r2, r3, r4, magic = self.header(img)
        self.assertEqual(code0, 0x14000010)      # b . + 64
        self.assertEqual(text, 0x200000)
        self.assertEqual(size, len(body))
        self.assertEqual(flags, 2)                # LE, 4 KiB pages
        self.assertEqual(img[56:60], b"ARM\x64")
        self.assertEqual(img[64:], b"kernel text")

    def test_prepend(self):
        p, img = run(["-f", "arm64"], b"abc")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(img), 67)
        self.assertEqual(self.header(img)[3], 67)
        self.assertEqual(img[64:], b"abc")

    def test_other_formats_refused(self):
        p, img = run(["-f", "uimg", "-A", "arm"], b"x" * 100)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("only the arm64", p.stderr)
        self.assertIsNone(img)

    def test_short_input_refused(self):
        p, img = run(["-f", "arm64", "-u"], b"x" * 10)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("shorter", p.stderr)
        self.assertIsNone(img)


if __name__ == "__main__":
    unittest.main()
