#!/usr/bin/env python3
"""Tests of dbsym.py: sample "kernels" linked with the host cc and ld.

Run from the repository root:
  python3 test-kernel/userland/t_dbsym.py -v

Each sample is linked twice as sys/conf/Makefile.kern.inc does for
makeoptions COPY_SYMTAB, then the image dbsym.py embedded in db_symtab is
checked by KernelImage, an independent port of the checks
ksyms_addsyms_elf()/addsymtab() (sys/kern/kern_ksyms.c) make, against nm and
readelf.
"""
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
DBSYM = os.path.join(HERE, "dbsym.py")
REAL_KERNEL = os.path.join(HERE, "..", "..", "target", "ktest", "obj", "c",
                           "netbsd")
CC = next(filter(None, map(shutil.which, (os.environ.get("CC", "cc"), "gcc",
                                           "clang", "clang-19"))), None)
LD = shutil.which("ld")
HAVE_TOOLS = CC and LD and shutil.which("nm") and shutil.which("readelf")

# Exactly sys/kern/kern_ksyms_buf.c, without the kernel option header.
KSYMS_BUF_C = r"""
#define		SYMTAB_FILLER	"|This is the symbol table!"

#ifndef SYMTAB_SPACE
char		db_symtab[] = SYMTAB_FILLER;
#else
char		db_symtab[SYMTAB_SPACE] = SYMTAB_FILLER;
#endif
int		db_symtabsize = sizeof(db_symtab);
"""
FILLER = b"|This is the symbol table!"

# Same-named locals, which come first in .symtab: dbsym must use the globals.
LOCAL_C = r"""
static char db_symtab[32] __attribute__((used)) = "local db_symtab";
static int db_symtabsize __attribute__((used)) = 32;
"""

KERNEL_C = r"""
__asm__(".globl abs_symbol\n.set abs_symbol, 0x1234");
#ifdef NO_DB_SYMTAB
#define db_symtab "x"
#else
extern char db_symtab[];
#endif
#ifdef NO_DB_SYMTABSIZE
#define db_symtabsize 0
#else
extern int db_symtabsize;
#endif
int global_counter = 42;
static int local_counter = 7;
long bss_array[64];
const char version[] = "sample kernel 1.0";
__attribute__((weak)) int weak_hook(void) { return 1; }
__attribute__((noinline)) static int helper(int x) {
    return x * 3 + local_counter++;
}
int compute(int x) { return helper(x) + global_counter + weak_hook(); }
void start(void) {
    bss_array[1] = compute(db_symtab[0] + db_symtabsize);
    for (;;)
        ;
}
"""

# ELF constants, independent of dbsym.py.
SHT_NULL, SHT_SYMTAB, SHT_NOBITS = 0, 2, 8
SHN_UNDEF, SHN_ABS = 0, 0xFFF1
STT_SECTION, STT_FILE = 3, 4


def run(*argv, check=True):
    return subprocess.run(argv, capture_output=True, text=True, check=check)


def dbsym(*args):
    return run(sys.executable, DBSYM, *args, check=False)


