#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "core/keys.h"
#include "core/progs.h"
#include "core/trace.h"

using tcd::ExitCode;

TEST(Keys, Numbers) {
    EXPECT_EQ(*tcd::parse_proto("0"), 0u);
    EXPECT_EQ(*tcd::parse_proto("6"), 6u);
    EXPECT_EQ(*tcd::parse_proto("255"), 255u);
    EXPECT_EQ(*tcd::parse_proto("0x11"), 17u);
}

TEST(Keys, Names) {
    EXPECT_EQ(*tcd::parse_proto("tcp"), 6u);
    EXPECT_EQ(*tcd::parse_proto("TCP"), 6u);
    EXPECT_EQ(*tcd::parse_proto("udp"), 17u);
    EXPECT_EQ(*tcd::parse_proto("icmp"), 1u);
    EXPECT_EQ(*tcd::parse_proto("ipv6-icmp"), 58u);
    EXPECT_EQ(*tcd::parse_proto("icmpv6"), 58u);
    EXPECT_EQ(*tcd::parse_proto("gre"), 47u);
    EXPECT_EQ(*tcd::parse_proto("esp"), 50u);
    EXPECT_EQ(*tcd::parse_proto("ah"), 51u);
    EXPECT_EQ(*tcd::parse_proto("sctp"), 132u);
}

TEST(Keys, BadKeysAreUsageErrors) {
    for (const char* bad : {"256", "-1", "1000000000000000000000", "", "tcpx", "6a", "0x100", " 6"}) {
        auto k = tcd::parse_proto(bad);
        ASSERT_FALSE(k) << bad;
        EXPECT_EQ(k.error().code, ExitCode::usage) << bad;
        EXPECT_FALSE(k.error().why.empty());
    }
}

TEST(Keys, ProtoNames) {
    EXPECT_EQ(tcd::proto_name(6), "tcp");
    EXPECT_EQ(tcd::proto_name(17), "udp");
    EXPECT_EQ(tcd::proto_name(58), "ipv6-icmp");
    EXPECT_EQ(tcd::proto_name(51), "ah");
    EXPECT_EQ(tcd::proto_name(250), "");
    // Every built-in name parses back to its key.
    for (const auto& [key, name] : tcd::builtin_protocols()) EXPECT_EQ(*tcd::parse_proto(name), key) << name;
}

TEST(HandlerSpec, Forms) {
    auto n = tcd::parse_handler_spec("tcp_handler");
    ASSERT_TRUE(n);
    EXPECT_EQ(n->kind, tcd::HandlerSpec::Kind::name);
    auto p = tcd::parse_handler_spec("/sys/fs/bpf/x/y");
    ASSERT_TRUE(p);
    EXPECT_EQ(p->kind, tcd::HandlerSpec::Kind::path);
    auto i = tcd::parse_handler_spec("id:42");
    ASSERT_TRUE(i);
    EXPECT_EQ(i->kind, tcd::HandlerSpec::Kind::id);
    EXPECT_EQ(i->id, 42u);
}

TEST(HandlerSpec, Bad) {
    for (const char* bad : {"", "id:", "id:x", "id:0", "id:-3", "a/b", "..", "id:99999999999"}) {
        auto h = tcd::parse_handler_spec(bad);
        ASSERT_FALSE(h) << bad;
        EXPECT_EQ(h.error().code, ExitCode::usage) << bad;
    }
}

TEST(Hex, Parses) {
    EXPECT_EQ(*tcd::parse_hex("0a0B ff"), (std::vector<uint8_t>{0x0a, 0x0b, 0xff}));
    EXPECT_EQ(*tcd::parse_hex("0a:0b:ff"), (std::vector<uint8_t>{0x0a, 0x0b, 0xff}));
    EXPECT_EQ(*tcd::parse_hex("0x0a0b"), (std::vector<uint8_t>{0x0a, 0x0b}));
    for (const char* bad : {"", "abc", "zz", "0a 0", "a 0"}) EXPECT_FALSE(tcd::parse_hex(bad)) << bad;
}

TEST(ErrorText, OneLineWithHint) {
    tcd::Error e{"map set", "handler foo not pinned", "see 'tcd handler list'", 0, ExitCode::failed};
    EXPECT_EQ(e.message(), "map set: handler foo not pinned (see 'tcd handler list')");
    // The privilege hint only when privileges are what is missing.
    auto p = tcd::fail_errno("load", EPERM);
    EXPECT_EQ(p.value().message(), tcd::has_bpf_privileges()
                                       ? "load: permission denied"
                                       : "load: permission denied (needs root or CAP_BPF+CAP_NET_ADMIN)");
    EXPECT_EQ(tcd::fail_errno("x", ENOENT).value().message().find("errno"), std::string::npos);
}

