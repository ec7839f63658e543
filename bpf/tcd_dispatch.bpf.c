// SPDX-License-Identifier: GPL-2.0-only
/*
 * tcd's dispatchers (docs/datapath.md): classify one Ethernet frame, count it
 * in per-CPU counters, tail-call the handler wired at its key in the jump
 * table, and return the miss action when none is wired. Built-in handlers
 * live in the same object.
 *
 * One source, four builds (CMake):
 *   TCD_KEY_PORT  key = TCP/UDP destination port (else the IP protocol)
 *   TCD_HOOK_TC   a sched_cls program for tc's clsact (else XDP)
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include <linux/pkt_cls.h>

#include "tcd/handler.h" /* the maps handlers share: jt, proto_stats */
#include "tcd/shared.h"

char LICENSE[] SEC("license") = "GPL";

#ifdef TCD_HOOK_TC
#define TCD_CTX struct __sk_buff
#define TCD_SEC "tc"
#define TCD_PASS TC_ACT_OK
#define TCD_DROP TC_ACT_SHOT
#define TCD_DISPATCH_FN tc_dispatch
#define TCD_LEN(ctx, data, data_end) ((ctx)->len)
#else
#define TCD_CTX struct xdp_md
#define TCD_SEC "xdp"
#define TCD_PASS XDP_PASS
#define TCD_DROP XDP_DROP
#define TCD_DISPATCH_FN xdp_dispatch
#define TCD_LEN(ctx, data, data_end) ((data_end) - (data))
#endif

/* Set by the loader before the object is loaded; the verifier prunes what
 * they switch off, so the live datapath pays nothing for trace mode. */
const volatile __u32 tcd_miss_action = TCD_PASS;
const volatile __u8 tcd_trace_mode = 0;

/* The monitoring build (tcd monitor; docs/datapath.md, "Monitor") is its own
 * object, compiled with TCD_MONITOR: the plain object has no monitoring code
 * at all (TCD_MON_ON is 0, so clang drops it and allocates registers as if it
 * were not there), and its dispatcher is the one tcd_bench measures. Both
 * objects declare the same .rodata and maps, so one layout serves both, and
 * tcd_monitor says which build a running dispatcher is. */
#ifdef TCD_MONITOR
#define TCD_MON_ON tcd_monitor
#else
#define TCD_MON_ON 0
#endif
const volatile __u8 tcd_monitor = 0;
const volatile __u8 tcd_mon_misses = 0;	/* only misses are events */
const volatile __u8 tcd_mon_level = 0;	/* copied into each event */
const volatile __u8 tcd_mon_inst = 0;
const volatile __u32 tcd_mon_sample = 1;	/* one frame in N is a candidate */
const volatile __u32 tcd_mon_snaplen = 128;
const volatile __u32 tcd_mon_ifindex = 0;	/* 0: every interface */
const volatile __u32 tcd_mon_nkeys = 0;	/* 0: every key */
const volatile __u32 tcd_mon_keys[TCD_MON_KEYS];
const volatile __u64 tcd_mon_gap_ns = 1000000;	/* per CPU: time between events */
const volatile __u64 tcd_mon_burst_ns = 10000000;	/* per CPU: what may come at once */

/* Non-IP and malformed frames get pass, or next (TC_ACT_UNSPEC, which is
 * TCX_NEXT) when the miss action is next: then they, like the misses, reach
 * the next program in the tcx chain or the stack. */
#ifdef TCD_HOOK_TC
#define TCD_UNDISPATCHED \
	(tcd_miss_action == (__u32)TC_ACT_UNSPEC ? TC_ACT_UNSPEC : TCD_PASS)
#else
#define TCD_UNDISPATCHED TCD_PASS
#endif

/* The fast paths for untagged IPv4 and IPv6 in classify() (-DTCD_FASTPATH=0
 * builds a copy without them, to see what they buy). */
#ifndef TCD_FASTPATH
#define TCD_FASTPATH 1
#endif

