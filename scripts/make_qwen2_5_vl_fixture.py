#!/usr/bin/env python3
"""Writes the tiny Qwen2.5-VL parity fixture into tests/fixtures/qwen2_5_vl_tiny/.

Run in the project venv (transformers 5.17, plus torchvision and pillow for the HF processors):
    .venv/bin/python -m pip install torchvision==0.26.0 pillow
    .venv/bin/python scripts/make_qwen2_5_vl_fixture.py

Nothing is downloaded: a tiny model is built from a config, its norm weights and biases randomised
(Hugging Face initialises them to 1 and 0, which would hide bugs), and saved in Hugging Face layout
(config.json, model.safetensors, tokenizer.json trained here as a byte-level BPE). For each case
(text only, an image, a multi-frame video with non-square frames and a fractional seconds-per-grid)
the script stores, in `<case>.safetensors`: the token ids, the canonical 3-axis position ids (computed
here, passed explicitly because transformers 5.17's own video positions differ from the released
behaviour), the raw RGB frames, the processor's patchified pixels, the vision tower's merged embeddings,
the LM input embeddings, every decoder layer's output, the final-norm output and the logits (fp32).
`resize.safetensors` holds a frame the processor resizes and its pixels; `processor_cases.json` holds
smart_resize targets for a range of frame sizes.
"""
import json
import math
import os
import sys

import numpy as np
import torch
from safetensors.torch import save_file
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import (Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2VLImageProcessor,
                          Qwen2VLVideoProcessor)
from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "qwen2_5_vl_tiny")
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
                 r"\s*[\r\n]+|\s+(?!\S)|\s+")
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
            "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>"]
BPE_VOCAB = 400  # 256 bytes + 144 merges; the specials follow
CORPUS = [
    "You are a helpful assistant.", "What colour is the square in the video?",
    "Which shape appears? Answer with the option's letter.", "(A) red (B) green (C) blue (D) yellow",
    "The answer is A.", "system", "user", "assistant", "Describe the video in one sentence.",
    "A red circle moves from left to right while a blue square stays still.",
] * 20


def train_tokenizer(lines=CORPUS, vocab_size=BPE_VOCAB):
    """A byte-level BPE with Qwen2's normaliser, pre-tokenizer, decoder and special tokens."""
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(lines, trainer)
    tok.add_special_tokens(SPECIALS)
    return tok


def make_config(tok):
    ids = {s: tok.token_to_id(s) for s in SPECIALS}
    vocab = tok.get_vocab_size()
    return Qwen2_5_VLConfig(
        text_config=dict(vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2,
                         rope_scaling={"type": "mrope", "mrope_section": [2, 3, 3]}, rope_theta=1e6,
                         rms_norm_eps=1e-6, bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"],
                         pad_token_id=ids["<|endoftext|>"], tie_word_embeddings=False,
                         initializer_range=0.1),
        vision_config=dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=64,
                           window_size=56, fullatt_block_indexes=[1], tokens_per_second=2,
                           initializer_range=0.1),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False)


