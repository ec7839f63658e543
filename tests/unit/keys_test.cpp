#include <gtest/gtest.h>

#include "core/keys.h"
#include "core/progs.h"
#include "core/trace.h"

using tcd::ExitCode;

TEST(Keys, Numbers) {
    EXPECT_EQ(*tcd::parse_key("0"), 0u);
    EXPECT_EQ(*tcd::parse_key("6"), 6u);
    EXPECT_EQ(*tcd::parse_key("255"), 255u);
    EXPECT_EQ(*tcd::parse_key("0x11"), 17u);
}

TEST(Keys, Names) {
    EXPECT_EQ(*tcd::parse_key("tcp"), 6u);
    EXPECT_EQ(*tcd::parse_key("TCP"), 6u);
    EXPECT_EQ(*tcd::parse_key("udp"), 17u);
    EXPECT_EQ(*tcd::parse_key("icmp"), 1u);
    EXPECT_EQ(*tcd::parse_key("ipv6-icmp"), 58u);
    EXPECT_EQ(*tcd::parse_key("icmpv6"), 58u);
    EXPECT_EQ(*tcd::parse_key("gre"), 47u);
    EXPECT_EQ(*tcd::parse_key("esp"), 50u);
    EXPECT_EQ(*tcd::parse_key("ah"), 51u);
    EXPECT_EQ(*tcd::parse_key("sctp"), 132u);
}

TEST(Keys, BadKeysAreUsageErrors) {
    for (const char* bad : {"256", "-1", "1000000000000000000000", "", "tcpx", "6a", "0x100", " 6"}) {
        auto k = tcd::parse_key(bad);
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
    for (const auto& [key, name] : tcd::builtin_protocols()) EXPECT_EQ(*tcd::parse_key(name), key) << name;
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
    auto p = tcd::fail_errno("load", EPERM);
    EXPECT_EQ(p.value().message(), "load: permission denied (needs root or CAP_BPF+CAP_NET_ADMIN)");
    EXPECT_EQ(tcd::fail_errno("x", ENOENT).value().message().find("errno"), std::string::npos);
}
