#!/usr/bin/env bash
# sampling_bench.py on a lent GPU machine (one H100): what ran for the GPU figures in
# benchmarks/README.md. Run from the repository root, there, with .device/ carried:
#
#   .device/llama_cpp_python-0.3.36/   the llama-cpp-python sdist, stripped of llama.cpp's
#                                      models, docs, tests, examples and unused backends
#   .device/whl/                       diskcache and gguf==0.19.0 wheels (py3-none-any)
#
#   bash benchmarks/gpu_sampling.sh [WAIT_S]
#
# The first call starts the whole job in its own process session (state in /tmp/gs), so it
# outlives the call while the machine stays warm: CUDA build of llama.cpp (sm_90) alongside
# random-weight Qwen2.5-1.5B- and 7B-shaped checkpoints made with transformers on the GPU,
# converted to f16 GGUF by swe_reasoner.quantize.convert; then Q4_K_M by
# swe_reasoner.quantize.quant; then sampling_bench.py on each. Every call (the first too)
# waits up to WAIT_S seconds (default 540), copies the logs to $OUT and prints where the job
# is; call again at once to keep waiting. A fresh machine starts over; on a warm one, remove
# /tmp/gs/started and /tmp/gs/done to run the job again (the build is kept).
# SHAPES (default "1.5b 7b"), NS (default 1,2,4,8,16) and REPEAT (default 3) tune the job.
set -u
S=/tmp/gs

