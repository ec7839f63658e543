// The completions run against a live instance: completions/tcd.bash sourced
// in bash with COMP_WORDS/COMP_CWORD set, _tcd called, COMPREPLY read; the
// fish file through 'complete -C'; zsh's live-value functions with the
// completion builtins stubbed. Handler names and wired keys come from
// the pin dir given with -d; a port instance offers services, not protocols.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tests/common/kernel.h"
#include "tests/common/lock_files.h"
#include "tests/common/shell.h"

namespace {

using tcdtest::sh;

std::string quote(const std::string& s) {
    std::string o = "'";
    for (char c : s) o += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return o + "'";
}

std::set<std::string> lines(const std::string& s) {
    std::set<std::string> out;
    std::istringstream in(s);
    for (std::string l; std::getline(in, l);)
        if (!l.empty()) out.insert(l.substr(0, l.find('\t')));  // fish: "word<TAB>description"
    return out;
}

// COMPREPLY for the words (the last one is the word being completed).
std::set<std::string> bash_complete(const std::vector<std::string>& words) {
    std::string arr;
    for (const auto& w : words) arr += " " + quote(w);
    std::string script = "source " + quote(std::string(TCD_SOURCE_DIR) + "/completions/tcd.bash") +
                         " && COMP_WORDS=(" + arr + ") && COMP_CWORD=" + std::to_string(words.size() - 1) +
                         " && COMP_LINE=\"${COMP_WORDS[*]}\" && COMP_POINT=${#COMP_LINE} && _tcd && "
                         "printf '%s\\n' \"${COMPREPLY[@]}\"";
    auto c = sh("bash --norc --noprofile -c " + quote(script));
    EXPECT_EQ(c.rc, 0) << c.err;
    EXPECT_EQ(c.err, "");
    return lines(c.out);
}

std::set<std::string> fish_complete(const std::string& line) {
    // The tcd under test is found as "tcd" on PATH, so fish's 'complete -c
    // tcd' applies and __tcd_json runs this binary.
    std::string bin = TCD_BIN;
    std::string dir = bin.substr(0, bin.rfind('/'));
    std::string script = "source " + quote(std::string(TCD_SOURCE_DIR) + "/completions/tcd.fish") + "; complete -C " +
                         quote(line);
    auto c = sh("PATH=" + quote(dir) + ":$PATH fish --no-config -c " + quote(script));
    EXPECT_EQ(c.rc, 0) << c.err;
    return lines(c.out);
}

// A zsh completion function of completions/_tcd run outside the completion
// system: _wanted/compadd/_call_program stubbed to print the candidates
// (compadd -a takes array names, as the real one does), words and
// _tcd_line set as _tcd sets them.
std::set<std::string> zsh_complete(const std::string& fn, const std::vector<std::string>& words) {
    std::string harness = R"(compdef() { }
setopt extendedglob
_call_program() { shift; eval "$@" }
_wanted() { shift 3; "$@" }
_files() { print -r -- '<files>' }
compadd() {
  local a=0
  while (( $# )); do
    case $1 in
      (-a) a=1 ;;
      (-) shift; break ;;
      (-*) ;;
      (*) break ;;
    esac
    shift
  done
  if (( a )); then local n; for n; do print -rl -- ${(P)n}; done; else print -rl -- "$@"; fi
}
source "$1"; shift
fn=$1; shift
_tcd_line=("$@")
words=("${(@)_tcd_line[2,-1]}")
CURRENT=${#words}
PREFIX=
$fn
)";
    std::string file = "/tmp/tcd_zsh_harness_" + std::to_string(getpid());
    std::ofstream(file) << harness;
    std::string args;
    for (const auto& w : words) args += " " + quote(w);
    auto c = sh("zsh -f " + file + " " + quote(std::string(TCD_SOURCE_DIR) + "/completions/_tcd") + " " + fn + args);
    std::remove(file.c_str());
    EXPECT_EQ(c.rc, 0) << c.err;
    EXPECT_EQ(c.err, "");
    return lines(c.out);
}

bool have(const char* prog) { return sh(std::string("command -v ") + prog).rc == 0; }

class Completion : public ::testing::Test {
protected:
    void SetUp() override {
        TCD_REQUIRE_KERNEL();
        dir_ = "/sys/fs/bpf/" + tcdtest::unique_name("tcdcomp");
        port_ = dir_ + "-port";
        sh(tcd(dir_, "-q unload") + "; " + tcd(port_, "-q unload"));
        ASSERT_EQ(sh(tcd(dir_, "-q load")).rc, 0);
        ASSERT_EQ(sh(tcd(dir_, "-q map set tcp tcp_handler") + " && " + tcd(dir_, "-q map set 47 drop")).rc, 0);
        ASSERT_EQ(sh(tcd(port_, "-q load --key port") + " && " + tcd(port_, "-q map set http pass")).rc, 0);
    }
    void TearDown() override {
        if (dir_.empty()) return;  // skipped before it made anything
        sh(tcd(dir_, "-q unload") + "; " + tcd(port_, "-q unload"));
        tcdtest::remove_lock_file(dir_);
        tcdtest::remove_lock_file(port_);
    }
    static std::string tcd(const std::string& dir, const std::string& args) {
        return std::string(TCD_BIN) + " -d " + dir + " " + args;
    }
    std::string dir_, port_;
};

TEST_F(Completion, BashCommands) {
    auto r = bash_complete({TCD_BIN, ""});
    for (const char* c : {"attach", "detach", "map", "stats", "load", "unload", "status", "handler", "trace", "object",
                          "apply"})
        EXPECT_TRUE(r.count(c)) << c;
    EXPECT_EQ(bash_complete({TCD_BIN, "-d", dir_, "map", ""}), (std::set<std::string>{"set", "del", "list"}));
    auto o = bash_complete({TCD_BIN, "attach", "lo", "--"});
    for (const char* c : {"--mode", "--netns", "--direction", "--force", "--pin-dir", "--json"}) EXPECT_TRUE(o.count(c)) << c;
    EXPECT_EQ(bash_complete({TCD_BIN, "attach", "lo", "--mode", ""}),
              (std::set<std::string>{"auto", "native", "skb", "hw"}));
}

TEST_F(Completion, BashHandlersAndWiredKeys) {
    auto h = bash_complete({TCD_BIN, "-d", dir_, "map", "set", "6", ""});
    for (const char* c : {"tcp_handler", "udp_handler", "pass", "drop"}) EXPECT_TRUE(h.count(c)) << c;
    // Further KEY HANDLER pairs: a key, then a handler.
    EXPECT_TRUE(bash_complete({TCD_BIN, "-d", dir_, "map", "set", "6", "pass", ""}).count("icmp"));
    EXPECT_TRUE(bash_complete({TCD_BIN, "-d", dir_, "map", "set", "6", "pass", "17", ""}).count("drop"));
    // Wired keys, by protocol name; those already on the line are left out.
    EXPECT_EQ(bash_complete({TCD_BIN, "-d", dir_, "map", "del", ""}), (std::set<std::string>{"tcp", "gre"}));
    EXPECT_EQ(bash_complete({TCD_BIN, "-d", dir_, "map", "del", "tcp", ""}), (std::set<std::string>{"gre"}));
    // -d after the command, --pin-dir=DIR spelling.
    EXPECT_EQ(bash_complete({TCD_BIN, "map", "del", "--pin-dir=" + dir_, ""}), (std::set<std::string>{"tcp", "gre"}));
    // A key on a proto instance: protocol names.
    auto k = bash_complete({TCD_BIN, "-d", dir_, "map", "set", ""});
    EXPECT_TRUE(k.count("tcp"));
    EXPECT_TRUE(k.count("icmp"));
    EXPECT_FALSE(k.count("http"));
}

TEST_F(Completion, BashPortInstanceOffersServices) {
    auto k = bash_complete({TCD_BIN, "-d", port_, "map", "set", ""});
    for (const char* c : {"http", "ssh", "dns", "domain", "https"}) EXPECT_TRUE(k.count(c)) << c;
    EXPECT_FALSE(k.count("icmp"));
    EXPECT_FALSE(k.count("gre"));
    EXPECT_EQ(bash_complete({TCD_BIN, "-d", port_, "map", "del", ""}), (std::set<std::string>{"http"}));
}

TEST_F(Completion, ZshLiveValues) {
    if (!have("zsh")) {
        if (tcdtest::in_ci()) FAIL() << "zsh is not installed (scripts/packages.txt)";
        GTEST_SKIP() << "zsh is not installed";
    }
    auto h = zsh_complete("_tcd_handlers", {TCD_BIN, "-d", dir_, "map", "set", "6", ""});
    EXPECT_EQ(h, (std::set<std::string>{"tcp_handler", "udp_handler", "pass", "drop"}));
    EXPECT_EQ(zsh_complete("_tcd_wired_keys", {TCD_BIN, "-d", dir_, "map", "del", ""}),
              (std::set<std::string>{"tcp", "gre"}));
    EXPECT_EQ(zsh_complete("_tcd_wired_keys", {TCD_BIN, "--pin-dir=" + dir_, "map", "del", "gre", ""}),
              (std::set<std::string>{"tcp"}));
    auto k = zsh_complete("_tcd_keys", {TCD_BIN, "-d", dir_, "map", "set", ""});
    EXPECT_TRUE(k.count("tcp") && k.count("icmp") && !k.count("http"));
    auto p = zsh_complete("_tcd_keys", {TCD_BIN, "-d", port_, "map", "set", ""});
    EXPECT_TRUE(p.count("http") && p.count("ssh") && !p.count("icmp"));
}

TEST_F(Completion, Fish) {
    if (!have("fish")) {
        if (tcdtest::in_ci()) FAIL() << "fish is not installed (scripts/packages.txt)";
        GTEST_SKIP() << "fish is not installed";
    }
    auto c = fish_complete("tcd ");
    for (const char* w : {"attach", "map", "apply"}) EXPECT_TRUE(c.count(w)) << w;
    auto h = fish_complete("tcd -d " + dir_ + " map set 6 ");
    for (const char* w : {"tcp_handler", "udp_handler", "pass", "drop"}) EXPECT_TRUE(h.count(w)) << w;
    EXPECT_TRUE(fish_complete("tcd -d " + dir_ + " map set 6 pass ").count("icmp"));
    EXPECT_TRUE(fish_complete("tcd -d " + dir_ + " map set 6 pass 17 ").count("drop"));
    EXPECT_EQ(fish_complete("tcd -d " + dir_ + " map del "), (std::set<std::string>{"tcp", "gre"}));
    auto p = fish_complete("tcd -d " + port_ + " map set ");
    EXPECT_TRUE(p.count("http"));
    EXPECT_FALSE(p.count("icmp"));
}

}  // namespace
