#!/usr/bin/env python3
"""Copy a NetBSD kernel's symbol table into the kernel itself (dbsym(8)).

A stand-in for NetBSD's usr.sbin/dbsym, in plain Python (stdlib only), for
kernels built with "makeoptions COPY_SYMTAB=1".  sys/conf/Makefile.kern.inc
links such a kernel twice:

  1. with kern_ksyms_buf.c compiled as  char db_symtab[] = SYMTAB_FILLER;
     then  SYMTAB_SPACE=$(${DBSYM} -P netbsd[.gdb])
  2. with  char db_symtab[SYMTAB_SPACE] = SYMTAB_FILLER;
     int db_symtabsize = sizeof(db_symtab);
     then  runit ${DBSYM} netbsd  (and netbsd.gdb when DEBUG has -g)

Usage:
  dbsym.py -P KERNEL   print the SYMTAB_SPACE to compile in (decimal bytes)
  dbsym.py KERNEL      write the image into db_symtab and its length into
                       db_symtabsize, in place (safe to run again)

Exit status: 0 success, 1 error (message on stderr, prefixed "dbsym:"),
2 bad usage.  ELF32 and ELF64, little-endian only (big-endian would only need
'>' in ENDIAN below).

Contract with sys/kern/kern_ksyms.c: ksyms_init() calls
ksyms_addsyms_elf(db_symtabsize, db_symtab, db_symtab + db_symtabsize) once
db_symtab no longer starts with SYMTAB_FILLER.  That function wants
db_symtabsize > 0, a long-aligned db_symtab (only enforced on
strict-alignment ports; x86 ALIGNED_POINTER() is always true), an ELF header
of the kernel's own class with e_version <= 1, and section headers at e_shoff,
both relative to db_symtab.  It takes the first SHT_SYMTAB (index >= 1) with a
non-zero sh_offset, and its sh_link string table; all offsets are relative to
db_symtab and sh_addr is ignored.  addsymtab() then compacts and sorts the
Elf_Sym array in place (so db_symtab must be writable .data and the symbols
word-aligned), drops unnamed, SHN_UNDEF and STT_FILE symbols, keeps SHN_ABS
and rewrites every other st_shndx to its fake .bss index, so symbol values and
section indexes are copied verbatim.  With KDTRACE_HOOKS it also reads the
section names through e_shstrndx and looks for a PROGBITS ".SUNW_ctf".

The image is therefore: the kernel's ELF header (no program headers,
e_shoff = e_ehsize), all of its section headers (so symbols' section indexes
and e_shstrndx stay meaningful), then the .symtab, its .strtab and the
section-name table, each word-aligned.  Every other section becomes SHT_NOBITS
at offset 0 (as objcopy --only-keep-debug does), so nothing in the image
points outside it; the kernel finds no CTF in it.

-P and the chicken-and-egg: -P runs on the first link, whose symbols have the
same names, count and section count as the relinked kernel (only values
change), so the image size is normally identical; with DEBUG -g, -P measures
netbsd.gdb, whose image is the larger one.  NetBSD's dbsym prints the exact
size.  This one adds one page and rounds up to a page (SLACK): it costs at
most 8 KiB of .data, and absorbs linker-made symbols whose number depends on
the layout (branch-range thunks/veneers on some ports; NetBSD once padded
db_symtab by 32 bytes on mips64 for such an ld/dbsym mismatch).  If the
final image still does not fit, dbsym fails with the size to use.
"""
import argparse
import collections
import struct
import sys

SLACK = 4096
KSYMS_MAX_ID = 98304            # kern_ksyms.c truncates bigger symbol tables
SHT_NULL, SHT_SYMTAB, SHT_STRTAB, SHT_NOBITS = 0, 2, 3, 8
SHN_UNDEF, SHN_LORESERVE = 0, 0xFF00
STB_GLOBAL, STB_WEAK = 1, 2

ENDIAN = {1: "<"}               # EI_DATA: ELFDATA2LSB
Layout = collections.namedtuple("Layout", "word ehdr shdr sym sym_fields")
LAYOUTS = {                     # EI_CLASS: ELFCLASS32, ELFCLASS64
    1: Layout(4, "16sHHIIIIIHHHHHH", "10I", "IIIBBH",
              "st_name st_value st_size st_info st_other st_shndx"),
    2: Layout(8, "16sHHIQQQIHHHHHH", "IIQQQQIIQQ", "IBBHQQ",
              "st_name st_info st_other st_shndx st_value st_size"),
}
Ehdr = collections.namedtuple(
    "Ehdr", "e_ident e_type e_machine e_version e_entry e_phoff e_shoff "
    "e_flags e_ehsize e_phentsize e_phnum e_shentsize e_shnum e_shstrndx")
