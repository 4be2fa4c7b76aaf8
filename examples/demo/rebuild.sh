#!/bin/sh
# Rebuilds what `pybpf demo` ships in src/pybpf/data/demo/ from the sources in examples/:
#   flowlib.bpf.o            the BPF library (examples/flowlib/bpf/*.bpf.c, linked by pybpf)
#   app_top.bpf.o            the two applications, unlinked: the demo links them at run time
#   app_errors.bpf.o
#   flowlib_subskel.py       generated: pybpf gen subskeleton ... --lang python
#   app_top_skel.py          generated: pybpf gen skeleton ... --lang python
#   app_errors_skel.py
#   companion.py             the library's companion, copied from examples/flowlib
# Needs clang-16 and pybpf from this tree (.venv).  OUT=dir writes elsewhere (tests compare).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${OUT:-"$root/src/pybpf/data/demo"}
CLANG=${CLANG:-clang-16}
PYBPF=${PYBPF:-"$root/.venv/bin/pybpf"}
multiarch=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Relative paths and a fixed compilation directory: the same bytes wherever this runs.
cd "$root"
cc() {
	"$CLANG" -g -O2 -target bpfel -D__TARGET_ARCH_x86 -I"/usr/include/$multiarch" \
		-Iexamples/flowlib/bpf -fdebug-compilation-dir=. -c "$1" -o "$2"
}
mkdir -p "$out"
cc examples/flowlib/bpf/flowlib.bpf.c "$tmp/flowlib_main.bpf.o"
cc examples/flowlib/bpf/flowlib_hist.bpf.c "$tmp/flowlib_hist.bpf.o"
"$PYBPF" gen object "$out/flowlib.bpf.o" "$tmp/flowlib_main.bpf.o" "$tmp/flowlib_hist.bpf.o"
"$PYBPF" gen subskeleton "$out/flowlib.bpf.o" name flowlib --lang python >"$out/flowlib_subskel.py"
for app in app_top app_errors; do
	cc "examples/demo/$app.bpf.c" "$out/$app.bpf.o"
	"$PYBPF" gen object "$tmp/$app.linked.o" "$out/$app.bpf.o" "$out/flowlib.bpf.o"
	"$PYBPF" gen skeleton "$tmp/$app.linked.o" name "$app" --lang python >"$out/${app}_skel.py"
done
cp examples/flowlib/src/pybpf_example_flowlib/companion.py "$out/companion.py"
echo "rebuilt $out"
