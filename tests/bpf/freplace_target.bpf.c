// SPDX-License-Identifier: GPL-2.0-only
/* An XDP program with a global function that a freplace program can take
 * over, as libxdp's multi-program dispatcher has (the kernel tests, probe_test). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

__noinline int fr_slot(struct xdp_md *ctx)
{
	if (!ctx)
		return XDP_ABORTED;
	/* A no-op that changes packet data, as libxdp 1.5.5's dispatcher slots
	 * have: kernels from 6.13 (and 6.12.y) refuse an extension that changes
	 * packet data (fr_owner's tail call does) in place of one that does not. */
	bpf_xdp_adjust_tail(ctx, 0);
	return XDP_PASS;
}

SEC("xdp")
int fr_target(struct xdp_md *ctx)
{
	return fr_slot(ctx);
}
