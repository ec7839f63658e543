// Kernel feature probes against the running kernel (this host, and Debian
// 12's 6.1 in scripts/vm-test.sh's guest); the per-key fallback when batch
// lookups are missing; and a jump table owned by a freplace program, which
// only the guest can load (lockdown refuses freplace on the host).
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <sys/utsname.h>
#include <xdp/libxdp.h>

#include <cerrno>
#include <cstdio>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "core/fd.h"
#include "core/jumptable.h"
#include "core/probe.h"
#include "core/stats.h"
#include "tcd/shared.h"
#include "tests/common/instance.h"
#include "tests/common/kernel.h"

namespace {

using namespace tcdtest;
using tcd::probe::Feature;

std::string obj(const char* name) { return std::string(TCD_BPF_OBJ_DIR) + "/" + name + ".bpf.o"; }

// The running kernel's release as major*1000+minor. The test's oracle only:
// tcd itself never compares versions. Mainline and Debian kernels carry none
// of these three features as a backport.
int release() {
    utsname u{};
    uname(&u);
    int major = 0, minor = 0;
    std::sscanf(u.release, "%d.%d", &major, &minor);
    return major * 1000 + minor;
}

std::string lockdown() {
    std::ifstream f("/sys/kernel/security/lockdown");
    std::string s;
    std::getline(f, s);
    return s;
}

struct Restore {
    Feature f;
    ~Restore() { tcd::probe::override_for_test(f, std::nullopt); }
};

TEST(Probe, AnswersMatchThisKernel) {
    TCD_REQUIRE_KERNEL();
    const int rel = release();
    auto frags = tcd::probe::has(Feature::xdp_frags);
    auto batch = tcd::probe::has(Feature::percpu_array_batch);
    auto tcx = tcd::probe::has(Feature::tcx);
    ASSERT_TRUE(frags) << frags.error().message();
    ASSERT_TRUE(batch) << batch.error().message();
    ASSERT_TRUE(tcx) << tcx.error().message();
    EXPECT_EQ(*frags, rel >= 5018) << "kernel " << rel;
    EXPECT_EQ(*batch, rel >= 5013) << "kernel " << rel;  // per-CPU arrays: 5.13 (plain arrays 5.6)
    EXPECT_EQ(*tcx, rel >= 6006) << "kernel " << rel;
    auto ctx = tcd::probe::has(Feature::xdp_test_run_ctx);
    ASSERT_TRUE(ctx) << ctx.error().message();
    EXPECT_EQ(*ctx, rel >= 5014) << "kernel " << rel;
    // The prog-array attach-type check: 6.17, and backported to stable
    // series (Debian 12's 6.1.1xx has it), so only newer kernels are sure.
    auto check = tcd::probe::has(Feature::prog_array_attach_check);
    ASSERT_TRUE(check) << check.error().message();
    if (rel >= 6017) EXPECT_TRUE(*check);
    std::printf("kernel %d.%d: frags %d, batch %d, tcx %d, prog-array attach-type check %d\n", rel / 1000,
                rel % 1000, *frags, *batch, *tcx, *check);
    // require() agrees, and a missing feature's error names it and its release.
    auto r = tcd::probe::require(Feature::tcx, "attach lo");
    EXPECT_EQ(bool(r), *tcx);
    if (!r) EXPECT_NE(r.error().message().find("tcx links"), std::string::npos) << r.error().message();
}

// The oracle for the libxdp_entry probe's libxdp half, read from libxdp's
// own dispatcher object without the kernel: whether its slot prog0 calls a
// helper that changes packet data (libxdp 1.5.5's slots call
// bpf_xdp_adjust_tail; older ones call none). After load, the main
// program's instructions hold the subprograms libbpf appended.
std::optional<bool> libxdp_slots_change_packet_data() {
    tcd::XdpProgramPtr d(xdp_program__find_file("xdp-dispatcher.o", nullptr, nullptr));
    if (libxdp_get_error(d.get())) {
        (void)d.release();
        return std::nullopt;
    }
    bpf_object* o = xdp_program__bpf_obj(d.get());
    bpf_program* main = bpf_object__find_program_by_name(o, "xdp_dispatcher");
    if (!main) return std::nullopt;
    for (bpf_program* p = bpf_object__next_program(o, nullptr); p; p = bpf_object__next_program(o, p))
        bpf_program__set_autoload(p, p == main);
    if (bpf_object__load(o) != 0) return std::nullopt;
    const bpf_insn* in = bpf_program__insns(main);
    for (size_t i = 0; i < bpf_program__insn_cnt(main); i++)
        if (in[i].code == (BPF_JMP | BPF_CALL) && in[i].src_reg == 0 &&
            (in[i].imm == BPF_FUNC_xdp_adjust_tail || in[i].imm == BPF_FUNC_xdp_adjust_head ||
             in[i].imm == BPF_FUNC_xdp_adjust_meta))
            return true;
    return false;
}

// Whether libxdp's dispatcher takes tcd's entry (a freplace program that
// tail-calls): no under lockdown (the host); no before 6.2 (5.10: a prog
// array holding an XDP program refuses the extension, whose type is not
// resolved to its target's); yes from 6.2 on where libxdp's slots change
// packet data; no from 6.13 on where they do not (the kernel refuses an
// extension that changes packet data in place of one that does not); 6.1
// yes (Debian's carries the type resolution); 6.12 either (the stable
// series took the packet-data rule in 6.12.y), with the cause named.
TEST(Probe, LibxdpEntryMatchesThisKernelAndLibxdp) {
    TCD_REQUIRE_KERNEL();
    auto fr = tcd::probe::has(Feature::freplace);
    auto e = tcd::probe::has(Feature::libxdp_entry);
    ASSERT_TRUE(fr) << fr.error().message();
    ASSERT_TRUE(e) << e.error().message();
    const std::string why = tcd::probe::libxdp_entry_refusal();
    EXPECT_EQ(why.empty(), *e) << why;
    auto slots = libxdp_slots_change_packet_data();
    ASSERT_TRUE(slots) << "libxdp's dispatcher object could not be read or loaded";
    const int rel = release();
    std::printf("kernel %d.%d, libxdp's slots %s packet data: libxdp's dispatcher %s tcd's entry%s%s\n",
                rel / 1000, rel % 1000, *slots ? "change" : "do not change", *e ? "takes" : "refuses",
                why.empty() ? "" : ": ", why.c_str());
    if (!*fr) {
        EXPECT_FALSE(*e);
        EXPECT_NE(why.find("Operation not permitted"), std::string::npos) << why;
        return;
    }
    if (rel < 6001) {
        EXPECT_FALSE(*e);
        EXPECT_NE(why.find("take no freplace program beside the XDP program they hold"), std::string::npos) << why;
        EXPECT_NE(why.find("Linux 6.2"), std::string::npos) << why;
    } else if (*slots || rel < 6012) {
        EXPECT_TRUE(*e) << why;
    } else if (rel >= 6013) {
        EXPECT_FALSE(*e);
    }
    if (!*e && rel >= 6012) {
        EXPECT_NE(why.find("changes packet data"), std::string::npos) << why;
        EXPECT_NE(why.find("libxdp 1.5.5"), std::string::npos) << why;
    }
}

// TCD_TEST_NO_LIBXDP_ENTRY=1 makes the probe say no, saying so (for the
// e2e tests of the refusal on a kernel where libxdp takes the entry).
TEST(Probe, LibxdpEntryTestKnob) {
    TCD_REQUIRE_KERNEL();
    Restore r{Feature::libxdp_entry};
    tcd::probe::override_for_test(Feature::libxdp_entry, std::nullopt);
    setenv("TCD_TEST_NO_LIBXDP_ENTRY", "1", 1);
    auto e = tcd::probe::has(Feature::libxdp_entry);
    unsetenv("TCD_TEST_NO_LIBXDP_ENTRY");
    ASSERT_TRUE(e);
    EXPECT_FALSE(*e);
    EXPECT_NE(tcd::probe::libxdp_entry_refusal().find("TCD_TEST_NO_LIBXDP_ENTRY=1 is set"), std::string::npos);
}

// Without batch lookups (as before 5.6), counters are read and reset one row
// at a time, and port slots one port at a time: the same numbers.
TEST(Probe, StatsWithoutBatchLookupsAgree) {
    TCD_REQUIRE_KERNEL();
    TestInstance inst("tcdpr_nobatch", tcd::MissAction::pass);
    ASSERT_EQ(inst.error(), "");
    int ncpus = libbpf_num_possible_cpus();
    ASSERT_GT(ncpus, 0);
    for (uint32_t row : {0u, 6u, 17u, 200u, uint32_t(TCD_SLOT_NON_IP), uint32_t(TCD_SLOT_MALFORMED)}) {
        std::vector<tcd_counters> v(ncpus);
        for (int c = 0; c < ncpus; c++) v[c] = {row * 10 + c + 1, (row * 10 + c + 1) * 60, uint64_t(c)};
        ASSERT_EQ(bpf_map_update_elem(inst.in().stats_fd(), &row, v.data(), BPF_ANY), 0) << row;
    }
    auto batched = tcd::read_stats(inst.in().stats_fd());
    ASSERT_TRUE(batched) << batched.error().message();
    Restore restore{Feature::percpu_array_batch};
    tcd::probe::override_for_test(Feature::percpu_array_batch, false);
    auto single = tcd::read_stats(inst.in().stats_fd());
    ASSERT_TRUE(single) << single.error().message();
    ASSERT_EQ(single->keys.size(), batched->keys.size());
    for (size_t k = 0; k < single->keys.size(); k++) {
        EXPECT_EQ(single->keys[k].packets, batched->keys[k].packets) << k;
        EXPECT_EQ(single->keys[k].bytes, batched->keys[k].bytes) << k;
        EXPECT_EQ(single->keys[k].missed, batched->keys[k].missed) << k;
    }
    EXPECT_EQ(single->non_ip.packets, batched->non_ip.packets);
    EXPECT_EQ(single->malformed.packets, batched->malformed.packets);
    EXPECT_GT(single->total().packets, 0u);
    ASSERT_TRUE(tcd::reset_stats(inst.in().stats_fd()));
    auto zero = tcd::read_stats(inst.in().stats_fd());
    ASSERT_TRUE(zero);
    EXPECT_EQ(zero->total().packets, 0u);
    EXPECT_EQ(zero->total().bytes, 0u);
}

TEST(Probe, PortSlotsWithoutBatchLookupsAgree) {
    TCD_REQUIRE_KERNEL();
    std::string dir = "/sys/fs/bpf/" + unique_name("tcdpr_ports");
    (void)tcd::unload(dir);
    auto l = tcd::load(dir, {tcd::MissAction::pass, false, tcd::Kind{tcd::KeyKind::port, tcd::Hook::xdp}});
    ASSERT_TRUE(l) << l.error().message();
    struct Unload {
        std::string d;
        ~Unload() { (void)tcd::unload(d); }
    } unload{dir};
    auto in = tcd::Instance::open(dir);
    ASSERT_TRUE(in) << in.error().message();
    for (uint32_t port : {22u, 443u, 8080u})
        ASSERT_TRUE(tcd::set_handler(*in, port, *tcd::parse_handler_spec("pass")));
    auto batched = tcd::read_port_slots(*in);
    ASSERT_TRUE(batched) << batched.error().message();
    Restore restore{Feature::percpu_array_batch};
    tcd::probe::override_for_test(Feature::percpu_array_batch, false);
    auto single = tcd::read_port_slots(*in);
    ASSERT_TRUE(single) << single.error().message();
    EXPECT_EQ(*single, *batched);
    EXPECT_NE((*single)[22], 0u);
    EXPECT_NE((*single)[8080], (*single)[443]);
    EXPECT_EQ((*single)[80], 0u);
}

// libxdp runs a program as a freplace (BPF_PROG_TYPE_EXT) extension of its
// dispatcher; a freplace program's expected attach type is none. Kernels with
// the prog-array attach-type check (6.17, and Debian 12's 6.1.1xx through the
// stable backport) then refuse SEC("xdp") (BPF_XDP) programs in a prog array
// it owns; tcd's check must say so, and take a program with none.
TEST(Compat, FreplaceOwnedTableNamesTheCause) {
    TCD_REQUIRE_KERNEL();
    bpf_object* target = bpf_object__open_file(obj("freplace_target").c_str(), nullptr);
    ASSERT_TRUE(target);
    ASSERT_EQ(bpf_object__load(target), 0);
    int target_fd = bpf_program__fd(bpf_object__find_program_by_name(target, "fr_target"));
    bpf_object* owner = bpf_object__open_file(obj("freplace_owner").c_str(), nullptr);
    ASSERT_TRUE(owner);
    bpf_program* op = bpf_object__find_program_by_name(owner, "fr_owner");
    ASSERT_EQ(bpf_program__set_attach_target(op, target_fd, "fr_slot"), 0);
    int lr = bpf_object__load(owner);
    // Lockdown (integrity) refuses freplace with EPERM. Where lockdown is
    // known to be off, a failure is a failure.
    const std::string ld = lockdown();
    if (lr == -EPERM && ld.find("[none]") == std::string::npos) {
        bpf_object__close(owner);
        bpf_object__close(target);
        GTEST_SKIP() << "freplace refused (EPERM) under lockdown ("
                     << (ld.empty() ? "securityfs not mounted; see dmesg" : ld)
                     << "); scripts/vm-test.sh runs this in a guest without lockdown";
    }
    ASSERT_EQ(lr, 0) << "freplace load failed without lockdown";
    int owner_fd = bpf_program__fd(op);
    auto owner_info = tcd::prog_info(owner_fd);
    ASSERT_TRUE(owner_info);
    EXPECT_EQ(owner_info->type, uint32_t(BPF_PROG_TYPE_EXT));
    int jt = bpf_map__fd(bpf_object__find_map_by_name(owner, "fr_jt"));

    // Two handlers: SEC("xdp") as libbpf loads it (BPF_XDP), and the same
    // program loaded with no expected attach type.
    auto load_handler = [&](bool none) {
        bpf_object* o = bpf_object__open_file(obj("freplace_target").c_str(), nullptr);
        if (none) bpf_program__set_expected_attach_type(bpf_object__find_program_by_name(o, "fr_target"),
                                                       static_cast<bpf_attach_type>(0));
        EXPECT_EQ(bpf_object__load(o), 0);
        return o;
    };
    bpf_object* xdp_obj = load_handler(false);
    bpf_object* none_obj = load_handler(true);
    auto handler = [](bpf_object* o, const char* display) {
        int fd = bpf_program__fd(bpf_object__find_program_by_name(o, "fr_target"));
        tcd::Handler h{tcd::UniqueFd(dup(fd)), *tcd::prog_info(fd), display};
        return h;
    };
    tcd::Handler xdp_h = handler(xdp_obj, "xdp_h"), none_h = handler(none_obj, "none_h");

    uint32_t k0 = 0, k1 = 1;
    int xdp_fd = xdp_h.fd.get(), none_fd = none_h.fd.get();
    if (bpf_map_update_elem(jt, &k1, &none_fd, BPF_ANY) != 0) {
        // Before 6.2 (Debian 11's 5.10) the table takes its freplace owner's
        // own type, BPF_PROG_TYPE_EXT, and no XDP program at all. tcd makes
        // no such table there: libxdp_entry says no, and tcd attaches alone.
        EXPECT_LT(release(), 6002);
        auto e = tcd::probe::has(Feature::libxdp_entry);
        EXPECT_TRUE(e && !*e);
        bpf_object__close(none_obj);
        bpf_object__close(xdp_obj);
        bpf_object__close(owner);
        bpf_object__close(target);
        GTEST_SKIP() << "a prog array a freplace program owns takes no XDP program on this kernel (the extension's "
                        "type is resolved to its target's from Linux 6.2): "
                     << tcd::probe::libxdp_entry_refusal();
    }
    bool kernel_checks = bpf_map_update_elem(jt, &k0, &xdp_fd, BPF_ANY) != 0;
    EXPECT_EQ(tcd::probe::has(Feature::prog_array_attach_check).value_or(!kernel_checks), kernel_checks);
    auto table_at = tcd::xdp_table_attach_type(owner_fd);
    ASSERT_TRUE(table_at);
    // A freplace program goes into no prog array at all (6.1 refuses it with
    // EINVAL; the host cannot load one), so tcd cannot ask a scratch array.
    int probe_arr = bpf_map_create(BPF_MAP_TYPE_PROG_ARRAY, "tcd_t", 4, 4, 1, nullptr);
    ASSERT_GE(probe_arr, 0);
    EXPECT_NE(bpf_map_update_elem(probe_arr, &k0, &owner_fd, BPF_ANY), 0);
    close(probe_arr);
    auto r = tcd::check_compatible(owner_fd, *owner_info, BPF_PROG_TYPE_XDP, xdp_h);
    if (kernel_checks) {
        EXPECT_EQ(*table_at, 0u);
        ASSERT_FALSE(r);
        EXPECT_NE(r.error().message().find("expected attach type differs: handler xdp, jump table none (the jump "
                                           "table's owner is a freplace program"),
                  std::string::npos)
            << r.error().message();
        EXPECT_EQ(r.error().message().find("program type"), std::string::npos) << r.error().message();
    } else {
        EXPECT_TRUE(r) << r.error().message();
    }
    // A program with no expected attach type goes in, on every kernel.
    EXPECT_TRUE(tcd::check_compatible(owner_fd, *owner_info, BPF_PROG_TYPE_XDP, none_h));
    EXPECT_EQ(bpf_map_update_elem(jt, &k1, &none_fd, BPF_ANY), 0);
    std::printf("freplace-owned prog array: the kernel %s BPF_XDP programs; tcd's table attach type: %u\n",
                kernel_checks ? "refuses" : "takes", *table_at);
    bpf_object__close(none_obj);
    bpf_object__close(xdp_obj);
    bpf_object__close(owner);
    bpf_object__close(target);
}

}  // namespace
