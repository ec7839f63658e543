// Specialised dispatchers: every key in the dispatcher's .rodata is a direct
// jump in the JIT image, every other key the indirect path; map set and del
// load a new dispatcher exactly when the set of direct keys changes; load
// --force replaces the built-in handlers and repoints their keys.
//
// How a direct jump is told from an indirect one without a disassembler:
// the x86-64 JIT patches a direct tail-call site in place whenever its jump
// table slot changes (its target is the handler's image), while an indirect
// site reads the slot at run time, so its image never changes. So for each
// key the test swaps the program in the slot and compares the JIT image
// (BPF_OBJ_GET_INFO_BY_FD's jited_prog_insns) before and after.
#include <gtest/gtest.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <linux/bpf.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "core/bpffs.h"
#include "core/instance.h"
#include "core/jumptable.h"
#include "core/lifecycle.h"
#include "core/specialise.h"
#include "core/wiring.h"
#include "tcd/shared.h"
#include "tests/common/kernel.h"
#include "tests/common/wait.h"

namespace {

using namespace tcdtest;

std::vector<uint8_t> jited_image(int prog_fd) {
    bpf_prog_info info{};
    uint32_t len = sizeof info;
    if (bpf_obj_get_info_by_fd(prog_fd, &info, &len) != 0) return {};
    std::vector<uint8_t> img(info.jited_prog_len);
    bpf_prog_info again{};
    again.jited_prog_len = info.jited_prog_len;
    again.jited_prog_insns = reinterpret_cast<uint64_t>(img.data());
    len = sizeof again;
    if (bpf_obj_get_info_by_fd(prog_fd, &again, &len) != 0) return {};
    return img;
}

struct Inst {
    std::string dir;
    explicit Inst(tcd::Kind kind, const std::string& tag = "tcddirect") : dir("/sys/fs/bpf/" + unique_name(tag)) {
        (void)tcd::unload(dir);
        tcd::LoadOptions o;
        o.kind = kind;
        ok = bool(tcd::load(dir, o));
    }
    ~Inst() { (void)tcd::unload(dir); }
    tcd::Instance open() const { return std::move(*tcd::Instance::open(dir)); }
    bool ok = false;
};

tcd::HandlerSpec spec(const char* name) { return *tcd::parse_handler_spec(name); }

class DirectJumps : public ::testing::TestWithParam<tcd::Kind> {};

std::string kind_label(const ::testing::TestParamInfo<tcd::Kind>& i) {
    return std::string(tcd::key_kind_name(i.param.key)) + "_" + tcd::hook_name(i.param.hook);
}

INSTANTIATE_TEST_SUITE_P(Kinds, DirectJumps,
                         ::testing::Values(tcd::Kind{tcd::KeyKind::proto, tcd::Hook::xdp},
                                           tcd::Kind{tcd::KeyKind::port, tcd::Hook::xdp},
                                           tcd::Kind{tcd::KeyKind::proto, tcd::Hook::tc},
                                           tcd::Kind{tcd::KeyKind::port, tcd::Hook::tc}),
                         kind_label);

// 20 random keys wired: the 16 the policy picks are patched direct jumps,
// the other 4 and an unwired key are not.
TEST_P(DirectJumps, EveryDirectKeyIsAPatchedJump) {
    TCD_REQUIRE_KERNEL();
    const tcd::Kind kind = GetParam();
    Inst inst(kind);
    ASSERT_TRUE(inst.ok);
    uint64_t seed = std::random_device{}();
    std::mt19937_64 rng(seed);
    std::set<uint32_t> keys;
    const uint32_t top = kind.key == tcd::KeyKind::port ? 65535 : 255;
    while (keys.size() < 20) keys.insert(uint32_t(rng() % (top + 1)));
    for (uint32_t k : keys) {
        auto in = inst.open();
        auto r = tcd::wire_key(in, k, spec("pass"));
        ASSERT_TRUE(r) << r.error().message();
    }
    auto in = inst.open();
    auto live = tcd::read_direct_keys(in.dispatcher());
    ASSERT_TRUE(live) << live.error().message();
    auto want = tcd::wanted_direct(in);
    ASSERT_TRUE(want);
    EXPECT_EQ(*live, *want) << "seed " << seed;
    EXPECT_EQ(live->size(), size_t(TCD_DIRECT_MAX));
    std::set<uint32_t> direct;
    for (const auto& d : *live) direct.insert(d.key);
    if (kind.key == tcd::KeyKind::port)
        for (const auto& d : *live) EXPECT_NE(d.slot, 0u) << "port " << d.key << " has no counter slot in .rodata";

    auto drop = tcd::open_handler(spec("drop"), inst.dir), pass = tcd::open_handler(spec("pass"), inst.dir);
    ASSERT_TRUE(drop && pass);
    std::vector<uint32_t> probe(keys.begin(), keys.end());
    uint32_t unwired = 0;
    while (keys.count(unwired)) unwired++;
    probe.push_back(unwired);
    int direct_seen = 0;
    for (uint32_t k : probe) {
        auto before = jited_image(in.dispatcher_fd());
        ASSERT_FALSE(before.empty());
        int fd = drop->fd.get();
        ASSERT_EQ(bpf_map_update_elem(in.jt_fd(), &k, &fd, BPF_ANY), 0);
        auto after = jited_image(in.dispatcher_fd());
        bool patched = before != after;
        EXPECT_EQ(patched, direct.count(k) == 1) << "key " << k << (direct.count(k) ? " is" : " is not")
                                                 << " in .rodata but the JIT image " << (patched ? "changed" : "did not change")
                                                 << " (seed " << seed << ")";
        direct_seen += patched;
        if (keys.count(k)) {
            fd = pass->fd.get();
            bpf_map_update_elem(in.jt_fd(), &k, &fd, BPF_ANY);
        } else {
            bpf_map_delete_elem(in.jt_fd(), &k);
        }
    }
    EXPECT_EQ(direct_seen, TCD_DIRECT_MAX);
    std::printf("%s/%s: %d of %zu wired keys are patched direct jumps (seed %llu)\n", tcd::key_kind_name(kind.key),
                tcd::hook_name(kind.hook), direct_seen, keys.size(), (unsigned long long)seed);
}

// The policy: a new dispatcher exactly when the direct set changes.
TEST(Respecialise, OnlyWhenTheDirectSetChanges) {
    TCD_REQUIRE_KERNEL();
    Inst inst({tcd::KeyKind::proto, tcd::Hook::xdp}, "tcdresp");
    ASSERT_TRUE(inst.ok);
    auto id = [&] { return inst.open().dispatcher().id; };
    auto direct = [&] {
        std::vector<uint32_t> out;
        auto in = inst.open();
        auto keys = tcd::read_direct_keys(in.dispatcher());
        for (const auto& d : *keys) out.push_back(d.key);
        return out;
    };
    // A fresh proto dispatcher: the four hot keys.
    EXPECT_EQ(direct(), (std::vector<uint32_t>{1, 6, 17, 58}));
    uint32_t first = id();
    auto in = inst.open();
    auto r = tcd::wire_key(in, 6, spec("tcp_handler"));
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_FALSE(r->respecialised);
    EXPECT_TRUE(r->direct);
    EXPECT_EQ(id(), first) << "tcp is direct already: no new dispatcher";
    in = inst.open();
    r = tcd::wire_key(in, 47, spec("pass"));
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_TRUE(r->respecialised);
    EXPECT_TRUE(r->direct);
    EXPECT_NE(id(), first);
    EXPECT_EQ(direct(), (std::vector<uint32_t>{1, 6, 17, 47, 58}));
    uint32_t second = id();
    in = inst.open();
    r = tcd::wire_key(in, 47, spec("drop"));  // rewired, still direct
    ASSERT_TRUE(r);
    EXPECT_FALSE(r->respecialised);
    EXPECT_EQ(id(), second);
    in = inst.open();
    auto d = tcd::unwire_keys(in, {47});
    ASSERT_TRUE(d) << d.error().message();
    EXPECT_TRUE(d->respecialised);
    EXPECT_EQ(direct(), (std::vector<uint32_t>{1, 6, 17, 58}));
    in = inst.open();
    d = tcd::unwire_keys(in, {6});  // a hot key stays direct, wired or not
    ASSERT_TRUE(d);
    EXPECT_FALSE(d->respecialised);
    // Wiring: as set, counters kept across the swaps.
    auto w = tcd::list_wiring(inst.open());
    ASSERT_TRUE(w);
    EXPECT_TRUE(w->empty());
}

// On a port instance the counter slots in .rodata are the ports' own, and a
// port's slot is freed only once no dispatcher counts into it.
TEST(Respecialise, PortSlotsFollowTheWiring) {
    TCD_REQUIRE_KERNEL();
    Inst inst({tcd::KeyKind::port, tcd::Hook::xdp}, "tcdresp_port");
    ASSERT_TRUE(inst.ok);
    EXPECT_TRUE(tcd::read_direct_keys(inst.open().dispatcher())->empty());
    for (uint32_t p : {8080u, 22u, 53u}) {
        auto in = inst.open();
        auto r = tcd::wire_key(in, p, spec("pass"));
        ASSERT_TRUE(r) << r.error().message();
        EXPECT_TRUE(r->respecialised);
    }
    auto in = inst.open();
    auto slots = tcd::read_port_slots(in);
    ASSERT_TRUE(slots);
    auto live = *tcd::read_direct_keys(in.dispatcher());
    ASSERT_EQ(live.size(), 3u);
    for (const auto& d : live) EXPECT_EQ(d.slot, (*slots)[d.key]) << "port " << d.key;
    auto del = tcd::unwire_keys(in, {22});
    ASSERT_TRUE(del) << del.error().message();
    EXPECT_TRUE(del->respecialised);
    in = inst.open();
    EXPECT_EQ((*tcd::read_port_slots(in))[22], 0u) << "the slot of an unwired port is freed";
    live = *tcd::read_direct_keys(in.dispatcher());
    EXPECT_EQ(live.size(), 2u);
}

// load --force replaces the built-in handlers: new programs under the same
// names, every key wired to an old one repointed to its successor, the old
// ones gone; user wiring and the dispatcher's direct keys as before.
TEST(BinaryUpgrade, LoadForceReplacesTheBuiltins) {
    TCD_REQUIRE_KERNEL();
    Inst inst({tcd::KeyKind::proto, tcd::Hook::xdp}, "tcdupgrade");
    ASSERT_TRUE(inst.ok);
    auto in = inst.open();
    ASSERT_TRUE(tcd::wire_key(in, 6, spec("tcp_handler")));
    in = inst.open();
    ASSERT_TRUE(tcd::wire_key(in, 17, spec("drop")));
    in = inst.open();
    ASSERT_TRUE(tcd::wire_key(in, 47, spec("drop")));
    auto ids = [&] {
        std::map<std::string, uint32_t> out;
        for (const auto& p : tcd::pinned_programs(inst.dir)) out[p.name] = p.info.id;
        return out;
    };
    auto before = ids();
    auto direct_before = *tcd::read_direct_keys(inst.open().dispatcher());
    tcd::LoadOptions o;
    o.force = true;
    auto r = tcd::load(inst.dir, o);
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->upgraded, (std::vector<std::string>{"tcp_handler", "udp_handler", "pass", "drop"}));
    auto after = ids();
    for (const auto& name : tcd::builtin_handlers()) {
        EXPECT_NE(before[name], after[name]) << name << " was not replaced";
        // Gone, once the kernel has let go: a prog array's entries are
        // released by a work item after its last fd closes (on 5.10 that
        // was still pending right after the load here).
        (void)tcdtest::wait_until([&] { return !tcd::prog_fd_by_id(before[name]); }, std::chrono::seconds(10),
                                  "the old " + name + " to be freed");
        EXPECT_FALSE(tcd::prog_fd_by_id(before[name])) << "the old " << name << " is still loaded";
    }
    auto w = tcd::list_wiring(inst.open());
    ASSERT_TRUE(w);
    ASSERT_EQ(w->size(), 3u);
    EXPECT_EQ((*w)[0].handler, "tcp_handler");
    EXPECT_EQ((*w)[0].prog_id, after["tcp_handler"]);
    EXPECT_EQ((*w)[1].handler, "drop");
    EXPECT_EQ((*w)[2].handler, "drop");
    EXPECT_EQ((*w)[2].prog_id, after["drop"]);
    EXPECT_EQ(*tcd::read_direct_keys(inst.open().dispatcher()), direct_before);
    for (const auto& name : tcd::bpffs::list_pins(inst.dir)) EXPECT_FALSE(tcd::bpffs::is_temp_pin(name)) << name;
}

}  // namespace
