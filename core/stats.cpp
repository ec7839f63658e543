#include "core/stats.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <ctime>

#include "core/keys.h"
#include "core/probe.h"
#include "tcd/shared.h"

namespace tcd {
namespace {

uint64_t now_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

Counters sum_cpus(const tcd_counters* row, int ncpus) {
    Counters c;
    for (int cpu = 0; cpu < ncpus; cpu++) {
        c.packets += row[cpu].packets;
        c.bytes += row[cpu].bytes;
        c.missed += row[cpu].missed;
    }
    return c;
}

void store(StatsSnapshot& s, uint32_t row, const Counters& c) {
    if (s.kind == KeyKind::port) {
        if (row < TCD_PORT_SLOTS) s.keys[row] = c;
        else if (row == TCD_PSLOT_NON_IP) s.non_ip = c;
        else if (row == TCD_PSLOT_MALFORMED) s.malformed = c;
        else if (row == TCD_PSLOT_NO_PORT) s.no_port = c;
        return;
    }
    if (row < TCD_JT_ENTRIES) s.keys[row] = c;
    else if (row == TCD_SLOT_NON_IP) s.non_ip = c;
    else if (row == TCD_SLOT_MALFORMED) s.malformed = c;
}

}  // namespace

Counters StatsSnapshot::total() const {
    Counters t;
    for (const auto& k : keys) t += k;
    t += non_ip;
    t += malformed;
    t += no_port;
    return t;
}

Result<StatsSnapshot> read_stats(int stats_fd, KeyKind kind) {
    int ncpus = libbpf_num_possible_cpus();
    if (ncpus <= 0) return fail_errno("count CPUs", -ncpus);
    static_assert(sizeof(tcd_counters) % 8 == 0, "per-CPU values are 8-byte aligned");
    StatsSnapshot s;
    s.kind = kind;
    s.keys.assign(kind == KeyKind::port ? TCD_PORT_SLOTS : TCD_JT_ENTRIES, Counters{});
    const uint32_t rows = stats_entries(kind);
    std::vector<tcd_counters> values(size_t(rows) * ncpus);
    std::vector<uint32_t> keys(rows);
    uint32_t count = rows, out_batch = 0;
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    // Batch lookups on per-CPU arrays came in Linux 5.13 (tried, not probed:
    // probe::batch_worked); without them, or when the batch fails, one
    // lookup per row.
    const bool batch = probe::try_batch();
    int rc = batch ? bpf_map_lookup_batch(stats_fd, nullptr, &out_batch, keys.data(), values.data(), &count, &opts)
                   : -1;
    if (batch && probe::batch_worked(rc, errno, count)) {
        for (uint32_t i = 0; i < count; i++)
            store(s, keys[i], sum_cpus(&values[size_t(i) * ncpus], ncpus));
    } else {
        for (uint32_t slot = 0; slot < rows; slot++) {
            if (bpf_map_lookup_elem(stats_fd, &slot, values.data()) != 0)
                return fail_errno("read counters", errno);
            store(s, slot, sum_cpus(values.data(), ncpus));
        }
    }
    s.taken_ns = now_ns();
    return s;
}

Result<> reset_stats(int stats_fd, KeyKind kind) {
    int ncpus = libbpf_num_possible_cpus();
    if (ncpus <= 0) return fail_errno("count CPUs", -ncpus);
    const uint32_t rows = stats_entries(kind);
    std::vector<tcd_counters> zero(size_t(rows) * ncpus);
    std::vector<uint32_t> keys(rows);
    for (uint32_t i = 0; i < rows; i++) keys[i] = i;
    uint32_t count = rows;
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    // Batch updates came with batch lookups (Linux 5.13 for per-CPU arrays).
    if (probe::try_batch()) {
        int rc = bpf_map_update_batch(stats_fd, keys.data(), zero.data(), &count, &opts);
        if (probe::batch_worked(rc, errno, rc == 0 ? count : 0)) return {};
    }
    for (uint32_t slot = 0; slot < rows; slot++)
        if (bpf_map_update_elem(stats_fd, &slot, zero.data(), BPF_ANY) != 0)
            return fail_errno("reset counters", errno);
    return {};
}

Result<> reset_row(int stats_fd, uint32_t row) {
    int ncpus = libbpf_num_possible_cpus();
    if (ncpus <= 0) return fail_errno("count CPUs", -ncpus);
    std::vector<tcd_counters> zero(ncpus);
    if (bpf_map_update_elem(stats_fd, &row, zero.data(), BPF_ANY) != 0) return fail_errno("reset counters", errno);
    return {};
}

StatsView make_stats_view(const StatsSnapshot& now, const StatsSnapshot* prev,
                          const std::vector<WiredEntry>& wiring, bool all) {
    StatsView v;
    v.kind = now.kind;
    double dt = 0;
    if (prev && now.taken_ns > prev->taken_ns) {
        dt = double(now.taken_ns - prev->taken_ns) / 1e9;
        v.interval_s = dt;
    }
    auto row = [&](uint32_t key, const std::string& name, std::optional<std::string> handler, size_t idx) {
        StatsRow r;
        r.key = key;
        r.key_name = name;
        r.handler = std::move(handler);
        r.c = idx < now.keys.size() ? now.keys[idx] : Counters{};
        if (dt > 0 && idx < prev->keys.size()) {
            const Counters& p = prev->keys[idx];
            r.pps = double(r.c.packets >= p.packets ? r.c.packets - p.packets : 0) / dt;
            r.bps = 8.0 * double(r.c.bytes >= p.bytes ? r.c.bytes - p.bytes : 0) / dt;
        }
        return r;
    };
    if (now.kind == KeyKind::port) {
        // A row per wired port, from its counter slot.
        for (const auto& w : wiring)
            if (w.slot) {
                v.keys.push_back(row(w.key, w.key_name, w.handler, w.slot));
                v.keys.back().instance = w.instance;
            }
        v.other_ports = now.keys.empty() ? Counters{} : now.keys[0];
        v.no_port = now.no_port;
    } else {
        std::vector<const WiredEntry*> wired(256);
        for (const auto& w : wiring)
            if (w.key < 256) wired[w.key] = &w;
        for (uint32_t key = 0; key < 256; key++) {
            const Counters& c = now.keys[key];
            if (!all && !wired[key] && !c.packets && !c.bytes && !c.missed) continue;
            v.keys.push_back(row(key, key_name(KeyKind::proto, key),
                                 wired[key] ? std::optional<std::string>(wired[key]->handler) : std::nullopt, key));
            if (wired[key]) v.keys.back().instance = wired[key]->instance;
        }
    }
    v.non_ip = now.non_ip;
    v.malformed = now.malformed;
    v.total = now.total();
    return v;
}

}  // namespace tcd
