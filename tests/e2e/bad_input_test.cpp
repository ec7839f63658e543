// Bad input, table-driven: each gives its documented exit status, exactly one
// "tcd: ..." line on stderr, nothing on stdout, and leaves the pins and the
// jump table exactly as they were.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <regex>
#include <sstream>
#include <string>
#include <thread>

#include "core/bpffs.h"
#include "core/error.h"
#include "tests/common/kernel.h"
#include "tests/common/lock_files.h"
#include "tests/common/shell.h"
#include "tests/common/tcd_cmd.h"

namespace {

using tcdtest::Cmd;
using tcdtest::sh;

TEST(BadInput, ExitStatusOneLineNothingChanged) {
    TCD_REQUIRE_KERNEL();
    std::string dir = "/sys/fs/bpf/" + tcdtest::unique_name("tcdbad");
    std::string tcd = std::string(TCD_BIN) + " -d " + dir;
    tcdtest::LockFiles locks{dir, "/tmp/tcd-not-bpffs"};
    std::string objdir = TCD_BPF_OBJ_DIR;
    sh(tcd + " -q unload");
    ASSERT_EQ(sh(tcd + " -q load").rc, 0);
    ASSERT_EQ(sh(tcd + " -q map set tcp tcp_handler").rc, 0);
    // Programs the table must refuse: tc and frags, loaded with bpftool.
    std::string odd = dir + "-odd";
    sh("rm -rf " + odd);
    ASSERT_EQ(sh("bpftool prog loadall " + objdir + "/odd_handlers.bpf.o " + odd).rc, 0);
    std::string notpcap = "/tmp/tcd_bad_notpcap_" + std::to_string(getpid());
    std::ofstream(notpcap) << "this is not a capture\n";

    struct Case {
        std::string args;
        int rc;
        std::string says;
    } cases[] = {
        {"map set 256 pass", 2, "key 256: out of range"},
        {"map set -1 pass", 2, "key -1: unknown protocol name"},
        {"map set nosuchproto pass", 2, "unknown protocol name"},
        {"map set 6", 2, "HANDLER is required"},
        {"map set 6 nosuchhandler", 1, "not pinned in"},
        {"map set 6 " + dir + "/maps/jt", 1, "is a map, not a program"},
        {"map set 6 " + odd + "/tc_prog", 1, "program type is sched_cls"},
        {"map set 6 " + odd + "/frags_h", 1, "frags flag differs"},
        {"map set 6 id:0", 2, "not a program id"},
        {"map set 6 id:999999999", 1, "no such program"},
        {"map del 300", 2, "out of range"},
        {"handler load /nonexistent.o", 1, "no such file"},
        {"handler load " + notpcap, 1, "not a BPF ELF object"},
        {"handler load " + objdir + "/bad_jt.bpf.o", 1, "max_entries is 2"},
        {"handler unload tcp_handler", 1, "is built in"},
        {"trace --pcap /nonexistent.pcap", 1, "no such file"},
        {"trace --pcap " + notpcap, 1, "not a pcap or pcapng capture"},
        {"trace --hex zz", 2, "not a hex digit"},
        {"attach nosuchif0", 1, "no such interface (see 'ip link'; one in another network namespace needs --netns NAME)"},
        {"attach lo --netns nosuchns", 1, "network namespace nosuchns: not found"},
        {"attach lo --mode turbo", 2, "--mode"},
        {"stats --watch --interval -1", 2, "--interval"},
        {"stats --watch --count -3", 2, "--count"},
        {"stats --bogus", 2, "unknown option --bogus"},
        {"frobnicate", 2, "frobnicate"},
        {"load --miss-action maybe", 2, "--miss-action"},
        {"load --miss-action drop", 1, "--force"},
        {"load --key port", 1, "holds a proto dispatcher"},
        {"load -d /tmp/tcd-not-bpffs", 2, "-d: given 2 times"},
        {"object -o /nonexistent-dir/x.o", 1, "no such file"},
        // EPERM/EACCES from the kernel, said as their real cause (root has
        // the privileges: no privilege hint, checked below).
        {"map set tcp /etc/passwd", 1, "handler /etc/passwd: is not on a bpffs"},
        {"handler unload maps", 1, "handler maps: is a directory, not a pin"},
        {"handler load " + objdir + "/bad_verifier.bpf.o", 1,
         "the verifier rejected it: invalid access to packet"},
    };
    ASSERT_GE(std::size(cases), 20u);
    // The pins, the program id behind each program pin (a pin replaced by
    // another program of the same name shows), and the jump table.
    auto state = [&] {
        return sh("ls -R " + dir + "; for p in " + dir + "/*; do [ -f \"$p\" ] && echo \"$p\" " +
                  "$(bpftool prog show pinned \"$p\" 2>&1 | head -1 | cut -d: -f1); done; " +
                  "bpftool map dump pinned " + dir + "/maps/jt")
            .out;
    };
    std::string before = state();
    // The snapshot names each program pin with its id.
    for (const char* pin : {"/xdp_dispatch", "/tcp_handler", "/drop"})
        EXPECT_TRUE(std::regex_search(before, std::regex(dir + pin + " [0-9]+\n"))) << pin << " in " << before;
    for (const auto& c : cases) {
        Cmd r = sh(tcd + " " + c.args);
        EXPECT_EQ(r.rc, c.rc) << c.args << ": " << r.err;
        EXPECT_EQ(r.out, "") << c.args;
        EXPECT_EQ(r.err.rfind("tcd: ", 0), 0u) << c.args << ": " << r.err;
        EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << c.args << ": " << r.err;
        EXPECT_NE(r.err.find(c.says), std::string::npos) << c.args << ": " << r.err;
        EXPECT_EQ(r.err.find("errno"), std::string::npos) << c.args;
        if (tcd::has_bpf_privileges()) EXPECT_EQ(r.err.find("CAP_BPF"), std::string::npos) << c.args << ": " << r.err;
        EXPECT_EQ(state(), before) << c.args;
    }
    // The verifier's own words, with -v for the whole log.
    Cmd v = sh(tcd + " handler load " + objdir + "/bad_verifier.bpf.o");
    EXPECT_NE(v.err.find("(-v shows the whole verifier log)"), std::string::npos) << v.err;
    // bpffs names hold no dots: said so, nothing made.
    std::string dotted = "/sys/fs/bpf/" + tcdtest::unique_name("tcdbad") + ".x";
    locks.add(dotted);
    Cmd dot = sh(std::string(TCD_BIN) + " -d " + dotted + " load");
    EXPECT_EQ(dot.rc, 1) << dot.err;
    EXPECT_NE(dot.err.find("bpffs names cannot contain dots"), std::string::npos) << dot.err;
    EXPECT_FALSE(tcd::bpffs::exists(dotted));
    // Not root: refused before anything is touched, saying what it needs.
    // 'nobody' with no capabilities (setpriv drops them with the uid).
    if (sh("command -v setpriv").rc == 0) {
        std::string nobody = "setpriv --reuid=65534 --regid=65534 --clear-groups " + tcd + " ";
        for (const char* args : {"map set tcp drop", "unload", "attach lo", "stats", "map del tcp", "load --force",
                                 "handler unload tcp_handler", "detach --all"}) {
            Cmd r = sh(nobody + args);
            EXPECT_EQ(r.rc, 1) << args << ": " << r.err;
            EXPECT_EQ(r.out, "") << args;
            EXPECT_EQ(r.err.rfind("tcd: ", 0), 0u) << args << ": " << r.err;
            EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << args << ": " << r.err;
            EXPECT_NE(r.err.find("needs root or CAP_BPF+CAP_NET_ADMIN"), std::string::npos) << args << ": " << r.err;
            EXPECT_EQ(state(), before) << args;
        }
    } else if (tcdtest::in_ci()) {
        ADD_FAILURE() << "setpriv is not installed (util-linux)";
    }
    EXPECT_FALSE(tcd::bpffs::exists("/tmp/tcd-not-bpffs"));
    std::remove(notpcap.c_str());
    sh("rm -rf " + odd + "; " + tcd + " -q unload");
}

// The ownership rule (docs/cli.md, "What tcd touches"): unload, detach and
// load (--force) on a directory that is not a tcd instance -- a subdirectory
// of one, another tool's pins, the root of a bpffs mount, an instance holding
// entries tcd did not make -- are refused before anything is touched, saying
// what was found, and status does not offer 'tcd unload' for them.
TEST(BadInput, RefusesWhatIsNotTcds) {
    TCD_REQUIRE_KERNEL();
    tcdtest::LockFiles locks;
    std::string dir = locks.add("/sys/fs/bpf/" + tcdtest::unique_name("tcdown"));
    std::string foreign = locks.add(dir + "-foreign");
    std::string mnt = locks.add("/tmp/" + tcdtest::unique_name("tcdown_mnt"));
    locks.add(dir + "/maps");
    locks.add(dir + "/maps/jt");
    std::string tcd = std::string(TCD_BIN) + " ";
    std::string objdir = TCD_BPF_OBJ_DIR;
    auto cleanup = [&] {
        sh("umount " + mnt + " 2>/dev/null; rmdir " + mnt + " 2>/dev/null; rm -rf " + foreign + "; rm -f " + dir +
           "/stray; " + tcd + "-q -d " + dir + " unload");
    };
    cleanup();
    ASSERT_EQ(sh(tcd + "-q -d " + dir + " load").rc, 0);
    // Another tool's pins: programs bpftool loaded, a map in a subdirectory
    // (tc programs that load on every kernel of the matrix: odd_handlers'
    // xdp.frags section does not load on 5.10).
    ASSERT_EQ(sh("bpftool prog loadall " + objdir + "/neighbour.bpf.o " + foreign).rc, 0);
    ASSERT_EQ(sh("mkdir " + foreign + "/sub && bpftool map create " + foreign +
                 "/sub/m type array key 4 value 4 entries 1 name tcdown_m").rc, 0);
    // A bpffs of its own, its root holding a program pin (the root of
    // /sys/fs/bpf is not for a test to gamble with).
    ASSERT_EQ(sh("mkdir -p " + mnt + " && mount -t bpf bpf " + mnt).rc, 0);
    ASSERT_EQ(sh("bpftool prog loadall " + objdir + "/neighbour.bpf.o " + mnt + "/odd").rc, 0);
    ASSERT_EQ(sh("bpftool prog pin pinned " + mnt + "/odd/nb_count " + mnt + "/tc_prog").rc, 0);

    auto state = [&] {
        return sh("find " + dir + " " + foreign + " " + mnt + " | sort; bpftool map dump pinned " + dir + "/maps/jt")
            .out;
    };
    std::string before = state();
    for (const char* pin : {"/maps/jt", "/maps/proto_stats", "/maps/attach", "/xdp_dispatch"})
        ASSERT_NE(before.find(dir + pin + "\n"), std::string::npos) << pin << " in " << before;
    ASSERT_NE(before.find(foreign + "/sub/m\n"), std::string::npos) << before;
    ASSERT_NE(before.find(mnt + "/tc_prog\n"), std::string::npos) << before;

    struct Case {
        std::string dir;
        std::string says;
    } cases[] = {
        {dir + "/maps", "is the maps directory of the instance " + dir},
        {dir + "/maps/", "is the maps directory of the instance"},
        {foreign, "is not a tcd instance: it holds nb_count (a program)"},
        {mnt, "is the root of a bpffs mount"},
        {dir + "/maps/jt", "is a map, not an instance directory"},
    };
    for (const auto& c : cases) {
        for (const char* args : {"unload", "unload --force", "detach --all", "load --force", "load"}) {
            Cmd r = sh(tcd + "-d " + c.dir + " " + args);
            EXPECT_EQ(r.rc, 1) << c.dir << " " << args << ": " << r.err;
            EXPECT_EQ(r.out, "") << c.dir << " " << args;
            EXPECT_EQ(r.err.rfind("tcd: ", 0), 0u) << c.dir << " " << args << ": " << r.err;
            EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << c.dir << " " << args << ": " << r.err;
            EXPECT_NE(r.err.find(c.says), std::string::npos) << c.dir << " " << args << ": " << r.err;
            EXPECT_EQ(state(), before) << c.dir << " " << args;
        }
        Cmd st = sh(tcd + "-d " + c.dir + " status");
        EXPECT_EQ(st.out.find("'tcd unload' removes it"), std::string::npos) << c.dir << ": " << st.out;
        EXPECT_NE(st.out.find(c.says), std::string::npos) << c.dir << ": " << st.out;
    }
    // The bpffs root proper: status only.
    Cmd root = sh(tcd + "-d /sys/fs/bpf status");
    EXPECT_EQ(root.out.find("'tcd unload' removes it"), std::string::npos) << root.out;
    EXPECT_NE(root.out.find("is the root of a bpffs mount"), std::string::npos) << root.out;
    // The instance still runs whole: status calls it loaded, with no problem.
    Cmd st = sh(tcd + "-j -d " + dir + " status");
    EXPECT_TRUE(std::regex_search(st.out, std::regex("\"loaded\": ?true"))) << st.out;

    // An instance holding a map another tool pinned there: its unload is
    // refused before any of its pins go, and goes through once it is moved out.
    ASSERT_EQ(sh("bpftool map create " + dir + "/stray type array key 4 value 4 entries 1 name tcdown_s").rc, 0);
    std::string with_stray = state();
    Cmd r = sh(tcd + "-d " + dir + " unload");
    EXPECT_EQ(r.rc, 1) << r.err;
    EXPECT_NE(r.err.find("holds entries tcd did not make: stray (a map)"), std::string::npos) << r.err;
    EXPECT_EQ(state(), with_stray);
    EXPECT_NE(sh(tcd + "-d " + dir + " status").out.find("'tcd unload' refuses"), std::string::npos);
    ASSERT_EQ(sh("rm " + dir + "/stray").rc, 0);
    EXPECT_EQ(sh(tcd + "-q -d " + dir + " unload").rc, 0);
    EXPECT_FALSE(tcd::bpffs::exists(dir));
    cleanup();
}

// --mode hw on a device without XDP offload (a veth): libxdp crashed on it,
// after attach had loaded an instance and recorded the attachment. Refused
// before anything is loaded or recorded, naming the driver; from an apply
// file too.
TEST(BadInput, HwModeWithoutOffload) {
    TCD_REQUIRE_KERNEL();
    tcdtest::LockFiles locks;
    std::string ns = tcdtest::unique_name("tcdhw");
    std::string dir = locks.add("/sys/fs/bpf/" + ns);
    std::string yaml = "/tmp/" + ns + ".yaml";
    std::string tcd = std::string(TCD_BIN) + " -d " + dir + " ";
    auto cleanup = [&] {
        sh(tcd + "-q unload; ip netns del " + ns + " 2>/dev/null; rm -f " + yaml);
    };
    cleanup();
    ASSERT_EQ(sh("ip netns add " + ns + " && ip -n " + ns + " link add hw0 type veth peer name hw1 && ip -n " + ns +
                 " link set hw0 up && ip -n " + ns + " link set hw1 up")
                  .rc,
              0);
    std::ofstream(yaml) << "pin_dir: " << dir << "\ninterfaces:\n  - name: hw0\n    netns: " << ns
                        << "\n    mode: hw\n";
    auto check = [&](const std::string& args) {
        Cmd r = sh(tcd + args);
        EXPECT_EQ(r.rc, 1) << args << ": " << r.err;
        EXPECT_EQ(r.out, "") << args;
        EXPECT_EQ(r.err.rfind("tcd: ", 0), 0u) << args << ": " << r.err;
        EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << args << ": " << r.err;
        EXPECT_NE(r.err.find("(driver veth) has no XDP offload"), std::string::npos) << args << ": " << r.err;
    };
    const std::string attach = "attach hw0 --netns " + ns + " --mode hw";
    // Nothing loaded: nothing is left loaded.
    for (const std::string& args : {attach, attach + " --alone", "apply -f " + yaml}) {
        check(args);
        EXPECT_FALSE(tcd::bpffs::exists(dir)) << args;
    }
    // Loaded: the instance as it was, no attachment recorded, none on the device.
    ASSERT_EQ(sh(tcd + "-q load").rc, 0);
    std::string before = sh(tcd + "-j status").out;
    for (const std::string& args : {attach, attach + " --alone", "apply -f " + yaml}) {
        check(args);
        EXPECT_EQ(sh(tcd + "-j status").out, before) << args;
        EXPECT_EQ(sh("bpftool map dump pinned " + dir + "/maps/attach").out.find("key"), std::string::npos) << args;
        EXPECT_EQ(sh("ip -n " + ns + " link show hw0").out.find("xdp"), std::string::npos) << args;
    }
    cleanup();
}

// Command lines that contradict themselves, and commands that do not exist:
// exit 2, one line that names the problem, nothing done (no pin dir made).
TEST(BadInput, ConflictsAndUnknownCommands) {
    TCD_REQUIRE_KERNEL();
    tcdtest::LockFiles locks;
    std::string a = locks.add("/sys/fs/bpf/" + tcdtest::unique_name("tcdconf") + "_a");
    std::string b = locks.add("/sys/fs/bpf/" + tcdtest::unique_name("tcdconf") + "_b");
    std::string bin = TCD_BIN;
    struct Case {
        std::string line;
        std::string says;
    } cases[] = {
        {"frobnicate", "unknown command 'frobnicate' (the commands: "},
        {"frobnicate --help", "unknown command 'frobnicate'"},
        {"-d " + a + " -q frobnicate -j", "unknown command 'frobnicate'"},
        {"map frob", "unknown command 'map frob' (the commands of map: "},
        {"-d " + a + " -d " + b + " load", "-d: given 2 times"},
        {"-d " + a + " load -d " + b, "-d: given 2 times"},
        {"-d '' load", "-d: an empty pin dir"},
        {"-d " + a + " -j stats --format prometheus", "-j asks for JSON, --format prometheus"},
        {"-d " + a + " -j object -o -", "stdout holds the object"},
        {"TCD_LOCK_TIMEOUT=abc " + bin + " -d " + a + " load", "TCD_LOCK_TIMEOUT=abc: not a number of seconds"},
        {"TCD_LOCK_TIMEOUT=-1 " + bin + " -d " + a + " load", "TCD_LOCK_TIMEOUT=-1: not a number of seconds"},
        {"TCD_LOCK_TIMEOUT= " + bin + " -d " + a + " load", "TCD_LOCK_TIMEOUT=: not a number of seconds"},
    };
    for (const auto& c : cases) {
        std::string line = c.line.rfind("TCD_", 0) == 0 ? c.line : bin + " " + c.line;
        Cmd r = sh(line);
        EXPECT_EQ(r.rc, 2) << c.line << ": " << r.err;
        EXPECT_EQ(r.out, "") << c.line;
        EXPECT_EQ(r.err.rfind("tcd: ", 0), 0u) << c.line << ": " << r.err;
        EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << c.line << ": " << r.err;
        EXPECT_NE(r.err.find(c.says), std::string::npos) << c.line << ": " << r.err;
        EXPECT_FALSE(tcd::bpffs::exists(a)) << c.line;
        EXPECT_FALSE(tcd::bpffs::exists(b)) << c.line;
    }
    // The unknown command's line lists the real ones.
    Cmd r = sh(bin + " frobnicate");
    for (const char* cmd : {"attach", "detach", "map", "stats", "load", "unload", "status", "handler", "object"})
        EXPECT_NE(r.err.find(std::string(cmd) + ","), std::string::npos) << cmd << ": " << r.err;
    // A valid number of seconds is taken; a pin dir not on bpffs still says so.
    r = sh("TCD_LOCK_TIMEOUT=2.5 " + bin + " -d /tmp/tcd-not-bpffs load");
    EXPECT_EQ(r.rc, 1) << r.err;
    EXPECT_NE(r.err.find("not on a bpffs"), std::string::npos) << r.err;
    EXPECT_FALSE(tcd::bpffs::exists("/tmp/tcd-not-bpffs"));
    tcdtest::remove_lock_file("/tmp/tcd-not-bpffs");
}

// tcd object -o (docs/cli.md, "Output files"): '-' is stdout, a FIFO or a
// device is written into and stays what it is, a symlink is refused and left
// alone, a regular file is replaced whole (a new inode renamed over it), and
// no temporary file is left. Errors name the file's cause, never privileges
// (object needs none).
TEST(BadInput, ObjectOutputFiles) {
    std::string d = "/tmp/" + tcdtest::unique_name("tcdobj");
    ASSERT_EQ(sh("rm -rf " + d + " && mkdir " + d).rc, 0);
    std::string obj = std::string(TCD_BIN) + " object -o ";
    auto slurp = [](const std::string& p) {
        std::ifstream f(p, std::ios::binary);
        return std::string(std::istreambuf_iterator<char>(f), {});
    };
    // A regular file: written, then replaced by a new inode.
    ASSERT_EQ(sh("echo old > " + d + "/x.o").rc, 0);
    std::string ino = sh("stat -c %i " + d + "/x.o").out;
    Cmd r = sh(obj + d + "/x.o");
    ASSERT_EQ(r.rc, 0) << r.err;
    std::string elf = slurp(d + "/x.o");
    ASSERT_GT(elf.size(), 1000u);
    EXPECT_EQ(elf.substr(0, 4), "\x7f" "ELF");
    EXPECT_NE(sh("stat -c %i " + d + "/x.o").out, ino);
    // '-': the bytes on stdout, nothing else, and no file named '-'.
    r = sh("cd " + d + " && " + obj + "- > " + d + "/stdout.o");
    EXPECT_EQ(r.rc, 0) << r.err;
    EXPECT_EQ(r.err, "");
    EXPECT_EQ(slurp(d + "/stdout.o"), elf);
    EXPECT_FALSE(std::filesystem::exists(d + "/-"));
    // A FIFO: written into, still a FIFO.
    ASSERT_EQ(sh("mkfifo " + d + "/fifo").rc, 0);
    r = sh("cat " + d + "/fifo > " + d + "/from_fifo.o & " + obj + d + "/fifo; rc=$?; wait; exit $rc");
    EXPECT_EQ(r.rc, 0) << r.err;
    EXPECT_EQ(slurp(d + "/from_fifo.o"), elf);
    EXPECT_EQ(sh("stat -c %F " + d + "/fifo").out, "fifo\n");
    // A device: written into (/dev/full says no space), never replaced.
    r = sh(obj + "/dev/full");
    EXPECT_EQ(r.rc, 1);
    EXPECT_EQ(r.err, "tcd: write /dev/full: no space left\n");
    EXPECT_EQ(sh("stat -c %F:%t:%T /dev/full").out, "character special file:1:7\n");
    // A symlink: refused; the link and what it points to stay as they were.
    ASSERT_EQ(sh("echo keep > " + d + "/target && ln -s " + d + "/target " + d + "/link").rc, 0);
    r = sh(obj + d + "/link");
    EXPECT_EQ(r.rc, 1);
    EXPECT_NE(r.err.find("is a symbolic link; tcd does not replace it"), std::string::npos) << r.err;
    EXPECT_EQ(sh("readlink " + d + "/link").out, d + "/target\n");
    EXPECT_EQ(slurp(d + "/target"), "keep\n");
    // A directory that is missing: its own cause, no privilege hint.
    r = sh(obj + d + "/nodir/x.o");
    EXPECT_EQ(r.rc, 1);
    EXPECT_NE(r.err.find("no such file"), std::string::npos) << r.err;
    // An immutable file (where the filesystem has the attribute): refused by
    // the kernel, said as the file's attributes, not as missing privileges.
    if (sh("echo old > " + d + "/imm && chattr +i " + d + "/imm 2>/dev/null").rc == 0) {
        r = sh(obj + d + "/imm");
        EXPECT_EQ(r.rc, 1);
        EXPECT_NE(r.err.find("lsattr"), std::string::npos) << r.err;
        EXPECT_EQ(slurp(d + "/imm"), "old\n");
        sh("chattr -i " + d + "/imm");
    }
    for (Cmd c : {sh(obj + "/dev/full"), sh(obj + d + "/link"), sh(obj + d + "/nodir/x.o")})
        EXPECT_EQ(c.err.find("CAP_BPF"), std::string::npos) << c.err;
    // No temporary file left beside the outputs.
    EXPECT_EQ(sh("ls -A " + d).out, std::string("fifo\nfrom_fifo.o\n") + (std::filesystem::exists(d + "/imm") ? "imm\n" : "") +
                                         "link\nstdout.o\ntarget\nx.o\n");
    sh("rm -rf " + d);
}

// load on a loaded instance keeps the kind its pins say where --key and
// --hook are left out: --force --miss-action drop on a port instance reloads
// it as a port instance (it said "'tcd unload' it first"); a kind given that
// differs is still refused.
TEST(BadInput, LoadKeepsTheKindItIsNotGiven) {
    TCD_REQUIRE_KERNEL();
    tcdtest::LockFiles locks;
    std::string dir = locks.add("/sys/fs/bpf/" + tcdtest::unique_name("tcdkind"));
    std::string tcd = std::string(TCD_BIN) + " -d " + dir + " ";
    sh(tcd + "-q unload");
    ASSERT_EQ(sh(tcd + "-q load --key port --hook tc").rc, 0);
    ASSERT_EQ(sh(tcd + "-q map set 8080 drop").rc, 0);
    Cmd same = sh(tcd + "-j load");
    EXPECT_EQ(same.rc, 0) << same.err;
    EXPECT_TRUE(std::regex_search(same.out, std::regex("\"changed\": ?false"))) << same.out;
    Cmd r = sh(tcd + "-j load --force --miss-action drop");
    EXPECT_EQ(r.rc, 0) << r.err;
    Cmd st = sh(tcd + "-j status");
    EXPECT_TRUE(std::regex_search(st.out, std::regex("\"key\": ?\"port\""))) << st.out;
    EXPECT_TRUE(std::regex_search(st.out, std::regex("\"hook\": ?\"tc\""))) << st.out;
    EXPECT_TRUE(std::regex_search(st.out, std::regex("\"miss_action\": ?\"drop\""))) << st.out;
    EXPECT_NE(sh(tcd + "map list").out.find("8080"), std::string::npos);
    Cmd other = sh(tcd + "load --key proto --force");
    EXPECT_EQ(other.rc, 1) << other.err;
    EXPECT_NE(other.err.find("holds a port dispatcher"), std::string::npos) << other.err;
    EXPECT_EQ(sh(tcd + "-q unload").rc, 0);
}

// -v shows libbpf's and libxdp's words about the command's own work, not
// those of tcd's feature probes, which expect refusals: libbpf called the
// freplace probe's EPERM under lockdown "a permission error while running
// as root; try raising 'ulimit -l'?" in status -v and attach -v.
TEST(BadInput, VerboseShowsNoProbeRefusals) {
    TCD_REQUIRE_KERNEL();
    tcdtest::LockFiles locks;
    std::string dir = locks.add("/sys/fs/bpf/" + tcdtest::unique_name("tcdverb"));
    std::string tcd = std::string(TCD_BIN) + " -d " + dir + " ";
    sh(tcd + "-q unload");
    ASSERT_EQ(sh(tcd + "-q load").rc, 0);
    for (const char* cmd : {"-v status", "-v -j status", "-v map set tcp pass"}) {
        Cmd c = sh(tcd + cmd);
        EXPECT_EQ(c.rc, 0) << cmd << ": " << c.err;
        EXPECT_EQ(c.err.find("ulimit"), std::string::npos) << cmd << ": " << c.err;
        EXPECT_EQ(c.err.find("permission error"), std::string::npos) << cmd << ": " << c.err;
    }
    EXPECT_EQ(sh(tcd + "-q unload").rc, 0);
}

// detach --all that clears attach records leading nowhere says what it
// cleared (it said "attached nowhere, nothing to do"): a record whose
// interface is gone, and one whose namespace is gone; in JSON with "stale".
TEST(BadInput, DetachAllNamesTheStaleRecordsItClears) {
    TCD_REQUIRE_KERNEL();
    tcdtest::LockFiles locks;
    std::string ns = tcdtest::unique_name("safety_st");
    std::string ns2 = ns + "b";
    std::string dir = locks.add("/sys/fs/bpf/" + ns);
    std::string tcd = std::string(TCD_BIN) + " -d " + dir + " ";
    auto cleanup = [&] { sh(tcd + "-q unload; ip netns del " + ns + " 2>/dev/null; ip netns del " + ns2 + " 2>/dev/null"); };
    cleanup();
    auto veth = [&](const std::string& n) {
        return sh("ip netns add " + n + " && ip -n " + n + " link add st0 type veth peer name st1 && ip -n " + n +
                  " link set st0 up && ip -n " + n + " link set st1 up")
            .rc;
    };
    ASSERT_EQ(veth(ns), 0);
    ASSERT_EQ(veth(ns2), 0);
    for (int round = 0; round < 2; ++round) {
        ASSERT_EQ(sh(tcd + "-q attach st0 --netns " + ns + " --mode skb").rc, 0);
        ASSERT_EQ(sh(tcd + "-q attach st0 --netns " + ns2 + " --mode skb").rc, 0);
        std::string ifindex = sh("ip -n " + ns + " -o link show st0 | cut -d: -f1").out;
        ifindex.erase(ifindex.find_last_not_of("\n") + 1);
        // The interface goes in the first namespace; the second namespace goes.
        ASSERT_EQ(sh("ip -n " + ns + " link del st0").rc, 0);
        ASSERT_EQ(sh("ip netns del " + ns2).rc, 0);
        Cmd st = sh(tcd + "status");
        EXPECT_NE(st.out.find("stale attach record"), std::string::npos) << st.out;
        Cmd r = sh(tcd + (round ? "-j " : "") + "detach --all");
        EXPECT_EQ(r.rc, 0) << r.err;
        if (round == 0) {
            EXPECT_EQ(r.out.find("nothing to do"), std::string::npos) << r.out;
            EXPECT_NE(r.out.find("cleared the stale attach record of ifindex " + ifindex + " in /run/netns/" + ns +
                                 ": the interface is gone\n"),
                      std::string::npos)
                << r.out;
            EXPECT_NE(r.out.find("cleared the stale attach record of ifindex "), std::string::npos) << r.out;
            EXPECT_NE(r.out.find(": the network namespace is gone\n"), std::string::npos) << r.out;
            EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 2) << r.out;
        } else {
            EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
            EXPECT_NE(r.out.find("\"stale\":"), std::string::npos) << r.out;
            EXPECT_NE(r.out.find("the interface is gone"), std::string::npos) << r.out;
            EXPECT_NE(r.out.find("the network namespace is gone"), std::string::npos) << r.out;
        }
        // Cleared: status has no stale record, a second detach --all has nothing to do.
        EXPECT_EQ(sh(tcd + "status").out.find("stale attach record"), std::string::npos);
        EXPECT_EQ(sh(tcd + "detach --all").out, "attached nowhere, nothing to do\n");
        // Again, on fresh interfaces, for the JSON round.
        ASSERT_EQ(sh("ip -n " + ns + " link add st0 type veth peer name st2 && ip -n " + ns + " link set st0 up && ip -n " +
                     ns + " link set st2 up")
                      .rc,
                  0);
        ASSERT_EQ(veth(ns2), 0);
    }
    cleanup();
}

