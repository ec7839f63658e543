// tests/common/topology.h: what the spec asks for is made, in namespaces
// named with the pid, and all of it goes away: in the destructor, and at once
// when a step of the set-up fails half way.
#include "tests/common/topology.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "tests/common/kernel.h"
#include "tests/common/shell.h"

namespace {

using nlohmann::json;
using tcdtest::sh;
using tcdtest::Topology;

bool netns_listed(const std::string& name) {
    std::string list = sh("ip netns list").out;
    for (size_t at = list.find(name); at != std::string::npos; at = list.find(name, at + 1)) {
        bool starts = at == 0 || list[at - 1] == '\n';
        size_t end = at + name.size();
        bool ends = end == list.size() || list[end] == '\n' || list[end] == ' ';
        if (starts && ends) return true;
    }
    return false;
}

// `ip -j addr show DEV` in namespace ns, parsed; null if there is none.
json link(const std::string& ns, const std::string& dev) {
    json j = json::parse(sh("ip -j -n " + ns + " addr show dev " + dev).out, nullptr, false);
    return j.is_array() && j.size() == 1 ? j[0] : json();
}

bool has_addr(const json& l, const std::string& addr) {
    for (const auto& a : l.value("addr_info", json::array()))
        if (a.value("local", "") + "/" + std::to_string(a.value("prefixlen", 0)) == addr) return true;
    return false;
}

TEST(Topology, MakesWhatTheSpecSaysAndRemovesIt) {
    TCD_REQUIRE_KERNEL();
    std::string a, b;
    {
        Topology net({.prefix = "tcdtp",
                      .namespaces = {"a", "b"},
                      .veths = {{.a = {"a", "xa", {"10.203.0.1/24", "fd00:203::1/64"}},
                                 .b = {"b", "xb", {"10.203.0.2/24"}},
                                 .mtu = 4000},
                                {.a = {"b", "xc"}, .b = {"b", "xd"}}},
                      .lo_up = true});
        ASSERT_TRUE(net.ok()) << net.error();
        a = net.ns("a");
        b = net.ns("b");
        EXPECT_EQ(a, "tcdtp" + std::to_string(getpid()) + "a");
        EXPECT_EQ(net.ns_path("b"), "/run/netns/" + b);
        EXPECT_TRUE(netns_listed(a));
        EXPECT_TRUE(netns_listed(b));
        json xa = link(a, "xa"), xb = link(b, "xb");
        ASSERT_TRUE(xa.is_object() && xb.is_object()) << xa.dump() << xb.dump();
        EXPECT_EQ(xa.value("mtu", 0), 4000);
        EXPECT_EQ(xb.value("mtu", 0), 4000);
        EXPECT_TRUE(has_addr(xa, "10.203.0.1/24")) << xa.dump();
        EXPECT_TRUE(has_addr(xa, "fd00:203::1/64")) << xa.dump();
        EXPECT_TRUE(has_addr(xb, "10.203.0.2/24")) << xb.dump();
        for (const auto& [ns, dev] : {std::pair{a, "xa"}, {b, "xb"}, {b, "xc"}, {b, "xd"}, {a, "lo"}, {b, "lo"}}) {
            json l = link(ns, dev);
            ASSERT_TRUE(l.is_object()) << dev << " in " << ns;
            auto flags = l.value("flags", json::array());
            EXPECT_NE(std::find(flags.begin(), flags.end(), "UP"), flags.end()) << dev << " in " << ns << ": "
                                                                                << l.dump();
        }
        // The ends of a pair are peers, across namespaces.
        EXPECT_EQ(sh(net.in("a", "ping -q -c 1 -W 2 10.203.0.2")).rc, 0);
    }
    EXPECT_FALSE(netns_listed(a));
    EXPECT_FALSE(netns_listed(b));
}

// ipv6 = false: IPv6 is off in every namespace, on the ends too.
TEST(Topology, Ipv6Off) {
    TCD_REQUIRE_KERNEL();
    Topology net({.prefix = "tcdtp",
                  .namespaces = {""},
                  .veths = {{.a = {"", "xa"}, .b = {"", "xb"}}},
                  .ipv6 = false,
                  .vlan_offload = false});
    ASSERT_TRUE(net.ok()) << net.error();
    for (const char* dev : {"all", "default", "xa", "xb"})
        EXPECT_EQ(sh(net.in("", std::string("sysctl -n net.ipv6.conf.") + dev + ".disable_ipv6")).out, "1\n") << dev;
    EXPECT_EQ(link(net.ns(), "xa").value("addr_info", json::array()).size(), 0u) << link(net.ns(), "xa").dump();
}

// A step that fails (here an address that is none) stops the set-up; what
// was made before it is gone at once, and error() names the command.
TEST(Topology, HalfMadeSetUpIsRemoved) {
    TCD_REQUIRE_KERNEL();
    std::optional<Topology> net;
    net.emplace(tcdtest::TopologySpec{.prefix = "tcdtp",
                                      .namespaces = {"a", "b"},
                                      .veths = {{.a = {"a", "xa", {"10.203.0.1/24"}}, .b = {"b", "xb"}},
                                                {.a = {"a", "xc", {"10.203.0.300/24"}}, .b = {"b", "xd"}}}});
    EXPECT_FALSE(net->ok());
    EXPECT_NE(net->error().find("addr add 10.203.0.300/24 dev xc"), std::string::npos) << net->error();
    std::string a = net->ns("a"), b = net->ns("b");
    EXPECT_FALSE(netns_listed(a));
    EXPECT_FALSE(netns_listed(b));
    net.reset();  // and the destructor has nothing left to do
    EXPECT_FALSE(netns_listed(a));
    EXPECT_FALSE(netns_listed(b));
}

}  // namespace
