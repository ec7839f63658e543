// SPDX-License-Identifier: GPL-2.0-only
/* Programs the jump table must refuse, or that tcd must refuse to load. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

SEC("xdp.frags")
int frags_h(struct xdp_md *ctx)
{
	return XDP_PASS;
}

SEC("tc")
int tc_prog(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}

SEC("xdp/devmap")
int devmap_h(struct xdp_md *ctx)
{
	return XDP_PASS;
}

SEC("xdp")
int a_name_longer_than_15(struct xdp_md *ctx)
{
	return XDP_PASS;
}
