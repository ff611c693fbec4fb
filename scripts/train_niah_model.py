#!/usr/bin/env python3
"""Trains the tiny Qwen2.5-VL checkpoint in tests/fixtures/qwen2_5_vl_niah from scratch on samples
built by mmi's own task builders (V-NIAH and MM-NIAH over the generated haystack).

The recipe (README, "The trained tiny model"), each step runnable alone:

  1. corpus      mmi prepare configs/training/niah_tiny.yaml --model tests/fixtures/qwen2_5_vl_tiny \
                     --text results/training/corpus.txt
  2. init        .venv/bin/python scripts/train_niah_model.py init --corpus results/training/corpus.txt \
                     --out tests/fixtures/qwen2_5_vl_niah
                 a byte-level BPE tokenizer trained on the tasks' text (Qwen2's pre-tokenizer and
                 special tokens), the config, freshly initialised weights
  3. samples     mmi prepare configs/training/niah_tiny.yaml --out results/training/samples.safetensors
                 (the layout is described in harness/prepare_command.cpp)
  4. check       .venv/bin/python scripts/train_niah_model.py check --data ... --model ...
                 the pixels built here from the exported frames equal the Hugging Face processor's
  5. train       python3 scripts/train_niah_model.py train --data ... --model ... --minutes 12
                 on the GPU machine (transformers 5.17 there); writes the weights back into --model
                 and training_log.json beside them

  6. stage 2     mmi prepare configs/training/niah_tiny_stage2.yaml --out results/training/stage2.safetensors
                 && xz -k results/training/stage2.safetensors   (186 MB -> 16 MB: it travels to the GPU)
                 python3 scripts/train_niah_model.py train --data results/training/stage2.safetensors.xz \
                     --model tests/fixtures/qwen2_5_vl_niah --start-tokens 40000 --lr 5e-4 --warmup 50 \
                     --oversample eventqa=2 --oversample-longer 9000=4 --eval-data ...
                 continues from the stage-1 weights with longer NIAH samples and the generated Video-QA
  7. evaluate    python3 scripts/train_niah_model.py evaluate --data FILE... --model DIR
                 accuracy per task and frame count on held-out exports (configs/examples/*_tiny*.yaml)
  8. export      .venv/bin/python scripts/train_niah_model.py export --model DIR --out DIR
                 the weights in bf16, half the size, and packed as model.safetensors.tar.xz for the
                 repository (training and evaluation keep fp32 and load a bf16 checkpoint as fp32;
                 configuring the build expands the archive)

Files ending in .xz are read compressed. Nothing is downloaded. Positions are the canonical 3-axis ids (SPEC.md section 6), passed explicitly:
transformers 5.17 computes different video positions on its own.
"""
import argparse
import json
import math
import os
import random
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# OpenAI CLIP statistics, as the processor normalises.
MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)
BPE_VOCAB = 2048


# ------------------------------------------------------------------------------------------------
# init: tokenizer, config, fresh weights

def train_tokenizer(corpus_path):
    """Qwen2's byte-level BPE structure (as the parity fixture's), trained on the tasks' text."""
    from make_qwen2_5_vl_fixture import train_tokenizer as train_qwen2_bpe
    with open(corpus_path, encoding="utf-8") as f:
        text = f.read()
    chat = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
    return train_qwen2_bpe([chat] * 50 + text.split("\n"), BPE_VOCAB)


def make_config(tok):
    from transformers import Qwen2_5_VLConfig
    ids = {s: tok.token_to_id(s) for s in ["<|endoftext|>", "<|im_end|>", "<|image_pad|>", "<|video_pad|>",
                                          "<|vision_start|>", "<|vision_end|>"]}
    return Qwen2_5_VLConfig(
        text_config=dict(vocab_size=tok.get_vocab_size(), hidden_size=192, intermediate_size=512,
                         num_hidden_layers=4, num_attention_heads=6, num_key_value_heads=2,
                         rope_scaling={"type": "mrope", "mrope_section": [4, 6, 6]}, rope_theta=1e6,
                         rms_norm_eps=1e-6, bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"],
                         pad_token_id=ids["<|endoftext|>"], tie_word_embeddings=False,
                         max_position_embeddings=131072, initializer_range=0.02),
        vision_config=dict(depth=4, hidden_size=96, intermediate_size=192, num_heads=4, out_hidden_size=192,
                           patch_size=14, spatial_merge_size=2, temporal_patch_size=2, window_size=56,
                           fullatt_block_indexes=[1, 3], tokens_per_second=2, initializer_range=0.02),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False)


