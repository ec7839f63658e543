// SPDX-License-Identifier: GPL-2.0-only
/*
 * Seed 004 as tcd handlers: dispatch TCP by destination port.
 *
 *   tcd handler load ports.bpf.o
 *   tcd map set tcp tcp_ports        # TCP goes to tcp_ports
 *   tcd map set 253 port8080         # which hands port 8080 on to key 253
 *   tcd map set 254 port22           # and port 22 to key 254
 *
 * Keys 253 and 254 are the IP protocol numbers IANA keeps for experiments,
 * used here as chain stages. port8080 counts and passes; port22 counts and
 * drops (SSH blocked). Each stage counts what it handled into tcd's own
 * counters, in the row of its stage key (tcd_count), so `tcd stats` shows
 * them as keys 253 and 254; the map port_hits has the per-port counts too.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include <tcd/handler.h>

char LICENSE[] SEC("license") = "GPL";

#define STAGE_8080 253
#define STAGE_22 254

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} port_hits SEC(".maps");

/* The TCP destination port, or -1: IPv4 or IPv6 without extension headers,
 * behind at most one VLAN tag. Every access checked against data_end. */
static __always_inline int tcp_dport(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct tcphdr *tcp;
	void *l3;
	__u16 proto;

	if ((void *)(eth + 1) > data_end)
		return -1;
	proto = eth->h_proto;
	l3 = eth + 1;
	if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD)) {
		if (l3 + 4 > data_end)
			return -1;
		proto = *(__u16 *)(l3 + 2);
		l3 += 4;
	}
	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = l3;

		if ((void *)(ip + 1) > data_end || ip->protocol != IPPROTO_TCP || ip->ihl < 5)
			return -1;
		tcp = l3 + ip->ihl * 4;
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = l3;

		if ((void *)(ip6 + 1) > data_end || ip6->nexthdr != IPPROTO_TCP)
			return -1;
		tcp = (void *)(ip6 + 1);
	} else {
		return -1;
	}
	if ((void *)(tcp + 1) > data_end)
		return -1;
	return bpf_ntohs(tcp->dest);
}

static __always_inline void hit(__u32 slot)
{
	__u64 *n = bpf_map_lookup_elem(&port_hits, &slot);

	if (n)
		(*n)++;
}

SEC("xdp")
int tcp_ports(struct xdp_md *ctx)
{
	int port = tcp_dport(ctx);

	if (port == 8080)
		tcd_next_static(ctx, STAGE_8080);
	else if (port == 22)
		tcd_next_static(ctx, STAGE_22);
	return XDP_PASS;
}

static __always_inline __u64 frame_len(struct xdp_md *ctx)
{
	return ctx->data_end - ctx->data;
}

SEC("xdp")
int port8080(struct xdp_md *ctx)
{
	hit(0);
	tcd_count(STAGE_8080, frame_len(ctx));
	return XDP_PASS;
}

SEC("xdp")
int port22(struct xdp_md *ctx)
{
	hit(1);
	tcd_count(STAGE_22, frame_len(ctx));
	return XDP_DROP;
}
