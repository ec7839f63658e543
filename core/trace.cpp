#include "core/trace.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include <cctype>
#include <cerrno>
#include <fmt/format.h>

#include "core/bpffs.h"
#include "core/log.h"
#include "core/keys.h"
#include "tcd/shared.h"

namespace tcd {

Result<std::vector<uint8_t>> parse_hex(std::string_view text) {
    std::vector<uint8_t> out;
    int hi = -1;
    for (size_t i = 0; i < text.size(); i++) {
        char c = text[i];
        if (c == ' ' || c == ':' || c == '\n' || c == '\t' || c == '-') {
            if (hi >= 0) return usage_error("--hex", fmt::format("odd hex digit before position {}", i + 1));
            continue;
        }
        if (c == '0' && i + 1 < text.size() && (text[i + 1] == 'x' || text[i + 1] == 'X') && hi < 0) {
            i++;
            continue;
        }
        if (!std::isxdigit(static_cast<unsigned char>(c)))
            return usage_error("--hex", fmt::format("'{}' at position {} is not a hex digit", c, i + 1));
        int v = std::isdigit(static_cast<unsigned char>(c)) ? c - '0' : (std::tolower(c) - 'a' + 10);
        if (hi < 0) {
            hi = v;
        } else {
            out.push_back(static_cast<uint8_t>(hi << 4 | v));
            hi = -1;
        }
    }
    if (hi >= 0) return usage_error("--hex", "odd number of hex digits");
    if (out.empty()) return usage_error("--hex", "no bytes given");
    return out;
}

const char* class_name(uint32_t cls) {
    switch (cls) {
    case TCD_CLASS_IPV4: return "ipv4";
    case TCD_CLASS_IPV6: return "ipv6";
    case TCD_CLASS_NON_IP: return "non-ip";
    case TCD_CLASS_NO_PORT: return "no-port";
    default: return "malformed";
    }
}

std::string verdict_name(uint32_t action) { return tcd::verdict_name(Hook::xdp, action); }

void TraceSummary::add(const TraceFrame& f) {
    frames_++;
    auto& row = rows_[{f.cls, f.key ? int(*f.key) : -1}];
    row.cls = f.cls;
    row.key = f.key;
    row.key_name = f.key_name;
    row.frames++;
    row.bytes += f.len;
    row.missed += f.missed ? 1 : 0;
    row.verdicts[f.verdict]++;
}

std::vector<TraceSummaryRow> TraceSummary::rows() const {
    std::vector<TraceSummaryRow> out;
    for (const auto& [k, r] : rows_) out.push_back(r);
    return out;
}

Tracer::~Tracer() = default;

int Tracer::prog_fd() const { return bpf_program__fd(obj_->dispatcher()); }

Result<Tracer> Tracer::open(const std::string& pin_dir, Kind kind, std::optional<MissAction> miss) {
    Tracer t;
    std::optional<Instance> in;
    if (bpffs::is_bpffs(pin_dir) && Instance::is_loaded(pin_dir)) {
        auto i = Instance::open(pin_dir);
        if (!i) return propagate(i);
        in.emplace(std::move(*i));
        kind = in->kind();
        miss = in->miss_action();
    }
    t.kind_ = kind;
    t.miss_ = miss.value_or(default_miss_action(kind.hook));
    auto obj = DispatcherObject::open(kind);
    if (!obj) return propagate(obj);
    t.obj_.emplace(std::move(*obj));
    if (in) {
        // The instance's jump table and port slots; counters stay our own.
        std::vector<std::pair<const char*, std::string>> shared = {{TCD_MAP_JT, in->paths().jt()}};
        if (kind.key == KeyKind::port) shared.emplace_back(TCD_MAP_PORT_SLOT, in->paths().port_slot());
        for (const auto& [name, path] : shared) {
            auto fd = bpffs::get(path);
            if (!fd) return propagate(fd);
            if (int err = bpf_map__reuse_fd(t.obj_->map(name), fd->get()))
                return fail_errno("trace: reuse " + path, -err);
            t.shared_.push_back(std::move(*fd));
        }
        for (auto& p : pinned_programs(pin_dir)) t.names_.emplace(p.info.id, p.name);
        t.loaded_ = true;
    }
    t.obj_->configure(t.miss_, true);
    // The same keys by direct jumps as the live dispatcher.
    if (in)
        if (auto direct = read_direct_keys(in->dispatcher())) t.obj_->specialise(*direct);
    // Only the dispatcher: the handlers that run are the instance's own.
    for (const auto& name : builtin_handlers()) bpf_program__set_autoload(t.obj_->program(name), false);
    if (auto r = t.obj_->load(); !r)
        return fail("trace", "the kernel refused the trace dispatcher: " + errno_words(r.error().err),
                    errno_hint(r.error().err, "run with -v for libbpf's log"), r.error().err);
    return t;
}

Result<TraceFrame> Tracer::run(const uint8_t* data, size_t len, uint64_t number) {
    TraceFrame f;
    f.frame = number;
    f.len = static_cast<uint32_t>(len);
    if (len < kMinFrame) {
        // BPF_PROG_TEST_RUN refuses less than an Ethernet header; no such
        // frame reaches XDP on a real interface. The contract: malformed, pass
        // (next with miss action next).
        f.cls = class_name(TCD_CLASS_MALFORMED);
        f.verdict = tcd::verdict_name(kind_.hook, undispatched_verdict(miss_, kind_.hook));
        f.ran = false;
        return f;
    }
    // tc programs run on an skb that test_run builds from the frame.
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = data, .data_size_in = static_cast<uint32_t>(len),
                .repeat = 1);
    int rc = bpf_prog_test_run_opts(prog_fd(), &opts);
    if (rc != 0 && errno == EINVAL && kind_.hook == Hook::tc && len > 2048) {
        // tc's test_run builds a linear skb of at most a page (3,712 bytes on
        // x86-64) and refuses a longer frame before running anything: run the
        // frame's head instead, as XDP's test_run gives a program without the
        // frags flag only the first buffer. len says what the dispatcher got.
        for (uint32_t head : {3712u, 3520u, 3264u, 2048u}) {
            opts.data_size_in = head;
            if ((rc = bpf_prog_test_run_opts(prog_fd(), &opts)) == 0 || errno != EINVAL) break;
        }
        if (rc == 0) f.len = opts.data_size_in;
    }
    if (rc != 0) {
        int err = errno;
        // tc's test_run builds an skb and refuses one whose IPv4/IPv6 header
        // is cut short; the contract calls such a frame malformed.
        if (err == EINVAL && kind_.hook == Hook::tc) {
            f.cls = class_name(TCD_CLASS_MALFORMED);
            f.verdict = tcd::verdict_name(kind_.hook, undispatched_verdict(miss_, kind_.hook));
            f.ran = false;
            return f;
        }
        return fail_errno(fmt::format("trace frame {}", number), err);
    }