#ifdef TCD_KEY_PORT
/* port -> counter slot, written by `tcd map set` (0: no slot of its own). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TCD_PORT_JT_ENTRIES);
	__type(key, __u32);
	__type(value, __u32);
} port_slot SEC(".maps");
#endif

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tcd_trace_rec);
} tcd_trace SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} tcd_mon_ev SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tcd_mon_cpu);
} tcd_mon_cpu SEC(".maps");

struct vlan_tag {
	__be16 tci;
	__be16 encap_proto;
};

/* The IPv6 extension headers that are walked (docs/datapath.md,
 * "Dispatch key"). */
static __always_inline int is_walked_ext(__u8 nh)
{
	return nh == 0 /* HOPOPTS */ || nh == 43 /* ROUTING */ ||
	       nh == 44 /* FRAGMENT */ || nh == 60 /* DSTOPTS */;
}

struct tcd_l4 {
	__u8 proto;		/* IPv4 protocol / IPv6 final next header */
	/* Not 0: a fragment other than the first (the fragment offset bits,
	 * ORed over an IPv6 chain). A value read from the frame rather than a
	 * 0/1 flag, so that the verifier does not tell apart the paths through
	 * the extension-header walk by it (a flag made 70,000 instructions of
	 * a port dispatcher's 3,500). */
	__u32 later_frag;
	__u8 no_port;		/* port instances: no TCP/UDP destination port */
};

#ifdef TCD_KEY_PORT
/* For a port instance: *key = the destination port of a first (or only)
 * fragment with a whole TCP (20 bytes) or UDP (8 bytes) header at p; else
 * l4->no_port. Read where classify() finds the header, so that no packet
 * pointer outlives classify(): the verifier then sees the same few states
 * after it on every path (a key and a class) and prunes them, as on a proto
 * instance, instead of walking the search and the tail calls once per
 * header offset (82,000 instructions verified against 5,000). */
static __always_inline void l4_port(struct tcd_l4 *l4, __u8 *p, void *data_end, __u32 *key)
{
	__u32 need;

	l4->no_port = 1;
	if (l4->later_frag)
		return;
	if (l4->proto == IPPROTO_TCP)
		need = 20;
	else if (l4->proto == IPPROTO_UDP)
		need = 8;
	else
		return;
	if ((void *)p + need > data_end)
		return;
	*key = (__u32)p[2] << 8 | p[3];
	l4->no_port = 0;
}
#define TCD_L4_AT(l4, p, data_end, key) l4_port(l4, (__u8 *)(p), data_end, key)
#else
#define TCD_L4_AT(l4, p, data_end, key) do { } while (0)
#endif

/* Returns the class; *key (the IP protocol, or on a port instance the
 * destination port) is set for ipv4/ipv6, and l4 says what the upper layer
 * is. Every access is checked against data_end right before it is made. */
