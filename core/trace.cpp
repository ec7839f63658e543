#include "core/trace.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fmt/format.h>

#include "core/bpffs.h"
#include "core/log.h"
#include "core/jumptable.h"
#include "core/keys.h"
#include "core/lock.h"
#include "core/probe.h"
#include "core/progs.h"
#include "core/reasons.h"
#include "tcd/shared.h"

namespace tcd {

Result<std::vector<uint8_t>> parse_hex(std::string_view text) {
    std::vector<uint8_t> out;
    int hi = -1;
    for (size_t i = 0; i < text.size(); i++) {
        char c = text[i];
        if (c == ' ' || c == ':' || c == '\n' || c == '\t' || c == '-') {
            if (hi >= 0) return about(usage_error("", fmt::format("odd hex digit before position {}", i + 1)), Flag::hex);
            continue;
        }
        if (c == '0' && i + 1 < text.size() && (text[i + 1] == 'x' || text[i + 1] == 'X') && hi < 0) {
            i++;
            continue;
        }
        if (!std::isxdigit(static_cast<unsigned char>(c)))
            return about(usage_error("", fmt::format("'{}' at position {} is not a hex digit", c, i + 1)), Flag::hex);
        int v = std::isdigit(static_cast<unsigned char>(c)) ? c - '0' : (std::tolower(c) - 'a' + 10);
        if (hi < 0) {
            hi = v;
        } else {
            out.push_back(static_cast<uint8_t>(hi << 4 | v));
            hi = -1;
        }
    }
    if (hi >= 0) return about(usage_error("", "odd number of hex digits"), Flag::hex);
    if (out.empty()) return about(usage_error("", "no bytes given"), Flag::hex);
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

void TraceSummary::add(const TraceFrame& f) {
    frames_++;
    std::vector<TraceLevel> levels = f.levels;
    if (levels.empty()) {
        TraceLevel l;
        l.cls = f.cls, l.key = f.key, l.key_name = f.key_name, l.handler = f.handler, l.missed = f.missed;
        levels.push_back(std::move(l));
    }
    for (size_t i = 0; i < levels.size(); i++) {
        const TraceLevel& l = levels[i];
        auto& row = rows_[{int(i), l.instance, l.via, l.from.value_or(""), l.cls, l.key ? int(*l.key) : -1}];
        row.level = int(i);
        row.instance = l.instance;
        row.via = l.via;
        row.from = l.from;
        row.cls = l.cls;
        row.key = l.key;
        row.key_name = l.key_name;
        row.frames++;
        row.bytes += f.len;
        row.missed += l.missed ? 1 : 0;
        row.verdicts[f.verdict]++;  // the frame's final verdict
        if (l.ns) {
            row.timed++;
            row.ns_sum += *l.ns;
            row.self_ns_sum += l.self_ns.value_or(0);
        }
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
    // A probe that cannot run leaves the context in: the run then says why.
    if (kind.hook == Hook::xdp) t.xdp_ctx_ = probe::has(probe::Feature::xdp_test_run_ctx).value_or(true);
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
        // The live jump table's id: a handler's tcd_next() goes through it
        // (the trace copy's own table, when it has one, is another map).
        if (auto jt = bpffs::get(in->paths().jt())) {
            bpf_map_info info{};
            uint32_t len = sizeof(info);
            if (bpf_obj_get_info_by_fd(jt->get(), &info, &len) == 0) t.live_jt_id_ = info.id;
        }
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
        return or_verbose(fail("trace", "the kernel refused the trace dispatcher: " + errno_words(r.error().err),
                               errno_hint(r.error().err), r.error().err),
                          "libbpf's log");
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
                l.prog_id = id;
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
    f.repeat = repeat_;
    f.len = static_cast<uint32_t>(len);
    if (len < kMinFrame) {
        // BPF_PROG_TEST_RUN refuses less than an Ethernet header; no such
        // frame reaches XDP on a real interface. The contract: malformed, pass
        // (next with miss action next).
        f.cls = class_name(TCD_CLASS_MALFORMED);
        f.verdict = {kind_.hook, undispatched_verdict(miss_, kind_.hook)};
        f.ran = false;
        return f;
    }
    // tc programs run on an skb that test_run builds from the frame.
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = data, .data_size_in = static_cast<uint32_t>(len),
                .repeat = 1);
    // The hop record (tcd/shared.h) the handlers' tcd_next() fills in: on
    // XDP 32 bytes of metadata in front of the frame, on tc the skb's cb[].
    xdp_md xin{}, xout{};
    __sk_buff sin{}, sout{};
    if (kind_.hook == Hook::xdp && !xdp_ctx_) {
        // No context before 5.14: the frame alone, no hop record.
        out_.resize(len + 4096);
        opts.data_out = out_.data();
        opts.data_size_out = static_cast<uint32_t>(out_.size());
    } else if (kind_.hook == Hook::xdp) {
        tcd_hop_meta m{};
        m.magic = TCD_HOP_MAGIC;
        in_.assign(reinterpret_cast<const uint8_t*>(&m), reinterpret_cast<const uint8_t*>(&m) + sizeof(m));
        in_.insert(in_.end(), data, data + len);
        out_.resize(in_.size() + 4096);  // room for a handler that grows the frame
        xin.data = sizeof(m);
        xin.data_end = static_cast<uint32_t>(in_.size());
        opts.data_in = in_.data();
        opts.data_size_in = static_cast<uint32_t>(in_.size());
        opts.data_out = out_.data();
        opts.data_size_out = static_cast<uint32_t>(out_.size());
        opts.ctx_in = &xin;
        opts.ctx_size_in = sizeof(xin);
        opts.ctx_out = &xout;
        opts.ctx_size_out = sizeof(xout);
    } else {
        sin.cb[0] = TCD_HOP_MAGIC;
        opts.ctx_in = &sin;
        opts.ctx_size_in = sizeof(sin);
        opts.ctx_out = &sout;
        opts.ctx_size_out = sizeof(sout);
    }
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
    } else if (rc != 0 && (errno == EMSGSIZE || errno == EINVAL) && kind_.hook == Hook::xdp && len > 2048) {
        // Before 5.18 (no frags) XDP's test_run takes at most a page less
        // head- and tailroom (3,520 bytes on x86-64) and refuses a longer
        // frame (EMSGSIZE; EINVAL on some kernels): run its head, which is
        // the first buffer a program without the frags flag sees on newer
        // kernels. len says what the dispatcher got.
        const uint32_t meta = opts.data_size_in - static_cast<uint32_t>(len);
        for (uint32_t head : {3520u, 3264u, 2048u}) {
            opts.data_size_in = meta + head;
            if (xdp_ctx_) xin.data_end = opts.data_size_in;
            if ((rc = bpf_prog_test_run_opts(prog_fd(), &opts)) == 0 || (errno != EMSGSIZE && errno != EINVAL))
                break;
        }
        if (rc == 0) f.len = opts.data_size_in - meta;
    }
    if (rc != 0) {
        int err = errno;
        // tc's test_run builds an skb and refuses one whose IPv4/IPv6 header
        // is cut short; the contract calls such a frame malformed.
        if (err == EINVAL && kind_.hook == Hook::tc) {
            f.cls = class_name(TCD_CLASS_MALFORMED);
            f.verdict = {kind_.hook, undispatched_verdict(miss_, kind_.hook)};
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
    f.verdict = {kind_.hook, opts.retval};
    f.levels.push_back(std::move(**top));
    // Down the tree: each child whose trace copy ran since the last frame.
    Tracer* level = this;
    std::vector<Tracer*> path{this};
    while (!f.levels.back().missed && f.levels.back().key) {
        auto it = level->children_.find(*f.levels.back().key);
        if (it == level->children_.end()) break;
        level = it->second.get();
        auto l = level->read_level(number);
        if (!l) return propagate(l);
        if (!*l) break;  // it did not run (the tail-call limit)
        f.levels.push_back(std::move(**l));
        path.push_back(level);
    }
    // Then the hops the last level's handler took with tcd_next().
    std::vector<uint32_t> hops;
    uint32_t n = 0;
    if (kind_.hook == Hook::xdp && !xdp_ctx_) {
        // no record: limitation() says so
    } else if (kind_.hook == Hook::xdp) {
        // The record is at data_meta, where data_out starts, if the
        // handlers left the metadata as it was.
        tcd_hop_meta m{};
        if (xout.data == sizeof(m) && opts.data_size_out >= sizeof(m)) {
            std::memcpy(&m, out_.data(), sizeof(m));
            if (m.magic == TCD_HOP_MAGIC) {
                n = m.n;
                for (uint32_t i = 0; i < std::min<uint32_t>(n, TCD_HOP_XDP_KEYS); i++) hops.push_back(m.key[i]);
            }
        }
    } else if (sout.cb[0] == TCD_HOP_MAGIC) {
        n = sout.cb[1];
        for (uint32_t i = 0; i < std::min<uint32_t>(n, TCD_HOP_TC_KEYS); i++)
            hops.push_back(i % 2 ? sout.cb[2 + i / 2] >> 16 : sout.cb[2 + i / 2] & 0xffff);
    }
    if (n > 0) follow_hops(f, path, n, hops);
    if (repeat_ > 0)
        if (auto t = time_levels(f, data, path); !t) return propagate(t);
    return f;
}

// Each level's program alone, repeat_ times on the frame (its first f.len
// bytes: what the traced run took), the kernel's mean ns per run. No hop
// record is given: handlers run as on a live frame. The trace copies record
// these runs too: their records are read again after, so that the next
// frame's read_level() sees only its own run.
Result<> Tracer::time_levels(TraceFrame& f, const uint8_t* data, const std::vector<Tracer*>& path) {
    auto time = [&](int fd, size_t level) -> Result<uint64_t> {
        LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = data, .data_size_in = f.len, .repeat = static_cast<int>(repeat_));
        if (bpf_prog_test_run_opts(fd, &opts) != 0)
            return fail_errno(fmt::format("trace frame {}: time level {}", f.frame, level), errno);
        return uint64_t{opts.duration};
    };
    size_t dispatcher_levels = 0;
    for (size_t i = 0; i < f.levels.size(); i++) {
        TraceLevel& l = f.levels[i];
        int fd = -1;
        UniqueFd handler;
        if (l.via == Via::dispatcher) {
            if (dispatcher_levels >= path.size()) continue;
            fd = path[dispatcher_levels++]->prog_fd();
        } else if (l.prog_id) {
            auto p = prog_fd_by_id(l.prog_id);
            if (!p) continue;  // unloaded since: not timed
            handler = std::move(*p);
            fd = handler.get();
        } else {
            continue;  // a tcd_next that missed: no program of its own
        }
        auto ns = time(fd, i);
        if (!ns) return propagate(ns);
        l.ns = *ns;
    }
    std::optional<uint64_t> below;
    for (auto it = f.levels.rbegin(); it != f.levels.rend(); ++it) {
        if (!it->ns) continue;
        it->self_ns = static_cast<int64_t>(*it->ns) - static_cast<int64_t>(below.value_or(0));
        below = it->ns;
    }
    for (Tracer* t : path) {
        tcd_trace_rec rec{};
        uint32_t zero = 0;
        if (bpf_map_lookup_elem(bpf_map__fd(t->obj_->map(TCD_MAP_TRACE)), &zero, &rec) != 0)
            return fail_errno(fmt::format("trace frame {}: read the record", f.frame), errno);
        t->last_runs_ = rec.runs;
    }
    return {};
}

const Tracer::HopTable* Tracer::hop_table(uint32_t prog_id) {
    auto [it, fresh] = hop_tables_.try_emplace(prog_id);
    if (!fresh) return it->second ? &*it->second : nullptr;
    auto prog = prog_fd_by_id(prog_id);
    if (!prog) return nullptr;
    auto info = prog_info(prog->get());
    if (!info) return nullptr;
    HopTable t;
    t.dispatcher = info->name == TCD_PROG_DISPATCH || info->name == TCD_PROG_TC_DISPATCH;
    // Its prog array: the one named jt (handler.h's), else the only one.
    for (uint32_t id : info->map_ids) {
        UniqueFd fd(bpf_map_get_fd_by_id(id));
        if (!fd) continue;
        bpf_map_info mi{};
        uint32_t len = sizeof(mi);
        if (bpf_obj_get_info_by_fd(fd.get(), &mi, &len) != 0 || mi.type != BPF_MAP_TYPE_PROG_ARRAY) continue;
        bool named = std::string(mi.name) == TCD_MAP_JT;
        if (t.fd && !named) continue;
        t.fd = std::move(fd);
        t.id = mi.id;
        t.max_entries = mi.max_entries;
        if (named) break;
    }
    if (!t.fd) return nullptr;
    it->second.emplace(std::move(t));
    return &*it->second;
}

// Each recorded key is a tcd_next() of the handler running at that point: a
// key with a program in that handler's jump table was a tail call into it
// (unless the chain had used up the kernel's 33 tail calls: then it returned,
// as on an empty key), an empty key returned to the same handler.
void Tracer::follow_hops(TraceFrame& f, const std::vector<Tracer*>& path, uint32_t n,
                         const std::vector<uint32_t>& keys) {
    constexpr int kMaxTailCalls = 33;
    const TraceLevel& last = f.levels.back();
    if (last.missed || !last.prog_id || !last.handler) {
        f.unrecorded_hops = n;
        return;
    }
    int calls = 0;  // tail calls so far: one per level that reached a handler
    for (const auto& l : f.levels) calls += l.handler ? 1 : 0;
    uint32_t cur = last.prog_id;
    std::string cur_name = *last.handler, cls = last.cls;
    auto name_of = [&](uint32_t id) -> std::string {
        for (auto it = path.rbegin(); it != path.rend(); ++it)
            if (auto n = (*it)->names_.find(id); n != (*it)->names_.end()) return n->second;
        return fmt::format("id:{}", id);
    };
    size_t i = 0;
    for (; i < keys.size(); i++) {
        const HopTable* t = hop_table(cur);
        if (!t || t->dispatcher) break;
        TraceLevel h;
        h.via = Via::tcd_next;
        h.from = cur_name;
        h.cls = cls;
        h.key = keys[i];
        for (const Tracer* p : path)
            if (p->live_jt_id_ == t->id) h.instance = p->dir_;
        h.key_name = key_name(t->max_entries > TCD_JT_ENTRIES ? KeyKind::port : KeyKind::proto, keys[i]);
        uint32_t key = keys[i], id = 0;
        bool wired = bpf_map_lookup_elem(t->fd.get(), &key, &id) == 0 && id;
        if (!wired || calls >= kMaxTailCalls) {
            h.missed = true;
            f.levels.push_back(std::move(h));
            continue;
        }
        calls++;
        h.prog_id = id;
        h.handler = name_of(id);
        cur = id;
        cur_name = *h.handler;
        f.levels.push_back(std::move(h));
    }
    f.unrecorded_hops = n - static_cast<uint32_t>(i);
}

std::string Tracer::limitation() const {
    if (xdp_ctx_) return "";
    const probe::FeatureInfo& i = probe::info(probe::Feature::xdp_test_run_ctx);
    return fmt::format("tcd_next hops are not shown: this kernel lacks {} (Linux {} brings it)", i.name, i.since);
}

Result<StatsSnapshot> Tracer::counters() const {
    return read_stats(bpf_map__fd(obj_->map(TCD_MAP_STATS)), kind_.key);
}

}  // namespace tcd
