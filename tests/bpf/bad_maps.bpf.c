// SPDX-License-Identifier: GPL-2.0-only
/* Handlers that declare one of tcd's maps wrongly, or a map name tcd keeps to
 * itself; one object per -D (tests/CMakeLists.txt). handler load must refuse
 * each with a message naming both sides. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "tcd/shared.h"

char LICENSE[] SEC("license") = "GPL";

#if defined(JT_TYPE)
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TCD_JT_ENTRIES);
	__type(key, __u32);
	__type(value, __u32);
} jt SEC(".maps");
#elif defined(JT_KEY)
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, TCD_JT_ENTRIES);
	__uint(key_size, 8);
	__uint(value_size, 4);
} jt SEC(".maps");
#elif defined(JT_VALUE)
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, TCD_JT_ENTRIES);
	__uint(key_size, 4);
	__uint(value_size, 8);
} jt SEC(".maps");
#elif defined(STATS_TYPE)
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TCD_STATS_ENTRIES);
	__type(key, __u32);
	__type(value, struct tcd_counters);
} proto_stats SEC(".maps");
#elif defined(STATS_KEY)
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TCD_STATS_ENTRIES);
	__uint(key_size, 8);
	__uint(value_size, sizeof(struct tcd_counters));
} proto_stats SEC(".maps");
#elif defined(STATS_VALUE)
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TCD_STATS_ENTRIES);
	__type(key, __u32);
	__type(value, __u64);
} proto_stats SEC(".maps");
#elif defined(TRACE_NAME)
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tcd_trace_rec);
} tcd_trace SEC(".maps");
#elif defined(ATTACH_NAME)
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct tcd_attach_key);
	__type(value, struct tcd_attach_val);
} tcd_attach SEC(".maps");
#elif defined(PORT_SLOT_OK) || defined(PORT_SLOT_VALUE)
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TCD_PORT_JT_ENTRIES);
	__type(key, __u32);
#ifdef PORT_SLOT_OK
	__type(value, __u32);
#else
	__type(value, __u64);
#endif
} port_slot SEC(".maps");
#else
#error "one of the -D cases above"
#endif

SEC("xdp")
int bad_map_h(struct xdp_md *ctx)
{
#if defined(PORT_SLOT_OK)
	__u32 port = 22;

	/* Uses the map, so the loaded program refers to the shared one. */
	if (!bpf_map_lookup_elem(&port_slot, &port))
		return XDP_DROP;
#endif
	return XDP_PASS;
}