static __always_inline int classify(void *data, void *data_end, __u32 *key, struct tcd_l4 *l4)
{
	struct ethhdr *eth = data;
	void *cur;
	__be16 proto;
	int i;

#if TCD_FASTPATH
	/* The common frame first: untagged IPv4 without options. One bounds
	 * check, a 16-bit EtherType load and the version/IHL byte decide it; the
	 * result is what the general walk below gives for such a frame. */
	if (data + ETH_HLEN + sizeof(struct iphdr) <= data_end &&
	    *(__be16 *)(data + 12) == bpf_htons(ETH_P_IP) && *(__u8 *)(data + ETH_HLEN) == 0x45) {
		struct iphdr *iph = data + ETH_HLEN;

		*key = iph->protocol;
		l4->proto = iph->protocol;
		l4->later_frag = iph->frag_off & bpf_htons(0x1fff);
		TCD_L4_AT(l4, iph + 1, data_end, key);
		return TCD_CLASS_IPV4;
	}
	/* And untagged IPv6 whose first next header is not one to walk. */
	if (data + ETH_HLEN + sizeof(struct ipv6hdr) <= data_end &&
	    *(__be16 *)(data + 12) == bpf_htons(ETH_P_IPV6) && (*(__u8 *)(data + ETH_HLEN) & 0xf0) == 0x60) {
		struct ipv6hdr *ip6 = data + ETH_HLEN;
		__u8 nh = ip6->nexthdr;

		if (!is_walked_ext(nh)) {
			*key = nh;
			l4->proto = nh;
			l4->later_frag = 0;
			TCD_L4_AT(l4, ip6 + 1, data_end, key);
			return TCD_CLASS_IPV6;
		}
	}
#endif

	if ((void *)(eth + 1) > data_end)
		return TCD_CLASS_MALFORMED;
	proto = *(__be16 *)(data + 12);	/* one 16-bit load: ethhdr is packed */
	cur = eth + 1;

	for (i = 0; i < TCD_MAX_VLAN; i++) {
		struct vlan_tag *tag = cur;

		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
			break;
		if ((void *)(tag + 1) > data_end)
			return TCD_CLASS_MALFORMED;
		proto = tag->encap_proto;
		cur = tag + 1;
	}

	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *iph = cur;

		if ((void *)(iph + 1) > data_end)
			return TCD_CLASS_MALFORMED;
		if (iph->version != 4 || iph->ihl < 5)
			return TCD_CLASS_MALFORMED;
		if (cur + iph->ihl * 4 > data_end)
			return TCD_CLASS_MALFORMED;
		*key = iph->protocol;
		l4->proto = iph->protocol;
		l4->later_frag = iph->frag_off & bpf_htons(0x1fff);
		TCD_L4_AT(l4, cur + iph->ihl * 4, data_end, key);
		return TCD_CLASS_IPV4;
	}

	if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = cur;
		__u8 nh;

		if ((void *)(ip6 + 1) > data_end)
			return TCD_CLASS_MALFORMED;
		if (ip6->version != 6)
			return TCD_CLASS_MALFORMED;
		nh = ip6->nexthdr;
		cur = ip6 + 1;
		l4->later_frag = 0;

		for (i = 0; i < TCD_MAX_EXTHDR; i++) {
			__u8 *opt = cur;
			__u32 len;

			if (!is_walked_ext(nh))
				break;
			if ((void *)(opt + 2) > data_end)
				return TCD_CLASS_MALFORMED;
			len = nh == 44 ? 8 : ((__u32)opt[1] + 1) * 8;
			if (cur + len > data_end)
				return TCD_CLASS_MALFORMED;
			if (nh == 44)
				l4->later_frag |= ((__u32)opt[2] << 8 | opt[3]) & 0xfff8;
			nh = opt[0];
			cur += len;
		}
		if (is_walked_ext(nh))	/* a 9th extension header */
			return TCD_CLASS_MALFORMED;
		*key = nh;
		l4->proto = nh;
		TCD_L4_AT(l4, cur, data_end, key);
		return TCD_CLASS_IPV6;
	}

	return TCD_CLASS_NON_IP;
}


#ifdef TCD_HOOK_TC
/*
 * tc: the program sees only the skb's linear part in [data, data_end). An skb
 * whose headers are partly in page fragments (a packet socket's large frames,
 * some drivers' receive buffers) would be classified on what is linear, so
 * the dispatcher pulls up to TCD_TC_PULL bytes into the linear part first
 * when the linear part is shorter than the frame and than what the
 * classifier may read. Pulling copies a cloned skb's head (TCP's on egress),
 * so the common frames whose headers are linear are let through without
 * one: untagged IPv4 without options (54 bytes cover IPv4 and a TCP header)
 * and untagged IPv6 with TCP/UDP right after the fixed header (74 bytes).
 */
#define TCD_TC_PULL 512

static __always_inline int tc_pull_headers(struct __sk_buff *ctx, void *data, void *data_end)
{
	__u32 linear = data_end - data, need = TCD_TC_PULL;
	__u8 *b = data;

	if (linear >= TCD_TC_PULL || ctx->len <= linear)
		return 0;
	if (data + ETH_HLEN + 7 <= data_end) {
		__be16 proto = *(__be16 *)(b + 12);

		if (proto == bpf_htons(ETH_P_IP) && b[ETH_HLEN] == 0x45)
			need = ETH_HLEN + 20 + 20;
		else if (proto == bpf_htons(ETH_P_IPV6) && (b[ETH_HLEN + 6] == IPPROTO_TCP ||
							     b[ETH_HLEN + 6] == IPPROTO_UDP))
			need = ETH_HLEN + 40 + 20;
	}
	if (ctx->len < need)
		need = ctx->len;
	if (linear >= need)
		return 0;
	bpf_skb_pull_data(ctx, ctx->len < TCD_TC_PULL ? ctx->len : TCD_TC_PULL);
	return 1;
}
#endif

