#include "core/trace.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <fmt/format.h>

#include "core/bpffs.h"
#include "core/log.h"
#include "core/jumptable.h"
#include "core/keys.h"
#include "core/lock.h"
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
    std::vector<TraceLevel> levels = f.levels;
    if (levels.empty()) levels.push_back({"", f.cls, f.key, f.key_name, f.handler, f.missed});
    for (size_t i = 0; i < levels.size(); i++) {
        const TraceLevel& l = levels[i];
        auto& row = rows_[{int(i), l.instance, l.cls, l.key ? int(*l.key) : -1}];
        row.level = int(i);
        row.instance = l.instance;
        row.cls = l.cls;
        row.key = l.key;
        row.key_name = l.key_name;
        row.frames++;
        row.bytes += f.len;
        row.missed += l.missed ? 1 : 0;
        row.verdicts[f.verdict]++;  // the frame's final verdict
    }
}

std::vector<TraceSummaryRow> TraceSummary::rows() const {
    std::vector<TraceSummaryRow> out;
    for (const auto& [k, r] : rows_) out.push_back(r);
    return out;
}

Tracer::~Tracer() = default;

int Tracer::prog_fd() const { return bpf_program__fd(obj_->dispatcher()); }

Result<Tracer> Tracer::open(const std::string& pin_dir, Kind kind, std::optional<MissAction> miss) {
    std::vector<std::string> path;
    return open_level(pin_dir, kind, miss, path);
}

