#!/usr/bin/env python3
"""PyTorch side of `npm run bench:pytorch` (scripts/bench-pytorch.mjs runs it; it is never a test dependency).

The same model and protocol as relign's side, for a comparison measured in one run on one machine: GPT-2
blocks (pre-LayerNorm, tanh-approximated GELU, causal multi-head attention, tied LM head, learned positions),
random weights; forward tokens/s; a training step as relign's trainers take it (mean next-token cross-entropy,
backward, global-norm clipping, AdamW with decay on matrices and embeddings only); sampling as relign's
`generate` does it (prefill, then KV-cached decoding of the whole batch, one multinomial draw per row per step
with the token's log-prob, no stop tokens). Each figure is measured with 1 thread and with every core.

Usage: bench-pytorch.py '<protocol JSON>' [THREADS] (see scripts/bench-pytorch.mjs; THREADS defaults to the
cores available). One thread count per process: OpenMP, OpenBLAS and MKL read theirs when they load, so it is
set here before torch is imported. Prints one JSON object; when torch cannot be imported it prints
{"available": false, "reason": ...} and exits 0.
"""
import json
import math
import os
import re
import statistics
import sys
import time

CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
THREADS = int(sys.argv[2]) if len(sys.argv) > 2 else CORES
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(THREADS)

try:
    import torch
    import torch.nn.functional as F
    from torch import nn
except ImportError as err:  # the bench reports it instead of failing
    print(json.dumps({"available": False, "reason": f"cannot import torch with {sys.executable}: {err}"}))
    sys.exit(0)


class Block(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(d, eps=1e-5), nn.LayerNorm(d, eps=1e-5)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.fc, self.out = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(self, x, cache=None, pos=0):
        """x [B, T, D]. `cache`: this layer's preallocated (k, v) [B, H, maxT, hd], written at pos..pos+T."""
        B, T, D = x.shape
        hd = D // self.heads
        q, k, v = (t.view(B, T, self.heads, hd).transpose(1, 2) for t in self.qkv(self.ln1(x)).split(D, 2))
        if cache is not None:
            cache[0][:, :, pos : pos + T] = k
            cache[1][:, :, pos : pos + T] = v
            k, v = cache[0][:, :, : pos + T], cache[1][:, :, : pos + T]
        att = (q @ k.transpose(-2, -1)) / math.sqrt(hd)
        if T > 1:  # causal: query i (at position pos + i) sees keys 0 .. pos + i
            keep = torch.ones(T, pos + T, dtype=torch.bool).tril(pos)
            att = att.masked_fill(~keep, float("-inf"))
        y = (att.softmax(-1) @ v).transpose(1, 2).reshape(B, T, D)
        x = x + self.proj(y)
        return x + self.out(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))


class GPT2(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.wte = nn.Embedding(c["vocab_size"], c["n_embd"])
        self.wpe = nn.Embedding(c["n_positions"], c["n_embd"])
        self.blocks = nn.ModuleList(Block(c["n_embd"], c["n_head"]) for _ in range(c["n_layer"]))
        self.ln_f = nn.LayerNorm(c["n_embd"], eps=1e-5)
        for name, p in self.named_parameters():  # GPT-2's initialisation (normal 0.02, zero biases, unit gains)
            if name.endswith("bias"):
                nn.init.zeros_(p)
            elif "ln" in name:
                nn.init.ones_(p)
            else:
                nn.init.normal_(p, std=0.02)

    def forward(self, ids, caches=None, pos=0):
        x = self.wte(ids) + self.wpe(torch.arange(pos, pos + ids.shape[1]))
        for i, block in enumerate(self.blocks):
            x = block(x, None if caches is None else caches[i], pos)
        return F.linear(self.ln_f(x), self.wte.weight)  # tied LM head


def timed(fn, warmup, iters):
    for _ in range(warmup):
        fn()
    ms = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - t0) * 1000)
    return statistics.median(ms), ms