def randomise_norms_and_biases(model, gen):
    """Also rounds every weight to bf16: the checkpoint is stored in bf16 (as real ones are, and half the
    size) while the reference runs in fp32 on exactly those values."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(".bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            elif "norm" in name or "ln_q" in name:
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=gen))
            p.copy_(p.bfloat16().float())


def canonical_position_ids(ids, vision_grids, vision_token_ids, tokens_per_second, merge=2):
    """SPEC.md §6: text advances by one; a vision block starts at the previous maximum + 1; temporal ids
    are floor(t * seconds_per_grid * tokens_per_second); text after the block resumes at its max + 1."""
    pos = np.zeros((3, len(ids)), dtype=np.int64)
    nxt, i, block = 0, 0, 0
    while i < len(ids):
        if ids[i] in vision_token_ids:
            (t, h, w), seconds_per_grid = vision_grids[block]
            block += 1
            gh, gw = h // merge, w // merge
            start, first = nxt, i
            for ti in range(t):
                for hi in range(gh):
                    for wi in range(gw):
                        pos[:, i] = [start + math.floor(ti * seconds_per_grid * tokens_per_second),
                                     start + hi, start + wi]
                        i += 1
            nxt = int(pos[:, first:i].max()) + 1
        else:
            pos[:, i] = nxt
            nxt += 1
            i += 1
    return pos


def moving_frames(count, height, width, gen):
    """uint8 RGB frames [count, height, width, 3] with a bright square moving over noise."""
    frames = (torch.rand((count, height, width, 3), generator=gen) * 200).to(torch.uint8)
    for f in range(count):
        y, x = (7 * f) % (height - 20), (11 * f) % (width - 20)
        frames[f, y:y + 20, x:x + 20] = torch.tensor([250, 30 + 40 * f % 200, 90], dtype=torch.uint8)
    return frames


def chat_ids(tok, user_pieces):
    """ChatML prompt: system turn, a user turn made of text and placeholder ids, the assistant header."""
    ids = tok.encode("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n").ids
    for piece in user_pieces:
        ids += tok.encode(piece).ids if isinstance(piece, str) else piece
    return ids + tok.encode("<|im_end|>\n<|im_start|>assistant\n").ids


@torch.no_grad()
def run_case(model, config, name, ids, pixels=None, grid=None, kind=None, seconds_per_grid=0.0):
    lm = model.model.language_model
    captured = []
    hooks = [layer.register_forward_hook(lambda m, a, out: captured.append(
        (out[0] if isinstance(out, tuple) else out)[0].clone())) for layer in lm.layers]
    hooks.append(lm.norm.register_forward_hook(lambda m, a, out: captured.append(out[0].clone())))
    embeds = []
    hooks.append(lm.register_forward_pre_hook(
        lambda m, args, kwargs: embeds.append(kwargs["inputs_embeds"][0].clone()), with_kwargs=True))
    vision_ids = {config.image_token_id, config.video_token_id}
    grids = [] if grid is None else [(grid, seconds_per_grid)]
    positions = canonical_position_ids(ids, grids, vision_ids, config.vision_config.tokens_per_second)
    input_ids = torch.tensor([ids])
    kwargs = dict(input_ids=input_ids, position_ids=torch.from_numpy(positions)[:, None, :])
    tensors = {"input_ids": input_ids[0], "position_ids": torch.from_numpy(positions)}
    if kind == "image":
        kwargs.update(pixel_values=pixels, image_grid_thw=torch.tensor([grid]))
    elif kind == "video":
        kwargs.update(pixel_values_videos=pixels, video_grid_thw=torch.tensor([grid]),
                      second_per_grid_ts=torch.tensor([seconds_per_grid]))
    if kind is not None:
        visual = model.model.visual(pixels, grid_thw=torch.tensor([grid])).pooler_output
        tensors.update(pixel_values=pixels, grid_thw=torch.tensor(grid, dtype=torch.int64),
                       visual_embeds=visual, seconds_per_grid=torch.tensor([seconds_per_grid]))
    logits = model(**kwargs).logits[0]
    for h in hooks:
        h.remove()
    tensors["inputs_embeds"] = embeds[0]
    for i, h in enumerate(captured[:-1]):
        tensors[f"layer_{i}"] = h
    tensors["final_norm"] = captured[-1]
    tensors["logits"] = logits
    return tensors


def main():
    gen = torch.Generator().manual_seed(1234)
    torch.manual_seed(1234)
    os.makedirs(OUT, exist_ok=True)
    tok = train_tokenizer()
    config = make_config(tok)
    config._attn_implementation = "eager"
    model = Qwen2_5_VLForConditionalGeneration(config).eval()
    randomise_norms_and_biases(model, gen)
    # Converting the model itself would also round its RoPE frequency buffers: convert a copy.
    model.save_pretrained(OUT, state_dict={k: v.bfloat16() for k, v in model.state_dict().items()})
    tok.save(os.path.join(OUT, "tokenizer.json"))
    # Processors with the CLIP normalisation of the release; frames are already multiples of 28 so the
    # pixels test the normalisation and the patch order, not a resampling filter.
    image_processor = Qwen2VLImageProcessor(min_pixels=28 * 28, max_pixels=28 * 28 * 64)
    video_processor = Qwen2VLVideoProcessor(min_pixels=28 * 28, max_pixels=28 * 28 * 64)

    cases = {}
    cases["text"] = run_case(model, config, "text", chat_ids(tok, ["What colour is the square? (A) red (B) blue"]))

    image = moving_frames(1, 84, 56, gen)
    out = image_processor(images=[image[0].numpy()], return_tensors="pt", do_resize=False)
    grid = out["image_grid_thw"][0].tolist()
    n = grid[0] * grid[1] * grid[2] // 4
    ids = chat_ids(tok, [[config.vision_start_token_id] + [config.image_token_id] * n + [config.vision_end_token_id],
                         "Which shape appears?"])
    cases["image"] = run_case(model, config, "image", ids, out["pixel_values"], grid, "image")
    cases["image"]["frames"] = image

    video = moving_frames(6, 56, 84, gen)  # 3 temporal groups of a 2x3 merged grid: a partial window
    fps = 3.0  # seconds per grid = 2/3: temporal ids floor(t * 4/3) test the fractional step
    out = video_processor(videos=[video], return_tensors="pt", do_resize=False, do_sample_frames=False)
    grid = out["video_grid_thw"][0].tolist()
    n = grid[0] * grid[1] * grid[2] // 4
    ids = chat_ids(tok, [[config.vision_start_token_id] + [config.video_token_id] * n + [config.vision_end_token_id],
                         "Describe the video in one sentence."])
    cases["video"] = run_case(model, config, "video", ids, out["pixel_values_videos"], grid, "video",
                              seconds_per_grid=2.0 / fps)
    cases["video"]["frames"] = video

    for name, tensors in cases.items():
        save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(OUT, f"{name}.safetensors"))

    # A frame that must be resized (50x75 -> 56x84): the processor's bicubic, antialiased resize.
    odd = moving_frames(1, 50, 75, gen)
    out = image_processor(images=[odd[0].numpy()], return_tensors="pt", min_pixels=28 * 28 * 6,
                          max_pixels=28 * 28 * 6)
    save_file({"frames": odd.contiguous(), "pixel_values": out["pixel_values"].contiguous(),
               "grid_thw": out["image_grid_thw"][0].to(torch.int64)}, os.path.join(OUT, "resize.safetensors"))

    sizes = [(56, 84), (100, 100), (480, 640), (1080, 1920), (720, 1280), (33, 500), (2000, 90), (28, 28)]
    budgets = [(28 * 28 * 4, 28 * 28 * 64), (128 * 28 * 28, 768 * 28 * 28)]
    resize_cases = [dict(height=h, width=w, min_pixels=lo, max_pixels=hi,
                         target=list(smart_resize(h, w, factor=28, min_pixels=lo, max_pixels=hi)))
                    for h, w in sizes for lo, hi in budgets]
    with open(os.path.join(OUT, "processor_cases.json"), "w") as f:
        json.dump(resize_cases, f, indent=1)

    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"wrote {OUT} ({total / 1024:.0f} KiB): " + ", ".join(
        f"{k}: {len(v['input_ids'])} tokens" for k, v in cases.items()))


if __name__ == "__main__":
    sys.exit(main())
