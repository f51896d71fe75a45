#!/usr/bin/env bash
# Regenerates the OpenSSF model-signing fixtures that the vram-residency
# tests read (crates/vram-residency/tests/data/model-signing/), with the real
# `model_signing` tool from PyPI, so the tests check sealtrail against what
# that tool writes rather than against our own reading of its format.
#
# Made with model-signing 1.1.1 (and pyopenssl, which its CLI imports). The
# Rust tests need none of this: they read the committed files.
#
# What it writes:
#   model/                 a tiny model directory: model.safetensors, config.json
#   model.sig              `model_signing sign key` over model/ (a Sigstore bundle)
#   signer.pub.pem         the P-256 public key that verifies it
#   other.pub.pem          an unrelated P-256 public key (the "wrong key" case)
# The private keys live only in a temporary directory and are discarded.
set -euo pipefail

MODEL_SIGNING_VERSION=1.1.1
out="$(cd "$(dirname "$0")/.." && pwd)/crates/vram-residency/tests/data/model-signing"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet "model-signing==$MODEL_SIGNING_VERSION" pyopenssl

rm -rf "$out"
mkdir -p "$out/model"
"$work/venv/bin/python" - "$out" "$work" <<'PY'
import json, pathlib, struct, sys
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

out, work = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])

# A safetensors file with two small tensors, header padded to 8 bytes.
tensors = {"embed": ("F32", [2, 2], bytes(range(16))), "norm": ("U8", [4], b"wxyz")}
header, data = {}, b""
for name, (dtype, shape, raw) in tensors.items():
    header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
    data += raw
text = json.dumps(header, separators=(",", ":")).encode()
text += b" " * (-len(text) % 8)
(out / "model" / "model.safetensors").write_bytes(struct.pack("<Q", len(text)) + text + data)
(out / "model" / "config.json").write_text('{"model_type": "sealtrail-fixture"}\n')

def keypair(name):
    key = ec.generate_private_key(ec.SECP256R1())
    (work / f"{name}.priv.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    (out / f"{name}.pub.pem").write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))

keypair("signer")
keypair("other")
PY

"$work/venv/bin/model_signing" sign key \
    --private_key "$work/signer.priv.pem" --signature "$out/model.sig" "$out/model"
# The tool's own verifier must accept what it wrote.
"$work/venv/bin/model_signing" verify key \
    --public_key "$out/signer.pub.pem" --signature "$out/model.sig" "$out/model"
echo "fixtures written to $out with model-signing $MODEL_SIGNING_VERSION"
