#include "core/probe.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include <array>
#include <cstring>
#include <memory>
#include <cerrno>
#include <fmt/format.h>
#include <mutex>

#include "core/fd.h"
#include "tcd_frprobe.skel.h"

namespace tcd::probe {
namespace {

constexpr int kENOTSUPP = 524;  // the kernel's internal "not supported", seen by user space

const std::array<FeatureInfo, 5> kInfo = {{
    {"the XDP frags flag (BPF_F_XDP_HAS_FRAGS)", "5.18", "load the program as SEC(\"xdp\"), not SEC(\"xdp.frags\")"},
    {"batch lookups on per-CPU arrays (BPF_MAP_LOOKUP_BATCH)", "5.6",
     "tcd reads such maps one key at a time instead"},
    {"tcx links (BPF_TCX_INGRESS/BPF_TCX_EGRESS)", "6.6", "attach with tc clsact (cls_bpf) instead"},
    {"the prog-array expected-attach-type check", "6.17",
     "without it a prog array takes programs of any expected attach type"},
    {"freplace programs (BPF_PROG_TYPE_EXT), which libxdp's multi-program dispatcher needs", "5.10",
     "tcd attaches its dispatcher alone on the interface"},
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
    // says EOPNOTSUPP or ENOTSUPP.
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
    struct ObjClose {
        void operator()(bpf_object* o) const { bpf_object__close(o); }
    };
    using Obj = std::unique_ptr<bpf_object, ObjClose>;
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

struct Cache {
    std::mutex mu;
    std::array<std::optional<bool>, 5> known;
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
    Result<bool> r = f == Feature::xdp_frags            ? probe_frags()
                     : f == Feature::percpu_array_batch ? probe_batch()
                     : f == Feature::tcx                ? probe_tcx()
                     : f == Feature::freplace           ? probe_freplace()
                                                        : probe_attach_check();
    if (r) c.known[index(f)] = *r;
    return r;
}

Error missing(Feature f, const std::string& what, const std::string& hint) {
    const FeatureInfo& i = info(f);
    return Error{what, fmt::format("this kernel lacks {} (Linux {} brings it)", i.name, i.since),
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
