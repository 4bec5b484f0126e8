#!/usr/bin/env python3
"""Tests of mkimage.sh: the userland suite's md(4) root image and its mtree
spec, on a fake sys/ tree (only majors.amd64 is read) -- no NetBSD tree
needed.  Run: python3 -m unittest discover -s test-kernel/userland -p 't_*.py'
"""
import os
import shutil
import struct
import subprocess
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
MKIMAGE = os.path.join(HERE, "mkimage.sh")
MAJORS = """\
device-major	cons		char 0
device-major	mem		char 2
device-major	md		char 24  block 17	md
device-major	vnd		char 41  block 14	vnd
"""
FS_UFS1_MAGIC = 0x011954
SBLOCK_UFS1 = 8192


@unittest.skipUnless(shutil.which("makefs"), "makefs not installed (apt-get install makefs)")
class MkimageTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="t_mkimage.")
        self.addCleanup(shutil.rmtree, self.tmp)
        self.sys = os.path.join(self.tmp, "sys")
        os.makedirs(os.path.join(self.sys, "arch/amd64/conf"))
        with open(os.path.join(self.sys, "arch/amd64/conf/majors.amd64"), "w") as f:
            f.write(MAJORS)
        self.init = os.path.join(self.tmp, "init")
        with open(self.init, "wb") as f:
            f.write(b"\x7fELF fake init")
        self.mods = os.path.join(self.tmp, "mods")
        os.makedirs(self.mods)
        for k in ("ktmod", "vnd"):
            with open(os.path.join(self.mods, k + ".kmod"), "wb") as f:
                f.write(b"\x7fELF fake " + k.encode())
        self.img = os.path.join(self.tmp, "root.img")

    def mkimage(self, *extra):
        return subprocess.run([MKIMAGE, "-s", self.sys, "-i", self.init, "-m", self.mods,
                               "-o", self.img, *extra], capture_output=True, text=True)

    def spec(self):
        with open(self.img + ".spec") as f:
            return f.read().splitlines()

    def test_image_and_spec(self):
        with open(os.path.join(self.mods, "real-modules.txt"), "w") as f:
            f.write("# name kmod devnode type major minor\n"
                    "zlib /x/zlib.kmod - - - -\n"
                    "vnd /x/vnd.kmod /dev/rvnd0d char 41 3\n"
                    "vnd /x/vnd.kmod /dev/vnd0d block 14 3\n")
        r = self.mkimage("-k")
        self.assertEqual(r.returncode, 0, r.stderr)
        spec = self.spec()
        for line in ("./dev/console type=char mode=0600 device=netbsd,0,0",
                     "./dev/null type=char mode=0600 device=netbsd,2,2",
                     "./dev/zero type=char mode=0600 device=netbsd,2,12",
                     "./dev/md0a type=block mode=0600 device=netbsd,17,0",
                     "./dev/rmd0a type=char mode=0600 device=netbsd,24,0",
                     "./dev/ktctl type=char mode=0600 device=netbsd,500,0",
                     "./dev/ktmod15 type=char mode=0600 device=netbsd,501,15",
                     "./dev/ktmodb0 type=block mode=0600 device=netbsd,250,0",
                     "./dev/rvnd0d type=char mode=0600 device=netbsd,41,3",
                     "./dev/vnd0d type=block mode=0600 device=netbsd,14,3",
                     "./sbin/init type=file mode=0755",
                     "./stand/ktmod.kmod type=file mode=0644",
                     "./stand/vnd.kmod type=file mode=0644"):
            self.assertIn(line, spec)
        with open(os.path.join(self.img + ".stage", "etc/ktest/real-modules")) as f:
            self.assertEqual(f.read(), "zlib /stand/zlib.kmod\n"
                                       "vnd /stand/vnd.kmod /dev/rvnd0d /dev/vnd0d\n")
        with open(self.img, "rb") as f:
            f.seek(SBLOCK_UFS1 + 1372)          # struct fs: fs_magic
            self.assertEqual(struct.unpack("<i", f.read(4))[0], FS_UFS1_MAGIC)

    def test_staging_removed_without_k(self):
        r = self.mkimage()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(os.path.exists(self.img))
        self.assertFalse(os.path.exists(self.img + ".stage"))
        self.assertFalse(os.path.exists(self.img + ".spec"))

    def test_errors(self):
        os.remove(os.path.join(self.sys, "arch/amd64/conf/majors.amd64"))
        r = self.mkimage()
        self.assertEqual(r.returncode, 1)
        self.assertIn("mkimage.sh: no ", r.stderr)
        self.assertFalse(os.path.exists(self.img))
        r = subprocess.run([MKIMAGE, "-s", self.sys], capture_output=True, text=True)
        self.assertEqual(r.returncode, 1)


if __name__ == "__main__":
    unittest.main()
