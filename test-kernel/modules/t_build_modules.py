"""Tests of build-modules.sh's parts that need no NetBSD tree: the build
failure reason, the real modules' load order and real-modules.txt, the
devsw-module-init.sh report parsing, the ioconf hint, the d_localcount
relocation check (on an object the host compiler makes) and the -a
summary line.  The script's functions are sourced into bash.

Run from the repository root:
  python3 -m unittest discover -s test-kernel/modules -p 't_*.py' -v
"""
import os
import shutil
import subprocess
import tempfile
import textwrap
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "build-modules.sh")


def sh(snippet, *args):
    """Run SNIPPET in bash after sourcing the script; ARGS are $1...
    Returns (exit status, stdout)."""
    p = subprocess.run(
        ["bash", "-c", 'source "$1" && shift && ' + snippet, "bash", SCRIPT,
         *args],
        capture_output=True, text=True, check=False)
    return p.returncode, p.stdout


def out(snippet, *args):
    rc, stdout = sh(snippet, *args)
    if rc != 0:
        raise AssertionError(f"{snippet}: exit {rc}")
    return stdout


class Tmp(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="t_build_modules.")
        self.addCleanup(shutil.rmtree, self.tmp)

    def write(self, rel, text):
        path = os.path.join(self.tmp, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(textwrap.dedent(text))
        return path


class FirstError(Tmp):
    SYS = "/w/patched/sys"

    def reason(self, log):
        path = self.write("build.log", log)
        return out('first_error "$1" "$2"', path, self.SYS).strip()

    def test_compiler_error_relative_and_short(self):
        log = f"""\
            #   compile  dm/device-mapper.o
            clang -O2 -c {self.SYS}/dev/dm/device-mapper.c
            {self.SYS}/dev/dm/device-mapper.c:457:7: error: call to undeclared function 'prop_string_equals_string'; ISO C99 and later do not support implicit function declarations [-Wimplicit-function-declaration]
            {self.SYS}/dev/dm/device-mapper.c:470:7: error: second
            *** Error code 1
            """
        self.assertEqual(
            self.reason(log),
            "dev/dm/device-mapper.c:457:7: error: call to undeclared "
            "function 'prop_string_equals_string'")

    def test_fatal_error_and_common_path(self):
        log = f"""\
            /w/patched/common/include/prop/x.h:1:10: fatal error: 'lauxlib.h' file not found
            """
        self.assertEqual(self.reason(log),
                         "common/include/prop/x.h:1:10: fatal error: "
                         "'lauxlib.h' file not found")

    def test_linker_warning_fatal(self):
        log = """\
            #      link  nvmm/nvmm.kmod
            /usr/bin/ld: warning: nvmm_x86_vmxfunc.o: missing .note.GNU-stack section implies executable stack
            /usr/bin/ld: NOTE: This behaviour is deprecated
            clang-19: error: linker command failed with exit code 1 (use -v to see invocation)
            *** Error code 1
            """
        self.assertEqual(
            self.reason(log),
            "/usr/bin/ld: warning: nvmm_x86_vmxfunc.o: missing "
            ".note.GNU-stack section implies executable stack")

    def test_linker_only(self):
        log = """\
            clang-19: error: linker command failed with exit code 1
            """
        self.assertEqual(self.reason(log),
                         "clang-19: error: linker command failed with exit code 1")

    def test_make_error(self):
        log = """\
            make: don't know how to make foo.c. Stop
            """
        self.assertEqual(self.reason(log),
                         "make: don't know how to make foo.c. Stop")

    def test_nothing(self):
        self.assertRegex(self.reason("all fine\n"),
                         r"^no \.kmod and no error line \(see .*build\.log\)$")

    def test_long_line_cut(self):
        self.assertEqual(len(self.reason("x: error: " + "y" * 500 + "\n")), 240)


class RealModules(Tmp):
    def test_load_order_requirements_first_each_once(self):
        order = out("real_order").split()
        self.assertEqual(len(order), len(set(order)))
        self.assertLess(order.index("zlib"), order.index("vnd"))
        for m in ("clockctl", "vnd", "fss", "vcoda"):
            self.assertIn(m, order)

    def test_requires(self):
        self.assertEqual(out('requires vnd').strip(), "zlib")
        self.assertEqual(out('requires clockctl').strip(), "-")
        self.assertEqual(out('requires ktdev').strip(), "-")

    def test_table_fields(self):
        for line in out("real_modules").splitlines():
            if line.startswith("#"):
                continue
            f = line.split()
            self.assertEqual(len(f), 6, line)
            if f[2] == "-":
                self.assertEqual(f[3:], ["-", "-", "-"], line)
            else:
                self.assertIn(f[3], ("char", "block"), line)
                int(f[4])
                int(f[5])

    def test_real_modules_txt(self):
        for m in ("zlib", "clockctl", "vnd"):   # fss, vcoda not built
            self.write(f"out/{m}.kmod", "")
        o = os.path.join(self.tmp, "out")
        lines = out('real_modules_txt "$1"', o).splitlines()
        self.assertEqual(lines, [
            f"zlib {o}/zlib.kmod - - - -",
            f"clockctl {o}/clockctl.kmod /dev/clockctl char 79 0",
            f"vnd {o}/vnd.kmod /dev/rvnd0d char 41 3",
            f"vnd {o}/vnd.kmod /dev/vnd0d block 14 3",
        ])


class Edited(Tmp):
    """devsw-module-init.sh -n on a miniature sys/ tree."""

    def test_edited_lists_file_and_devsw(self):
        self.write("sys/kern/subr_devsw.c", "")
        self.write("sys/sys/conf.h", "struct localcount *d_localcount;\n")
        self.write("sys/sys/param.h", "#define __NetBSD_Version__ 1\n")
        self.write("sys/sys/localcount.h", "#define DEVSW_MODULE_INIT\n")
        self.write("sys/modules/Makefile", "")
        self.write("sys/modules/foo/Makefile", """\
            .PATH:	${S}/dev
            KMOD=	foo
            SRCS=	foo.c
            """)
        self.write("sys/dev/foo.c", """\
            const struct bdevsw foo_bdevsw = {
            	.d_open = fooopen,
            };
            const struct cdevsw foo_cdevsw = {
            	.d_open = fooopen,
            };
            """)
        got = out('edited "$1"', os.path.join(self.tmp, "sys")).splitlines()
        self.assertEqual(got, ["dev/foo.c foo_bdevsw", "dev/foo.c foo_cdevsw"])


class IoconfHint(Tmp):
    def test_hint_names_only_ioconf_symbols(self):
        self.write("obj/ioconf.c", """\
            #include "ioconf.h"
            CFDRIVER_DECL(tap, DV_IFNET, NULL);

            static struct cfdriver * const cfdriver_ioconf_tap[] = {
            """)
        obj = os.path.join(self.tmp, "obj")
        self.assertEqual(
            out('ioconf_hint "$1" tap_cd cfdriver_ioconf_tap printf', obj).strip(),
            "cfdriver_ioconf_tap tap_cd")
        self.assertEqual(out('ioconf_hint "$1" printf', obj).strip(), "")
        self.assertEqual(out('ioconf_hint "$1/none" tap_cd', obj).strip(), "")
        self.write("obj2/ioconf.c", "CFDRIVER_DECL(vnd, DV_DISK, NULL);\n")
        obj2 = os.path.join(self.tmp, "obj2")
        self.assertEqual(out('ioconf_hint "$1" vnd_cd x', obj2).strip(), "vnd_cd")


@unittest.skipUnless(shutil.which("cc") and shutil.which("readelf")
                     and shutil.which("nm"), "needs cc, readelf and nm")
class LocalcountRelocation(Tmp):
    """A d_localcount is a relocation at the devsw + the field's offset."""

    def setUp(self):
        super().setUp()
        src = self.write("devsw.c", """\
            struct localcount { void *a, *b; unsigned c; };
            /* the LP64 layouts: d_localcount at 120 (cdevsw), 88 (bdevsw) */
            struct cdevsw { char pad[120]; struct localcount *d_localcount; };
            struct bdevsw { char pad[88]; struct localcount *d_localcount; };
            extern int undefined_here;
            int *use = &undefined_here;
            const struct cdevsw with_cdevsw = {
            	.d_localcount = &(struct localcount){ 0, 0, 0 },
            };
            const struct bdevsw with_bdevsw = {
            	.d_localcount = &(struct localcount){ 0, 0, 0 },
            };
            const struct cdevsw without_cdevsw = { .pad = { 1 } };
            /* an unpatched tree's cdevsw ends where d_localcount would be */
            struct stock { char pad[120]; };
            const struct stock stock_cdevsw = { { 1 } };
            const void *const after_stock = &undefined_here;
            """)
        self.obj = os.path.join(self.tmp, "devsw.o")
        subprocess.run(["cc", "-O2", "-fno-pic", "-c", src, "-o", self.obj],
                       check=True)

    def lc(self, name, off):
        return sh('devsw_localcount "$1" "$2" "$3"', self.obj, name, str(off))[0]

    def test_set(self):
        self.assertEqual(self.lc("with_cdevsw", 120), 0)
        self.assertEqual(self.lc("with_bdevsw", 88), 0)

    def test_not_set(self):
        self.assertNotEqual(self.lc("without_cdevsw", 120), 0)
        self.assertNotEqual(self.lc("with_cdevsw", 88), 0)  # wrong offset
        self.assertNotEqual(self.lc("no_such_devsw", 120), 0)

    def test_shorter_devsw_has_none(self):
        self.assertNotEqual(self.lc("stock_cdevsw", 120), 0)

    def test_devsws_and_report(self):
        self.assertEqual(sorted(out('devsws "$1"', self.obj).splitlines()), [
            "stock_cdevsw 120", "with_bdevsw 88", "with_cdevsw 120",
            "without_cdevsw 120"])
        rc, report = sh('localcount_report "$1"', self.obj)
        self.assertEqual(rc, 1)
        set_part, unset_part = report.strip().split("; ")
        self.assertEqual(sorted(set_part.split()[2:]),
                         ["with_bdevsw", "with_cdevsw"])
        self.assertEqual(sorted(unset_part.split()[3:]),
                         ["stock_cdevsw", "without_cdevsw"])

    def test_report_all_set_and_no_devsw(self):
        src = self.write("one.c", """\
            struct cdevsw { char pad[120]; void *d_localcount; };
            static int lc;
            const struct cdevsw one_cdevsw = { .d_localcount = &lc };
            int other = 1;
            """)
        obj = os.path.join(self.tmp, "one.o")
        subprocess.run(["cc", "-O2", "-fno-pic", "-c", src, "-o", obj], check=True)
        self.assertEqual(out('localcount_report "$1"', obj).strip(),
                         "set in one_cdevsw")
        src = self.write("none.c", "int nothing = 1;\n")
        obj = os.path.join(self.tmp, "none.o")
        subprocess.run(["cc", "-O2", "-fno-pic", "-c", src, "-o", obj], check=True)
        self.assertEqual(out('localcount_report "$1"', obj).strip(), "no devsw")

    def test_redefined(self):
        defs = self.write("defs", "printf\nuse\nwith_cdevsw\n")
        self.assertEqual(out('redefined "$1" "$2"', self.obj, defs).strip(),
                         "use with_cdevsw")
        src = self.write("ls.c", """\
            int _end = 1;
            __attribute__((section("link_set_x"))) int __start_link_set_x = 1;
            """)
        obj = os.path.join(self.tmp, "ls.o")
        subprocess.run(["cc", "-O2", "-fno-pic", "-c", src, "-o", obj], check=True)
        defs = self.write("defs", "__start_link_set_x\n_end\n")
        self.assertEqual(out('redefined "$1" "$2"', obj, defs).strip(), "")

    def test_unresolved(self):
        defs = self.write("defs", "printf\n")
        self.assertEqual(out('unresolved "$1" "$2"', self.obj, defs).strip(),
                         "undefined_here")
        defs = self.write("defs", "undefined_here\n")
        self.assertEqual(out('unresolved "$1" "$2"', self.obj, defs).strip(), "")


class Summary(unittest.TestCase):
    def test_summary_line(self):
        self.assertEqual(out("summary_line 51 8 8").strip(),
                         "51 modules built, 8 failed (8 also without the edit)")


if __name__ == "__main__":
    unittest.main()