def init(args):
    from transformers import Qwen2_5_VLForConditionalGeneration
    torch.manual_seed(args.seed)
    tok = train_tokenizer(args.corpus)
    config = make_config(tok)
    model = Qwen2_5_VLForConditionalGeneration(config)
    os.makedirs(args.out, exist_ok=True)
    model.save_pretrained(args.out)
    tok.save(os.path.join(args.out, "tokenizer.json"))
    with open(os.path.join(args.out, "preprocessor_config.json"), "w") as f:
        json.dump({"image_processor_type": "Qwen2VLImageProcessor", "min_pixels": 784, "max_pixels": 784,
                   "patch_size": 14, "temporal_patch_size": 2, "merge_size": 2, "image_mean": MEAN,
                   "image_std": STD}, f, indent=2)
    params = sum(p.numel() for p in model.parameters())
    print(f"{args.out}: {params / 1e6:.2f}M parameters, vocabulary {tok.get_vocab_size()}")


# ------------------------------------------------------------------------------------------------
# The samples `mmi prepare` writes

class Samples:
    def __init__(self, path, device="cpu"):
        from safetensors.numpy import load
        if path.endswith(".xz"):  # xz shrinks the frame pool about tenfold (it travels to the GPU machine)
            import lzma
            with lzma.open(path) as f:
                raw = f.read()
        else:
            with open(path, "rb") as f:
                raw = f.read()
        t = load(raw)
        meta = json.loads(raw[8:8 + int.from_bytes(raw[:8], "little")]).get("__metadata__", {})
        if meta.get("format") != "mmi-prepared-samples/1":
            raise SystemExit(f"{path}: not a file of `mmi prepare` (format {meta.get('format')!r})")
        self.info = json.loads(meta["samples"])
        self.tokens_per_second = float(meta["tokens_per_second"])
        self.temporal_patch = int(meta["temporal_patch"])
        self.frames = torch.from_numpy(t["frames"]).to(device)  # [P, h, w, 3] uint8
        self.ids = t["ids"].astype(np.int64)
        self.starts = t["sample_starts"]
        self.blocks = t["blocks"]
        self.seconds = t["block_seconds"]
        self.block_frames = t["block_frames"].astype(np.int64)
        self.answers = t["answers"]
        self.device = device
        self.blocks_of = [[] for _ in self.info]
        for b, row in enumerate(self.blocks):
            self.blocks_of[row[0]].append(b)
        self.answers_of = [[] for _ in self.info]
        for sample, position, token in self.answers:
            self.answers_of[sample].append((int(position), int(token)))
        if np.any(self.blocks[:, 5] != 1):
            raise SystemExit(f"{path}: image blocks are not supported here (video blocks only)")

    def __len__(self):
        return len(self.info)

    def length(self, s):
        return int(self.starts[s + 1] - self.starts[s])

    def positions(self, s):
        """[3, L] canonical ids: text advances by one; a block starts at the previous maximum + 1, token
        (g, r, c) at (s + floor(g * seconds_per_grid * tokens_per_second), s + r, s + c)."""
        length = self.length(s)
        pos = np.empty((3, length), dtype=np.int64)
        nxt, at = 0, 0
        for b in self.blocks_of[s]:
            _, start, groups, rows, cols, _, _ = (int(v) for v in self.blocks[b])
            text = start - at
            pos[:, at:start] = nxt + np.arange(text)
            nxt += text
            g = np.floor(np.arange(groups) * self.seconds[b] * self.tokens_per_second).astype(np.int64)
            block = np.stack(np.broadcast_arrays(g[:, None, None], np.arange(rows)[None, :, None],
                                                 np.arange(cols)[None, None, :])).reshape(3, -1) + nxt
            pos[:, start:start + block.shape[1]] = block
            nxt = int(block.max()) + 1
            at = start + block.shape[1]
        pos[:, at:] = nxt + np.arange(length - at)
        return pos

    def pixels(self, s, patch, merge):
        """pixel_values_videos [rows, 3 * tp * patch * patch] and video_grid_thw [blocks, 3], as the
        Qwen2.5-VL processor makes them from the resized frames."""
        rows, grids = [], []
        tp = self.temporal_patch
        for b in self.blocks_of[s]:
            _, _, groups, mrows, mcols, _, first = (int(v) for v in self.blocks[b])
            index = torch.from_numpy(self.block_frames[first:first + groups * tp]).to(self.device)
            x = self.frames[index].permute(0, 3, 1, 2).float() / 255.0  # [F, 3, h, w]
            mean = torch.tensor(MEAN, device=self.device).view(1, 3, 1, 1)
            std = torch.tensor(STD, device=self.device).view(1, 3, 1, 1)
            x = (x - mean) / std
            gh, gw = mrows * merge, mcols * merge
            x = x.reshape(groups, tp, 3, gh // merge, merge, patch, gw // merge, merge, patch)
            x = x.permute(0, 3, 6, 4, 7, 2, 1, 5, 8).reshape(groups * gh * gw, 3 * tp * patch * patch)
            rows.append(x)
            grids.append([groups, gh, gw])
        return torch.cat(rows), torch.tensor(grids, device=self.device)

    def inputs(self, s, model):
        vc = model.config.vision_config
        ids = torch.from_numpy(self.ids[self.starts[s]:self.starts[s + 1]]).to(self.device)[None]
        positions = torch.from_numpy(self.positions(s)).to(self.device)[:, None, :]
        pixels, grid = self.pixels(s, vc.patch_size, vc.spatial_merge_size)
        answers = self.answers_of[s]
        rows = torch.tensor([p for p, _ in answers], device=self.device)
        targets = torch.tensor([t for _, t in answers], device=self.device)
        return dict(input_ids=ids, position_ids=positions, pixel_values_videos=pixels, video_grid_thw=grid), rows, targets


def answer_logits(model, inputs, rows):
    """Logits [A, vocab] at the rows that predict the answer tokens (the LM head only there)."""
    hidden = model.model(**inputs).last_hidden_state[0]
    return model.lm_head(hidden[rows])


# ------------------------------------------------------------------------------------------------
# Faster vision attention for training: every window of these tiny frames has the same length, so
# the windows are one batched SDPA call instead of one call each (the reference loops over them).

def patch_vision_attention():
    from transformers.models.qwen2_5_vl import modeling_qwen2_5_vl as m
    original = m.Qwen2_5_VLVisionAttention.forward

    def forward(self, hidden_states, cu_seqlens, position_embeddings=None, max_seqlen=None, **kwargs):
        lengths = cu_seqlens[1:] - cu_seqlens[:-1]
        n = int(lengths[0])
        if not bool((lengths == n).all()):
            return original(self, hidden_states, cu_seqlens, position_embeddings, max_seqlen, **kwargs)
        seq = hidden_states.shape[0]
        q, k, v = self.qkv(hidden_states).reshape(seq, 3, self.num_heads, -1).permute(1, 0, 2, 3).unbind(0)
        cos, sin = position_embeddings
        q, k = m.apply_rotary_pos_emb_vision(q, k, cos, sin)
        q, k, v = (t.reshape(seq // n, n, self.num_heads, -1).transpose(1, 2) for t in (q, k, v))
        out = torch.nn.functional.scaled_dot_product_attention(q, k, v, scale=self.scaling)
        return self.proj(out.transpose(1, 2).reshape(seq, -1))

    m.Qwen2_5_VLVisionAttention.forward = forward


# ------------------------------------------------------------------------------------------------
# check: pixels against the Hugging Face processor; the batched vision attention against the reference

def check(args):
    from transformers import Qwen2_5_VLForConditionalGeneration, Qwen2VLVideoProcessor
    data = Samples(args.data)
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(args.model).eval()
    vc = model.config.vision_config
    processor = Qwen2VLVideoProcessor(min_pixels=784, max_pixels=784, do_resize=False, do_sample_frames=False)
    s = min(range(len(data)), key=lambda i: abs(data.length(i) - 300))
    ours, grid = data.pixels(s, vc.patch_size, vc.spatial_merge_size)
    first = int(data.blocks[data.blocks_of[s][0]][6])
    count = int(data.blocks[data.blocks_of[s][0]][2]) * data.temporal_patch
    video = data.frames[torch.from_numpy(data.block_frames[first:first + count])].permute(0, 3, 1, 2)
    theirs = processor(videos=[video], return_tensors="pt")
    rows = int(grid[0].prod())
    diff = (ours[:rows] - theirs["pixel_values_videos"]).abs().max().item()
    print(f"pixels of sample {data.info[s]['id']}: grid {grid[0].tolist()} vs {theirs['video_grid_thw'][0].tolist()}, "
          f"max |difference| {diff:.2e}")
    assert grid[0].tolist() == theirs["video_grid_thw"][0].tolist() and diff < 1e-5
    inputs, answer_rows, _ = data.inputs(s, model)
    with torch.no_grad():
        reference = answer_logits(model, inputs, answer_rows)
        patch_vision_attention()
        batched = answer_logits(model, inputs, answer_rows)
    diff = (reference - batched).abs().max().item()
    print(f"batched vision attention: max |logit difference| {diff:.2e}")
    assert diff < 1e-4
    print("check passed")


# ------------------------------------------------------------------------------------------------
# train

def evaluate(model, data, samples, key=lambda info: info["task"]):
    """Accuracy per key(sample info) over `samples` (all answer tokens right)."""
    correct = {}
    model.eval()
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=data.device != "cpu"):
        for s in samples:
            inputs, rows, targets = data.inputs(s, model)
            ok = bool((answer_logits(model, inputs, rows).argmax(-1) == targets).all())
            hit, total = correct.get(key(data.info[s]), (0, 0))
            correct[key(data.info[s])] = (hit + ok, total + 1)
    model.train()
    return {k: hit / total for k, (hit, total) in correct.items()}


def by_task_and_frames(info):
    """'vniah 2000 frames', or with the question of a generated Video-QA sample: 'eventqa/count 36 frames'."""
    task = info["task"] + ("/" + info["id"].split("_")[1] if info["task"] == "eventqa" else "")
    return f"{task} {int(info['grid'].get('frames', 0))} frames"


def evaluate_file(model, path, device):
    """Accuracy per task and frame count over every sample of a file from `mmi prepare`."""
    data = Samples(path, device)
    result = evaluate(model, data, range(len(data)), by_task_and_frames)
    return dict(sorted(result.items(), key=lambda kv: (kv[0].split()[0], int(kv[0].split()[1]))))


def evaluate_command(args):
    from transformers import Qwen2_5_VLForConditionalGeneration
    device = "cuda" if torch.cuda.is_available() else "cpu"
    patch_vision_attention()
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(args.model, dtype=torch.float32).to(device)
    for path in args.data:
        for cell, accuracy in evaluate_file(model, path, device).items():
            print(f"{path}: {cell}: {100 * accuracy:.0f}%", flush=True)


def pack_weights(folder):
    """model.safetensors -> model.safetensors.tar.xz, the form committed (about 70% of the size;
    configuring the build expands it again). Reproducible: no times or owners in the archive."""
    import lzma
    import tarfile

    def anonymous(info):
        info.mtime, info.uid, info.gid, info.uname, info.gname, info.mode = 0, 0, 0, "", "", 0o644
        return info

    archive = os.path.join(folder, "model.safetensors.tar.xz")
    with tarfile.open(archive, "w:xz", preset=9 | lzma.PRESET_EXTREME) as tar:
        tar.add(os.path.join(folder, "model.safetensors"), arcname="model.safetensors", filter=anonymous)
    return archive


def export(args):
    from transformers import Qwen2_5_VLForConditionalGeneration
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(args.model, dtype=torch.float32)
    model.to(torch.bfloat16).save_pretrained(args.out)
    archive = pack_weights(args.out)
    print(f"wrote {args.out}: bf16 weights of {args.model}, packed as {archive} "
          f"({os.path.getsize(archive) / 2**20:.1f} MiB) for the repository", flush=True)


def train(args):
    from transformers import Qwen2_5_VLForConditionalGeneration
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    patch_vision_attention()
    data = Samples(args.data, device)
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(args.model, dtype=torch.float32).to(device)
    model.config.use_cache = False
    order = list(range(len(data)))
    rng.shuffle(order)
    held_out = sorted(order[:args.held_out])
    train_set = order[args.held_out:]
    lengths = {s: data.length(s) for s in train_set}
    oversample = {task: float(k) for task, k in (item.split("=") for item in args.oversample)}
    longer_than, longer_weight = (float(v) for v in args.oversample_longer.split("="))
    longest = max(lengths.values())
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01, betas=(0.9, 0.98))
    budget = args.minutes * 60
    start = time.time()
    step, seen, log = 0, 0, []
    losses = []
    print(f"{len(train_set)} training samples ({sum(lengths.values()) / 1e6:.1f}M tokens), {len(held_out)} held out; "
          f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters on {device}", flush=True)
    # Curriculum by competence: samples of at most `limit` tokens until the model answers
    # `competence` of the last `window` of them right, then a longer limit (x1.5), up to all of them.
    limit, recent, accuracy = args.start_tokens, [], 0.0
    while True:
        progress = (time.time() - start) / budget
        if progress >= 1:
            break
        pool = [s for s in train_set if lengths[s] <= limit]
        weights = [oversample.get(data.info[s]["task"], 1.0) * (longer_weight if lengths[s] > longer_than else 1.0)
                   for s in pool]
        # Warm-up, constant, then a cosine decay to 10% over the last `decay` of the time.
        tail = max(0.0, (progress - (1 - args.decay)) / args.decay)
        lr = args.lr * min(1.0, (step + 1) / args.warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * tail)))
        for group in optimizer.param_groups:
            group["lr"] = lr
        tokens, batch_loss, count = 0, 0.0, 0
        while tokens < args.batch_tokens and count < args.batch_samples:
            s = rng.choices(pool, weights)[0]
            inputs, rows, targets = data.inputs(s, model)
            with torch.autocast(device, dtype=torch.bfloat16, enabled=device == "cuda"):
                logits = answer_logits(model, inputs, rows)
            loss = torch.nn.functional.cross_entropy(logits.float(), targets)
            loss.backward()
            recent.append(bool((logits.argmax(-1) == targets).all()))
            batch_loss += loss.item()
            tokens += lengths[s]
            count += 1
        for p in model.parameters():
            if p.grad is not None:
                p.grad /= count
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        seen += count
        losses.append(batch_loss / count)
        recent = recent[-args.window:]
        accuracy = sum(recent) / len(recent)
        if len(recent) == args.window and accuracy >= args.competence and limit < longest:
            limit = min(longest, int(limit * 1.5))
            recent = []
            print(json.dumps({"step": step, "minutes": round((time.time() - start) / 60, 2), "limit_tokens": limit}), flush=True)
        if step % args.log_every == 0:
            elapsed = time.time() - start
            line = {"step": step, "minutes": round(elapsed / 60, 2), "samples": seen,
                    "samples_per_s": round(seen / elapsed, 1), "limit_tokens": int(limit),
                    "lr": lr, "loss": sum(losses[-args.log_every:]) / args.log_every, "train_accuracy": accuracy}
            if step % (args.log_every * 10) == 0:
                line["held_out"] = evaluate(model, data, held_out[:64])
            log.append(line)
            print(json.dumps(line), flush=True)
    final = evaluate(model, data, held_out)
    minutes = (time.time() - start) / 60
    print(json.dumps({"final_held_out": final, "minutes": minutes, "steps": step, "samples": seen}), flush=True)
    evaluations = {}
    for path in args.eval_data:
        evaluations[path] = evaluate_file(model, path, device)
        print(json.dumps({"evaluation": path, "accuracy": evaluations[path]}), flush=True)
    out = args.out or args.model
    model.save_pretrained(out)
    recipe = {k: v for k, v in vars(args).items() if k not in ("func",)}
    with open(os.path.join(out, "training_log.json"), "w") as f:
        json.dump({"recipe": recipe, "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
                   "minutes": minutes, "steps": step, "samples_seen": seen, "held_out_accuracy": final,
                   "held_out_samples": len(held_out), "evaluations": evaluations, "log": log}, f, indent=1)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(required=True)
    p = sub.add_parser("init", help="tokenizer, config and fresh weights")
    p.add_argument("--corpus", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=init)
    p = sub.add_parser("check", help="exported pixels against the Hugging Face processor")
    p.add_argument("--data", required=True)
    p.add_argument("--model", required=True)
    p.set_defaults(func=check)
    p = sub.add_parser("train", help="train on the exported samples (GPU)")
    p.add_argument("--data", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--out", default="", help="where to save (default: over --model)")
    p.add_argument("--minutes", type=float, default=12)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--batch-tokens", type=int, default=16384)
    p.add_argument("--batch-samples", type=int, default=8)
    p.add_argument("--start-tokens", type=int, default=128, help="the curriculum's first length limit")
    p.add_argument("--competence", type=float, default=0.9, help="accuracy that lengthens the limit")
    p.add_argument("--window", type=int, default=200, help="recent samples the accuracy is taken over")
    p.add_argument("--decay", type=float, default=0.3, help="the final share of the time the lr decays over")
    p.add_argument("--held-out", type=int, default=128)
    p.add_argument("--log-every", type=int, default=25)
    p.add_argument("--oversample", nargs="*", default=[], metavar="TASK=K",
                   help="draw a task's samples K times as often, e.g. mmniah=2")
    p.add_argument("--oversample-longer", default="0=1", metavar="TOKENS=K",
                   help="draw samples longer than TOKENS tokens K times as often")
    p.add_argument("--eval-data", nargs="*", default=[], metavar="FILE",
                   help="files of `mmi prepare` to score after training (accuracy per task and frame count)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=train)
    p = sub.add_parser("evaluate", help="accuracy per task and frame count on files of `mmi prepare`")
    p.add_argument("--data", nargs="+", required=True)
    p.add_argument("--model", required=True)
    p.set_defaults(func=evaluate_command)
    p = sub.add_parser("export", help="the weights in bf16 (the committed checkpoint)")
    p.add_argument("--model", required=True)
    p.add_argument("--out", required=True, help="may equal --model")
    p.set_defaults(func=export)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
