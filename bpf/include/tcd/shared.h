/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The one header the BPF programs and the C++ side share: map layouts,
 * counter slots and the dispatch classes. Plain C, fixed-size types only.
 */
#ifndef TCD_SHARED_H
#define TCD_SHARED_H

#include <linux/types.h>

/* Names as the kernel sees them (at most 15 characters). */
#define TCD_PROG_DISPATCH   "xdp_dispatch"
#define TCD_PROG_TC_DISPATCH "tc_dispatch"
#define TCD_MAP_JT          "jt"
#define TCD_MAP_STATS       "proto_stats"
#define TCD_MAP_TRACE       "tcd_trace"
#define TCD_MAP_ATTACH      "tcd_attach"
#define TCD_MAP_MP_ENTRY    "mp_entry"   /* multiprog: the entry shim's one-slot prog array */
#define TCD_PROG_ENTRY      "tcd_entry"  /* multiprog: the entry shim libxdp links into its dispatcher */

/* Jump table: key = dispatch key (IP protocol / IPv6 next header). */
#define TCD_JT_ENTRIES      256

/* Counter slots in proto_stats: 0..255 per key, then the two classes
 * that have no key. */
#define TCD_SLOT_NON_IP     256
#define TCD_SLOT_MALFORMED  257
#define TCD_STATS_ENTRIES   258

/* Port instances (tcd load --key port): the jump table is keyed by the
 * destination port; counters live in slots that `tcd map set` assigns to
 * ports (maps/port_slot: port -> slot), so memory does not grow with 65536
 * ports times CPUs. Slot 0 counts ports that have no slot of their own. */
#define TCD_PORT_JT_ENTRIES     65536
#define TCD_PORT_SLOTS          1024
#define TCD_PSLOT_NON_IP        1024
#define TCD_PSLOT_MALFORMED     1025
#define TCD_PSLOT_NO_PORT       1026
#define TCD_PORT_STATS_ENTRIES  1027
#define TCD_MAP_PORT_SLOT       "port_slot"

/* Port instances: maps/slot_port, the index of port_slot the other way
 * round (slot -> port), an array of TCD_PORT_SLOTS entries that only user
 * space reads and writes, so that a command finds the slotted ports by
 * reading 1,024 entries instead of 65,536. An entry is TCD_SLOT_TAKEN | port,
 * or 0 for a free slot. It is written before port_slot when a port gets a
 * slot and cleared after it when the port gives it back; an entry counts
 * only while port_slot[port] names its slot (docs/datapath.md, "Counters"). */
#define TCD_MAP_SLOT_PORT       "slot_port"
#define TCD_SLOT_TAKEN          0x10000u

/* Specialised dispatch: up to TCD_DIRECT_MAX keys per instance are written
 * into the dispatcher's .rodata before it is loaded (sorted ascending, the
 * unused slots TCD_DIRECT_NONE), each with a tail-call site of its own whose
 * key the verifier knows as a constant, so the JIT makes a direct jump of
 * it. tcd_direct_slot[] is the counter row of each (the key itself on a proto
 * instance, the port's slot on a port instance). */
#define TCD_DIRECT_MAX      16
#define TCD_DIRECT_NONE     0xffffffffu

/* The walking limits (docs/datapath.md, "Dispatch key"). */
#define TCD_MAX_VLAN        2
#define TCD_MAX_EXTHDR      8

/* Dispatch classes (docs/datapath.md, "Counters"). */
enum tcd_class {
	TCD_CLASS_IPV4 = 0,
	TCD_CLASS_IPV6 = 1,
	TCD_CLASS_NON_IP = 2,
	TCD_CLASS_MALFORMED = 3,
	TCD_CLASS_NO_PORT = 4,	/* port instances: IP without a TCP/UDP header */
};

/* One per-CPU counter row. */
struct tcd_counters {
	__u64 packets;
	__u64 bytes;
	__u64 missed;	/* key rows only: no handler was wired */
};

/* What the dispatcher derived for the last frame; written only when the
 * object is loaded in trace mode (tcd trace), never on the live instance. */
struct tcd_trace_rec {
	__u32 runs;	/* incremented on every run: tells a run happened */
	__u32 cls;	/* enum tcd_class */
	__u32 key;	/* valid for ipv4/ipv6 */
	__u32 missed;	/* 1 when the tail call fell through */
};

