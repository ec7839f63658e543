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

/*
 * Lower bounds, not dispatchers (they skip VLANs, IPv6, the classes and the
 * miss path): what the mechanism itself costs on an untagged IPv4 frame.
 *  - bound_tail: parse, then a constant-key tail call to bound_jt[6];
 *  - bound_count: the same plus one per-CPU counter row per key (packets
 *    and bytes), laid out as tcd's proto_stats.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u32);
} bound_jt SEC(".maps");

struct bound_row {
	__u64 packets, bytes, missed;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 258);
	__type(key, __u32);
	__type(value, struct bound_row);
} bound_stats SEC(".maps");

static __always_inline int bound_key(struct xdp_md *ctx, __u32 *key)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	if (data + 34 > data_end || *(__be16 *)(data + 12) != bpf_htons(ETH_P_IP) || *(__u8 *)(data + 14) != 0x45)
		return -1;
	*key = *(__u8 *)(data + 23);
	return 0;
}

SEC("xdp")
int bound_tail(struct xdp_md *ctx)
{
	__u32 key;

	if (bound_key(ctx, &key))
		return XDP_PASS;
	if (key == 6)
		bpf_tail_call_static(ctx, &bound_jt, 6);
	return XDP_PASS;
}

SEC("xdp")
int bound_count(struct xdp_md *ctx)
{
	struct bound_row *row;
	__u32 key;

	if (bound_key(ctx, &key))
		return XDP_PASS;
	row = bpf_map_lookup_elem(&bound_stats, &key);
	if (row) {
		row->packets++;
		row->bytes += ctx->data_end - ctx->data;
	}
	if (key == 6)
		bpf_tail_call_static(ctx, &bound_jt, 6);
	return XDP_PASS;
}

/* The same counters as one per-CPU value of 258 rows, looked up with the
 * constant key 0: the row address no longer waits for the packet's key to
 * pass through the stack. The cheapest layout measured. */
struct bound_rows {
	struct bound_row row[258];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bound_rows);
} bound_stats1 SEC(".maps");

SEC("xdp")
int bound_count1(struct xdp_md *ctx)
{
	struct bound_rows *rows;
	__u32 key, zero = 0;

	if (bound_key(ctx, &key))
		return XDP_PASS;
	rows = bpf_map_lookup_elem(&bound_stats1, &zero);
	if (rows) {
		rows->row[key & 0xff].packets++;
		rows->row[key & 0xff].bytes += ctx->data_end - ctx->data;
	}
	if (key == 6)
		bpf_tail_call_static(ctx, &bound_jt, 6);
	return XDP_PASS;
}

SEC("xdp")
int bound_handler(struct xdp_md *ctx)
{
	return XDP_PASS;
}

/*
 * Seed 004 ("Tail call") as written: the TCP destination port picks one of
 * two bpf_tail_call sites with constant keys 0 and 1, which clang merges into
 * one call with the key in a register, so both go through the indirect path.
 * Its handlers print with bpf_printk; here the wired one only returns
 * XDP_PASS, so the figure is the dispatch.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 2);
	__uint(key_size, sizeof(int));
	__uint(value_size, sizeof(int));
} prog_array SEC(".maps");

#include <linux/tcp.h>
#include <linux/in.h>

SEC("xdp")
int main_prog(struct xdp_md *ctx)
{
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    struct iphdr *iph;
    struct tcphdr *tcph;

    if (data + sizeof(*eth) > data_end)
        return XDP_ABORTED;

    if (eth->h_proto != bpf_htons(ETH_P_IP))
        return XDP_PASS;

    iph = data + sizeof(*eth);
    if ((void *)iph + sizeof(*iph) > data_end)
        return XDP_ABORTED;

    if (iph->protocol != IPPROTO_TCP)
        return XDP_PASS;

    tcph = (void *)iph + (iph->ihl * 4);
    if ((void *)tcph + sizeof(*tcph) > data_end)
        return XDP_ABORTED;

    int dport = bpf_ntohs(tcph->dest);

    if (dport == 8080) {
        int key = 0;
        bpf_tail_call(ctx, &prog_array, key);
    } else if (dport == 22) {
        int key = 1;
        bpf_tail_call(ctx, &prog_array, key);
    }

    return XDP_PASS;
}

SEC("xdp")
int port8080_prog(struct xdp_md *ctx)
{
	return XDP_PASS;
}

/*
 * A handler's hop (tcd_next): a plain tail call into jt[1], against
 * handler.h's tcd_next, which first tests whether the frame carries tcd
 * trace's hop record (a live frame does not). With a constant key (a direct
 * jump) and with a key known at run time (the indirect call).
 */
#include "tcd/handler.h"

volatile __u32 hop_key = 1;

SEC("xdp")
int hop_static_raw(struct xdp_md *ctx)
{
	bpf_tail_call_static(ctx, &jt, 1);
	return XDP_PASS;
}

SEC("xdp")
int hop_static_tcd(struct xdp_md *ctx)
{
	tcd_next_static(ctx, 1);
	return XDP_PASS;
}

SEC("xdp")
int hop_dyn_raw(struct xdp_md *ctx)
{
	bpf_tail_call(ctx, &jt, hop_key);
	return XDP_PASS;
}

SEC("xdp")
int hop_dyn_tcd(struct xdp_md *ctx)
{
	tcd_next(ctx, hop_key);
	return XDP_PASS;
}

SEC("xdp")
int hop_target(struct xdp_md *ctx)
{
	return XDP_PASS;
}
