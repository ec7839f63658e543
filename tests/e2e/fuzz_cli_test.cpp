// The CLI fuzzed (issue 20): random argument vectors built from the real
// commands, options and values (cli/*.cpp), mixed with hostile strings (empty,
// very long, binary without NUL, ../, %n, unicode, negative and huge numbers),
// each run as a whole tcd process against a loaded instance of the test's own.
// Every run must end by exit (no signal) with 0, 1 or 2; a failed one must
// say why on stderr as "tcd: ..." and leave `tcd -j status` as it was. A run
// that succeeded and changed the instance is followed by a fresh instance.
//
// A fixed number of runs (TCD_FUZZ_RUNS, default 300), not a time; the seed is
// printed and TCD_FUZZ_SEED sets it, so a failure can be run again.
// TCD_FUZZ_BIN runs another tcd binary (an older build, to see that the
// test finds what was wrong with it) instead of the one built with the test.
//
// What the fuzzer can reach is fenced: -d is always its own pin dir (a second
// -d is refused by tcd), TCD_PIN_DIR is unset, the only interfaces it names
// are a veth pair in a netns of its own (interfaces are looked up in the host
// namespace only by names no host has), files it names to write are in its
// temporary directory (and the working directory is one too), and the
// commands that run until stopped (stats --watch, stats --listen) are left out.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/bpffs.h"
#include "tests/common/kernel.h"
#include "tests/common/lock_files.h"
#include "tests/common/shell.h"

extern char** environ;