Shdr = collections.namedtuple(
    "Shdr", "sh_name sh_type sh_flags sh_addr sh_offset sh_size sh_link "
    "sh_info sh_addralign sh_entsize")


class DbsymError(Exception):
    pass


def align(n, a):
    return (n + a - 1) // a * a


class Elf:
    """The parts of an ELF file dbsym needs, read from a bytes-like object."""

    def __init__(self, data, name):
        self.data, self.name = data, name
        if len(data) < 16 or data[:4] != b"\x7fELF":
            raise DbsymError(f"{name}: not an ELF file")
        cls, enc = data[4], data[5]
        if cls not in LAYOUTS or enc not in ENDIAN:
            raise DbsymError(f"{name}: unsupported ELF class {cls} / data "
                             f"encoding {enc} (only little-endian ELF32 and "
                             "ELF64)")
        e, lay = ENDIAN[enc], LAYOUTS[cls]
        self.word = lay.word
        self.ehdr_fmt, self.shdr_fmt = e + lay.ehdr, e + lay.shdr
        self.sym_fmt, self.int_fmt = e + lay.sym, e + "i"
        self.Sym = collections.namedtuple("Sym", lay.sym_fields)
        self.ehdr = Ehdr._make(self._unpack(self.ehdr_fmt, 0, "ELF header"))
        h = self.ehdr
        if h.e_shoff == 0 or not 0 < h.e_shnum < SHN_LORESERVE:
            raise DbsymError(f"{name}: no usable section header table")
        if h.e_shentsize != struct.calcsize(self.shdr_fmt):
            raise DbsymError(f"{name}: bad e_shentsize {h.e_shentsize}")
        self.shdrs = [Shdr._make(self._unpack(self.shdr_fmt,
                                              h.e_shoff + i * h.e_shentsize,
                                              "section header"))
                      for i in range(h.e_shnum)]
        self.symtab_index = self._find_symtab()

    def _unpack(self, fmt, offset, what):
        if offset + struct.calcsize(fmt) > len(self.data):
            raise DbsymError(f"{self.name}: truncated {what} at {offset:#x}")
        return struct.unpack_from(fmt, self.data, offset)

    def contents(self, index):
        sh = self.shdrs[index]
        if sh.sh_offset + sh.sh_size > len(self.data):
            raise DbsymError(f"{self.name}: section {index} is truncated")
        return bytes(self.data[sh.sh_offset:sh.sh_offset + sh.sh_size])

    def _find_symtab(self):
        # Same choice as ksyms_addsyms_elf(): first SYMTAB that has contents.
        for i, sh in enumerate(self.shdrs[1:], 1):
            if sh.sh_type == SHT_SYMTAB and sh.sh_offset != 0:
                link = sh.sh_link
                if not 0 < link < len(self.shdrs) or \
                        self.shdrs[link].sh_type != SHT_STRTAB:
                    raise DbsymError(f"{self.name}: .symtab has no string "
                                     "table (bad sh_link)")
                return i
        raise DbsymError(f"{self.name}: no symbol table (stripped kernel?)")

    def symbols(self):
        """Yield (name, Sym) for every entry of the symbol table."""
        tab = self.contents(self.symtab_index)
        strtab = self.contents(self.shdrs[self.symtab_index].sh_link)
        size = struct.calcsize(self.sym_fmt)
        for off in range(0, len(tab) - size + 1, size):
            sym = self.Sym._make(struct.unpack_from(self.sym_fmt, tab, off))
            end = strtab.find(b"\0", sym.st_name)
            end = len(strtab) if end < 0 else end
            yield strtab[sym.st_name:end].decode(errors="replace"), sym

    def find_symbol(self, name):
        """(file offset, st_size, st_value) of a global definition: the one
        kern_ksyms.c's extern declaration refers to."""
        sym = next((s for n, s in self.symbols() if n == name and
                    s.st_shndx != SHN_UNDEF and
                    s.st_info >> 4 in (STB_GLOBAL, STB_WEAK)), None)
        if sym is None:
            raise DbsymError(f"{self.name}: symbol {name} not found (kernel "
                             "built without makeoptions COPY_SYMTAB=1?)")
        if sym.st_shndx >= min(SHN_LORESERVE, len(self.shdrs)):
            raise DbsymError(f"{self.name}: {name} is not in a regular "
                             f"section (st_shndx {sym.st_shndx:#x})")
        sh = self.shdrs[sym.st_shndx]
        if sh.sh_type == SHT_NOBITS:
            raise DbsymError(f"{self.name}: {name} is in a NOBITS section "
                             "(.bss); it must be initialized data")
        # Executables: st_value is an address; relocatables: sh_addr is 0.
        rel = sym.st_value - sh.sh_addr
        if rel < 0 or rel + sym.st_size > sh.sh_size or \
                sh.sh_offset + rel + sym.st_size > len(self.data):
            raise DbsymError(f"{self.name}: {name} lies outside its section")
        return sh.sh_offset + rel, sym.st_size, sym.st_value

    def image(self):
        """The ELF image ksyms_addsyms_elf() parses, as bytes."""
        h, w = self.ehdr, self.word
        keep = {self.symtab_index, self.shdrs[self.symtab_index].sh_link}
        if 0 < h.e_shstrndx < len(self.shdrs):
            keep.add(h.e_shstrndx)
        shoff = struct.calcsize(self.ehdr_fmt)      # 52 or 64: aligned
        end = shoff + h.e_shnum * h.e_shentsize
        shdrs, blobs = [], []
        for i, sh in enumerate(self.shdrs):
            if i in keep:
                end = align(end, w)
                blobs.append((end, self.contents(i)))
                sh = sh._replace(sh_offset=end)
                end += sh.sh_size
            elif sh.sh_type != SHT_NULL:
                sh = sh._replace(sh_type=SHT_NOBITS, sh_offset=0)
            shdrs.append(sh)
        img = bytearray(end)
        struct.pack_into(self.ehdr_fmt, img, 0, *h._replace(
            e_ehsize=shoff, e_phoff=0, e_phentsize=0, e_phnum=0,
            e_shoff=shoff))
        for i, sh in enumerate(shdrs):
            struct.pack_into(self.shdr_fmt, img, shoff + i * h.e_shentsize,
                             *sh)
        for off, blob in blobs:
            img[off:off + len(blob)] = blob
        return bytes(img)


