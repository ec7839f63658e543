#include "core/stats.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <ctime>

#include "core/keys.h"
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

void store(StatsSnapshot& s, uint32_t slot, const Counters& c) {
    if (slot < TCD_JT_ENTRIES) s.keys[slot] = c;
    else if (slot == TCD_SLOT_NON_IP) s.non_ip = c;
    else if (slot == TCD_SLOT_MALFORMED) s.malformed = c;
}

}  // namespace

Counters StatsSnapshot::total() const {
    Counters t;
    for (const auto& k : keys) t += k;
    t += non_ip;
    t += malformed;
    return t;
}

Result<StatsSnapshot> read_stats(int stats_fd) {
    int ncpus = libbpf_num_possible_cpus();
    if (ncpus <= 0) return fail_errno("count CPUs", -ncpus);
    static_assert(sizeof(tcd_counters) % 8 == 0, "per-CPU values are 8-byte aligned");
    StatsSnapshot s;
    std::vector<tcd_counters> values(size_t(TCD_STATS_ENTRIES) * ncpus);
    std::vector<uint32_t> keys(TCD_STATS_ENTRIES);
    uint32_t count = TCD_STATS_ENTRIES, out_batch = 0;
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    int rc = bpf_map_lookup_batch(stats_fd, nullptr, &out_batch, keys.data(), values.data(), &count, &opts);
    if (rc == 0 || (errno == ENOENT && count > 0)) {
        for (uint32_t i = 0; i < count; i++)
            store(s, keys[i], sum_cpus(&values[size_t(i) * ncpus], ncpus));
    } else {
        // Kernels without batch ops for this map: one lookup per row.
        for (uint32_t slot = 0; slot < TCD_STATS_ENTRIES; slot++) {
            if (bpf_map_lookup_elem(stats_fd, &slot, values.data()) != 0)
                return fail_errno("read counters", errno);
            store(s, slot, sum_cpus(values.data(), ncpus));
        }
    }
    s.taken_ns = now_ns();
    return s;
}

Result<> reset_stats(int stats_fd) {
    int ncpus = libbpf_num_possible_cpus();
    if (ncpus <= 0) return fail_errno("count CPUs", -ncpus);
    std::vector<tcd_counters> zero(size_t(TCD_STATS_ENTRIES) * ncpus);
    std::vector<uint32_t> keys(TCD_STATS_ENTRIES);
    for (uint32_t i = 0; i < TCD_STATS_ENTRIES; i++) keys[i] = i;
    uint32_t count = TCD_STATS_ENTRIES;
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    if (bpf_map_update_batch(stats_fd, keys.data(), zero.data(), &count, &opts) == 0) return {};
    for (uint32_t slot = 0; slot < TCD_STATS_ENTRIES; slot++)
        if (bpf_map_update_elem(stats_fd, &slot, zero.data(), BPF_ANY) != 0)
            return fail_errno("reset counters", errno);
    return {};
}

StatsView make_stats_view(const StatsSnapshot& now, const StatsSnapshot* prev,
                          const std::vector<WiredEntry>& wiring, bool all) {
    StatsView v;
    std::array<const WiredEntry*, 256> wired{};
    for (const auto& w : wiring)
        if (w.key < 256) wired[w.key] = &w;
    double dt = 0;
    if (prev && now.taken_ns > prev->taken_ns) {
        dt = double(now.taken_ns - prev->taken_ns) / 1e9;
        v.interval_s = dt;
    }
    for (uint32_t key = 0; key < 256; key++) {
        const Counters& c = now.keys[key];
        if (!all && !wired[key] && !c.packets && !c.bytes && !c.missed) continue;
        StatsRow r;
        r.key = key;
        r.proto = proto_name(key);
        if (wired[key]) r.handler = wired[key]->handler;
        r.c = c;
        if (dt > 0) {
            const Counters& p = prev->keys[key];
            r.pps = double(c.packets >= p.packets ? c.packets - p.packets : 0) / dt;
            r.bps = 8.0 * double(c.bytes >= p.bytes ? c.bytes - p.bytes : 0) / dt;
        }
        v.keys.push_back(std::move(r));
    }
    v.non_ip = now.non_ip;
    v.malformed = now.malformed;
    v.total = now.total();
    return v;
}

}  // namespace tcd