    tcd_trace_rec rec{};
    uint32_t zero = 0;
    if (bpf_map_lookup_elem(bpf_map__fd(obj_->map(TCD_MAP_TRACE)), &zero, &rec) != 0)
        return fail_errno("trace: read the record", errno);
    if (rec.runs == last_runs_)
        return fail(fmt::format("trace frame {}", number), "the dispatcher did not record this run");
    last_runs_ = rec.runs;

    f.cls = class_name(rec.cls);
    f.verdict = tcd::verdict_name(kind_.hook, opts.retval);
    if (rec.cls == TCD_CLASS_IPV4 || rec.cls == TCD_CLASS_IPV6) {
        f.key = rec.key;
        f.key_name = key_name(kind_.key, rec.key);
        f.missed = rec.missed != 0;
        if (!f.missed) {
            uint32_t key = rec.key, id = 0;
            if (bpf_map_lookup_elem(bpf_map__fd(obj_->map(TCD_MAP_JT)), &key, &id) == 0 && id) {
                auto it = names_.find(id);
                f.handler = it != names_.end() ? it->second : fmt::format("id:{}", id);
            }
        }
    }
    return f;
}

Result<StatsSnapshot> Tracer::counters() const {
    return read_stats(bpf_map__fd(obj_->map(TCD_MAP_STATS)), kind_.key);
}

}  // namespace tcd