// Two instances on one interface: the second finds the first's dispatcher
// running alone there (the same answer as when a concurrent attach of the
// first wins the kernel's attach: EEXIST, then the same query). It names the
// tcd instance that runs there, and its hint does not take that one off.
TEST(BadInput, SecondInstanceOnAnInterfaceNamesTheFirst) {
    TCD_REQUIRE_KERNEL();
    tcdtest::LockFiles locks;
    std::string ns = tcdtest::unique_name("safety_two");
    std::string a = locks.add("/sys/fs/bpf/" + ns + "_a");
    std::string b = locks.add("/sys/fs/bpf/" + ns + "_b");
    std::string bin = std::string(TCD_BIN);
    auto cleanup = [&] {
        sh(bin + " -q -d " + b + " unload; " + bin + " -q -d " + a + " unload; ip netns del " + ns + " 2>/dev/null");
    };
    cleanup();
    ASSERT_EQ(sh("ip netns add " + ns + " && ip -n " + ns + " link add tw0 type veth peer name tw1 && ip -n " + ns +
                 " link set tw0 up && ip -n " + ns + " link set tw1 up")
                  .rc,
              0);
    ASSERT_EQ(sh(bin + " -q -d " + a + " attach tw0 --netns " + ns + " --mode skb --alone").rc, 0);
    ASSERT_EQ(sh(bin + " -q -d " + b + " load").rc, 0);
    std::string id = sh("bpftool prog show pinned " + a + "/xdp_dispatch | head -1 | cut -d: -f1").out;
    id.erase(id.find_last_not_of("\n") + 1);
    std::string before = sh(bin + " -j -d " + a + " status").out;
    for (const char* extra : {"", " --alone", " --mode skb --alone"}) {
        Cmd r = sh(bin + " -d " + b + " attach tw0 --netns " + ns + extra);
        EXPECT_EQ(r.rc, 1) << extra << ": " << r.err;
        EXPECT_EQ(r.err.rfind("tcd: interface tw0: the tcd instance " + a + " runs there: xdp_dispatch (id " + id + ")", 0),
                  0u)
            << extra << ": " << r.err;
        EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
        EXPECT_NE(r.err.find("see 'tcd -d " + a + " status'"), std::string::npos) << r.err;
        for (const char* destructive : {"xdp off", "detach", "--force", "unload"})
            EXPECT_EQ(r.err.find(destructive), std::string::npos) << destructive << " in " << r.err;
        EXPECT_EQ(sh(bin + " -j -d " + a + " status").out, before) << extra;
        EXPECT_EQ(std::to_string(tcdtest::xdp_dispatcher_at(ns, "tw0")), id);
    }
    cleanup();
}

