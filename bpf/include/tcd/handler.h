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

/* tcd trace follows the hops a handler takes (struct tcd_hop_meta in
 * tcd/shared.h): the frames it runs carry a record, on XDP in the metadata
 * before the frame, on tc in the skb's cb[]. Live frames carry none; the
 * test below is all a live hop pays (two loads and a comparison on XDP,
 * one load and a comparison on tc). */
static __always_inline void tcd__hop_xdp(struct xdp_md *ctx, __u32 key)
{
	struct tcd_hop_meta *m = (void *)(long)ctx->data_meta;
	void *data = (void *)(long)ctx->data;
	__u16 n, *slot;

	if ((void *)(m + 1) > data || m->magic != TCD_HOP_MAGIC)
		return;
	n = m->n;
	m->n = n + 1;
	if (n >= TCD_HOP_XDP_KEYS)
		return;
	slot = &m->key[n];
	if ((void *)(slot + 1) <= data)	/* checked again: the index is variable */
		*slot = key;
}

#define TCD__HOP_TC_PUT(skb, n, i, key)                                         \
	if ((n) == (i))                                                         \
		(skb)->cb[2 + (i) / 2] = (i) % 2 ? ((skb)->cb[2 + (i) / 2] & 0xffff) | (key) << 16 \
						 : ((skb)->cb[2 + (i) / 2] & 0xffff0000) | (key)

static __always_inline void tcd__hop_tc(struct __sk_buff *skb, __u32 key)
{
	__u32 n;

	if (skb->cb[0] != TCD_HOP_MAGIC)
		return;
	n = skb->cb[1];
	key &= 0xffff;
	TCD__HOP_TC_PUT(skb, n, 0, key);
	else TCD__HOP_TC_PUT(skb, n, 1, key);
	else TCD__HOP_TC_PUT(skb, n, 2, key);
	else TCD__HOP_TC_PUT(skb, n, 3, key);
	else TCD__HOP_TC_PUT(skb, n, 4, key);
	else TCD__HOP_TC_PUT(skb, n, 5, key);
	skb->cb[1] = n + 1;
}

static __always_inline void tcd__hop_none(void *ctx, __u32 key) {}

/* Keys past the jump table cannot be wired: the tail call fails, nothing is
 * recorded. */
#define tcd__hop(ctx, key)                                                      \
	do {                                                                    \
		if ((__u32)(key) < TCD__JT_ENTRIES)                             \
			_Generic((ctx), struct xdp_md *: tcd__hop_xdp,          \
				 struct __sk_buff *: tcd__hop_tc,               \
				 default: tcd__hop_none)((void *)(ctx), (key)); \
	} while (0)

/* Hands the packet to the handler wired at `key`. Returns only when none is
 * wired there (or the chain has reached its limit). tcd trace shows the hop
 * when ctx is the program's own struct xdp_md * or struct __sk_buff *. */
#define tcd_next(ctx, key)                                                      \
	do {                                                                    \
		__u32 tcd__key = (key);                                         \
		tcd__hop(ctx, tcd__key);                                        \
		bpf_tail_call((ctx), &jt, tcd__key);                            \
	} while (0)

/* The same for a key known at compile time: a direct jump, no retpoline. */
#define tcd_next_static(ctx, key)                                               \
	do {                                                                    \
		tcd__hop(ctx, (key));                                           \
		bpf_tail_call_static((ctx), &jt, (key));                        \
	} while (0)

#endif /* TCD_HANDLER_H */