// A trace copy of one level. An instance whose jump table wires child
// instances gets a jump table of its own holding the same handlers, but each
// child's dispatcher replaced by the child's trace copy (recursively): one
// test_run then goes through every level, each recording its class and key
// in its own tcd_trace map and counting in its own counters, and no live
// counter of any level is touched.
Result<Tracer> Tracer::open_level(const std::string& pin_dir, Kind kind, std::optional<MissAction> miss,
                                  std::vector<std::string>& path) {
    Tracer t;
    std::optional<Instance> in;
    if (bpffs::is_bpffs(pin_dir) && Instance::is_loaded(pin_dir)) {
        auto i = Instance::open(pin_dir);
        if (!i) return propagate(i);
        in.emplace(std::move(*i));
        kind = in->kind();
        miss = in->miss_action();
        t.dir_ = InstanceLock::canonical_dir(pin_dir);
    }
    t.kind_ = kind;
    t.miss_ = miss.value_or(default_miss_action(kind.hook));
    auto obj = DispatcherObject::open(kind);
    if (!obj) return propagate(obj);
    t.obj_.emplace(std::move(*obj));
    std::vector<WiredEntry> wiring;
    bool children = false;
    if (in) {
        auto w = list_wiring(*in);
        if (!w) return propagate(w);
        wiring = std::move(*w);
        for (const auto& e : wiring) {
            children = children || !e.instance.empty();
            t.names_.emplace(e.prog_id, e.handler);
        }
    }
    if (in && children) {
        t.own_jt_ = UniqueFd(bpf_map_create(BPF_MAP_TYPE_PROG_ARRAY, TCD_MAP_JT, 4, 4, max_key(kind.key) + 1, nullptr));
        if (!t.own_jt_) return fail_errno("trace: create a jump table", errno);
        if (int err = bpf_map__reuse_fd(t.obj_->map(TCD_MAP_JT), t.own_jt_.get()))
            return fail_errno("trace: reuse its jump table", -err);
    }
    if (in) {
        // The instance's jump table and port slots; counters stay our own.
        std::vector<std::pair<const char*, std::string>> shared;
        if (!t.own_jt_) shared.emplace_back(TCD_MAP_JT, in->paths().jt());
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
    // Into the instance's jump table: its owner's expected attach type.
    if (in && !t.own_jt_ && kind.hook == Hook::xdp)
        if (auto at = xdp_table_attach_type(in->dispatcher_fd())) t.obj_->set_xdp_attach_type(*at);
    // The same keys by direct jumps as the live dispatcher.
    if (in)
        if (auto direct = read_direct_keys(in->dispatcher())) t.obj_->specialise(*direct);
    // Only the dispatcher: the handlers that run are the instance's own.
    for (const auto& name : builtin_handlers()) bpf_program__set_autoload(t.obj_->program(name), false);
    if (auto r = t.obj_->load(); !r)
        return fail("trace", "the kernel refused the trace dispatcher: " + errno_words(r.error().err),
                    errno_hint(r.error().err, "run with -v for libbpf's log"), r.error().err);
    if (t.own_jt_) {
        path.push_back(t.dir_);
        for (const auto& e : wiring) {
            UniqueFd prog;
            int fd = -1;
            bool loop = std::find(path.begin(), path.end(), e.instance) != path.end();
            if (!e.instance.empty() && !loop && path.size() < 33) {
                auto child = open_level(e.instance, {}, std::nullopt, path);
                if (!child) return propagate(child, "trace " + e.instance);
                auto c = std::make_unique<Tracer>(std::move(*child));
                fd = c->prog_fd();
                if (auto info = prog_info(fd)) t.names_[info->id] = e.instance;
                t.children_.emplace(e.key, std::move(c));
            } else {
                auto p = prog_fd_by_id(e.prog_id);
                if (!p) continue;  // gone since it was listed: the key misses
                prog = std::move(*p);
                fd = prog.get();
                t.names_.emplace(e.prog_id, e.handler);
            }
            uint32_t key = e.key;
            if (bpf_map_update_elem(t.own_jt_.get(), &key, &fd, BPF_ANY) != 0)
                return fail_errno(fmt::format("trace: wire key {} in the trace copy", e.key), errno);
        }
        path.pop_back();
    }
    return t;
}

Result<std::optional<TraceLevel>> Tracer::read_level(uint64_t number) {
    tcd_trace_rec rec{};
    uint32_t zero = 0;
    if (bpf_map_lookup_elem(bpf_map__fd(obj_->map(TCD_MAP_TRACE)), &zero, &rec) != 0)
        return fail_errno(fmt::format("trace frame {}: read the record", number), errno);
    if (rec.runs == last_runs_) return std::optional<TraceLevel>();
    last_runs_ = rec.runs;
    TraceLevel l;
    l.instance = dir_;
    l.cls = class_name(rec.cls);
    if (rec.cls == TCD_CLASS_IPV4 || rec.cls == TCD_CLASS_IPV6) {
        l.key = rec.key;
        l.key_name = key_name(kind_.key, rec.key);
        l.missed = rec.missed != 0;
        if (!l.missed) {
            uint32_t key = rec.key, id = 0;
            if (bpf_map_lookup_elem(bpf_map__fd(obj_->map(TCD_MAP_JT)), &key, &id) == 0 && id) {
                auto it = names_.find(id);
                l.handler = it != names_.end() ? it->second : fmt::format("id:{}", id);
            }
        }
    }
    return std::optional<TraceLevel>(std::move(l));
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

    auto top = read_level(number);
    if (!top) return propagate(top);
    if (!*top) return fail(fmt::format("trace frame {}", number), "the dispatcher did not record this run");
    f.cls = (*top)->cls;
    f.key = (*top)->key;
    f.key_name = (*top)->key_name;
    f.handler = (*top)->handler;
    f.missed = (*top)->missed;
    f.verdict = tcd::verdict_name(kind_.hook, opts.retval);
    f.levels.push_back(std::move(**top));
    // Down the tree: each child whose trace copy ran since the last frame.
    Tracer* level = this;
    while (!f.levels.back().missed && f.levels.back().key) {
        auto it = level->children_.find(*f.levels.back().key);
        if (it == level->children_.end()) break;
        level = it->second.get();
        auto l = level->read_level(number);
        if (!l) return propagate(l);
        if (!*l) break;  // it did not run (the tail-call limit)
        f.levels.push_back(std::move(**l));
    }
    return f;
}

Result<StatsSnapshot> Tracer::counters() const {
    return read_stats(bpf_map__fd(obj_->map(TCD_MAP_STATS)), kind_.key);
}

}  // namespace tcd
