/* flowlib, part 1: the raw tracepoint programs and the settings the companion writes. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "flowlib.h"

/* Set before load (frozen in .rodata afterwards): which process and syscall to trace. */
const volatile __u32 flowlib_target_tgid = 0;   /* 0: every process */
const volatile __s32 flowlib_only_syscall = -1; /* -1: every syscall */

/* Writable while running (.data and, being zero, .bss): the histogram unit, a pause switch. */
__u32 flowlib_unit_shift = 10; /* bucket unit 2^10 ns, about a microsecond */
__u32 flowlib_paused = 0;

struct flowlib_start {
	__u64 ts;
	__u32 nr;
	__u32 pad;
};

/* Entry timestamps by thread id; its size is a companion setting too (max_entries). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct flowlib_start);
} flowlib_starts SEC(".maps");

static __always_inline int flowlib_traced(__u64 pid_tgid)
{
	if (flowlib_paused)
		return 0;
	return !flowlib_target_tgid || (__u32)(pid_tgid >> 32) == flowlib_target_tgid;
}

SEC("raw_tp/sys_enter")
int flowlib_sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pid_tgid;
	long nr = (long)ctx->args[1];
	struct flowlib_start start = {};

	if (!flowlib_traced(pid_tgid))
		return 0;
	if (flowlib_only_syscall >= 0 && nr != flowlib_only_syscall)
		return 0;
	start.ts = bpf_ktime_get_ns();
	start.nr = (__u32)nr;
	if (bpf_map_update_elem(&flowlib_starts, &tid, &start, BPF_ANY))
		__sync_fetch_and_add(&flowlib_summary.missed, 1);
	return 0;
}

SEC("raw_tp/sys_exit")
int flowlib_sys_exit(struct bpf_raw_tracepoint_args *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pid_tgid;
	struct flowlib_start *start;
	__u64 delta;
	__u32 nr;

	if (!flowlib_traced(pid_tgid))
		return 0;
	start = bpf_map_lookup_elem(&flowlib_starts, &tid);
	if (!start)
		return 0;
	delta = bpf_ktime_get_ns() - start->ts;
	nr = start->nr;
	bpf_map_delete_elem(&flowlib_starts, &tid);
	flowlib_record(nr, delta);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
