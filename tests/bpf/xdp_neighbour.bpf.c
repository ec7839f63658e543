// SPDX-License-Identifier: GPL-2.0-only
/* Another tool's XDP programs, loaded with xdp-loader into libxdp's
 * multi-program dispatcher beside tcd (tests/e2e/multiprog_e2e_test.cpp):
 * xnb_count counts IPv4 UDP and passes every frame (so libxdp chains it on to
 * the next program); xnb_drop_udp counts IPv4 UDP and drops it. Counts in
 * xnb_udp: slot 0 xnb_count, slot 1 xnb_drop_udp. Every packet access is
 * checked against data_end. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} xnb_udp SEC(".maps");

static __always_inline int is_udp4(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;

	if ((void *)(eth + 1) > data_end)
		return 0;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return 0;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return 0;
	return ip->protocol == IPPROTO_UDP;
}

static __always_inline void count(__u32 slot)
{
	__u64 *c = bpf_map_lookup_elem(&xnb_udp, &slot);

	if (c)
		__sync_fetch_and_add(c, 1);
}

SEC("xdp")
int xnb_count(struct xdp_md *ctx)
{
	if (is_udp4(ctx))
		count(0);
	return XDP_PASS;
}

SEC("xdp")
int xnb_drop_udp(struct xdp_md *ctx)
{
	if (!is_udp4(ctx))
		return XDP_PASS;
	count(1);
	return XDP_DROP;
}
