/* execsnoop: one event per exec(), with its arguments.
 * The BPF half of examples/tools/execsnoop.py (a Python port of libbpf-tools' execsnoop).
 * Events are variable-size: only the argument bytes in use are sent. */
#include <stddef.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#define TASK_COMM_LEN 16
#define ARG_SIZE 128
#define MAX_ARGS 20
#define ARGS_SIZE (ARG_SIZE * MAX_ARGS)

struct task_struct {
	struct task_struct *real_parent;
	int tgid;
} __attribute__((preserve_access_index));

/* The tracepoints' records: the common fields, the syscall number, then its arguments. */
struct sys_enter_args {
	__u64 common;
	long id;
	unsigned long args[6];
};

struct sys_exit_args {
	__u64 common;
	long id;
	long ret;
};

struct event {
	__u32 pid;
	__u32 ppid;
	__u32 uid;
	__s32 retval;
	__s32 args_count; /* MAX_ARGS + 1: there were more */
	__u32 args_size;  /* bytes of args in use: the NUL-terminated arguments, one after another */
	char comm[TASK_COMM_LEN];
	char args[ARGS_SIZE];
};

const volatile __u32 targ_uid = (__u32)-1; /* only this user (-1: all) */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32); /* process id, between the syscall's entry and exit */
	__type(value, struct event);
} execs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

static const struct event empty_event;

SEC("tracepoint/syscalls/sys_enter_execve")
int on_execve(struct sys_enter_args *ctx)
{
	const char *const *argv = (const char *const *)ctx->args[1];
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	__u32 uid = (__u32)bpf_get_current_uid_gid();
	struct task_struct *task;
	struct event *e;
	const char *arg;
	int len, i;

	if (targ_uid != (__u32)-1 && targ_uid != uid)
		return 0;
	if (bpf_map_update_elem(&execs, &pid, &empty_event, BPF_NOEXIST))
		return 0;
	e = bpf_map_lookup_elem(&execs, &pid);
	if (!e)
		return 0;
	task = (struct task_struct *)bpf_get_current_task();
	e->pid = pid;
	e->uid = uid;
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	len = bpf_probe_read_user_str(e->args, ARG_SIZE, (const char *)ctx->args[0]);
	if (len < 0)
		return 0;
	e->args_size = len;
	e->args_count = 1;
	for (i = 1; i < MAX_ARGS; i++) {
		if (bpf_probe_read_user(&arg, sizeof(arg), &argv[i]) || !arg)
			return 0;
		if (e->args_size > ARGS_SIZE - ARG_SIZE)
			return 0;
		len = bpf_probe_read_user_str(&e->args[e->args_size], ARG_SIZE, arg);
		if (len < 0)
			return 0;
		e->args_count++;
		e->args_size += len;
	}
	if (bpf_probe_read_user(&arg, sizeof(arg), &argv[MAX_ARGS]) == 0 && arg)
		e->args_count++;
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_execve")
int on_execve_exit(struct sys_exit_args *ctx)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	struct event *e = bpf_map_lookup_elem(&execs, &pid);
	__u32 size;

	if (!e)
		return 0;
	e->retval = ctx->ret;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	size = offsetof(struct event, args) + e->args_size;
	if (size <= sizeof(*e))
		bpf_ringbuf_output(&events, e, size, 0);
	bpf_map_delete_elem(&execs, &pid);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
