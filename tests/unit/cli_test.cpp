// The command line without a kernel: argument errors, exit status, the one
// error line, help and version.
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "cli/cli.h"

namespace {

struct Outcome {
    int rc;
    std::string out, err;
};

Outcome tcd_run(std::vector<std::string> args) {
    args.insert(args.begin(), "tcd");
    std::vector<const char*> argv;
    for (auto& a : args) argv.push_back(a.c_str());
    std::ostringstream out, err;
    int rc = tcd::cli::run(static_cast<int>(argv.size()), argv.data(), out, err);
    return {rc, out.str(), err.str()};
}

void expect_usage_error(const std::vector<std::string>& args, const std::string& fragment) {
    auto o = tcd_run(args);
    std::string what;
    for (auto& a : args) what += a + " ";
    EXPECT_EQ(o.rc, 2) << what;
    EXPECT_EQ(o.out, "") << what;
    ASSERT_FALSE(o.err.empty()) << what;
    EXPECT_EQ(o.err.rfind("tcd: ", 0), 0u) << o.err;
    EXPECT_EQ(std::count(o.err.begin(), o.err.end(), '\n'), 1) << o.err;
    EXPECT_NE(o.err.find(fragment), std::string::npos) << what << " -> " << o.err;
}

}  // namespace

TEST(Cli, NoCommand) { expect_usage_error({}, "a command is required"); }
TEST(Cli, UnknownOption) { expect_usage_error({"--bogus"}, "unknown option --bogus (see tcd --help)"); }
TEST(Cli, UnknownOptionAfterCommand) { expect_usage_error({"stats", "--bogus"}, "unknown option --bogus"); }
TEST(Cli, UnknownCommand) { expect_usage_error({"frobnicate"}, "frobnicate"); }
// A cluster of short options is read as CLI11 reads it: flags up to the
// first letter that takes a value, which takes the rest of the word or, at
// its end, the next word. So the word after "-qd DIR" is the command, and
// in "-dd X" the pin dir is "d" and X is the (unknown) command.
TEST(Cli, ShortOptionClustersBeforeAnUnknownCommand) {
    for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
             {"-qd", "/sys/fs/bpf/x", "frob"},
             {"-vjd", "/sys/fs/bpf/x", "frob", "--help"},
             {"-qd/sys/fs/bpf/x", "frob"},
             {"-dq", "frob"},
             {"-qdj", "frob"},
             {"-qdd", "frob"},
             {"-dd", "frob", "status"},
             {"--pin-dir", "/sys/fs/bpf/x", "-q", "frob"},
             {"--pin-dir=/sys/fs/bpf/x", "frob"},
             {"map", "-qd", "/sys/fs/bpf/x", "frob"},
         }) {
        auto o = tcd_run(args);
        std::string what;
        for (auto& a : args) what += a + " ";
        EXPECT_EQ(o.rc, 2) << what;
        EXPECT_NE(o.err.find("unknown command '" + std::string(args[0] == "map" ? "map " : "") + "frob'"),
                  std::string::npos)
            << what << "-> " << o.err;
    }
}
TEST(Cli, MissingHandler) { expect_usage_error({"map", "set", "6"}, "HANDLER is required"); }
TEST(Cli, MapNeedsSubcommand) { expect_usage_error({"map"}, "see tcd map --help"); }
TEST(Cli, KeyOutOfRange) { expect_usage_error({"map", "set", "256", "tcp_handler"}, "key 256: out of range"); }
TEST(Cli, UnknownProtocol) { expect_usage_error({"map", "del", "nosuchproto"}, "unknown protocol name"); }
TEST(Cli, BadHandlerSpec) { expect_usage_error({"map", "set", "6", "id:zero"}, "not a program id"); }
TEST(Cli, BadMode) { expect_usage_error({"attach", "eth0", "--mode", "turbo"}, "--mode"); }
TEST(Cli, BadMissAction) { expect_usage_error({"load", "--miss-action", "reject"}, "--miss-action"); }
TEST(Cli, NegativeInterval) { expect_usage_error({"stats", "--watch", "--interval", "-1"}, "--interval"); }
TEST(Cli, ZeroInterval) { expect_usage_error({"stats", "--watch", "--interval", "0"}, "--interval"); }
TEST(Cli, IntervalNeedsWatch) { expect_usage_error({"stats", "--interval", "2"}, "go with --watch"); }
TEST(Cli, NegativeCount) { expect_usage_error({"stats", "--watch", "--count", "-2"}, "--count"); }
TEST(Cli, TraceNeedsInput) { expect_usage_error({"trace"}, "--pcap FILE or --hex"); }
TEST(Cli, TraceBadHex) { expect_usage_error({"trace", "--hex", "0g"}, "not a hex digit"); }
TEST(Cli, DetachNeedsTarget) { expect_usage_error({"detach"}, "an interface or --all"); }
TEST(Cli, DetachBoth) { expect_usage_error({"detach", "eth0", "--all"}, "not both"); }

TEST(Cli, HelpAndVersion) {
    auto h = tcd_run({"--help"});
    EXPECT_EQ(h.rc, 0);
    EXPECT_NE(h.out.find("attach"), std::string::npos);
    auto sub = tcd_run({"map", "set", "--help"});
    EXPECT_EQ(sub.rc, 0);
    EXPECT_NE(sub.out.find("HANDLER"), std::string::npos);
    auto v = tcd_run({"-V"});
    EXPECT_EQ(v.rc, 0);
    EXPECT_NE(v.out.find("libbpf"), std::string::npos);
    EXPECT_NE(v.out.find("libxdp"), std::string::npos);
}

TEST(Cli, GlobalOptionsAfterCommand) {
    // -d after the command is taken; the instance there is not loaded, so the
    // failure names that directory (exit 1, not a parse error). Not root in
    // unit runs is fine too: then it is the privilege error, also exit 1.
    auto o = tcd_run({"map", "list", "-d", "/sys/fs/bpf/tcd-nonexistent-xyz", "-j"});
    EXPECT_EQ(o.rc, 1);
    EXPECT_EQ(o.err.rfind("tcd: ", 0), 0u);
    EXPECT_TRUE(o.err.find("tcd-nonexistent-xyz") != std::string::npos ||
                o.err.find("CAP_BPF") != std::string::npos)
        << o.err;
}
