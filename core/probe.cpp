#include "core/probe.h"

#include "core/log.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include <array>
#include <cstring>
#include <memory>
#include <cerrno>
#include <fmt/format.h>
#include <mutex>
#include <vector>

#include <xdp/libxdp.h>

#include <cstdlib>

#include "core/fd.h"
#include "tcd/shared.h"
#include "tcd_entry.skel.h"
#include "tcd_frprobe.skel.h"

namespace tcd::probe {
namespace {

constexpr int kENOTSUPP = 524;  // the kernel's internal "not supported", seen by user space

constexpr size_t kFeatures = 7;
const std::array<FeatureInfo, kFeatures> kInfo = {{
    {"the XDP frags flag (BPF_F_XDP_HAS_FRAGS)", "5.18", "load the program as SEC(\"xdp\"), not SEC(\"xdp.frags\")"},
    {"batch lookups on per-CPU arrays (BPF_MAP_LOOKUP_BATCH)", "5.13",
     "tcd reads such maps one key at a time instead"},
    {"tcx links (BPF_TCX_INGRESS/BPF_TCX_EGRESS)", "6.6", "attach with tc clsact (cls_bpf) instead"},
    {"the prog-array expected-attach-type check", "6.17",
     "without it a prog array takes programs of any expected attach type"},
    {"freplace programs (BPF_PROG_TYPE_EXT), which libxdp's multi-program dispatcher needs", "5.10",
     "tcd attaches its dispatcher alone on the interface"},
    {"a libxdp dispatcher that takes tcd's entry shim", "", "tcd attaches its dispatcher alone on the interface"},
    {"XDP test runs with a context (struct xdp_md in BPF_PROG_TEST_RUN)", "5.14",
     "trace runs XDP frames without it and cannot show tcd_next hops"},
}};

size_t index(Feature f) { return static_cast<size_t>(f); }

UniqueFd load_tiny(bpf_prog_type type, uint32_t flags, int ret, uint32_t attach_type = 0) {
    const bpf_insn insns[] = {
        {BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, ret},  // r0 = ret
        {BPF_JMP | BPF_EXIT, 0, 0, 0, 0},                    // exit
    };
    LIBBPF_OPTS(bpf_prog_load_opts, o, .expected_attach_type = static_cast<bpf_attach_type>(attach_type),
                .prog_flags = flags);
    return UniqueFd(bpf_prog_load(type, "tcd_probe", "GPL", insns, 2, &o));
}

std::string probe_what(Feature f) { return fmt::format("probe {}", info(f).name); }

// Each probe: true (the kernel took it), false (the kernel does not know the
// flag, command or attach type), or an error (the probe itself could not run).
Result<bool> probe_frags() {
    if (UniqueFd plain = load_tiny(BPF_PROG_TYPE_XDP, 0, XDP_PASS); !plain)
        return fail_errno(probe_what(Feature::xdp_frags), errno);
    UniqueFd frags = load_tiny(BPF_PROG_TYPE_XDP, BPF_F_XDP_HAS_FRAGS, XDP_PASS);
    if (frags) return true;
    if (errno == EINVAL) return false;  // an unknown prog_flags bit
    return fail_errno(probe_what(Feature::xdp_frags), errno);
}

Result<bool> probe_batch() {
    UniqueFd map(bpf_map_create(BPF_MAP_TYPE_PERCPU_ARRAY, "tcd_probe", 4, 8, 2, nullptr));
    if (!map) return fail_errno(probe_what(Feature::percpu_array_batch), errno);
    int ncpus = libbpf_num_possible_cpus();
    if (ncpus <= 0) return fail_errno("count CPUs", -ncpus);
    std::vector<uint64_t> values(size_t(ncpus) * 2);
    uint32_t keys[2] = {}, out = 0, count = 2;
    LIBBPF_OPTS(bpf_map_batch_opts, o);
    if (bpf_map_lookup_batch(map.get(), nullptr, &out, keys, values.data(), &count, &o) == 0 || errno == ENOENT)
        return true;
    // Before 5.6 the command is unknown (EINVAL); a map without batch ops
    // (per-CPU arrays before 5.13: Debian 11's 5.10) says EOPNOTSUPP or
    // ENOTSUPP.
    if (errno == EINVAL || errno == EOPNOTSUPP || errno == kENOTSUPP) return false;
    return fail_errno(probe_what(Feature::percpu_array_batch), errno);
}

Result<bool> probe_tcx() {
    UniqueFd prog = load_tiny(BPF_PROG_TYPE_SCHED_CLS, 0, 0);
    if (!prog) return fail_errno(probe_what(Feature::tcx), errno);
    // A link to an interface that cannot exist: a kernel with tcx looks the
    // interface up and says ENODEV; an older one refuses the attach type.
    LIBBPF_OPTS(bpf_link_create_opts, o);
    UniqueFd link(bpf_link_create(prog.get(), 0x7fffffff, static_cast<bpf_attach_type>(kTcxIngress), &o));
    if (link || errno == ENODEV) return true;
    if (errno == EINVAL) return false;
    return fail_errno(probe_what(Feature::tcx), errno);
}

// An array owned by an XDP program with no expected attach type: does it
// refuse one with BPF_XDP?
Result<bool> probe_attach_check() {
    const std::string what = probe_what(Feature::prog_array_attach_check);
    UniqueFd none = load_tiny(BPF_PROG_TYPE_XDP, 0, XDP_PASS, 0);
    UniqueFd xdp = load_tiny(BPF_PROG_TYPE_XDP, 0, XDP_PASS, BPF_XDP);
    if (!none || !xdp) return fail_errno(what, errno);
    UniqueFd arr(bpf_map_create(BPF_MAP_TYPE_PROG_ARRAY, "tcd_probe", 4, 4, 2, nullptr));
    if (!arr) return fail_errno(what, errno);
    uint32_t k0 = 0, k1 = 1;
    int a = none.get(), b = xdp.get();
    if (bpf_map_update_elem(arr.get(), &k0, &a, BPF_ANY) != 0) return fail_errno(what, errno);
    if (bpf_map_update_elem(arr.get(), &k1, &b, BPF_ANY) == 0) return false;
    if (errno == EINVAL) return true;
    return fail_errno(what, errno);
}

struct ObjClose {
    void operator()(bpf_object* o) const { bpf_object__close(o); }
};
using Obj = std::unique_ptr<bpf_object, ObjClose>;

std::string& refusal() {
    static std::string r;
    return r;
}

// A target with a global function, and an extension of it linked to it
// (libxdp_check_kern_compat's test). The target failing is the probe failing
// (privileges); the extension failing is the answer no.
Result<bool> probe_freplace() {
    const std::string what = probe_what(Feature::freplace);
    size_t sz = 0;
    const void* elf = tcd_frprobe__elf_bytes(&sz);
    LIBBPF_OPTS(bpf_object_open_opts, oo, .object_name = "tcd_frprobe");
    Obj tgt(bpf_object__open_mem(elf, sz, &oo)), ext(bpf_object__open_mem(elf, sz, &oo));
    if (!tgt || !ext) return fail_errno(what, errno);
    bpf_program* tp = bpf_object__find_program_by_name(tgt.get(), "tcd_fr_tgt");
    bpf_program* ep = bpf_object__find_program_by_name(ext.get(), "tcd_fr_ext");
    if (!tp || !ep) return fail(what, "the embedded probe object lacks its programs");
    bpf_program__set_autoload(bpf_object__find_program_by_name(tgt.get(), "tcd_fr_ext"), false);
    bpf_program__set_autoload(bpf_object__find_program_by_name(ext.get(), "tcd_fr_tgt"), false);
    if (int err = bpf_object__load(tgt.get())) return fail_errno(what, -err);
    if (int err = bpf_program__set_attach_target(ep, bpf_program__fd(tp), "tcd_fr_slot"))
        return fail_errno(what, -err);
    if (int err = bpf_object__load(ext.get())) {
        refusal() = fmt::format("the kernel refused a freplace program: {}{}", std::strerror(-err),
                                -err == EPERM ? " (kernel lockdown?)" : "");
        return false;
    }
    bpf_link* link = bpf_program__attach_freplace(ep, bpf_program__fd(tp), "tcd_fr_slot");
    if (!link) {
        int err = errno;
        refusal() = fmt::format("the kernel refused to link a freplace program: {}{}", std::strerror(err),
                                err == EPERM ? " (kernel lockdown?)" : "");
        return false;
    }
    bpf_link__destroy(link);
    refusal().clear();
    return true;
}

std::string& entry_refusal() {
    static std::string r;
    return r;
}

// tcd's entry shim (the embedded object libxdp is handed on attach), loaded
// as an extension of `slot` in the loaded dispatcher `target`, tail-calling
// through `arr`. 0 or the negative error; the verifier's log in `log`.
int load_entry_ext(int target, const char* slot, int arr, std::string& log) {
    size_t sz = 0;
    const void* elf = tcd_entry__elf_bytes(&sz);
    LIBBPF_OPTS(bpf_object_open_opts, oo, .object_name = "tcd_entry");
    Obj obj(bpf_object__open_mem(elf, sz, &oo));
    if (!obj) return -errno;
    bpf_program* p = bpf_object__find_program_by_name(obj.get(), TCD_PROG_ENTRY);
    bpf_map* m = bpf_object__find_map_by_name(obj.get(), TCD_MAP_MP_ENTRY);
    if (!p || !m) return -ENOENT;
    if (int err = bpf_map__reuse_fd(m, arr)) return err;
    // What libxdp does with a program it links into its dispatcher.
    bpf_program__set_type(p, BPF_PROG_TYPE_EXT);
    bpf_program__set_expected_attach_type(p, static_cast<bpf_attach_type>(0));
    if (int err = bpf_program__set_attach_target(p, target, slot)) return err;
    std::vector<char> buf(16384);
    bpf_program__set_log_buf(p, buf.data(), buf.size());
    bpf_program__set_log_level(p, 1);
    int err = bpf_object__load(obj.get());
    log.assign(buf.data());
    return err;
}

// libxdp's own dispatcher (what xdp_program__find_file finds: the object
// built into libxdp, or its xdp-dispatcher.o file in LIBXDP_OBJECT_PATH or
// libxdp's BPF directory), and tcd's entry as an extension of its first slot
// (prog0), tail-calling through a prog array that already holds an XDP
// program, as tcd's mp_entry holds the dispatcher when libxdp loads the
// entry. The kernel's answer is the probe's. The dispatcher's configuration
// (its .rodata) is all ones: every slot enabled and every action chained
// on, whatever the layout of this libxdp's dispatcher version. With none
// enabled, kernels that verify global functions only when reached (6.8 on)
// drop the unreached slots, and there is no prog0 to extend.
Result<bool> probe_libxdp_entry() {
    const std::string what = "probe whether libxdp's dispatcher takes tcd's entry";
    if (const char* e = secure_getenv("TCD_TEST_NO_LIBXDP_ENTRY"); e && std::string(e) == "1") {
        entry_refusal() = "TCD_TEST_NO_LIBXDP_ENTRY=1 is set";
        return false;
    }
    XdpProgramPtr disp(xdp_program__find_file("xdp-dispatcher.o", nullptr, nullptr));
    if (long err = libxdp_get_error(disp.get())) {
        (void)disp.release();
        entry_refusal() = fmt::format("libxdp's dispatcher object (xdp-dispatcher.o) was not found: {}",
                                      std::strerror(static_cast<int>(-err)));
        return false;
    }
    bpf_object* dobj = xdp_program__bpf_obj(disp.get());
    bpf_program* main = dobj ? bpf_object__find_program_by_name(dobj, "xdp_dispatcher") : nullptr;
    if (!main) return fail(what, "libxdp's dispatcher object has no program xdp_dispatcher");
    for (bpf_program* p = bpf_object__next_program(dobj, nullptr); p; p = bpf_object__next_program(dobj, p))
        bpf_program__set_autoload(p, p == main);
    for (bpf_map* m = bpf_object__next_map(dobj, nullptr); m; m = bpf_object__next_map(dobj, m)) {
        const std::string name = bpf_map__name(m);
        if (name.size() < 7 || name.compare(name.size() - 7, 7, ".rodata") != 0) continue;
        size_t size = 0;
        bpf_map__initial_value(m, &size);
        std::vector<unsigned char> ones(size, 0xff);
        if (size && bpf_map__set_initial_value(m, ones.data(), size) != 0)
            return fail(what, "could not configure libxdp's dispatcher object");
    }
    if (int err = bpf_object__load(dobj)) return fail_errno(what + ": load libxdp's dispatcher", -err);
    UniqueFd owner = load_tiny(BPF_PROG_TYPE_XDP, 0, XDP_PASS, 0);
    UniqueFd arr(bpf_map_create(BPF_MAP_TYPE_PROG_ARRAY, "tcd_probe", 4, 4, 1, nullptr));
    if (!owner || !arr) return fail_errno(what, errno);
    uint32_t k = 0;
    int ofd = owner.get();
    if (bpf_map_update_elem(arr.get(), &k, &ofd, BPF_ANY) != 0) return fail_errno(what, errno);
    std::string log;
    int err = load_entry_ext(bpf_program__fd(main), "prog0", arr.get(), log);
    if (err == 0) {
        entry_refusal().clear();
        return true;
    }
    if (err == -EPERM) {
        entry_refusal() = "the kernel refused tcd's entry as a freplace program: Operation not permitted "
                          "(kernel lockdown?)";
        return false;
    }
    if (err != -EINVAL) return fail_errno(what, -err);
    if (log.find("changes packet data") != std::string::npos) {
        entry_refusal() = fmt::format(
            "this kernel refuses a freplace program that changes packet data (tcd's entry: a tail call) in "
            "place of a function that does not, and the slots of this libxdp's dispatcher do not (libxdp {} "
            "makes them)",
            kLibxdpSlotsChangePacketData);
        return false;
    }
    // The same entry with a prog array that holds nothing yet: if the
    // kernel takes that, it was the array's XDP program it refused.
    UniqueFd empty(bpf_map_create(BPF_MAP_TYPE_PROG_ARRAY, "tcd_probe", 4, 4, 1, nullptr));
    if (!empty) return fail_errno(what, errno);
    std::string log2;
    if (load_entry_ext(bpf_program__fd(main), "prog0", empty.get(), log2) == 0) {
        entry_refusal() = fmt::format(
            "this kernel's prog arrays take no freplace program beside the XDP program they hold (tcd's entry "
            "tail-calls its XDP dispatcher; Linux {} resolves an extension to its target's type there)",
            kLinuxExtTypeResolved);
        return false;
    }
    // Another cause: the verifier's first line names it.
    std::string first = log.substr(0, log.find('\n'));
    if (first.rfind("processed ", 0) == 0) first.clear();
    entry_refusal() = fmt::format("the kernel refused tcd's entry in libxdp's dispatcher: Invalid argument{}",
                                  first.empty() ? "" : " (verifier: " + first + ")");
    return false;
}

// A test run of a two-instruction XDP program on a zeroed 64-byte frame
// with an xdp_md context: before 5.14 the kernel refuses any context for
// XDP (EINVAL), where the same run without one works.
Result<bool> probe_xdp_test_ctx() {
    const std::string what = probe_what(Feature::xdp_test_run_ctx);
    UniqueFd prog = load_tiny(BPF_PROG_TYPE_XDP, 0, XDP_PASS);
    if (!prog) return fail_errno(what, errno);
    unsigned char frame[64] = {};
    xdp_md ctx{};
    ctx.data_end = sizeof frame;
    LIBBPF_OPTS(bpf_test_run_opts, with, .data_in = frame, .data_size_in = sizeof frame, .ctx_in = &ctx,
                .ctx_size_in = sizeof ctx, .repeat = 1);
    if (bpf_prog_test_run_opts(prog.get(), &with) == 0) return true;
    int err = errno;
    LIBBPF_OPTS(bpf_test_run_opts, without, .data_in = frame, .data_size_in = sizeof frame, .repeat = 1);
    if (err == EINVAL && bpf_prog_test_run_opts(prog.get(), &without) == 0) return false;
    return fail_errno(what, err);
}

struct Cache {
    std::mutex mu;
    std::array<std::optional<bool>, kFeatures> known;
};
Cache& cache() {
    static Cache c;
    return c;
}

}  // namespace

const FeatureInfo& info(Feature f) { return kInfo[index(f)]; }

Result<bool> has(Feature f) {
    Cache& c = cache();
    std::lock_guard lock(c.mu);
    if (auto& k = c.known[index(f)]) return *k;
    // A probe expects refusals (freplace under lockdown, a kernel without
    // tcx): libbpf's and libxdp's words about them are not the user's
    // problem, not even with -v (libbpf calls an EPERM "a permission error
    // while running as root; try raising 'ulimit -l'?").
    QuietLibraries quiet;
    Result<bool> r = f == Feature::xdp_frags            ? probe_frags()
                     : f == Feature::percpu_array_batch ? probe_batch()
                     : f == Feature::tcx                ? probe_tcx()
                     : f == Feature::freplace           ? probe_freplace()
                     : f == Feature::libxdp_entry       ? probe_libxdp_entry()
                     : f == Feature::xdp_test_run_ctx   ? probe_xdp_test_ctx()
                                                        : probe_attach_check();
    if (r) c.known[index(f)] = *r;
    return r;
}

Error missing(Feature f, const std::string& what, const std::string& hint) {
    const FeatureInfo& i = info(f);
    return Error{what,
                 *i.since ? fmt::format("this kernel lacks {} (Linux {} brings it)", i.name, i.since)
                          : fmt::format("this system lacks {}", i.name),
                 hint.empty() ? i.hint : hint, 0, ExitCode::failed};
}

Result<> require(Feature f, const std::string& what, const std::string& hint) {
    auto r = has(f);
    if (!r) return propagate(r);
    if (!*r) return tl::unexpected(missing(f, what, hint));
    return {};
}

std::string freplace_refusal() {
    Cache& c = cache();
    std::lock_guard lock(c.mu);
    return refusal();
}

std::string libxdp_entry_refusal() {
    Cache& c = cache();
    std::lock_guard lock(c.mu);
    return entry_refusal();
}

bool try_batch() {
    Cache& c = cache();
    std::lock_guard lock(c.mu);
    return c.known[index(Feature::percpu_array_batch)].value_or(true);
}

bool batch_worked(int rc, int err, uint32_t count) {
    const bool worked = rc == 0 || (err == ENOENT && count > 0);  // ENOENT: the last batch
    const bool unsupported = rc != 0 && (err == EINVAL || err == EOPNOTSUPP || err == kENOTSUPP);
    if (worked || unsupported) {
        Cache& c = cache();
        std::lock_guard lock(c.mu);
        c.known[index(Feature::percpu_array_batch)] = worked;
    }
    return worked;
}

void override_for_test(Feature f, std::optional<bool> v) {
    Cache& c = cache();
    std::lock_guard lock(c.mu);
    c.known[index(f)] = v;
}

}  // namespace tcd::probe
