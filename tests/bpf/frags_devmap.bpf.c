// SPDX-License-Identifier: GPL-2.0-only
/* An XDP program that differs from the jump table's owner in two fields at
 * once when loaded as it is: frags flag and expected attach type. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

SEC("xdp.frags/devmap")
int frags_devmap_h(struct xdp_md *ctx)
{
	return XDP_PASS;
}
