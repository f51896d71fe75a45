#!/usr/bin/env bash
# Regenerates crates/vram-residency/tests/data/gguf/tiny.gguf with the `gguf`
# package from PyPI (llama.cpp's own gguf-py writer), so the GGUF reader is
# tested against what that writer produces and not only against our own
# reading of the format. Made with gguf 0.19.0; the Rust tests need no
# Python, they read the committed file.
#
# The file: GGUF v3, alignment 32, string/array/scalar metadata (a small
# vocabulary included), and three tensors of different types (F32, F16, Q8_0)
# whose sizes are not multiples of the alignment, so the padding between
# them is exercised.
set -euo pipefail

GGUF_VERSION=0.19.0
out="$(cd "$(dirname "$0")/.." && pwd)/crates/vram-residency/tests/data/gguf"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet "gguf==$GGUF_VERSION"
mkdir -p "$out"
"$work/venv/bin/python" - "$out/tiny.gguf" <<'PY'
import sys
import numpy as np
import gguf

w = gguf.GGUFWriter(sys.argv[1], arch="llama")
w.add_name("sealtrail-fixture")
w.add_context_length(64)
w.add_token_list(["<s>", "</s>", "hello", "world"])
w.add_token_scores([0.0, 0.0, -1.5, -2.5])
w.add_array("sealtrail.nested", [[1, 2], [3]])
w.add_bool("sealtrail.flag", True)
w.add_tensor("embed.weight", np.arange(12, dtype=np.float32).reshape(3, 4))
w.add_tensor("norm.weight", np.arange(5, dtype=np.float16))
q8 = np.arange(34 * 2, dtype=np.uint8).reshape(2, 34)  # two Q8_0 blocks: 2 rows of 32
w.add_tensor("out.weight", q8, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()
PY
echo "wrote $out/tiny.gguf with gguf $GGUF_VERSION"
