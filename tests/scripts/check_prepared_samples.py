#!/usr/bin/env python3
"""Checks a file `mmi prepare` wrote against the model it was prepared for (standard library only):
every block's placeholder tokens sit where the block says, between vision start and end tokens; frame
indices are in range and cover whole temporal groups; each answer token is the token after the row
that predicts it; with --one-needle, each sample shows exactly one needle image (the only frames with
a light background). Usage: check_prepared_samples.py FILE MODEL_DIR EXPECTED_SAMPLES [--one-needle]"""
import json
import struct
import sys

FORMATS = {"U8": "B", "I32": "i", "I64": "q", "F64": "d"}


def read_safetensors(path):
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
        data = f.read()
    meta = header.pop("__metadata__", {})
    tensors = {}
    for name, entry in header.items():
        begin, end = entry["data_offsets"]
        code = FORMATS[entry["dtype"]]
        count = (end - begin) // struct.calcsize(code)
        tensors[name] = (entry["shape"], struct.unpack(f"<{count}{code}", data[begin:end]))
    return meta, tensors


def main():
    path, model, expected = sys.argv[1], sys.argv[2], int(sys.argv[3])
    meta, t = read_safetensors(path)
    config = json.load(open(f"{model}/config.json"))
    video, start_id, end_id = config["video_token_id"], config["vision_start_token_id"], config["vision_end_token_id"]
    samples = json.loads(meta["samples"])
    assert meta["format"] == "mmi-prepared-samples/1", meta["format"]
    assert len(samples) == expected, (len(samples), expected)
    ids, starts = t["ids"][1], t["sample_starts"][1]
    assert len(starts) == len(samples) + 1 and starts[0] == 0 and starts[-1] == len(ids)
    frames_shape = t["frames"][0]
    pool = frames_shape[0]
    block_frames = t["block_frames"][1]
    blocks = t["blocks"][1]
    tp = int(meta["temporal_patch"])
    pixels = frames_shape[1] * frames_shape[2] * 3
    frame_bytes = t["frames"][1]
    light = {f for f in range(pool) if sum(frame_bytes[f * pixels:(f + 1) * pixels]) > 200 * pixels}
    needles = [set() for _ in samples]
    placeholders = [0] * len(samples)
    for b in range(len(blocks) // 7):
        sample, start, groups, rows, cols, is_video, first = blocks[7 * b:7 * b + 7]
        base, tokens = starts[sample], groups * rows * cols
        assert ids[base + start - 1] == start_id and ids[base + start + tokens] == end_id, f"block {b}"
        assert all(i == video for i in ids[base + start:base + start + tokens]), f"block {b}"
        assert all(0 <= f < pool for f in block_frames[first:first + groups * tp]), f"block {b}"
        placeholders[sample] += tokens
        needles[sample] |= light.intersection(block_frames[first:first + groups * tp])
    for s in range(len(samples)):
        assert placeholders[s] == sum(1 for i in ids[starts[s]:starts[s + 1]] if i == video), f"sample {s}"
        assert samples[s]["tokens"] == starts[s + 1] - starts[s]
        if "--one-needle" in sys.argv:
            assert len(needles[s]) == 1, f"sample {samples[s]['id']} shows {len(needles[s])} needle images"
    answers = t["answers"][1]
    assert len(answers) >= 3 * len(samples)
    for a in range(len(answers) // 3):
        sample, row, token = answers[3 * a:3 * a + 3]
        assert ids[starts[sample] + row + 1] == token, f"answer {a}"
    print(f"{path}: {len(samples)} samples, {len(ids)} tokens, {pool} frames of "
          f"{frames_shape[1]}x{frames_shape[2]}: consistent")


if __name__ == "__main__":
    main()