// Two instances attaching to one interface at the same moment (issue 20):
// the kernel refuses the later one (EEXIST/EBUSY), and the loser must name
// the winner's instance as when it finds it there first, never say "attached
// in another mode" with an 'xdp off' hint. Each round starts both attaches
// together (two threads released at once) and checks the outcome, whoever
// wins: one wins, the loser exits 1 naming the winner's pin dir, nothing of
// the loser stays attached or recorded, and no hint to detach. Rounds in one
// mode (native, skb) and in two (skb against native, where the kernel's
// answer is EBUSY/EEXIST for the other mode). A fixed number of rounds.
TEST(BadInput, RacingAttachesNameTheWinner) {
    TCD_REQUIRE_KERNEL();
    tcdtest::LockFiles locks;
    std::string ns = tcdtest::unique_name("safety_race");
    std::string dirs[2] = {locks.add("/sys/fs/bpf/" + ns + "_a"), locks.add("/sys/fs/bpf/" + ns + "_b")};
    std::string bin = std::string(TCD_BIN);
    auto cleanup = [&] {
        sh(bin + " -q -d " + dirs[0] + " unload; " + bin + " -q -d " + dirs[1] + " unload; ip netns del " + ns +
           " 2>/dev/null");
    };
    cleanup();
    ASSERT_EQ(sh("ip netns add " + ns + " && ip -n " + ns + " link add ra0 type veth peer name ra1 && ip -n " + ns +
                 " link set ra0 up && ip -n " + ns + " link set ra1 up")
                  .rc,
              0);
    std::string ids[2];
    for (int i = 0; i < 2; i++) {
        ASSERT_EQ(sh(bin + " -q -d " + dirs[i] + " load").rc, 0);
        ids[i] = sh("bpftool prog show pinned " + dirs[i] + "/xdp_dispatch | head -1 | cut -d: -f1").out;
        ids[i].erase(ids[i].find_last_not_of("\n") + 1);
        ASSERT_FALSE(ids[i].empty());
    }
    const std::pair<const char*, const char*> modes[] = {
        {" --alone", " --alone"},
        {" --alone --mode skb", " --alone --mode skb"},
        {" --alone --mode skb", " --alone"},
        {" --alone", " --alone --mode skb"},
    };
    int wins[2] = {0, 0};
    for (int round = 0; round < 20; round++) {
        const auto& [mode_a, mode_b] = modes[round % 4];
        const std::string extra[2] = {mode_a, mode_b};
        std::string where = "round " + std::to_string(round) + " (a" + extra[0] + ", b" + extra[1] + ")";
        std::atomic<int> ready{0};
        std::atomic<bool> go{false};
        Cmd r[2];
        auto run = [&](int i) {
            ready++;
            while (!go) std::this_thread::yield();
            r[i] = sh(bin + " -d " + dirs[i] + " attach ra0 --netns " + ns + extra[i]);
        };
        std::thread ta(run, 0), tb(run, 1);
        while (ready < 2) std::this_thread::yield();
        go = true;
        ta.join();
        tb.join();
        ASSERT_EQ((r[0].rc == 0) + (r[1].rc == 0), 1)
            << where << ": a exit " << r[0].rc << " (" << r[0].err << "), b exit " << r[1].rc << " (" << r[1].err << ")";
        const int w = r[0].rc == 0 ? 0 : 1, l = 1 - w;
        wins[w]++;
        const Cmd& lost = r[l];
        EXPECT_EQ(lost.rc, 1) << where << ": " << lost.err;
        EXPECT_EQ(lost.err.rfind("tcd: interface ra0: the tcd instance " + dirs[w] + " runs there: xdp_dispatch (id " +
                                     ids[w] + ")",
                                 0),
                  0u)
            << where << ": " << lost.err;
        EXPECT_EQ(std::count(lost.err.begin(), lost.err.end(), '\n'), 1) << where << ": " << lost.err;
        for (const char* destructive : {"xdp off", "detach", "--force", "unload", "another mode"})
            EXPECT_EQ(lost.err.find(destructive), std::string::npos) << where << ": " << destructive << " in " << lost.err;
        // Only the winner's dispatcher is on the interface; the loser keeps no record.
        std::string link = sh("ip -n " + ns + " link show ra0").out;
        EXPECT_EQ(std::to_string(tcdtest::xdp_dispatcher_at(ns, "ra0")), ids[w]) << where << ": " << link;
        EXPECT_EQ(link.find("id " + ids[l] + " "), std::string::npos) << where << ": " << link;
        EXPECT_EQ(sh("bpftool map dump pinned " + dirs[l] + "/maps/attach").out.find("key"), std::string::npos)
            << where;
        EXPECT_NE(sh(bin + " -d " + dirs[l] + " status").out.find("attached: nowhere"), std::string::npos) << where;
        Cmd d = sh(bin + " -q -d " + dirs[w] + " detach ra0 --netns " + ns);
        ASSERT_EQ(d.rc, 0) << where << ": " << d.err;
        ASSERT_EQ(sh("ip -n " + ns + " link show ra0").out.find("prog/xdp"), std::string::npos) << where;
        if (HasFailure()) break;
    }
    std::printf("racing attaches: a won %d, b won %d of 20 rounds\n", wins[0], wins[1]);
    cleanup();
}