def bench_config(c, p, gen):
    B, T, P, N = p["batch"], p["seqLen"], p["promptTokens"], p["newTokens"]
    V = c["vocab_size"]
    model = GPT2(c)
    out = {"params": sum(t.numel() for t in model.parameters())}
    ids = torch.randint(V, (B, T), generator=gen)

    with torch.inference_mode():
        ms, _ = timed(lambda: model(ids), p["forward"]["warmup"], p["forward"]["iters"])
    out["forwardTokensPerSec"] = round(B * T / (ms / 1000))

    tr = p["train"]
    params = list(model.parameters())
    opt = torch.optim.AdamW(
        [
            {"params": [t for t in params if t.dim() >= 2], "weight_decay": tr["weightDecay"]},
            {"params": [t for t in params if t.dim() < 2], "weight_decay": 0.0},
        ],
        lr=tr["lr"],
        betas=(tr["beta1"], tr["beta2"]),
        eps=tr["eps"],
    )

    def step():
        x = torch.randint(V, (B, T), generator=gen)
        logits = model(x)
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, V), x[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, tr["maxGradNorm"])
        opt.step()
        return loss.item()

    ms, all_ms = timed(step, tr["warmup"], tr["steps"])
    out["trainStepMs"] = round(ms, 1)
    out["trainTokensPerSec"] = round(B * T / (ms / 1000))
    out["trainStepsMs"] = [round(x, 1) for x in all_ms]

    sp = p["sample"]
    prompts = torch.randint(V, (B, P), generator=gen)
    D, H, L = c["n_embd"], c["n_head"], c["n_layer"]

    @torch.inference_mode()
    def sample():
        caches = [[torch.empty(B, H, P + N, D // H) for _ in range(2)] for _ in range(L)]
        logits = model(prompts, caches, 0)[:, -1]
        tokens, logprobs = [], []
        for t in range(N):
            logp = (logits / sp["temperature"]).log_softmax(-1)
            tok = torch.multinomial(logp.exp(), 1, generator=gen)
            tokens.append(tok)
            logprobs.append(logp.gather(1, tok))
            if t + 1 < N:
                logits = model(tok, caches, P + t)[:, -1]
        return torch.cat(tokens, 1), torch.cat(logprobs, 1)

    ms, all_ms = timed(sample, sp["warmup"], sp["runs"])
    out["sampleMs"] = round(ms, 1)
    out["sampleTokensPerSec"] = round(B * N / (ms / 1000))
    out["sampleRunsMs"] = [round(x, 1) for x in all_ms]
    return out


def blas_library():
    """The BLAS shared library this process loaded (PyTorch's CPU matmuls), and a warning for the slow reference one."""
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if re.search(r"lib(open)?blas|libmkl", line)}
    except OSError:
        return {"library": None}
    libs = sorted({os.path.realpath(x) for x in paths})
    out = {"library": libs}
    if libs and all("openblas" not in x and "mkl" not in x and "blis" not in x for x in libs):
        out["warning"] = (
            "reference (netlib) BLAS: PyTorch's matmuls run unoptimized, so it is far slower than usual; "
            "on Debian `apt-get install libopenblas0-pthread` switches libblas.so.3 to OpenBLAS"
        )
    return out


def main():
    p = json.loads(sys.argv[1])
    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    result = {
        "available": True,
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "cores": CORES,
        "threads": torch.get_num_threads(),
        "build": dict(re.findall(r"\b(BLAS_INFO|USE_MKLDNN|USE_OPENMP)=(\w+)", torch.__config__.show())),
        "configs": {},
    }
    for entry in p["configs"]:
        print(f"bench:pytorch: torch, {THREADS} thread(s), {entry['name']}", file=sys.stderr)
        result["configs"][entry["name"]] = bench_config(entry["config"], p, gen)
    result["blas"] = blas_library()  # after the first matmul: the library is loaded by then
    print(json.dumps(result))


if __name__ == "__main__":
    main()
