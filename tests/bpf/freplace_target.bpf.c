// SPDX-License-Identifier: GPL-2.0-only
/* An XDP program with a global function that a freplace program can take
 * over, as libxdp's multi-program dispatcher has (the kernel tests, probe_test). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

__noinline int fr_slot(struct xdp_md *ctx)
{
	return ctx ? XDP_PASS : XDP_ABORTED;
}

SEC("xdp")
int fr_target(struct xdp_md *ctx)
{
	return fr_slot(ctx);
}
