// Bad input, table-driven: each gives its documented exit status, exactly one
// "tcd: ..." line on stderr, nothing on stdout, and leaves the pins and the
// jump table exactly as they were.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include "core/bpffs.h"
#include "tests/common/kernel.h"
#include "tests/common/lock_files.h"
#include "tests/common/shell.h"

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
        {"attach nosuchif0", 1, "no such interface"},
        {"attach lo --netns nosuchns", 1, "network namespace nosuchns: not found"},
        {"attach lo --mode turbo", 2, "--mode"},
        {"stats --watch --interval -1", 2, "--interval"},
        {"stats --watch --count -3", 2, "--count"},
        {"stats --bogus", 2, "unknown option --bogus"},
        {"frobnicate", 2, "frobnicate"},
        {"load --miss-action maybe", 2, "--miss-action"},
        {"load --miss-action drop", 1, "--force"},
        {"load --key port", 1, "holds a proto dispatcher"},
        {"-d /tmp/tcd-not-bpffs load", 1, "not on a bpffs"},
        {"object -o /nonexistent-dir/x.o", 1, "no such file"},
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
        EXPECT_EQ(state(), before) << c.args;
    }
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

}  // namespace