/* Monitor: the per-CPU state when this frame is a candidate (one in
 * tcd_mon_sample), else NULL. The one cost a frame pays that is not sampled.
 * Asked once per frame, where the dispatcher decides (a leaf of the search,
 * the indirect call, an undispatched frame), so that the plain build keeps
 * nothing more alive across the search and the tail call. */
static __always_inline struct tcd_mon_cpu *mon_pick(void)
{
	__u32 zero = 0;
	struct tcd_mon_cpu *m = bpf_map_lookup_elem(&tcd_mon_cpu, &zero);

	if (!m)
		return NULL;
	m->armed = 0;
	if (++m->seen < tcd_mon_sample)
		return NULL;
	m->seen = 0;
	return m;
}

/* Writes one event (with the frame's first bytes when `frame`), after the
 * filters and, when `limited`, the rate limit. Returns 1 when written. */
static __always_inline int mon_emit(TCD_CTX *ctx, struct tcd_mon_cpu *m, __u32 cls, __u32 key,
				    __u8 decision, __u8 site, __u32 verdict, int frame, int limited)
{
	struct tcd_mon_event ev = {};
	__u64 now, caplen = 0, tat;
	int i, hit = tcd_mon_nkeys == 0;

#ifdef TCD_HOOK_TC
	ev.ifindex = ctx->ifindex;
	ev.len = ctx->len;
	ev.ingress = ctx->ingress_ifindex == ctx->ifindex;
#else
	ev.ifindex = ctx->ingress_ifindex;
	ev.len = ctx->data_end - ctx->data;
	ev.ingress = 1;
#endif
	if (tcd_mon_ifindex && ev.ifindex != tcd_mon_ifindex)
		return 0;
	for (i = 0; i < TCD_MON_KEYS; i++)
		if (i < tcd_mon_nkeys && tcd_mon_keys[i] == key && cls <= TCD_CLASS_IPV6)
			hit = 1;
	if (!hit)
		return 0;
	now = bpf_ktime_get_ns();
	if (limited) {
		/* GCRA: at most one event per gap, bursts of burst/gap. */
		tat = m->next_ns > now ? m->next_ns : now;
		if (tat > now + tcd_mon_burst_ns) {
			m->suppressed++;
			return 0;
		}
		m->next_ns = tat + tcd_mon_gap_ns;
	}
	if (frame) {
		caplen = ev.len < tcd_mon_snaplen ? ev.len : tcd_mon_snaplen;
		if (caplen > TCD_MON_SNAP_MAX)
			caplen = TCD_MON_SNAP_MAX;
	}
	ev.ts_ns = now;
	ev.key = key;
	ev.verdict = verdict;
	ev.caplen = caplen;
	ev.cls = cls;
	ev.decision = decision;
	ev.level = tcd_mon_level;
	ev.inst = tcd_mon_inst;
	ev.site = site;
	ev.seq = (__u32)m->sent;
	if (bpf_perf_event_output(ctx, &tcd_mon_ev, BPF_F_CURRENT_CPU | (caplen << 32), &ev, sizeof(ev)))
		return 0;
	m->sent++;
	return 1;
}

/* Before a tail call: the jump's event (not in misses-only mode). The
 * per-CPU state is armed for mon_miss when the frame is a candidate in
 * misses-only mode, or when the event was written. */
static __always_inline void mon_jump(TCD_CTX *ctx, __u32 cls, __u32 key, __u8 decision, __u8 site)
{
	struct tcd_mon_cpu *m = mon_pick();

	if (!m)
		return;
	if (tcd_mon_misses)
		m->armed = 1;
	else
		m->armed = mon_emit(ctx, m, cls, key, decision, site, 0, 1, 1);
}

/* The tail call fell through: in misses-only mode the event, else a
 * header-only follow-up to the jump's event. */
static __always_inline void mon_miss(TCD_CTX *ctx, __u32 cls, __u32 key)
{
	__u32 zero = 0;
	struct tcd_mon_cpu *m = bpf_map_lookup_elem(&tcd_mon_cpu, &zero);

	if (!m || !m->armed)
		return;
	m->armed = 0;
	if (tcd_mon_misses)
		mon_emit(ctx, m, cls, key, TCD_MON_MISS, 0, tcd_miss_action, 1, 1);
	else
		mon_emit(ctx, m, cls, key, TCD_MON_MISS, 0, tcd_miss_action, 0, 0);
}

