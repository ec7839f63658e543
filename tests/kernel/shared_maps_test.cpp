// handler load and the instance's maps: a map with a tcd map's name must be
// the pinned one in type, key size, value size and entries (the refusal
// names both sides); names tcd keeps to itself are refused; port_slot is
// shared on port instances. And map set names every differing field at once.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>

#include <string>

#include "core/bpffs.h"
#include "core/handlers.h"
#include "core/jumptable.h"
#include "core/lifecycle.h"
#include "core/probe.h"
#include "tests/common/instance.h"
#include "tests/common/kernel.h"

namespace {

using namespace tcdtest;

std::string obj(const std::string& name) { return std::string(TCD_BPF_OBJ_DIR) + "/" + name + ".bpf.o"; }

TEST(SharedMaps, MismatchesNameBothSides) {
    TCD_REQUIRE_KERNEL();
    TestInstance inst("tcdsm", tcd::MissAction::pass);
    ASSERT_EQ(inst.error(), "");
    auto before = tcd::bpffs::list_pins(inst.dir());
    const std::string jt = inst.dir() + "/maps/jt", stats = inst.dir() + "/maps/proto_stats";
    struct Case {
        std::string object, map, why;
    } cases[] = {
        {"bad_maps_jt_type", "jt", "type is array in {O}, prog_array in the pinned " + jt},
        {"bad_maps_jt_key", "jt", "key size is 8 in {O}, 4 in the pinned " + jt},
        {"bad_maps_jt_value", "jt", "value size is 8 in {O}, 4 in the pinned " + jt},
        {"bad_maps_stats_type", "proto_stats", "type is array in {O}, percpu_array in the pinned " + stats},
        {"bad_maps_stats_key", "proto_stats", "key size is 8 in {O}, 4 in the pinned " + stats},
        {"bad_maps_stats_value", "proto_stats", "value size is 8 in {O}, 24 in the pinned " + stats},
    };
    for (auto c : cases) {
        SCOPED_TRACE(c.object);
        std::string o = obj(c.object);
        c.why.replace(c.why.find("{O}"), 3, o);
        auto r = tcd::load_handlers(inst.in(), o, {});
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error().message(), "map " + c.map + ": " + c.why + " (declare it as <tcd/handler.h> does)");
        EXPECT_EQ(tcd::bpffs::list_pins(inst.dir()), before);  // nothing pinned
    }
}

TEST(SharedMaps, ReservedNamesRefused) {
    TCD_REQUIRE_KERNEL();
    TestInstance inst("tcdsm_res", tcd::MissAction::pass);
    ASSERT_EQ(inst.error(), "");
    auto before = tcd::bpffs::list_pins(inst.dir());
    for (std::string name : {"tcd_trace", "tcd_attach"}) {
        std::string o = obj("bad_maps_" + std::string(name == "tcd_trace" ? "trace" : "attach") + "_name");
        auto r = tcd::load_handlers(inst.in(), o, {});
        ASSERT_FALSE(r) << name;
        EXPECT_EQ(r.error().message(), "handler load " + o + ": map " + name +
                                           " has the name of a map tcd keeps to itself (rename it; handlers share "
                                           "only jt, proto_stats and port_slot)");
        EXPECT_EQ(tcd::bpffs::list_pins(inst.dir()), before);
    }
    // port_slot on a proto instance: there is none to share.
    auto r = tcd::load_handlers(inst.in(), obj("bad_maps_port_slot_ok"), {});
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find("map port_slot is a tcd map that only port instances have"), std::string::npos)
        << r.error().message();
    EXPECT_EQ(tcd::bpffs::list_pins(inst.dir()), before);
}

TEST(SharedMaps, PortSlotSharedOnPortInstances) {
    TCD_REQUIRE_KERNEL();
    std::string dir = "/sys/fs/bpf/" + unique_name("tcdsm_port");
    (void)tcd::unload(dir);
    tcd::LoadOptions lo;
    lo.kind = {tcd::KeyKind::port, tcd::Hook::xdp};
    ASSERT_TRUE(tcd::load(dir, lo));
    struct Unload {
        std::string d;
        ~Unload() { (void)tcd::unload(d); }
    } unload{dir};
    auto in = tcd::Instance::open(dir);
    ASSERT_TRUE(in);
    auto ok = tcd::load_handlers(*in, obj("bad_maps_port_slot_ok"), {});
    ASSERT_TRUE(ok) << ok.error().message();
    EXPECT_EQ(ok->shared_maps, std::vector<std::string>{"port_slot"});
    // The object's map is the pinned one: same kernel map id.
    auto h = tcd::bpffs::get(dir + "/bad_map_h");
    ASSERT_TRUE(h);
    auto info = tcd::prog_info(h->get());
    ASSERT_TRUE(info);
    bpf_map_info slot{};
    uint32_t len = sizeof slot;
    ASSERT_EQ(bpf_obj_get_info_by_fd(in->port_slot_fd(), &slot, &len), 0);
    EXPECT_NE(std::find(info->map_ids.begin(), info->map_ids.end(), slot.id), info->map_ids.end());
    ASSERT_TRUE(tcd::unload_handler(*in, "bad_map_h", false));

    std::string o = obj("bad_maps_port_slot_value");
    auto bad = tcd::load_handlers(*in, o, {});
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().message(), "map port_slot: value size is 8 in " + o + ", 4 in the pinned " + dir +
                                         "/maps/port_slot (declare it as <tcd/handler.h> does)");
    EXPECT_FALSE(tcd::bpffs::exists(dir + "/bad_map_h"));
}

TEST(SharedMaps, MapSetNamesEveryDifferingField) {
    TCD_REQUIRE_KERNEL();
    TestInstance inst("tcdsm_two", tcd::MissAction::pass);
    ASSERT_EQ(inst.error(), "");
    // A frags program needs the flag (5.18; libbpf sets it for xdp.frags
    // sections whatever the program's flags say).
    auto frags = tcd::probe::has(tcd::probe::Feature::xdp_frags);
    ASSERT_TRUE(frags) << frags.error().message();
    if (!*frags)
        GTEST_SKIP() << "this kernel lacks the XDP frags flag (Linux 5.18 brings it): no frags program loads here; "
                        "Handlers.WiringChecksNameTheFieldAndWriteNothing checks the other fields";
    bpf_object* o = bpf_object__open_file(obj("frags_devmap").c_str(), nullptr);
    ASSERT_TRUE(o);
    ASSERT_EQ(bpf_object__load(o), 0);
    auto info = tcd::prog_info(bpf_program__fd(bpf_object__find_program_by_name(o, "frags_devmap_h")));
    ASSERT_TRUE(info);
    auto before = tcd::wired_prog_id(inst.in(), 9);
    auto r = tcd::set_handler(inst.in(), 9, *tcd::parse_handler_spec("id:" + std::to_string(info->id)));
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find(
                  "frags flag differs: handler frags-aware (xdp.frags), jump table not frags-aware; "
                  "expected attach type differs: handler xdp_devmap, jump table none"),
              std::string::npos)
        << r.error().message();
    EXPECT_EQ(tcd::wired_prog_id(inst.in(), 9).value(), before.value());
    bpf_object__close(o);
}

}  // namespace
