// SPDX-License-Identifier: GPL-2.0-only
/* A freplace program (attach target: freplace_target's fr_slot) that owns a
 * prog array, as a tcd dispatcher run by libxdp would own its jump table:
 * its expected attach type is none (0), not BPF_XDP. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} fr_jt SEC(".maps");

SEC("freplace/fr_slot")
int fr_owner(struct xdp_md *ctx)
{
	bpf_tail_call(ctx, &fr_jt, 0);
	return XDP_PASS;
}