class KernelImage:
    """Port of ksyms_addsyms_elf() + addsymtab() over the image bytes.

    Raises AssertionError wherever the kernel would print "[ Kernel symbol
    table ... ]" and give up, or would read outside db_symtab; .symbols are
    the entries addsymtab() keeps, as (name, st_value, st_size, st_info,
    st_shndx) in their original order.
    """

    def __init__(self, img, elfclass, start_addr, exact=True):
        self.img = img
        assert len(img) > 0, "Kernel symbol table missing"
        word = 8 if elfclass == 2 else 4
        assert start_addr % word == 0, "bad start address (ALIGNED_POINTER)"
        assert img[:4] == b"\x7fELF", "bad ELF magic"
        assert img[4] == elfclass, "EI_CLASS differs from the kernel's"
        assert img[5] == 1, "not little-endian"
        if elfclass == 2:
            ehdr, shdr, sym = "<16sHHIQQQIHHHHHH", "<IIQQQQIIQQ", "<IBBHQQ"
        else:
            ehdr, shdr, sym = "<16sHHIIIIIHHHHHH", "<10I", "<IIIBBH"
        (_, _, _, version, _, _, shoff, _, _, _, _, shentsize, shnum,
         shstrndx) = self.unpack(ehdr, 0)
        assert version <= 1, "e_version > 1"
        assert shentsize == struct.calcsize(shdr)
        self.shdrs = [self.unpack(shdr, shoff + i * shentsize)
                      for i in range(shnum)]
        # The kernel's loop: first SYMTAB from index 1 with an offset.
        symidx = next(i for i in range(1, shnum)
                      if self.shdrs[i][1] == SHT_SYMTAB
                      and self.shdrs[i][4] != 0)
        _, _, _, _, symoff, symsize, link, _, _, entsize = self.shdrs[symidx]
        assert self.shdrs[link][4] != 0, "string table has no offset"
        assert symoff % word == 0, "Elf_Sym array is misaligned"
        symtab = self.section(symidx)
        strtab = self.section(link)
        assert entsize == struct.calcsize(sym)
        assert strtab[-1:] == b"\0", "string table is not NUL-terminated"
        # KDTRACE_HOOKS: section names through e_shstrndx, CTF by name.
        shstr = self.section(shstrndx) if shstrndx else b""
        self.section_names = [self.cstr(shstr, s[0]) for s in self.shdrs]
        for i, s in enumerate(self.shdrs):
            if s[1] not in (SHT_NULL, SHT_NOBITS):
                self.section(i)         # everything with contents is inside
        # db_symtabsize is the image's length (word-aligned pieces).
        extent = max([shoff + shnum * shentsize] + [
            s[4] + s[5] for s in self.shdrs
            if s[1] not in (SHT_NULL, SHT_NOBITS)])
        assert not exact or 0 <= len(img) - extent < word, (len(img), extent)
        self.symbols = []
        for off in range(0, len(symtab), entsize):
            f = struct.unpack_from(sym, symtab, off)
            if elfclass == 2:
                name, info, _, shndx, value, size = f
            else:
                name, value, size, info, _, shndx = f
            assert name < len(strtab), "st_name outside the string table"
            sname = self.cstr(strtab, name)
            if name == 0 or shndx == SHN_UNDEF or info & 0xF == STT_FILE:
                continue
            if info & 0xF == 0 and value == 0 and sname == "*ABS*":
                continue
            self.symbols.append((sname, value, size, info, shndx))

    def unpack(self, fmt, off):
        assert 0 <= off and off + struct.calcsize(fmt) <= len(self.img), \
            f"{fmt} at {off:#x} is outside the image"
        return struct.unpack_from(fmt, self.img, off)

    def section(self, i):
        off, size = self.shdrs[i][4], self.shdrs[i][5]
        assert off + size <= len(self.img), f"section {i} outside the image"
        return self.img[off:off + size]

    @staticmethod
    def cstr(tab, off):
        return tab[off:tab.index(b"\0", off)].decode()


def elf_symbols(path):
    """Symbols of an ELF file as KernelImage lists them, via its image."""
    with open(path, "rb") as f:
        data = f.read()
    # Reuse KernelImage on the whole file (offsets are file offsets there).
    return KernelImage(data, data[4], 0, exact=False).symbols


def nm_symbols(path):
    """(name, value) of nm's defined symbols, as addsymtab() keeps them."""
    out = run("nm", "-P", path).stdout
    syms = []
    for line in out.splitlines():
        name, typ, *rest = line.split()
        if typ not in "Uvw":
            syms.append((name, int(rest[0], 16)))
    return sorted(syms)


