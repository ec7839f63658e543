// SPDX-License-Identifier: GPL-2.0-only
/*
 * Seed 002's classifier chain on the tc hook: mark, then inspect and drop.
 *
 *   tcd -d /sys/fs/bpf/tcd-tc load --hook tc
 *   tcd -d /sys/fs/bpf/tcd-tc attach eth0 --direction egress
 *   tcd -d /sys/fs/bpf/tcd-tc handler load tc_chain.bpf.o
 *   tcd -d /sys/fs/bpf/tcd-tc map set udp tc_mark
 *   tcd -d /sys/fs/bpf/tcd-tc map set 252 tc_inspect
 *
 * tc_mark sets the low TOS bit of IPv4 UDP datagrams to port 9 (discard) and
 * tail-calls the next stage through tcd's jump table; tc_inspect drops what
 * carries the mark. Unlike XDP, this works on egress too.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <linux/udp.h>
#include <stddef.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include <tcd/handler.h>

char LICENSE[] SEC("license") = "GPL";

#define NEXT_STAGE 252
#define MARK 0x01
#define IP_OFF sizeof(struct ethhdr)

static __always_inline struct iphdr *ipv4_udp(struct __sk_buff *skb, struct udphdr **udp)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
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

SEC("tc")
int tc_mark(struct __sk_buff *skb)
{
	struct udphdr *udp;
	struct iphdr *ip = ipv4_udp(skb, &udp);

	if (ip && udp->dest == bpf_htons(9) && !(ip->tos & MARK)) {
		__u16 old = bpf_htons(ip->tos);
		__u16 new = bpf_htons(ip->tos | MARK);
		__u8 tos = ip->tos | MARK;

		/* Rewrite the TOS byte, then fix the header checksum. */
		bpf_skb_store_bytes(skb, IP_OFF + offsetof(struct iphdr, tos), &tos, 1, 0);
		bpf_l3_csum_replace(skb, IP_OFF + offsetof(struct iphdr, check), old, new, 2);
	}
	tcd_next_static(skb, NEXT_STAGE);
	return TC_ACT_OK;
}

SEC("tc")
int tc_inspect(struct __sk_buff *skb)
{
	struct udphdr *udp;
	struct iphdr *ip = ipv4_udp(skb, &udp);

	if (ip && (ip->tos & MARK))
		return TC_ACT_SHOT;
	return TC_ACT_OK;
}
