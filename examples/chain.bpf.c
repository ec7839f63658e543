// SPDX-License-Identifier: GPL-2.0-only
/*
 * Seed 002's chain as tcd handlers: mark, then inspect and drop.
 *
 *   tcd handler load chain.bpf.o
 *   tcd map set udp mark             # UDP goes to mark
 *   tcd map set 252 inspect          # mark hands every packet on to key 252
 *
 * mark sets the low TOS bit of IPv4 UDP datagrams to port 9 (discard),
 * fixing the header checksum, then tail-calls the next stage through tcd's
 * own jump table. inspect drops what carries the mark and passes the rest.
 * Without a handler at 252 the chain ends at mark and everything passes.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include <tcd/handler.h>

char LICENSE[] SEC("license") = "GPL";

#define NEXT_STAGE 252
#define MARK 0x01

/* The untagged IPv4 header when the frame is UDP over IPv4, else NULL. */
static __always_inline struct iphdr *ipv4_udp(struct xdp_md *ctx, struct udphdr **udp)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);

	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return NULL;
	if (ip->protocol != IPPROTO_UDP || ip->ihl != 5)
		return NULL;
	*udp = (void *)(ip + 1);
	if ((void *)(*udp + 1) > data_end)
		return NULL;
	return ip;
}

SEC("xdp")
int mark(struct xdp_md *ctx)
{
	struct udphdr *udp;
	struct iphdr *ip = ipv4_udp(ctx, &udp);

	if (ip && udp->dest == bpf_htons(9) && !(ip->tos & MARK)) {
		/* RFC 1624 incremental update of the header checksum. */
		__u32 sum = (__u16)~ip->check + (__u16)~bpf_htons(ip->tos) ;
		ip->tos |= MARK;
		sum += bpf_htons(ip->tos);
		sum = (sum & 0xffff) + (sum >> 16);
		sum = (sum & 0xffff) + (sum >> 16);
		ip->check = ~sum;
	}
	tcd_next_static(ctx, NEXT_STAGE);
	return XDP_PASS;
}

SEC("xdp")
int inspect(struct xdp_md *ctx)
{
	struct udphdr *udp;
	struct iphdr *ip = ipv4_udp(ctx, &udp);

	if (ip && (ip->tos & MARK))
		return XDP_DROP;
	return XDP_PASS;
}
