// SPDX-License-Identifier: GPL-2.0-only
/* Another agent's tc programs, for the tests that run tcd beside them (tcx
 * links and clsact filters): nb_count counts IPv4 UDP and lets every frame
 * go on (TC_ACT_UNSPEC, TCX_NEXT); nb_drop_udp counts IPv4 UDP and drops it.
 * Counts in nb_udp: slot 0 nb_count, slot 1 nb_drop_udp. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} nb_udp SEC(".maps");

static __always_inline int is_udp4(struct __sk_buff *skb)
{
	__u8 proto = 0;

	if (skb->protocol != bpf_htons(ETH_P_IP))
		return 0;
	if (bpf_skb_load_bytes(skb, ETH_HLEN + 9, &proto, 1))
		return 0;
	return proto == IPPROTO_UDP;
}

static __always_inline void count(__u32 slot)
{
	__u64 *c = bpf_map_lookup_elem(&nb_udp, &slot);

	if (c)
		__sync_fetch_and_add(c, 1);
}

SEC("tc")
int nb_count(struct __sk_buff *skb)
{
	if (is_udp4(skb))
		count(0);
	return TC_ACT_UNSPEC;
}

SEC("tc")
int nb_drop_udp(struct __sk_buff *skb)
{
	if (!is_udp4(skb))
		return TC_ACT_UNSPEC;
	count(1);
	return TC_ACT_SHOT;
}
