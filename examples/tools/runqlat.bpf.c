/* runqlat: how long runnable tasks wait for a CPU, as log2 histograms.
 * The BPF half of examples/tools/runqlat.py (a Python port of libbpf-tools' runqlat). */
#include <stdbool.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define TASK_RUNNING 0
#define MAX_SLOTS 26
#define TASK_COMM_LEN 16

/* Only the fields read here; CO-RE finds them in the running kernel's task_struct. */
struct task_struct {
	int pid;
	int tgid;
	unsigned int __state;
	char comm[TASK_COMM_LEN];
} __attribute__((preserve_access_index));

struct hist {
	__u32 slots[MAX_SLOTS];
	char comm[TASK_COMM_LEN];
};

const volatile bool targ_per_process = false; /* one histogram per process, else one */
const volatile bool targ_ms = false;          /* milliseconds, else microseconds */
const volatile __u32 targ_tgid = 0;           /* only this process (0: all) */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);   /* thread id */
	__type(value, __u64); /* when it became runnable */
} start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32); /* process id, or 0 for the one histogram */
	__type(value, struct hist);
} hists SEC(".maps");

static const struct hist empty_hist;

static __always_inline __u32 log2_u32(__u32 v)
{
	__u32 r = (v > 0xFFFF) << 4, s;

	v >>= r;
	s = (v > 0xFF) << 3;
	v >>= s;
	r |= s;
	s = (v > 0xF) << 2;
	v >>= s;
	r |= s;
	s = (v > 0x3) << 1;
	v >>= s;
	r |= s;
	return r | (v >> 1);
}

static __always_inline __u32 log2_u64(__u64 v)
{
	__u32 high = v >> 32;

	return high ? log2_u32(high) + 32 : log2_u32(v);
}

static __always_inline int runnable(struct task_struct *task)
{
	__u32 tid = task->pid;
	__u64 now;

	if (!tid || (targ_tgid && targ_tgid != (__u32)task->tgid))
		return 0;
	now = bpf_ktime_get_ns();
	bpf_map_update_elem(&start, &tid, &now, BPF_ANY);
	return 0;
}

SEC("tp_btf/sched_wakeup")
int on_wakeup(__u64 *ctx)
{
	return runnable((struct task_struct *)ctx[0]);
}

SEC("tp_btf/sched_wakeup_new")
int on_wakeup_new(__u64 *ctx)
{
	return runnable((struct task_struct *)ctx[0]);
}

SEC("tp_btf/sched_switch")
int on_switch(__u64 *ctx)
{
	struct task_struct *prev = (struct task_struct *)ctx[1];
	struct task_struct *next = (struct task_struct *)ctx[2];
	__u32 tid = next->pid, key, slot;
	struct hist *hist;
	__u64 *since;
	__s64 waited;

	if (prev->__state == TASK_RUNNING)
		runnable(prev);
	since = bpf_map_lookup_elem(&start, &tid);
	if (!since)
		return 0;
	waited = bpf_ktime_get_ns() - *since;
	bpf_map_delete_elem(&start, &tid);
	if (waited < 0)
		return 0;
	key = targ_per_process ? next->tgid : 0;
	hist = bpf_map_lookup_elem(&hists, &key);
	if (!hist) {
		bpf_map_update_elem(&hists, &key, &empty_hist, BPF_NOEXIST);
		hist = bpf_map_lookup_elem(&hists, &key);
		if (!hist)
			return 0;
		if (targ_per_process)
			bpf_probe_read_kernel_str(hist->comm, sizeof(hist->comm), next->comm);
	}
	waited /= targ_ms ? 1000000 : 1000;
	slot = log2_u64(waited);
	if (slot >= MAX_SLOTS)
		slot = MAX_SLOTS - 1;
	__sync_fetch_and_add(&hist->slots[slot], 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