TEST(PortKeys, Numbers) {
    EXPECT_EQ(*tcd::parse_port("0"), 0u);
    EXPECT_EQ(*tcd::parse_port("1"), 1u);
    EXPECT_EQ(*tcd::parse_port("8080"), 8080u);
    EXPECT_EQ(*tcd::parse_port("65535"), 65535u);
    EXPECT_EQ(*tcd::parse_port("0xffff"), 65535u);
    // The key kind picks the grammar: 300 is a port, not a protocol.
    EXPECT_EQ(*tcd::parse_key("300", tcd::KeyKind::port), 300u);
    EXPECT_FALSE(tcd::parse_key("300", tcd::KeyKind::proto));
}

TEST(PortKeys, OutOfRangeAndJunkAreUsageErrors) {
    for (const char* bad : {"65536", "0x10000", "99999999999999999999", "-1", "", " 80", "80x", "http8"}) {
        auto p = tcd::parse_port(bad);
        ASSERT_FALSE(p) << bad;
        EXPECT_EQ(p.error().code, ExitCode::usage) << bad;
        EXPECT_FALSE(p.error().why.empty()) << bad;
    }
    auto big = tcd::parse_port("65536");
    EXPECT_EQ(big.error().message(), "port 65536: out of range (ports are 0-65535)");
    auto unknown = tcd::parse_port("nosuchservice");
    ASSERT_FALSE(unknown);
    EXPECT_EQ(unknown.error().code, ExitCode::usage);
    EXPECT_NE(unknown.error().message().find("unknown service name"), std::string::npos) << unknown.error().message();
}

TEST(PortKeys, ServiceNames) {
    EXPECT_EQ(*tcd::parse_port("http"), 80u);
    EXPECT_EQ(*tcd::parse_port("HTTP"), 80u);
    EXPECT_EQ(*tcd::parse_port("https"), 443u);
    EXPECT_EQ(*tcd::parse_port("ssh"), 22u);
    EXPECT_EQ(*tcd::parse_port("dns"), 53u);
    EXPECT_EQ(*tcd::parse_port("domain"), 53u);
    EXPECT_EQ(*tcd::parse_port("dns"), *tcd::parse_port("domain"));
    EXPECT_EQ(tcd::service_name(53), "domain");
    EXPECT_EQ(tcd::service_name(22), "ssh");
    EXPECT_EQ(tcd::service_name(443), "https");
    EXPECT_EQ(tcd::key_name(tcd::KeyKind::port, 80), "http");
    EXPECT_EQ(tcd::key_name(tcd::KeyKind::proto, 80), tcd::proto_name(80));
    // Every built-in name parses back to its port.
    for (const auto& [port, name] : tcd::builtin_services()) EXPECT_EQ(*tcd::parse_port(name), port) << name;
}

// The built-in table on a system without /etc/services and /etc/protocols:
// this binary runs itself again (a fresh process: the files are read once) in
// a private mount namespace with both files hidden behind /dev/null.
TEST(PortKeys, BuiltinTableWithoutSystemFiles) {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (a mount namespace)";
    char exe[4096] = {};
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    ASSERT_GT(n, 0);
    std::string cmd = "unshare -m --propagation private sh -c 'mount --bind /dev/null /etc/services && "
                      "mount --bind /dev/null /etc/protocols && test ! -s /etc/services && " +
                      std::string(exe) +
                      " --gtest_also_run_disabled_tests --gtest_filter=PortKeys.DISABLED_WithoutSystemFiles' "
                      ">/dev/null 2>&1";
    int st = std::system(cmd.c_str());
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "the child run failed: rerun it by hand:\n  " << cmd;
}

// Run only by the test above, in its mount namespace.
TEST(PortKeys, DISABLED_WithoutSystemFiles) {
    std::ifstream services("/etc/services");
    ASSERT_TRUE(services);
    ASSERT_EQ(services.peek(), std::ifstream::traits_type::eof()) << "/etc/services is not hidden";
    EXPECT_EQ(*tcd::parse_port("http"), 80u);
    EXPECT_EQ(*tcd::parse_port("ssh"), 22u);
    EXPECT_EQ(*tcd::parse_port("dns"), 53u);
    EXPECT_EQ(*tcd::parse_port("domain"), 53u);
    EXPECT_EQ(*tcd::parse_port("https"), 443u);
    EXPECT_EQ(tcd::service_name(80), "http");
    // A name only /etc/services knows is unknown now.
    EXPECT_FALSE(tcd::parse_port("gopher"));
    EXPECT_EQ(*tcd::parse_proto("tcp"), 6u);
    EXPECT_EQ(*tcd::parse_proto("udp"), 17u);
}
