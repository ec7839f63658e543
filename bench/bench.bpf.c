// SPDX-License-Identifier: GPL-2.0-only
/*
 * Baselines for tcd_bench, measured in the same run as tcd's dispatcher:
 *  - xdp_floor: a bare XDP_PASS, the cost of test_run itself;
 *  - seed_dispatch + seed_tcp: the seeds' dispatcher as written there (a
 *    shared array counter with an atomic add, IPv4 only, an indirect tail
 *    call) with a handler that counts the same way.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u32);
} seed_jt SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __u64);
} seed_stats SEC(".maps");

SEC("xdp")
int xdp_floor(struct xdp_md *ctx)
{
	return XDP_PASS;
}

SEC("xdp")
int seed_dispatch(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *iph;
	__u32 key = 0, proto;
	__u64 *cnt;

	if (data + 34 > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	iph = (void *)(eth + 1);
	proto = iph->protocol;
	cnt = bpf_map_lookup_elem(&seed_stats, &key);
	if (cnt)
		__sync_fetch_and_add(cnt, 1);
	bpf_tail_call(ctx, &seed_jt, proto);
	return XDP_PASS;
}

SEC("xdp")
int seed_tcp(struct xdp_md *ctx)
{
	__u32 key = 1;
	__u64 *cnt = bpf_map_lookup_elem(&seed_stats, &key);

	if (cnt)
		__sync_fetch_and_add(cnt, 1);
	return XDP_PASS;
}
