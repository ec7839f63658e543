/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * For authors of tcd handlers: the instance's maps and a few helpers.
 *
 * A handler is an XDP program (SEC("xdp")), or for a tc instance a tc
 * program (SEC("tc")). `tcd handler load OBJECT` loads
 * it the way the dispatcher is loaded and replaces the maps declared here
 * with the instance's pinned ones, so a handler can count into tcd's counters
 * and tail-call into the dispatcher's own jump table (chaining):
 *
 *     #include <tcd/handler.h>
 *
 *     SEC("xdp")
 *     int my_handler(struct xdp_md *ctx)
 *     {
 *             ...
 *             tcd_next(ctx, 253);     // the handler wired at key 253, if any
 *             return XDP_PASS;        // reached when nothing is wired there
 *     }
 *
 * The dispatcher's own call is the first of at most 33 tail calls in a chain.
 */
#ifndef TCD_HANDLER_H
#define TCD_HANDLER_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "tcd/shared.h"

/* For a port instance (tcd load --key port), define TCD_KEY_PORT before
 * including this header: the jump table then has 65536 entries and the
 * counters are the port instance's slots. */
#ifdef TCD_KEY_PORT
#define TCD__JT_ENTRIES TCD_PORT_JT_ENTRIES
#define TCD__STATS_ENTRIES TCD_PORT_STATS_ENTRIES
#else
#define TCD__JT_ENTRIES TCD_JT_ENTRIES
#define TCD__STATS_ENTRIES TCD_STATS_ENTRIES
#endif

/* The jump table: key -> handler (maps/jt). */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, TCD__JT_ENTRIES);
	__type(key, __u32);
	__type(value, __u32);
} jt SEC(".maps");

/* Per-CPU counters (maps/proto_stats): for a proto instance rows 0-255 per
 * key, then non-ip and malformed. The dispatcher has counted the packet
 * already; a handler may count what it does with it in rows of its own. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TCD__STATS_ENTRIES);
	__type(key, __u32);
	__type(value, struct tcd_counters);
} proto_stats SEC(".maps");

/* Adds one packet of `bytes` bytes to counter row `slot`. */
static __always_inline void tcd_count(__u32 slot, __u64 bytes)
{
	struct tcd_counters *c = bpf_map_lookup_elem(&proto_stats, &slot);

	if (c) {
		c->packets++;
		c->bytes += bytes;
	}
}

/* Hands the packet to the handler wired at `key`. Returns only when none is
 * wired there (or the chain has reached its limit). */
static __always_inline void tcd_next(void *ctx, __u32 key)
{
	bpf_tail_call(ctx, &jt, key);
}

/* The same for a key known at compile time: a direct jump, no retpoline. */
#define tcd_next_static(ctx, key) bpf_tail_call_static(ctx, &jt, key)

#endif /* TCD_HANDLER_H */
