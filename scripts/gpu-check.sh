#!/usr/bin/env bash
# Checks the CUDA backend of vram-residency on a machine with an NVIDIA GPU:
# builds sealtrail with it (release), runs the CUDA tests with
# SEALTRAIL_REQUIRE_CUDA=1 (seal and verify, device roots against the host's
# chunk_root around chunk boundaries, a byte changed by a device memset
# caught, a stale handle refused, residency checks), the GPU benchmark
# (on-device digest throughput against the device's memory bandwidth) and
# `sealtrail demo --backend cuda`, and prints a summary. Every step runs
# under `timeout`: together at most 7.5 minutes, 3.2 of them running. The
# `--build` mode alone has no time limits: it spends no GPU time, and on a
# small machine the builds take longer than the limits allow.
#
#   scripts/gpu-check.sh             build with cargo, then run
#   scripts/gpu-check.sh --build     only build the binaries into
#                                    target/gpu-check/ (no GPU needed), for a
#                                    GPU machine without cargo or network
#   scripts/gpu-check.sh --prebuilt  run the binaries in target/gpu-check/
#                                    (bring that directory along: it is
#                                    under the ignored target/, about 7 MB)
#
# SEALTRAIL_CUDA_DEVICE picks the device (default 0); SEALTRAIL_GPU_BENCH_GIB
# the benchmark's shard size (default 4). Exit 0 when every step passed.
set -euo pipefail

cd "$(dirname "$0")/.."
bin=target/gpu-check
mode=${1:-all}

say() { printf '== %s\n' "$*"; }

# The path of the executable cargo reports for one target (`--no-run`).
executable_of() {
    sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1
}

# Runs a build step under a time limit of $1 seconds, except in `--build`
# mode.
bounded() {
    local limit=$1
    shift
    if [[ $mode == --build ]]; then
        "$@"
    else
        timeout -k 10 "$limit" "$@"
    fi
}

build() {
    say "build (release)"
    if ! command -v cargo >/dev/null; then
        echo "cargo is not installed: build elsewhere with $0 --build, bring" >&2
        echo "target/gpu-check/ here, and run $0 --prebuilt" >&2
        return 1
    fi
    # A machine without network can still build from cargo's local cache.
    if ! bounded 20 cargo fetch --locked >/dev/null 2>&1; then
        echo "cannot reach the registry; building offline from the local cache"
        export CARGO_NET_OFFLINE=true
    fi
    mkdir -p "$bin"
    local cli tests bench
    cli=$(bounded 150 cargo build --release --locked -p sealtrail \
        --message-format=json | executable_of)
    tests=$(bounded 45 cargo test --release --locked -p vram-residency --test cuda \
        --no-run --message-format=json | executable_of)
    bench=$(bounded 45 cargo bench --locked -p vram-residency --bench gpu_digest \
        --no-run --message-format=json | executable_of)
    if [[ -z $cli || -z $tests || -z $bench ]]; then
        echo "could not find the built sealtrail, test or benchmark binary" >&2
        return 1
    fi
    cp "$tests" "$bin/cuda-tests"
    cp "$bench" "$bin/gpu-bench"
    cp "$cli" "$bin/sealtrail"
    if command -v strip >/dev/null; then
        strip "$bin/cuda-tests" "$bin/gpu-bench" "$bin/sealtrail"
    fi
    ls -l "$bin"
}

# The backend loads libcuda and libnvrtc at run time by their usual names.
# Where NVRTC is installed only under a versioned name or outside the
# loader's path (a CUDA toolkit in /usr/local/cuda, the nvidia-cuda-nvrtc
# Python wheel), put it on LD_LIBRARY_PATH under its plain name.
find_libraries() {
    local dir
    for dir in /usr/local/nvidia/lib64 /usr/lib/wsl/lib; do
        [[ -d $dir ]] && LD_LIBRARY_PATH="$dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    done
    # Not `grep -q`: under pipefail, ldconfig killed by SIGPIPE when grep
    # stops reading early would read as "not found".
    if ldconfig -p 2>/dev/null | grep 'libnvrtc\.so ' >/dev/null; then
        export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-}"
        return 0
    fi
    local found
    found=$(find /usr/local/cuda*/ /usr/local/cuda*/targets/*/ /usr/lib/x86_64-linux-gnu \
        /usr/local/lib/python3*/ /usr/lib/python3*/ "$HOME/.local/lib/" /opt \
        -maxdepth 9 -name 'libnvrtc.so*' ! -name '*builtins*' 2>/dev/null | sort -V | tail -n 1 || true)
    if [[ -n $found ]]; then
        local links
        links=$(mktemp -d)
        ln -s "$found" "$links/libnvrtc.so"
        LD_LIBRARY_PATH="$links:$(dirname "$found")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
        echo "NVRTC: $found"
    else
        echo "NVRTC: not found; the backend will say so"
    fi
    export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-}"
}

run() {
    export SEALTRAIL_REQUIRE_CUDA=1
    local results=() failed=0 log
    log=$(mktemp -d)
    find_libraries
    say "device"
    if command -v nvidia-smi >/dev/null; then
        timeout 10 nvidia-smi --query-gpu=index,name,uuid,driver_version,memory.total,clocks.max.memory \
            --format=csv || true
    else
        echo "nvidia-smi: not installed"
    fi

    step() {
        local name=$1 limit=$2
        shift 2
        say "$name"
        local started=$SECONDS
        # -k: a process stuck in a driver call may ignore the first signal.
        if timeout -k 5 "$limit" "$@" 2>&1 | tee "$log/$name.log"; then
            results+=("PASS  $name ($((SECONDS - started)) s)")
        else
            results+=("FAIL  $name ($((SECONDS - started)) s)")
            failed=1
        fi
    }
    set +e
    step cuda-tests 60 "$bin/cuda-tests" --test-threads=1
    step gpu-bench 90 "$bin/gpu-bench"
    step demo-on-gpu 30 "$bin/sealtrail" demo --backend cuda --device "${SEALTRAIL_CUDA_DEVICE:-0}"
    set -e

    say "summary"
    printf '%s\n' "${results[@]}"
    grep -h '^device: \|^gpu-bench: \|digest at ' "$log/gpu-bench.log" 2>/dev/null || true
    grep -h '^test result' "$log/cuda-tests.log" 2>/dev/null || true
    if ((failed)); then
        echo "gpu-check: FAILED"
        return 1
    fi
    echo "gpu-check: all steps passed"
}

case $mode in
# Not `build && run`: inside a function called from an && list, `set -e`
# is off, and a failed build would go on to run stale binaries.
all)
    build
    run
    ;;
--build) build ;;
--prebuilt) run ;;
*)
    echo "usage: $0 [--build | --prebuilt]" >&2
    exit 2
    ;;
esac
