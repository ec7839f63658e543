// map set with several KEY HANDLER pairs (docs/cli.md, "tcd map set"): all
// wired in one call, or, when one pair is refused, none (keys, counter
// slots and the dispatcher as they were).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "tests/common/kernel.h"
#include "tests/common/pin_dirs.h"
#include "tests/common/shell.h"
#include "tests/common/tcd_cmd.h"

namespace {

using nlohmann::json;
using tcdtest::Cmd;
using tcdtest::sh;

struct Dirs : tcdtest::PinDirs {
    Dirs() : PinDirs("tcdmany") {}
};

using tcdtest::tcd;

using tcdtest::tcd_json;

// What a refused call must leave as it was: the wiring (keys, handlers,
// slots) and the dispatcher (no respecialise).
json state(const std::string& dir) {
    json s = tcd_json(dir, "status");
    return {{"wired", tcd_json(dir, "map list")}, {"dispatcher", s["dispatcher"]["prog_id"]}};
}

TEST(MapSetMany, WiresEveryPairInOneCall) {
    TCD_REQUIRE_KERNEL();
    Dirs d;
    std::string proto = d.add("proto"), port = d.add("port");
    ASSERT_EQ(tcd(proto, "load").rc, 0);
    json r = tcd_json(proto, "map set tcp pass udp drop gre pass");
    ASSERT_TRUE(r.is_array()) << r.dump();
    ASSERT_EQ(r.size(), 3u);
    EXPECT_EQ(r[0]["key"], 6);
    EXPECT_EQ(r[2]["key"], 47);
    EXPECT_EQ(r[2]["direct"], true);  // one respecialise covered every new key
    json l = tcd_json(proto, "map list");
    ASSERT_EQ(l.size(), 3u) << l.dump();
    EXPECT_EQ(l[1]["handler"], "drop");
    // One pair prints one object, as ever.
    EXPECT_TRUE(tcd_json(proto, "map set icmp pass").is_object());

    ASSERT_EQ(tcd(port, "load --key port").rc, 0);
    ASSERT_EQ(tcd(port, "map set http pass 443 pass 8080 drop").rc, 0);
    json pl = tcd_json(port, "map list");
    ASSERT_EQ(pl.size(), 3u) << pl.dump();
    for (const auto& row : pl) EXPECT_GT(row["slot"].get<int>(), 0) << row.dump();
}

TEST(MapSetMany, ARefusedPairChangesNothing) {
    TCD_REQUIRE_KERNEL();
    Dirs d;
    std::string proto = d.add("proto"), port = d.add("port");
    ASSERT_EQ(tcd(proto, "load").rc, 0);
    ASSERT_EQ(tcd(proto, "map set tcp pass").rc, 0);
    const json before = state(proto);
    // The last pair names no handler: tcp rewired and gre (a new direct key)
    // wired first, then all put back.
    Cmd c = tcd(proto, "map set tcp drop gre pass udp nosuch");
    EXPECT_EQ(c.rc, 1) << c.err;
    EXPECT_NE(c.err.find("nosuch"), std::string::npos) << c.err;
    EXPECT_EQ(state(proto), before);
    // A key given twice, and a key without a handler: refused before anything.
    EXPECT_NE(tcd(proto, "map set udp pass udp drop").rc, 0);
    EXPECT_EQ(tcd(proto, "map set udp pass gre").rc, 2);
    EXPECT_EQ(state(proto), before);

    // A port instance: the ports wired first get no counter slot either.
    ASSERT_EQ(tcd(port, "load --key port").rc, 0);
    ASSERT_EQ(tcd(port, "map set http pass").rc, 0);
    const json pbefore = state(port);
    EXPECT_EQ(tcd(port, "map set 443 pass 8080 drop 22 nosuch").rc, 1);
    EXPECT_EQ(state(port), pbefore);
    for (const char* p : {"187 1", "144 31"}) {  // 443 and 8080, little-endian
        Cmd s = sh(std::string("bpftool -j map lookup pinned ") + port + "/maps/port_slot key " + p + " 0 0");
        ASSERT_EQ(s.rc, 0) << s.err;
        for (const auto& b : json::parse(s.out)["value"]) EXPECT_EQ(b, "0x00") << p << ": " << s.out;
    }
    // Wired afterwards, each port gets a slot as usual.
    EXPECT_EQ(tcd(port, "map set 443 pass 8080 drop").rc, 0);
    EXPECT_EQ(tcd_json(port, "map list").size(), 3u);
}

// A thousand ports in one call: every one wired, each with a counter slot of
// its own (the slots read once for the call, and kept up to date).
TEST(MapSetMany, AThousandPortsInOneCall) {
    TCD_REQUIRE_KERNEL();
    Dirs d;
    std::string port = d.add("port");
    ASSERT_EQ(tcd(port, "load --key port").rc, 0);
    std::string args = "map set";
    for (int p = 10000; p < 11000; p++) args += " " + std::to_string(p) + " pass";
    Cmd c = tcd(port, "-q " + args);
    ASSERT_EQ(c.rc, 0) << c.err;
    json l = tcd_json(port, "map list");
    ASSERT_EQ(l.size(), 1000u);
    std::set<int> slots;
    for (const auto& row : l) slots.insert(row["slot"].get<int>());
    EXPECT_EQ(slots.size(), 1000u);
    EXPECT_EQ(slots.count(0), 0u);
}

}  // namespace