static __always_inline void trace_record(__u32 cls, __u32 key, __u32 missed)
{
	__u32 zero = 0;
	struct tcd_trace_rec *rec = bpf_map_lookup_elem(&tcd_trace, &zero);

	if (!rec)
		return;
	if (!missed)
		rec->runs++;
	rec->cls = cls;
	rec->key = key;
	rec->missed = missed;
}

/*
 * Dispatch: a tail call into the jump table at the frame's key.
 *
 * A tail call whose key the verifier knows as a constant is JIT-compiled into
 * a direct jump that the kernel patches whenever the slot changes; a key read
 * from the packet goes through the retpoline-protected indirect path. The
 * loader writes the keys to specialise (the wired ones, at most
 * TCD_DIRECT_MAX, sorted, unused slots TCD_DIRECT_NONE) into .rodata, which
 * libbpf freezes, so the verifier reads them as constants: a binary search
 * over them ends in one tail-call site per slot, each with its constant key,
 * and every other key takes the indirect call. Slots holding TCD_DIRECT_NONE
 * are out of every key's range, so the verifier prunes their branches.
 *
 * Each site is an inline-asm tail call (bpf_tail_call_static, but with the
 * key in a register) whose text names its slot: identical asm statements
 * could be merged by clang into one call reached with different keys, which
 * the verifier would then have to treat as indirect.
 */
const volatile __u32 tcd_direct_key[TCD_DIRECT_MAX] = {
	TCD_DIRECT_NONE, TCD_DIRECT_NONE, TCD_DIRECT_NONE, TCD_DIRECT_NONE,
	TCD_DIRECT_NONE, TCD_DIRECT_NONE, TCD_DIRECT_NONE, TCD_DIRECT_NONE,
	TCD_DIRECT_NONE, TCD_DIRECT_NONE, TCD_DIRECT_NONE, TCD_DIRECT_NONE,
	TCD_DIRECT_NONE, TCD_DIRECT_NONE, TCD_DIRECT_NONE, TCD_DIRECT_NONE,
};
const volatile __u32 tcd_direct_slot[TCD_DIRECT_MAX];

#define TCD_TAIL_SITE(n, ctx, key)                                              \
	asm volatile("r1 = %[c]\n\t"                                            \
		     "r2 = %[m]\n\t"                                         \
		     "r3 = %[k]\n\t"                                            \
		     "call 12 /* tcd direct site " #n " */"                     \
		     :: [c] "r"(ctx), [m] "r"(&jt), [k] "r"(key)                 \
		     : "r0", "r1", "r2", "r3", "r4", "r5")

/* Counts the frame into row slot; returns the row (NULL only if the map
 * lookup failed, which the verifier requires us to handle). */
static __always_inline struct tcd_counters *count_row(__u32 slot, __u64 len)
{
	struct tcd_counters *cnt = bpf_map_lookup_elem(&proto_stats, &slot);

	if (cnt) {
		cnt->packets++;
		cnt->bytes += len;
	}
	return cnt;
}

static __always_inline int missed(TCD_CTX *ctx, struct tcd_counters *cnt, __u32 cls, __u32 key)
{
	/* No handler at this key: the tail call fell through. */
	if (cnt)
		cnt->missed++;
	if (tcd_trace_mode)
		trace_record(cls, key, 1);
	if (TCD_MON_ON)
		mon_miss(ctx, cls, key);
	return tcd_miss_action;
}

/* Slot n of the specialised keys matched: count, jump directly. */
#define TCD_LEAF(n)                                                             \
	if (key == tcd_direct_key[n]) {                                         \
		__u32 k = tcd_direct_key[n];                                    \
		struct tcd_counters *c = count_row(tcd_direct_slot[n], len);   \
		if (tcd_trace_mode)                                             \
			trace_record(cls, k, 0);                                \
		if (TCD_MON_ON)                                                \
			mon_jump(ctx, cls, k, TCD_MON_DIRECT, n);               \
		TCD_TAIL_SITE(n, ctx, k);                                       \
		return missed(ctx, c, cls, k);                                  \
	}