def symtab_space(elf):
    """What -P prints: the image size plus SLACK, rounded up to a page."""
    return align(len(elf.image()) + SLACK, 4096)


def install(path, elf):
    """Write elf's image into db_symtab and its size into db_symtabsize."""
    img = elf.image()
    off, space, addr = elf.find_symbol("db_symtab")
    size_off, size_len, _ = elf.find_symbol("db_symtabsize")
    if size_len != 4:
        raise DbsymError(f"{path}: db_symtabsize is {size_len} bytes, not an "
                         "int")
    if len(img) > space:
        raise DbsymError(f"{path}: symbol table image needs {len(img)} bytes, "
                         f"db_symtab has {space}: rebuild with SYMTAB_SPACE "
                         f">= {len(img)} (dbsym -P gives "
                         f"{symtab_space(elf)})")
    if addr % elf.word:
        warn(f"{path}: db_symtab at {addr:#x} is not {elf.word}-byte "
             "aligned; strict-alignment kernels will reject it")
    nsyms = elf.shdrs[elf.symtab_index].sh_size // struct.calcsize(
        elf.sym_fmt)
    if nsyms >= KSYMS_MAX_ID:
        warn(f"{path}: {nsyms} symbols; the kernel keeps only "
             f"{KSYMS_MAX_ID - 1} (KSYMS_MAX_ID)")
    with open(path, "r+b") as f:
        f.seek(off)
        f.write(img.ljust(space, b"\0"))
        f.seek(size_off)
        f.write(struct.pack(elf.int_fmt, len(img)))


def warn(msg):
    print(f"dbsym: warning: {msg}", file=sys.stderr)


def main(argv=None):
    p = argparse.ArgumentParser(
        prog="dbsym", description="Copy a kernel's symbol table into its "
        "db_symtab array (makeoptions COPY_SYMTAB).")
    p.add_argument("-P", dest="print_size", action="store_true",
                   help="print the SYMTAB_SPACE the kernel needs and exit")
    p.add_argument("kernel")
    args = p.parse_args(argv)
    try:
        with open(args.kernel, "rb") as f:
            elf = Elf(f.read(), args.kernel)
        if args.print_size:
            print(symtab_space(elf))
        else:
            install(args.kernel, elf)
    except (OSError, DbsymError) as e:
        print(f"dbsym: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
