/* The example object shipped inside pybpf (src/pybpf/data/example.bpf.o), shown by
 * `make demo` until the full demo lands: counts getpid() calls per process. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} calls_by_pid SEC(".maps");

const volatile __u32 target_pid = 0;
__u64 total_calls = 0;
__u64 ignored_calls;

SEC("tp/syscalls/sys_enter_getpid")
int count_getpid(void *ctx)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	__u64 one = 1, *count;

	if (target_pid && pid != target_pid) {
		__sync_fetch_and_add(&ignored_calls, 1);
		return 0;
	}
	__sync_fetch_and_add(&total_calls, 1);
	count = bpf_map_lookup_elem(&calls_by_pid, &pid);
	if (count)
		__sync_fetch_and_add(count, 1);
	else
		bpf_map_update_elem(&calls_by_pid, &pid, &one, BPF_NOEXIST);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
