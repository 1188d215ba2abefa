"""SFT throughput benchmark; prints exactly one JSON line on stdout.

CPU mode (default): the same ~64 SFT examples (MedQA test questions with the gold answer and a
synthetic reasoning of varied length) trained with and without sequence packing through the
SFT recipe (``run_recipe``, single process, no Ray, packaged SmolLM2-135M). Reports padding fraction and tokens/s
for both; the target is padding <= 5% with packing.

GPU mode (``--gpu``): the recipe on a random-initialised Llama in the 8B shape (bf16
weights, bf16 fused AdamW states, seq 4096, gradient checkpointing) on one GPU, full fine-tune
or ``--method lora`` (r = ``--lora-r``), reporting tokens/s and MFU. Shape flags (``--layers``
etc.) shrink it for a smoke run; without a GPU the recipe falls back to the CPU. An arm that
runs out of memory still prints its JSON line, with ``status: "oom"``.

FLOPs per token (N = parameters that take part in matmuls: all weights except the input
embedding, which is a lookup; the untied lm_head counts; LoRA adapters count):

* ``mfu``: 6 N / token, the usual convention (also for LoRA, for comparability);
* ``mfu_with_attention``: 6 N + 12 L d seq (PaLM appendix B: QK^T and AV forward and
  backward, no discount for the causal or packed block-diagonal mask);
* ``mfu_model_flops``: what the method really computes: 6 N for full, and for LoRA
  4 N_base + 6 N_lora (forward 2 N and input gradients 2 N through the frozen weights, no
  weight gradients for them);
* ``hfu``: model FLOPs + attention + the recomputed forward of gradient checkpointing
  (2 N + 4 L d seq).

Each is divided by ``--peak-tflops`` (default: 989 TFLOP/s dense bf16 for H100 SXM and H200)
and, as ``*_vs_ceiling``, by ``--ceiling-tflops`` (a measured bf16 matmul rate) when given.

    python benchmarks/sft_bench.py                      # CPU packing comparison
    python benchmarks/sft_bench.py --gpu                # 8B-shaped Llama on one GPU, full fine-tune
    python benchmarks/sft_bench.py --gpu --method lora  # the same with LoRA r=16
    python benchmarks/sft_bench.py --gpu --layers 2 --hidden 256 --heads 4 --kv-heads 2 \
        --intermediate 512 --vocab 2048 --seq 512 --steps 3   # CPU smoke of the GPU path
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0}  # dense bf16, SXM parts
_FILLER = ("the presentation", "the history", "the examination", "the laboratory values", "the imaging",
           "the mechanism", "the first-line management", "the differential diagnosis", "the risk factors")


def synthetic_rows(n: int, seed: int) -> list[dict]:
    """MedQA test questions with the gold answer and a reasoning of 20..400 words."""
    import numpy as np

    rng = np.random.default_rng(seed)
    rows = []
    with open(REPO / "medreason_dist" / "data" / "eval" / "medqa_test.jsonl") as f:
        for line in f:
            item = json.loads(line)
            if len(rows) == n:
                break
            words = int(rng.choice([rng.integers(20, 80), rng.integers(80, 200), rng.integers(200, 400)]))
            options = item["options"]
            sentences, count, k = [], 0, 0
            while count < words:
                letter = sorted(options)[k % len(options)]
                s = (f"Considering {_FILLER[k % len(_FILLER)]}, option {letter} ({options[letter]}) "
                     f"{'fits' if letter == item['answer_idx'] else 'does not fit'} this case.")
                sentences.append(s)
                count += len(s.split())
                k += 1
            rows.append({"question": item["question"], "options": options, "answer_text": item["answer"],
                         "answer_idx": item["answer_idx"], "reasoning": " ".join(sentences)})
    return rows


def _median_after_warmup(history: list[dict], key: str, warmup: int = 1) -> float:
    values = [h[key] for h in history[warmup:]] or [h[key] for h in history]
    return statistics.median(values)


def cpu_bench(args) -> dict:
    import torch

    from medreason_dist.models import prepare_smollm2
    from medreason_dist.train.data import SftDataset, load_tokenizer
    from medreason_dist.train.recipe import run_recipe
    from medreason_dist.train.settings import RecipeConfig, SftConfig

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    model_dir = str(prepare_smollm2(args.model_cache))
    tokenizer = load_tokenizer(model_dir)
    rows = synthetic_rows(args.rows, args.seed)
    packed = SftDataset(rows, tokenizer, max_seq_len=args.seq, packing=True, pack_window=len(rows))
    unpacked = SftDataset(rows, tokenizer, max_seq_len=args.seq, packing=False)
    mean_len = unpacked.real_tokens / max(1, len(unpacked))
    # Same token budget per micro batch: `packed_batch` bins vs as many examples as fill them.
    unpacked_batch = max(1, round(args.packed_batch * args.seq / mean_len))
    result = {
        "benchmark": "sft_packing_cpu", "model": "smollm2-135m-instruct", "rows": len(rows),
        "examples": packed.n_examples, "rejects": packed.rejects, "max_seq_len": args.seq,
        "example_tokens_mean": round(mean_len, 1), "steps_measured": args.steps, "threads": torch.get_num_threads(),
    }
    for name, data, batch in (("packed", packed, args.packed_batch), ("unpacked", unpacked, unpacked_batch)):
        cfg = SftConfig(method=args.method, max_seq_len=args.seq, packing=data.packing, micro_batch_size=batch,
                        grad_accum=1, max_steps=args.steps, lr=1e-5, warmup_ratio=0.0, seed=args.seed,
                        checkpoint_every_steps=10_000)
        started = time.monotonic()
        out = run_recipe(RecipeConfig(sft=cfg, model={"path": model_dir},
                                      data={"kind": "inline", "sequences": data.sequences}))
        result[name] = {
            "sequences": len(data), "micro_batch_size": batch,
            "padding_fraction_epoch": round(data.padding_fraction(batch), 4),
            "padding_fraction_measured": round(out["padding_fraction"], 4),
            "tokens_per_s": round(_median_after_warmup(out["history"], "tokens_per_s"), 1),
            "real_tokens_per_s": round(_median_after_warmup(out["history"], "real_tokens_per_s"), 1),
            "final_loss": round(out["history"][-1]["loss"], 4), "wall_s": round(time.monotonic() - started, 1),
        }
    result["padding_target_met"] = result["packed"]["padding_fraction_epoch"] <= 0.05
    result["real_tokens_speedup"] = round(
        result["packed"]["real_tokens_per_s"] / max(1e-9, result["unpacked"]["real_tokens_per_s"]), 3)
    return result


def llama_shape(args) -> dict:
    return {
        "model_type": "llama", "hidden_size": args.hidden, "num_hidden_layers": args.layers,
        "num_attention_heads": args.heads, "num_key_value_heads": args.kv_heads,
        "intermediate_size": args.intermediate, "vocab_size": args.vocab, "max_position_embeddings": args.seq,
        "rope_theta": 500000.0, "tie_word_embeddings": False, "rms_norm_eps": 1e-5,
    }


def random_packed_sequences(n: int, seq: int, vocab: int, seed: int) -> list[dict]:
    """Full-length packed sequences of random tokens made of 4..8 examples each."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        cuts = np.sort(rng.choice(np.arange(64, seq - 64), size=int(rng.integers(3, 8)), replace=False))
        lengths = np.diff(np.concatenate([[0], cuts, [seq]]))
        ids = rng.integers(0, vocab, size=seq).tolist()
        out.append({"input_ids": ids, "labels": ids, "position_ids": [p for n_ in lengths for p in range(n_)],
                    "n_examples": len(lengths)})
    return out