job() {
    set -x
    export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
    local shapes=${SHAPES:-1.5b 7b} ns=${NS:-1,2,4,8,16} repeat=${REPEAT:-3}
    nvidia-smi; nproc; free -g; df -h /tmp; nvcc --version | tail -1; python3 --version
    # independent of the working tree from here on (a later call sends it again)
    cd $S  # not the repository root, whose swe_reasoner/ (no subpackages there) would come first on sys.path
    [ -e $S/src ] || cp -r "$ROOT/.device/llama_cpp_python-0.3.36" $S/src
    rm -rf $S/ns; mkdir -p $S/ns/swe_reasoner $S/site
    cp "$ROOT/swe_reasoner/__init__.py" $S/ns/swe_reasoner/
    for p in agent quantize; do cp -r "$ROOT/$p" $S/ns/swe_reasoner/$p; done
    cp "$ROOT/benchmarks/sampling_bench.py" "$ROOT/tests/quantize_fixtures.py" $S/
    python3 -m pip install -q --no-index --no-deps --no-compile --target $S/site "$ROOT"/.device/whl/*.whl || return 1
    export PYTHONPATH=$S/src:$S/ns:$S/site

    # llama.cpp with CUDA: the sdist's own CMakeLists, installing its libraries into
    # $S/src/llama_cpp/lib, where the llama_cpp package looks for them
    (
        set -e
        t0=$(date +%s)
        [ -e $S/src/llama_cpp/lib/libllama.so ] && { echo "already built"; exit 0; }
        cmake -S $S/src -B $S/build -G Ninja -DCMAKE_BUILD_TYPE=Release -DSKBUILD_PLATLIB_DIR=$S/plat -DCMAKE_INSTALL_PREFIX=$S/prefix \
            -DGGML_CUDA=on -DCMAKE_CUDA_ARCHITECTURES=90 -DGGML_CUDA_NCCL=OFF -DLLAVA_BUILD=OFF \
            -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF
        cmake --build $S/build -j "$(nproc)"
        cmake --install $S/build
        echo "build took $(( $(date +%s) - t0 )) s"
        python3 -c 'import llama_cpp; print("llama_cpp", llama_cpp.__version__, "GPU offload", llama_cpp.llama_supports_gpu_offload())'
    ) > $S/build.log 2>&1 &
    local build=$!

    # random-weight checkpoints, each converted to f16 GGUF at once (the safetensors then go)
    python3 - $shapes > $S/models.log 2>&1 <<'EOF' &
import os, shutil, sys, time
import torch
S = "/tmp/gs"
sys.path.insert(0, S)
from quantize_fixtures import train_tokenizer
from transformers import Qwen2Config, Qwen2ForCausalLM
from swe_reasoner.quantize.convert import convert

# Qwen2.5-1.5B and -7B (their config.json): q/k/v biases, 151936 / 152064 token embeddings
SHAPES = {
    "1.5b": dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12,
                 num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True),
    "7b": dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
               num_key_value_heads=4, vocab_size=152064, tie_word_embeddings=False),
}
tok = train_tokenizer("qwen2", vocab_size=8192)  # BPE on stdlib files; the rows past it are padding
print("tokenizer", len(tok), "tokens", flush=True)
device = "cuda" if torch.cuda.is_available() else "cpu"
for name in sys.argv[1:]:
    t0 = time.time()
    cfg = Qwen2Config(**SHAPES[name], max_position_embeddings=32768, rms_norm_eps=1e-6, rope_theta=1000000.0,
                      initializer_range=0.02, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    torch.set_default_dtype(torch.bfloat16)
    with torch.device(device):
        model = Qwen2ForCausalLM(cfg)
    n = sum(p.numel() for p in model.parameters())
    hf = f"{S}/hf-{name}"
    model.save_pretrained(hf)
    tok.save_pretrained(hf)
    del model
    torch.cuda.empty_cache()
    t1 = time.time()
    r = convert(hf, f"{S}/{name}-f16.gguf", "f16")
    shutil.rmtree(hf)
    print(f"{name}: {n / 1e9:.2f}B parameters, made and saved in {t1 - t0:.0f} s; {r.n_tensors} tensors, "
          f"{r.nbytes / 2**30:.2f} GiB f16 GGUF in {time.time() - t1:.0f} s", flush=True)
EOF
    local models=$!
    wait $build; echo "build rc=$?"
    wait $models; echo "models rc=$?"
    tail -3 $S/build.log

    for m in $shapes; do
        python3 -c "
import llama_cpp, sys
from swe_reasoner.quantize.quant import quant
r = quant('$S/$m-f16.gguf', '$S/$m-q4_k_m.gguf', 'Q4_K_M', nthread=$(nproc))
print(r)" && rm -f $S/$m-f16.gguf
        ls -la $S/$m-q4_k_m.gguf || continue
        python3 $S/sampling_bench.py --model $S/$m-q4_k_m.gguf --n "$ns" --prompt-tokens 1500 --new-tokens 128 \
            --n-gpu-layers -1 --repeat "$repeat" 2>&1 | tee $S/bench-$m.md
    done
    nvidia-smi
}

if [ "${1:-}" = --job ]; then
    job
    touch $S/done
    exit
fi

ROOT=$(pwd)
OUT=${OUT:-$S/out}
WAIT=${1:-540}
mkdir -p $S "$OUT"
if [ ! -e $S/started ]; then
    touch $S/started
    ROOT=$ROOT setsid bash "$ROOT/benchmarks/gpu_sampling.sh" --job > $S/job.log 2>&1 < /dev/null &
fi
t0=$(date +%s)
while [ ! -e $S/done ] && [ $(( $(date +%s) - t0 )) -lt "$WAIT" ]; do sleep 5; done
cp $S/job.log $S/build.log $S/models.log $S/bench-*.md "$OUT"/ 2>/dev/null
echo "== $( [ -e $S/done ] && echo done || echo running ) after $(( $(date +%s) - $(stat -c %Y $S/started) )) s"
echo "== build: $(grep -c '^\[' $S/build.log 2>/dev/null) ninja lines"; tail -4 $S/build.log 2>/dev/null
echo "== models"; tail -5 $S/models.log 2>/dev/null
echo "== job"; grep -v '^+' $S/job.log | tail -40
for f in $S/bench-*.md; do [ -e "$f" ] && { echo "== $f"; cat "$f"; }; done
exit 0