/* key < K[n] picks the lower half: the keys are sorted, so the search over
 * 16 slots is 4 comparisons and one equality. */
#define TCD_PAIR(a)                                                             \
	if (key < tcd_direct_key[a + 1]) {                                      \
		TCD_LEAF(a)                                                     \
	} else {                                                                \
		TCD_LEAF(a + 1)                                                 \
	}
#define TCD_QUAD(a)                                                             \
	if (key < tcd_direct_key[a + 2]) {                                      \
		TCD_PAIR(a)                                                     \
	} else {                                                                \
		TCD_PAIR(a + 2)                                                 \
	}
#define TCD_OCT(a)                                                              \
	if (key < tcd_direct_key[a + 4]) {                                      \
		TCD_QUAD(a)                                                     \
	} else {                                                                \
		TCD_QUAD(a + 4)                                                 \
	}
#define TCD_SEARCH()                                                            \
	if (key < tcd_direct_key[8]) {                                          \
		TCD_OCT(0)                                                      \
	} else {                                                                \
		TCD_OCT(8)                                                      \
	}

SEC(TCD_SEC)
int TCD_DISPATCH_FN(TCD_CTX *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct tcd_counters *cnt;
	struct tcd_l4 l4 = {};
	__u32 key = 0, slot;
	__u64 len;
	int cls;

#ifdef TCD_HOOK_TC
	/* tc: headers that may run on past the skb's linear part are pulled
	 * in first (tc_pull_headers). */
	if (tc_pull_headers(ctx, data, data_end)) {
		data = (void *)(long)ctx->data;
		data_end = (void *)(long)ctx->data_end;
	}
#endif
	len = TCD_LEN(ctx, data, data_end);
	cls = classify(data, data_end, &key, &l4);
#ifdef TCD_KEY_PORT
	if ((cls == TCD_CLASS_IPV4 || cls == TCD_CLASS_IPV6) && l4.no_port) {
		cls = TCD_CLASS_NO_PORT;
		key = 0;
	}
#endif

	if (cls == TCD_CLASS_IPV4 || cls == TCD_CLASS_IPV6) {
		TCD_SEARCH()
#ifdef TCD_KEY_PORT
		__u32 *s = bpf_map_lookup_elem(&port_slot, &key);

		slot = s && *s < TCD_PORT_SLOTS ? *s : 0;
#else
		slot = key;
#endif
		cnt = count_row(slot, len);
		if (tcd_trace_mode)
			trace_record(cls, key, 0);
		if (TCD_MON_ON)
			mon_jump(ctx, cls, key, TCD_MON_INDIRECT, 0);
		bpf_tail_call(ctx, &jt, key);
		return missed(ctx, cnt, cls, key);
	}

#ifdef TCD_KEY_PORT
	slot = cls == TCD_CLASS_NON_IP ? TCD_PSLOT_NON_IP
	       : cls == TCD_CLASS_MALFORMED ? TCD_PSLOT_MALFORMED : TCD_PSLOT_NO_PORT;
#else
	slot = cls == TCD_CLASS_NON_IP ? TCD_SLOT_NON_IP : TCD_SLOT_MALFORMED;
#endif
	count_row(slot, len);
	if (tcd_trace_mode)
		trace_record(cls, key, 0);
	if (TCD_MON_ON) {
		struct tcd_mon_cpu *m = mon_pick();

		if (m && !tcd_mon_misses)
			mon_emit(ctx, m, cls, key, TCD_MON_UNDISPATCHED, 0,
				 cls == TCD_CLASS_NO_PORT ? tcd_miss_action : TCD_UNDISPATCHED, 1, 1);
	}
	if (cls == TCD_CLASS_NO_PORT)
		return tcd_miss_action;
	return TCD_UNDISPATCHED;
}

/* Built-in handlers, pinned beside the dispatcher. */
SEC(TCD_SEC)
int tcp_handler(TCD_CTX *ctx)
{
	return TCD_PASS;
}

SEC(TCD_SEC)
int udp_handler(TCD_CTX *ctx)
{
	return TCD_PASS;
}

SEC(TCD_SEC)
int pass(TCD_CTX *ctx)
{
	return TCD_PASS;
}

SEC(TCD_SEC)
int drop(TCD_CTX *ctx)
{
	return TCD_DROP;
}