def flop_accounting(args, n_params: int, n_trainable: int, method: str, grad_ckpt: bool) -> dict:
    """FLOPs per trained token under the stated conventions (see the module docstring)."""
    n_base = n_params - n_trainable if method == "lora" else n_params  # frozen base (LoRA) or all
    n_lora = n_trainable if method == "lora" else 0
    n_matmul = n_base - args.vocab * args.hidden  # untied: the input embedding is a lookup, lm_head a matmul
    attn = 12 * args.layers * args.hidden * args.seq  # PaLM: QK^T and AV, fwd + bwd, no causal/packing discount
    model = 6 * (n_matmul + n_lora) if method == "full" else 4 * n_matmul + 6 * n_lora  # LoRA: no frozen dW
    recompute = (2 * (n_matmul + n_lora) + attn // 3) if grad_ckpt else 0  # one extra forward per layer
    return {
        "n_params_total": n_params, "n_params_matmul": n_matmul + n_lora, "n_trainable": n_trainable,
        "flops_per_token_6n": 6 * (n_matmul + n_lora), "flops_per_token_attention": attn,
        "flops_per_token_model": model, "flops_per_token_hardware": model + attn + recompute,
    }


def gpu_bench(args) -> dict:
    import torch

    from medreason_dist.train.recipe import run_recipe
    from medreason_dist.train.settings import RecipeConfig, SftConfig

    on_gpu = torch.cuda.is_available()
    device_name = torch.cuda.get_device_name(0) if on_gpu else "cpu"
    peak = args.peak_tflops
    if peak is None:
        peak = next((v for k, v in PEAK_BF16_TFLOPS.items() if k in device_name), None)
    result = {
        "benchmark": "sft_loop_gpu", "arm": args.arm or args.method, "method": args.method, "device": device_name,
        "seq_len": args.seq, "layers": args.layers, "hidden": args.hidden, "vocab": args.vocab,
        "micro_batch_size": args.micro_batch, "gradient_checkpointing": not args.no_grad_ckpt,
        "param_dtype": "bfloat16", "optimizer": "AdamW fused" if on_gpu else "AdamW",
        "attn_implementation": args.attn, "steps": args.steps, "peak_tflops": peak,
        "ceiling_tflops": args.ceiling_tflops, "torch": torch.__version__,
    }
    if args.method == "lora":
        result["lora_r"] = args.lora_r
    cfg = SftConfig(method=args.method, lora={"r": args.lora_r, "alpha": 2 * args.lora_r},
                    param_dtype="bfloat16", bf16="auto" if on_gpu else "off",
                    gradient_checkpointing=not args.no_grad_ckpt, max_seq_len=args.seq, packing=True,
                    micro_batch_size=args.micro_batch, grad_accum=1, max_steps=args.steps, lr=1e-5,
                    warmup_ratio=0.0, use_gpu=True, checkpoint_every_steps=10_000, seed=args.seed,
                    attn_implementation=args.attn)
    sequences = random_packed_sequences(args.steps * args.micro_batch, args.seq, args.vocab, args.seed)
    try:
        out = run_recipe(RecipeConfig(sft=cfg, model={"random_init": llama_shape(args), "pad_id": 0},
                                      data={"kind": "inline", "sequences": sequences}))
    except Exception as err:  # an arm that does not fit is a result (status "oom"), not a crash
        oom = isinstance(err, torch.OutOfMemoryError) or "out of memory" in str(err).lower()
        result.update(status="oom" if oom else "error", error=f"{type(err).__name__}: {str(err)[:400]}")
        if on_gpu:
            result["max_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        return result
    history = out["history"]
    tokens_per_s = _median_after_warmup(history, "tokens_per_s", warmup=2)  # allocator/kernels warm up
    result.update(status="ok", bf16_autocast=out["bf16_autocast"], tokens_per_s=round(tokens_per_s, 1),
                  step_seconds_median=round(_median_after_warmup(history, "step_seconds", warmup=2), 3),
                  steps_timed=max(1, len(history) - 2), first_step_seconds=round(history[0]["step_seconds"], 2),
                  final_loss=round(history[-1]["loss"], 4), recipe_wall_s=round(out["wall_s"], 1))
    result.update(flop_accounting(args, out["n_params"], out["n_trainable_params"], args.method,
                                  not args.no_grad_ckpt))
    if on_gpu:
        result["max_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        result["max_reserved_gib"] = round(torch.cuda.max_memory_reserved() / 2**30, 2)
    achieved = {k: result[f"flops_per_token_{k}"] * tokens_per_s / 1e12 for k in ("6n", "model", "hardware")}
    achieved["6n_attention"] = (result["flops_per_token_6n"] + result["flops_per_token_attention"]) * tokens_per_s / 1e12
    result["achieved_tflops_6n"] = round(achieved["6n"], 1)
    for name, denom in (("peak", peak), ("ceiling", args.ceiling_tflops)):
        if denom:
            suffix = "" if name == "peak" else "_vs_ceiling"
            result[f"mfu{suffix}"] = round(achieved["6n"] / denom, 4)  # the usual 6N convention
            result[f"mfu_with_attention{suffix}"] = round(achieved["6n_attention"] / denom, 4)
            result[f"mfu_model_flops{suffix}"] = round(achieved["model"] / denom, 4)  # = mfu for full; 4N for LoRA
            result[f"hfu{suffix}"] = round(achieved["hardware"] / denom, 4)  # + attention + recompute
    return result


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gpu", action="store_true", help="8B-shaped Llama throughput/MFU instead of the CPU comparison")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=None, help="optimizer steps per measurement")
    # CPU comparison
    p.add_argument("--rows", type=int, default=64)
    p.add_argument("--packed-batch", type=int, default=2, help="packed sequences per micro batch")
    p.add_argument("--method", choices=["full", "lora"], default="full")
    p.add_argument("--lora-r", type=int, default=16, help="LoRA rank (alpha = 2r) with --method lora")
    p.add_argument("--model-cache", default=os.environ.get("MEDREASON_MODEL_CACHE", str(REPO / ".cache" / "medreason_dist")))
    # GPU shape (defaults: Llama-3-8B)
    p.add_argument("--seq", type=int, default=None)
    p.add_argument("--layers", type=int, default=32)
    p.add_argument("--hidden", type=int, default=4096)
    p.add_argument("--heads", type=int, default=32)
    p.add_argument("--kv-heads", type=int, default=8)
    p.add_argument("--intermediate", type=int, default=14336)
    p.add_argument("--vocab", type=int, default=128256)
    p.add_argument("--micro-batch", type=int, default=1)
    p.add_argument("--attn", choices=["auto", "sdpa", "eager", "flash_attention_2"], default="auto")
    p.add_argument("--no-grad-ckpt", action="store_true")
    p.add_argument("--peak-tflops", type=float, default=None, help="override the device's dense bf16 peak")
    p.add_argument("--ceiling-tflops", type=float, default=None, help="measured bf16 matmul TFLOP/s (extra MFU)")
    p.add_argument("--arm", default=None, help="label of this run in the JSON line (default: the method)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    if args.gpu:
        logging.getLogger("medreason_dist.train.recipe").setLevel(logging.INFO)  # per-step tok/s on stderr
        args.seq = args.seq or 4096
        args.steps = args.steps or 8
        result = gpu_bench(args)
    else:
        args.seq = args.seq or 1024
        args.steps = args.steps or 3
        result = cpu_bench(args)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