/* Hops a handler takes with tcd_next() (tcd trace): the frame carries the
 * record, so a live frame carries none and a handler pays one comparison per
 * hop. On XDP trace hands the frame 32 bytes of metadata (data_meta) holding
 * struct tcd_hop_meta; on tc it sets the skb's cb[]: cb[0] the magic, cb[1]
 * the number of hops, cb[2..4] the first TCD_HOP_TC_KEYS keys, two 16-bit
 * keys a word (the even one in the low half). A handler records a hop only
 * when the magic is there, before the tail call (so a key with nothing
 * wired is recorded too: trace then sees the slot empty). n counts every
 * hop, also those past the room for their keys. */
#define TCD_HOP_MAGIC       0x7463644eu	/* "tcdN" */
#define TCD_HOP_XDP_KEYS    13
#define TCD_HOP_TC_KEYS     6

struct tcd_hop_meta {
	__u32 magic;
	__u16 n;
	__u16 key[TCD_HOP_XDP_KEYS];
};

/* Where tcd attached an instance: user space only (maps/attach). */
struct tcd_attach_key {
	__u64 netns_ino;	/* inode of the network namespace */
	__u32 ifindex;
	__u32 direction;	/* 0 XDP, 1 tc ingress, 2 tc egress */
};

#define TCD_NETNS_PATH_MAX 112
struct tcd_attach_val {
	char ifname[16];
	char netns[TCD_NETNS_PATH_MAX];	/* path used to enter it, "" = tcd's own */
	__u32 mode;			/* enum xdp_attach_mode; tc: 0 clsact, 16 tcx link */
	__u32 multiprog;		/* 1 = libxdp multi-program dispatcher */
	__u32 made_qdisc;		/* tc: tcd created the clsact qdisc */
	__u32 pad;
};

/* Monitoring build (tcd monitor, docs/datapath.md "Monitor"): the same object
 * loaded with .rodata tcd_monitor = 1. One frame in tcd_mon_sample is a
 * candidate (a per-CPU counter); candidates pass the filters, then a per-CPU
 * rate limit, and go to tcd_mon_ev (a perf event array) as struct
 * tcd_mon_event followed by up to tcd_mon_snaplen bytes of the frame. */
#define TCD_MAP_MON_EV      "tcd_mon_ev"
#define TCD_MAP_MON_CPU     "tcd_mon_cpu"
#define TCD_MON_KEYS        16
#define TCD_MON_SNAP_MAX    1024

enum tcd_mon_decision {
	TCD_MON_DIRECT = 1,	/* a direct jump (a specialised key); site = its slot */
	TCD_MON_INDIRECT = 2,	/* the indirect tail call */
	TCD_MON_MISS = 3,	/* the tail call fell through: the miss action */
	TCD_MON_UNDISPATCHED = 4, /* non-IP, malformed, or no port: not dispatched */
};

/* Per-CPU state of a monitoring dispatcher (tcd_mon_cpu, one entry). */
struct tcd_mon_cpu {
	__u64 seen;		/* frames since the last candidate */
	__u64 next_ns;		/* rate limit: the earliest time of the next event */
	__u64 suppressed;	/* candidates the rate limit dropped */
	__u64 sent;		/* events written */
	__u64 armed;		/* this frame's tail call is to be followed up if it falls through */
};

struct tcd_mon_event {
	__u64 ts_ns;		/* bpf_ktime_get_ns() */
	__u32 ifindex;		/* the frame's interface */
	__u32 len;		/* the frame's length */
	__u32 key;		/* valid for ipv4/ipv6 */
	__u32 verdict;		/* MISS / UNDISPATCHED: what the dispatcher returned */
	__u32 seq;		/* per CPU: a MISS follow-up has its jump's seq */
	__u16 caplen;		/* bytes of the frame after this header */
	__u8 cls;		/* enum tcd_class */
	__u8 decision;		/* enum tcd_mon_decision */
	__u8 level;		/* the instance's level in the monitored tree */
	__u8 inst;		/* which monitored instance (user space's index) */
	__u8 ingress;		/* tc: 1 ingress, 0 egress; XDP: 1 */
	__u8 site;		/* DIRECT: the slot of tcd_direct_key */
};

#endif /* TCD_SHARED_H */