@unittest.skipUnless(HAVE_TOOLS, "needs a C compiler, ld, nm and readelf")
class SampleKernelTest(unittest.TestCase):
    CFLAGS = ["-O2", "-fno-pic", "-fno-stack-protector", "-ffreestanding",
              "-fno-asynchronous-unwind-tables"]
    MACHINE = []                # cc flags
    EMULATION = []              # ld flags
    ELFCLASS = 2

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="t_dbsym.")
        self.addCleanup(shutil.rmtree, self.tmp)
        self.write("kern_ksyms_buf.c", KSYMS_BUF_C)
        self.write("kernel.c", KERNEL_C)
        self.compile("kernel.c", "kernel.o")
        self.write("local.c", LOCAL_C)
        self.compile("local.c", "local.o")

    def write(self, name, text):
        with open(self.path(name), "w") as f:
            f.write(text)

    def path(self, name):
        return os.path.join(self.tmp, name)

    def compile(self, src, obj, *flags):
        run(CC, *self.CFLAGS, *self.MACHINE, *flags, "-c", self.path(src),
            "-o", self.path(obj))

    def link(self, out, *objs):
        run(LD, *self.EMULATION, "-e", "start", "-o", self.path(out),
            *(self.path(o) for o in objs))
        return self.path(out)

    def build(self, space=None, buf_src="kern_ksyms_buf.c"):
        """The two-step link of Makefile.kern.inc; returns (kernel, -P)."""
        self.compile(buf_src, "kern_ksyms_buf.o")
        first = self.link("netbsd.stage1", "local.o", "kernel.o",
                          "kern_ksyms_buf.o")
        if space is None:
            r = dbsym("-P", first)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertRegex(r.stdout, r"\A\d+\n\Z")
            space = int(r.stdout)
        self.compile(buf_src, "kern_ksyms_buf_real.o",
                     f"-DSYMTAB_SPACE={space}")
        return self.link("netbsd", "local.o", "kernel.o",
                         "kern_ksyms_buf_real.o"), space

    def symbol(self, kernel, name):
        """(file offset, address, size) of a symbol, from readelf."""
        out = run("readelf", "-W", "-s", "-S", kernel).stdout
        for line in out.splitlines():
            f = line.split()
            if len(f) == 8 and f[7] == name and f[4] == "GLOBAL":
                addr, size, ndx = int(f[1], 16), int(f[2], 0), int(f[6])
                break
        else:
            self.fail(f"{name} not in {kernel}")
        for line in out.splitlines():
            f = line.replace("[ ", "[").split()
            if f and f[0] == f"[{ndx}]":
                sh_addr, sh_off = int(f[3], 16), int(f[4], 16)
                return sh_off + addr - sh_addr, addr, size

    def extract(self, kernel):
        """(image bytes, db_symtab address, the rest of db_symtab)."""
        off, addr, size = self.symbol(kernel, "db_symtab")
        size_off, _, _ = self.symbol(kernel, "db_symtabsize")
        with open(kernel, "rb") as f:
            data = f.read()
        n, = struct.unpack_from("<i", data, size_off)
        self.assertTrue(0 < n <= size, (n, size))
        return data[off:off + n], addr, data[off + n:off + size]

    def assert_fails(self, kernel, *words):
        with open(kernel, "rb") as f:
            before = f.read()
        r = dbsym(kernel)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout, "")
        self.assertTrue(r.stderr.startswith("dbsym: "), r.stderr)
        for w in words:
            self.assertIn(w, r.stderr)
        with open(kernel, "rb") as f:
            self.assertEqual(f.read(), before, "failed dbsym changed it")
        return r.stderr

    def test_copy_symtab(self):
        kernel, space = self.build()
        with open(kernel, "rb") as f:
            self.assertIn(FILLER, f.read())
        r = dbsym(kernel)
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "", ""))
        img, addr, rest = self.extract(kernel)
        self.assertEqual(rest, bytes(len(rest)))
        # -P: the image size plus one to two pages of slack.
        self.assertEqual(space % 4096, 0)
        self.assertTrue(4096 <= space - len(img) <= 8192, (space, len(img)))

        ki = KernelImage(img, self.ELFCLASS, addr)
        # Verbatim copy of the final kernel's symbol table ...
        self.assertEqual(ki.symbols, elf_symbols(kernel))
        # ... which agrees with nm (nm hides section symbols).
        self.assertEqual(sorted((n, v) for n, v, _, info, _ in ki.symbols
                                if info & 0xF != STT_SECTION),
                         nm_symbols(kernel))
        names = {s[0]: s for s in ki.symbols}
        for name in ("start", "compute", "helper", "global_counter",
                     "local_counter", "bss_array", "weak_hook", "db_symtab",
                     "db_symtabsize", "abs_symbol"):
            self.assertIn(name, names)
        self.assertEqual(names["abs_symbol"][1:], (0x1234, 0, 0x10, SHN_ABS))
        self.assertEqual(names["db_symtab"][1], addr)
        self.assertIn(".symtab", ki.section_names)

        # readelf accepts the image as an ELF file of its own.
        path = self.path("image")
        with open(path, "wb") as f:
            f.write(img)
        r = run("readelf", "-W", "-h", "-S", "-s", path)
        self.assertEqual(r.stderr, "")
        self.assertIn("compute", r.stdout)

        # A second run (e.g. make re-running the tail) changes nothing.
        with open(kernel, "rb") as f:
            once = f.read()
        self.assertEqual(dbsym(kernel).returncode, 0)
        with open(kernel, "rb") as f:
            self.assertEqual(f.read(), once)
        # -P on the final kernel asks for what the first link asked.
        self.assertEqual(int(dbsym("-P", kernel).stdout), space)

    def test_stale_contents_cleared(self):
        kernel, _ = self.build()
        off, _, size = self.symbol(kernel, "db_symtab")
        with open(kernel, "r+b") as f:       # as if from an earlier image
            f.seek(off + len(FILLER))
            f.write(b"\xaa" * (size - len(FILLER)))
        self.assertEqual(dbsym(kernel).returncode, 0)
        _, _, rest = self.extract(kernel)
        self.assertEqual(rest, bytes(len(rest)))
        with open(kernel, "rb") as f:
            self.assertIn(b"local db_symtab", f.read())

    def test_executable(self):
        self.assertTrue(os.access(DBSYM, os.X_OK))
        kernel, _ = self.build()
        r = run(DBSYM, "-P", kernel)
        self.assertRegex(r.stdout, r"\A\d+\n\Z")

    def test_array_too_small(self):
        kernel, _ = self.build(space=64)
        err = self.assert_fails(kernel, "db_symtab has 64",
                                "SYMTAB_SPACE >=")
        need = int(err.split("needs ")[1].split()[0])
        self.assertGreater(need, 64)
        # The size it names is enough.
        kernel, _ = self.build(space=need)
        self.assertEqual(dbsym(kernel).returncode, 0)
        self.assertEqual(len(self.extract(kernel)[0]), need)

    def test_missing_db_symtab(self):
        self.write("nosym.c", "int db_symtabsize = 4;\n")
        self.compile("nosym.c", "nosym.o")
        self.compile("kernel.c", "kernel_nosym.o", "-DNO_DB_SYMTAB")
        self.assert_fails(self.link("k", "local.o", "kernel_nosym.o",
                                    "nosym.o"),
                          "symbol db_symtab not found", "COPY_SYMTAB")

    def test_missing_db_symtabsize(self):
        self.write("nosize.c", 'char db_symtab[65536] = "x";\n')
        self.compile("nosize.c", "nosize.o")
        self.compile("kernel.c", "kernel_nosize.o", "-DNO_DB_SYMTABSIZE")
        self.assert_fails(self.link("k", "local.o", "kernel_nosize.o",
                                    "nosize.o"),
                          "symbol db_symtabsize not found")

    def test_db_symtab_in_bss(self):
        self.write("bss.c", "char db_symtab[65536];\n"
                   "int db_symtabsize = sizeof(db_symtab);\n")
        self.compile("bss.c", "bss.o", "-fno-common")
        self.assert_fails(self.link("k", "kernel.o", "bss.o"),
                          "db_symtab", "NOBITS")

    def test_stripped(self):
        kernel, _ = self.build()
        run("strip", kernel)
        self.assert_fails(kernel, "no symbol table")

    def test_not_elf(self):
        path = self.path("notelf")
        with open(path, "w") as f:
            f.write("#!/bin/sh\necho hello\n")
        self.assert_fails(path, "not an ELF file")
        r = dbsym("-P", path)
        self.assertEqual((r.returncode, r.stdout), (1, ""))

    def test_big_endian_rejected(self):
        kernel, _ = self.build()
        with open(kernel, "r+b") as f:
            f.seek(5)
            f.write(b"\2")
        self.assert_fails(kernel, "unsupported ELF")

    def test_no_such_file(self):
        r = dbsym(self.path("nonexistent"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("dbsym: ", r.stderr)

    def test_usage(self):
        self.assertEqual(dbsym().returncode, 2)


class SampleKernel32Test(SampleKernelTest):
    MACHINE = ["-m32"]
    EMULATION = ["-m", "elf_i386"]
    ELFCLASS = 1

    def setUp(self):
        try:
            super().setUp()
        except subprocess.CalledProcessError as e:
            self.skipTest(f"cannot build i386 objects: {e.stderr.strip()}")


@unittest.skipUnless(os.path.exists(REAL_KERNEL), f"no {REAL_KERNEL}")
class RealKernelTest(unittest.TestCase):
    """The ktest kernel as built last: with COPY_SYMTAB (every kernel of
    ktest.sh now) dbsym must fill its db_symtab; a kernel built without it
    has no db_symtab, which dbsym must report."""

    def setUp(self):
        tmp = tempfile.mkdtemp(prefix="t_dbsym.")
        self.addCleanup(shutil.rmtree, tmp)
        self.kernel = os.path.join(tmp, "netbsd")
        shutil.copyfile(REAL_KERNEL, self.kernel)

    def db_symtab_offset(self):
        """File offset of db_symtab in the (ELF64) kernel, or None."""
        nm = subprocess.run(["nm", self.kernel], capture_output=True,
                            text=True, check=True).stdout
        addrs = [int(l.split()[0], 16) for l in nm.splitlines()
                 if l.split()[-1:] == ["db_symtab"]]
        if not addrs:
            return None
        with open(self.kernel, "rb") as f:
            data = f.read()
        shoff, = struct.unpack_from("<Q", data, 0x28)
        shnum, = struct.unpack_from("<H", data, 0x3C)
        for i in range(shnum):
            typ, = struct.unpack_from("<I", data, shoff + i * 64 + 4)
            addr, off, size = struct.unpack_from("<QQQ", data,
                                                 shoff + i * 64 + 16)
            if typ == 1 and addr <= addrs[0] < addr + size:   # PROGBITS
                return off + addrs[0] - addr
        self.fail("db_symtab in no PROGBITS section")

    def test_missing_symbol_or_filled(self):
        off = self.db_symtab_offset()
        if off is not None:
            # The build's DBSYM filled it already: wipe the image first.
            with open(self.kernel, "r+b") as f:
                f.seek(off)
                f.write(b"\0" * 64)
        r = dbsym(self.kernel)
        if off is not None:
            self.assertEqual(r.returncode, 0, r.stderr)
            with open(self.kernel, "rb") as f:
                f.seek(off)
                self.assertEqual(f.read(4), b"\x7fELF",
                                 "no ELF image written into db_symtab")
        else:
            self.assertEqual(r.returncode, 1)
            self.assertIn("dbsym: ", r.stderr)
            self.assertIn("symbol db_symtab not found", r.stderr)

    def test_size(self):
        with open(self.kernel, "rb") as f:
            data = f.read()
        self.assertEqual(data[4:6], b"\2\1", "ELF64 LE expected")
        shoff, = struct.unpack_from("<Q", data, 0x28)
        shnum, = struct.unpack_from("<H", data, 0x3C)
        sizes = {}
        for i in range(shnum):
            typ, = struct.unpack_from("<I", data, shoff + i * 64 + 4)
            link, = struct.unpack_from("<I", data, shoff + i * 64 + 40)
            size, = struct.unpack_from("<Q", data, shoff + i * 64 + 32)
            if typ == SHT_SYMTAB:
                sizes = dict(symtab=size, link=link)
        strsize, = struct.unpack_from("<Q", data,
                                      shoff + sizes["link"] * 64 + 32)
        tables = sizes["symtab"] + strsize
        r = dbsym("-P", self.kernel)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(tables < int(r.stdout) < 2 * tables,
                        (tables, r.stdout))


if __name__ == "__main__":
    unittest.main()