namespace {

using tcdtest::Cmd;
using tcdtest::sh;

struct ProcRun {
    bool signalled = false;
    int sig = 0;
    int rc = -1;
    bool hung = false;
    std::string out, err;
};

// argv run as a process (no shell: the hostile strings reach tcd as they
// are), stdin /dev/null, in cwd, the environment without TCD_PIN_DIR.
ProcRun spawn(const std::vector<std::string>& args, const std::string& cwd, const std::string& outbase) {
    ProcRun r;
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    std::vector<char*> envp;
    for (char** e = environ; *e; ++e)
        if (std::strncmp(*e, "TCD_PIN_DIR=", 12) != 0) envp.push_back(*e);
    envp.push_back(nullptr);
    std::string out = outbase + ".out", err = outbase + ".err";
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addchdir_np(&fa, cwd.c_str());
    pid_t pid = -1;
    int e = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&fa);
    if (e != 0) {
        r.err = std::string("posix_spawn: ") + std::strerror(e);
        return r;
    }
    // A guard against a run that never ends (not a measure of speed).
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    int st = 0;
    while (waitpid(pid, &st, WNOHANG) == 0) {
        if (std::chrono::steady_clock::now() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            r.hung = true;
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    if (!r.hung) {
        if (WIFSIGNALED(st)) {
            r.signalled = true;
            r.sig = WTERMSIG(st);
        } else {
            r.rc = WEXITSTATUS(st);
        }
    }
    r.out = tcdtest::slurp(out);
    r.err = tcdtest::slurp(err);
    std::remove(out.c_str());
    std::remove(err.c_str());
    return r;
}

// One line for a message: each argument quoted, bytes outside printable
// ASCII as \xNN, long ones cut.
std::string show(const std::vector<std::string>& args) {
    std::string s;
    for (size_t i = 1; i < args.size(); ++i) {
        s += " '";
        const std::string& a = args[i];
        for (size_t j = 0; j < a.size() && j < 80; ++j) {
            unsigned char c = a[j];
            if (c >= 0x20 && c < 0x7f && c != '\'') {
                s += char(c);
            } else {
                char b[8];
                std::snprintf(b, sizeof b, "\\x%02x", c);
                s += b;
            }
        }
        if (a.size() > 80) s += "...(" + std::to_string(a.size()) + " bytes)";
        s += "'";
    }
    return s;
}

class Gen {
public:
    Gen(uint64_t seed, std::string dir, std::string ns, std::string tmp, std::string objdir)
        : rng_(seed), dir_(std::move(dir)), ns_(std::move(ns)), tmp_(std::move(tmp)), objdir_(std::move(objdir)) {}

    bool chance(int percent) { return pick(100) < unsigned(percent); }
    unsigned pick(unsigned n) { return std::uniform_int_distribution<unsigned>(0, n - 1)(rng_); }
    template <class T>
    T one(const std::vector<T>& v) {
        return v[pick(unsigned(v.size()))];
    }

    std::string hostile() {
        switch (pick(22)) {
        case 0: return "";
        case 1: return std::string(5000, 'A');
        case 2: return std::string(100000, 'x');  // below MAX_ARG_STRLEN (128 KiB)
        case 3: {  // bytes 1-255, no NUL
            std::string s(1 + pick(64), ' ');
            for (auto& c : s) c = char(1 + pick(255));
            return s;
        }
        case 4: return "../";
        case 5: return "../../../../../../etc/passwd";
        case 6: return "%n%n%n%n%s%s%s%x";
        case 7: return "ünïcødé ☃ 🐧 \u202e\u0301";
        case 8: return "-1";
        case 9: return "-99999999999999999999";
        case 10: return "99999999999999999999";
        case 11: return "4294967296";
        case 12: return "18446744073709551616";
        case 13: return "0x10";
        case 14: return "1e309";
        case 15: return "nan";
        case 16: return "-";
        case 17: return " \t\n";
        case 18: return "id:-1";
        case 19: return "id:4294967295";
        case 20: return "/dev/null";
        default: return "..";
        }
    }

    // A value of the given kind: usually a real one, sometimes a hostile one.
    std::string value(const std::vector<std::string>& real) { return chance(25) ? hostile() : one(real); }

    std::string key() {
        return value({"tcp", "udp", "icmp", "0", "6", "17", "255", "256", "80", "443", "8080", "65535", "65536",
                      "http", "ssh", "dns", "ipv6-icmp"});
    }
    std::string handler() {
        return value({"tcp_handler", "udp_handler", "drop", "pass", "xdp_dispatch", "id:0", "id:1", "maps",
                      dir_ + "/tcp_handler", dir_ + "/maps/jt", "/etc/passwd", "nosuchhandler"});
    }
    std::string object() {
        return value({objdir_ + "/odd_handlers.bpf.o", objdir_ + "/hops_xdp_proto.bpf.o",
                      objdir_ + "/hops_tc_port.bpf.o", objdir_ + "/bad_verifier.bpf.o", objdir_ + "/bad_jt.bpf.o",
                      tmp_ + "/not.pcap", "/nonexistent.o"});
    }
    std::string iface() { return value({"fz0", "fz1", "nosuch0"}); }
    std::string netns() { return value({ns_, "/run/netns/" + ns_, "nosuchns"}); }
    // Written only inside tmp_: a hostile name stands there with its
    // slashes made underscores.
    std::string output() {
        if (chance(20)) return "-";
        if (chance(30)) return tmp_ + "/out.o";
        std::string h = hostile();
        for (auto& c : h)
            if (c == '/') c = '_';
        return tmp_ + "/" + h;
    }

    std::vector<std::string> command() {
        std::vector<std::string> a;
        switch (pick(13)) {
        case 0: {
            a = {"map", "set", key(), handler()};
            for (unsigned n = pick(3); n; --n) {
                a.push_back(key());
                if (chance(85)) a.push_back(handler());
            }
            break;
        }
        case 1: {
            a = {"map", "del", key()};
            for (unsigned n = pick(3); n; --n) a.push_back(key());
            break;
        }
        case 2: a = {"map", "list"}; break;
        case 3: {
            a = {"handler", one<std::string>({"load", "list", "unload"})};
            if (a[1] == "load") {
                a.push_back(object());
                if (chance(30)) a.insert(a.end(), {"--prog", value({"tc_prog", "frags_h", "xdp_hop", "nope"})});
            } else if (a[1] == "unload") {
                a.push_back(handler());
            }
            if (a[1] != "list" && chance(30)) a.push_back("--force");
            break;
        }
        case 4: {
            a = {"load"};
            if (chance(40)) a.insert(a.end(), {"--miss-action", value({"pass", "drop", "next"})});
            if (chance(30)) a.insert(a.end(), {"--key", value({"proto", "port"})});
            if (chance(30)) a.insert(a.end(), {"--hook", value({"xdp", "tc"})});
            if (chance(50)) a.push_back("--force");
            break;
        }
        case 5: {
            a = {"unload"};
            if (chance(40)) a.push_back("--force");
            break;
        }
        case 6: {
            a = {"status"};
            if (chance(20)) a.push_back("--scan");
            break;
        }
        case 7: {
            a = {"stats"};
            if (chance(30)) a.push_back("--all");
            if (chance(20)) a.push_back("--reset");
            if (chance(30)) a.insert(a.end(), {"--format", value({"plain", "json", "prometheus"})});
            if (chance(15)) a.insert(a.end(), {"--count", value({"1", "0", "3"})});
            if (chance(15)) a.insert(a.end(), {"--interval", value({"0.1", "0", "1"})});
            break;
        }
        case 8: {
            a = {"trace"};
            if (chance(50))
                a.insert(a.end(), {"--pcap", value({tmp_ + "/one.pcap", tmp_ + "/cut.pcap", tmp_ + "/not.pcap",
                                                    "/nonexistent.pcap", tmp_})});
            else
                a.insert(a.end(), {"--hex", value({kFrame, kFrame.substr(0, 30), "zz", "0", "ff ff"})});
            if (chance(20)) a.insert(a.end(), {"--key", value({"proto", "port"})});
            if (chance(20)) a.insert(a.end(), {"--hook", value({"xdp", "tc"})});
            if (chance(15)) a.insert(a.end(), {"--repeat", value({"1", "0", "100", "x"})});
            break;
        }
        case 9: {
            a = {"attach", iface()};
            if (chance(85)) a.insert(a.end(), {"--netns", netns()});
            if (chance(40)) a.insert(a.end(), {"--mode", value({"auto", "native", "skb", "hw"})});
            if (chance(20)) a.insert(a.end(), {"--direction", value({"ingress", "egress"})});
            if (chance(20)) a.insert(a.end(), {"--order", value({"first", "last", "before:1", "after:xdp_dispatch"})});
            if (chance(20)) a.insert(a.end(), {"--priority", value({"0", "50", "1000000", "1000001"})});
            if (chance(25)) a.push_back("--alone");
            if (chance(25)) a.push_back("--force");
            break;
        }
        case 10: {
            a = {"detach"};
            if (chance(70)) a.push_back(iface());
            if (chance(70)) a.insert(a.end(), {"--netns", netns()});
            if (chance(20)) a.insert(a.end(), {"--direction", value({"ingress", "egress"})});
            if (chance(40)) a.push_back("--all");
            break;
        }
        case 11: {
            a = {"apply", "-f", value({tmp_ + "/good.yaml", tmp_ + "/twice.yaml", tmp_ + "/junk.yaml", tmp_})};
            if (chance(50)) a.push_back("--dry-run");
            break;
        }
        default: a = {"object", "-o", output()}; break;
        }
        // Now and then an argument more, an option of another command, or a
        // word dropped.
        if (chance(10)) a.insert(a.begin() + pick(unsigned(a.size()) + 1), hostile());
        if (chance(5))
            a.insert(a.begin() + pick(unsigned(a.size()) + 1),
                     one<std::string>({"--force", "--all", "--alone", "--scan", "--dry-run", "--help", "-o"}));
        if (chance(5) && a.size() > 1) a.erase(a.begin() + 1 + pick(unsigned(a.size()) - 1));
        // The global flags, before or after the command.
        std::vector<std::string> g;
        for (const char* f : {"-j", "-p", "-q", "-v"})
            if (chance(15)) g.push_back(f);
        a.insert(chance(50) ? a.begin() : a.end(), g.begin(), g.end());
        return a;
    }

    // An Ethernet/IPv4/TCP frame to port 80.
    static inline const std::string kFrame =
        "020000000002020000000001"
        "08004500002800010000400600000a0000010a000002"
        "040000500000000000000000"
        "5002ffff00000000";

private:
    std::mt19937_64 rng_;
    std::string dir_, ns_, tmp_, objdir_;
};

void write_pcap(const std::string& path, const std::string& hex, size_t cut) {
    std::string frame;
    for (size_t i = 0; i + 1 < hex.size(); i += 2) frame += char(std::stoi(hex.substr(i, 2), nullptr, 16));
    std::string f;
    auto u32 = [&](uint32_t v) { f.append(reinterpret_cast<const char*>(&v), 4); };
    auto u16 = [&](uint16_t v) { f.append(reinterpret_cast<const char*>(&v), 2); };
    u32(0xa1b2c3d4);
    u16(2);
    u16(4);
    u32(0);
    u32(0);
    u32(65535);
    u32(1);
    for (int n = 0; n < 2; ++n) {
        u32(1);
        u32(0);
        u32(uint32_t(frame.size()));
        u32(uint32_t(frame.size()));
        f += frame;
    }
    std::ofstream(path, std::ios::binary) << f.substr(0, f.size() - cut);
}

TEST(FuzzCli, RandomArgumentVectorsOnALoadedInstance) {
    TCD_REQUIRE_KERNEL();
    uint64_t seed = std::random_device{}();
    if (const char* s = std::getenv("TCD_FUZZ_SEED")) seed = std::strtoull(s, nullptr, 0);
    unsigned runs = 300;
    if (const char* s = std::getenv("TCD_FUZZ_RUNS")) runs = unsigned(std::strtoul(s, nullptr, 0));
    std::cout << "[ FUZZ     ] TCD_FUZZ_SEED=" << seed << " TCD_FUZZ_RUNS=" << runs << std::endl;
    RecordProperty("seed", std::to_string(seed));

    tcdtest::LockFiles locks;
    std::string name = tcdtest::unique_name("safety_fz");
    std::string dir = locks.add("/sys/fs/bpf/" + name);
    std::string ns = name;
    std::string tmp = "/tmp/" + name;
    // Deep enough that the hostile "../../../../../../etc/passwd" (six up)
    // stays inside tmp: from /tmp/NAME/a/b/c/work it was /etc/passwd, which
    // a run such as 'object -o' (a word dropped, a hostile one added) writes.
    std::string work = tmp + "/a/b/c/d/e/f/work";
    std::string bin = TCD_BIN;
    if (const char* b = std::getenv("TCD_FUZZ_BIN"); b && *b) bin = b;
    if (bin != TCD_BIN) std::cout << "[ FUZZ     ] TCD_FUZZ_BIN=" << bin << std::endl;
    std::string tcd = bin + " -d " + dir + " ";
    struct Cleanup {
        std::function<void()> f;
        ~Cleanup() { f(); }
    } cleanup{[&] {
        sh(tcd + "-q unload --force; ip netns del " + ns + " 2>/dev/null; rm -rf " + tmp);
        if (tcd::bpffs::exists(dir)) sh("rm -rf " + dir);
    }};
    cleanup.f();
    ASSERT_EQ(sh("mkdir -p " + work).rc, 0);
    ASSERT_EQ(sh("ip netns add " + ns + " && ip -n " + ns + " link add fz0 type veth peer name fz1 && ip -n " + ns +
                 " link set fz0 up && ip -n " + ns + " link set fz1 up")
                  .rc,
              0);
    write_pcap(tmp + "/one.pcap", Gen::kFrame, 0);
    write_pcap(tmp + "/cut.pcap", Gen::kFrame, 7);
    std::ofstream(tmp + "/not.pcap") << "this is not a capture\n";
    std::ofstream(tmp + "/good.yaml") << "pin_dir: " << dir << "\nwiring:\n  tcp: tcp_handler\n  udp: drop\n"
                                      << "interfaces:\n  - name: fz0\n    netns: " << ns << "\n";
    std::ofstream(tmp + "/twice.yaml") << "pin_dir: " << dir << "\npin_dir: " << dir << "\n";
    std::ofstream(tmp + "/junk.yaml") << "pin_dir: [\n\x01\x02 %n ../\n";

    // The instance the runs meet: loaded, one key wired, on fz0.
    auto fresh = [&] {
        sh(tcd + "-q unload --force");
        Cmd l = sh(tcd + "-q load && " + tcd + "-q map set tcp tcp_handler && " + tcd + "-q attach fz0 --netns " + ns);
        return l.rc == 0 ? std::string() : l.err;
    };
    auto status = [&] { return sh(tcd + "-j status").out; };
    ASSERT_EQ(fresh(), "");
    std::string before = status();
    ASSERT_NE(before.find("\"loaded\""), std::string::npos) << before;
    ASSERT_EQ(status(), before) << "status -j is not the same twice in a row";

    Gen gen(seed, dir, ns, tmp, TCD_BPF_OBJ_DIR);
    unsigned failures = 0, refreshed = 0;
    unsigned rcs[3] = {0, 0, 0};
    for (unsigned i = 0; i < runs && failures < 10; ++i) {
        std::vector<std::string> args = {bin, "-d", dir};
        auto c = gen.command();
        args.insert(args.end(), c.begin(), c.end());
        std::string where = "run " + std::to_string(i) + " (TCD_FUZZ_SEED=" + std::to_string(seed) + "): tcd" + show(args);
        ProcRun r = spawn(args, work, tmp + "/run");
        bool bad = false;
        if (r.hung) {
            ADD_FAILURE() << where << ": still running after 60 s";
            bad = true;
        } else if (r.signalled) {
            ADD_FAILURE() << where << ": killed by signal " << r.sig << " (" << strsignal(r.sig) << ")\n" << r.err;
            bad = true;
        } else if (r.rc < 0 || r.rc > 2) {
            ADD_FAILURE() << where << ": exit " << r.rc << "\n" << r.err;
            bad = true;
        } else {
            ++rcs[r.rc];
        }
        if (!r.hung && !r.signalled && r.rc != 0 && r.err.find("tcd: ") == std::string::npos) {
            ADD_FAILURE() << where << ": exit " << r.rc << " without a 'tcd: ' line on stderr: " << r.err;
            bad = true;
        }
        std::string after = status();
        if (r.rc != 0 && after != before) {
            ADD_FAILURE() << where << ": exit " << r.rc << " (" << r.err << ") but the instance changed.\nbefore: "
                          << before << "\nafter: " << after;
            bad = true;
        }
        if (after != before) {
            std::string why = fresh();
            ASSERT_EQ(why, "") << where << ": the instance could not be made again";
            before = status();
            ++refreshed;
        }
        if (bad) ++failures;
    }
    std::cout << "[ FUZZ     ] exit 0: " << rcs[0] << ", exit 1: " << rcs[1] << ", exit 2: " << rcs[2]
              << ", instance made again " << refreshed << " times" << std::endl;
    // The generator reaches all three outcomes (a fuzzer that only ever hit
    // usage errors would test little).
    if (runs >= 100 && failures == 0) {
        EXPECT_GT(rcs[0], 0u);
        EXPECT_GT(rcs[1], 0u);
        EXPECT_GT(rcs[2], 0u);
    }
}

}  // namespace