// A handler pinned outside any instance (issue 20), wired by its bpffs
// path, goes by that path in map set, map list and status, plain and JSON,
// not by id:N; once the path names another program, id:N again. The record
// of it (PINDIR/paths/) is tcd's: map del removes it, unload takes it along.
TEST(BadInput, HandlerPinnedElsewhereShowsItsPath) {
    TCD_REQUIRE_KERNEL();
    tcdtest::LockFiles locks;
    std::string name = tcdtest::unique_name("safety_hpath");
    std::string dir = locks.add("/sys/fs/bpf/" + name);
    std::string other = "/sys/fs/bpf/" + name + "_other";
    std::string tcd = std::string(TCD_BIN) + " -d " + dir;
    auto cleanup = [&] { sh(tcd + " -q unload --force; rm -rf " + other); };
    cleanup();
    ASSERT_EQ(sh(tcd + " -q load && " + tcd + " -q handler load " + std::string(TCD_BPF_OBJ_DIR) + "/chain.bpf.o").rc,
              0);
    // "mark" lives on only as another tool's pin.
    ASSERT_EQ(sh("mkdir " + other + " && bpftool prog pin pinned " + dir + "/mark " + other + "/mark").rc, 0);
    ASSERT_EQ(sh(tcd + " -q handler unload mark").rc, 0);
    std::string id = sh("bpftool prog show pinned " + other + "/mark | head -1 | cut -d: -f1").out;
    id.erase(id.find_last_not_of("\n") + 1);
    ASSERT_FALSE(id.empty());
    const std::string path = other + "/mark";

    Cmd set = sh(tcd + " map set udp " + path);
    ASSERT_EQ(set.rc, 0) << set.err;
    EXPECT_NE(set.out.find(path), std::string::npos) << set.out;
    Cmd list = sh(tcd + " map list");
    EXPECT_NE(list.out.find(path), std::string::npos) << list.out;
    EXPECT_EQ(list.out.find("id:" + id), std::string::npos) << list.out;
    Cmd jlist = sh(tcd + " -j map list");
    EXPECT_NE(jlist.out.find("\"handler\":\"" + path + "\",\"prog_id\":" + id), std::string::npos) << jlist.out;
    EXPECT_NE(sh(tcd + " status").out.find(path), std::string::npos);
    EXPECT_NE(sh(tcd + " -j status").out.find("\"handler\":\"" + path + "\""), std::string::npos);
    EXPECT_TRUE(tcd::bpffs::exists(dir + "/paths/key-17"));

    // The path names another program now: the wired one is id:N again.
    ASSERT_EQ(sh("rm " + path + " && bpftool prog pin pinned " + dir + "/inspect " + path).rc, 0);
    jlist = sh(tcd + " -j map list");
    EXPECT_NE(jlist.out.find("\"handler\":\"id:" + id + "\""), std::string::npos) << jlist.out;
    EXPECT_EQ(jlist.out.find(path), std::string::npos) << jlist.out;

    // map del takes the record; wiring by name leaves none.
    ASSERT_EQ(sh(tcd + " -q map del udp").rc, 0);
    EXPECT_FALSE(tcd::bpffs::exists(dir + "/paths"));
    ASSERT_EQ(sh(tcd + " -q map set udp " + path).rc, 0);
    EXPECT_TRUE(tcd::bpffs::exists(dir + "/paths/key-17"));
    ASSERT_EQ(sh(tcd + " -q map set udp pass").rc, 0);
    EXPECT_FALSE(tcd::bpffs::exists(dir + "/paths"));
    // unload takes the record along (it is no entry tcd did not make).
    ASSERT_EQ(sh(tcd + " -q map set tcp " + path).rc, 0);
    Cmd un = sh(tcd + " unload");
    EXPECT_EQ(un.rc, 0) << un.err;
    EXPECT_FALSE(tcd::bpffs::exists(dir));
    cleanup();
}

}  // namespace
