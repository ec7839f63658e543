// SPDX-License-Identifier: GPL-2.0-only
/* A handler that declares tcd's jump table wrongly (2 entries). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
} jt SEC(".maps");

SEC("xdp")
int bad_jt(struct xdp_md *ctx)
{
	bpf_tail_call(ctx, &jt, 1);
	return XDP_PASS;
}
