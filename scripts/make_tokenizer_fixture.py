#!/usr/bin/env python3
"""Writes the tokenizer parity fixtures into tests/fixtures/tokenizer/.

Run in the project venv (Hugging Face tokenizers; nothing is downloaded):
    .venv/bin/python scripts/make_tokenizer_fixture.py

Two byte-level BPE tokenizers are trained on a corpus built here (GPL-3 prose when present,
task-like prompts, numbers, code, a little accented, CJK and emoji text):
  tokenizer.json            Qwen2's structure exactly (models.md section 4.1): NFC, a Split on the
                            Qwen2 pattern (Isolated) then ByteLevel without regex or prefix space,
                            ByteLevel decoder; the Qwen2-VL special tokens plus non-special added
                            tokens (one normalized, which matches after NFC, and ones with lstrip,
                            rstrip and single_word).
  bytelevel_tokenizer.json  GPT-2's structure: no normalizer, ByteLevel with add_prefix_space and
                            the GPT-2 regex, ignore_merges, merges written as "a b" strings.
cases.json / bytelevel_cases.json hold, for each test text, what `tokenizers` gives: ids, the
decoded text with and without special tokens, and whether decoding gives back NFC(text). A case
given as "hex" (UTF-8 bytes) is ill-formed UTF-8, encoded as bytes.decode(errors="replace").
"""
import json
import os
import random
import unicodedata

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
from tokenizers import processors, trainers

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures",
                   "tokenizer")
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
                 r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
            "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>"]
ADDED = [AddedToken("<tool_call>", special=False, normalized=False),
         AddedToken("caf\u00e9", special=False, normalized=True),  # decodes as "caf\ufffd", like HF
         AddedToken("[MASK]", special=True, normalized=False, lstrip=True, rstrip=True),
         AddedToken("zq", special=False, normalized=False, single_word=True)]


def corpus(rng):
    lines = []
    for path in ("/usr/share/common-licenses/GPL-3", "/usr/share/dict/words"):
        if os.path.exists(path):
            with open(path, encoding="utf-8", errors="replace") as f:
                lines += f.read().splitlines()
    if not lines:  # a fallback so the script runs anywhere (the ids then differ)
        lines = ["The quick brown fox jumps over the lazy dog."] * 50
    words = " ".join(lines).split()
    colours = ["red", "green", "blue", "yellow", "purple", "orange", "black", "white"]
    shapes = ["square", "circle", "triangle", "star", "cube", "ball"]
    for i in range(2000):
        c, s = rng.sample(colours, 4), rng.choice(shapes)
        lines.append(f"Question: What colour is the {s}? Options: (A) {c[0]} (B) {c[1]} "
                     f"(C) {c[2]} (D) {c[3]}\nAnswer with the option's letter from the given "
                     "choices directly.")
        lines.append(f"The video lasts for {rng.uniform(1, 600):.2f} seconds, and "
                     f"{rng.randint(8, 64)} frames are uniformly sampled from it. Frame {i} at "
                     f"{rng.random() * 100:.1f}s.")
        lines.append(f"def f{i}(x, y):\n    return x * {rng.randint(0, 9999)} + y  "
                     f"# {rng.choice(words)}\n")
        lines.append(f"{{\"id\": {i}, \"score\": {rng.random():.4f}, "
                     f"\"tags\": [\"{rng.choice(words)}\"]}}")
        lines.append(" ".join(rng.choice(words) for _ in range(12)))
    lines += ["Caf\u00e9 cr\u00e8me br\u00fbl\u00e9e, na\u00efve fa\u00e7ade, "
              "\u00fcber Stra\u00dfe"] * 20
    lines += ["\u4f60\u597d\uff0c\u4e16\u754c\u3002\u89c6\u9891\u91cc\u6709\u4ec0\u4e48\uff1f",
              "\u3053\u3093\u306b\u3061\u306f\u4e16\u754c", "\ud55c\uad6d\uc5b4 \ubb38\uc7a5",
              "\U0001F600 \U0001F44D\U0001F3FD \u2764\ufe0f"] * 20
    return lines


def cases(rng):
    long_paragraph = " ".join(
        "Mixed-case words, numbers like 3.14159 and 2024-05-01, quotes \"like this\", URLs such as "
        "https://example.com/a?b=c&d=e, and tabs\tand  double  spaces.".split(" ") * 12)
    words = ["alpha", "Beta", "\u00e9t\u00e9", "na\u00efve", "\u4e2d\u6587", "\U0001F600", "42",
             "x_y",
             "\u0915\u094d\u0937", "\u05e9\u05dc\u05d5\u05dd", "don't", "WE'LL", "'s", "<|im_end|>",
             "zq", "[MASK]", "caf\u00e9", "\u00b2", "\u200d", "\u0301", "\u1100\u1161", "\u212b"]
    seps = [" ", "  ", "\t", "\n", "\r\n", " \n ", "", "\u00a0", "\u3000", "\u0085", "\u180e",
            "...", "!?"]
    texts = [
        "", " ", "a", "Hello world", "hello, world!", "   leading and trailing   ", "\t\ttabs\t",
        "\n\n\n", " \n ", "line one\nline two\r\nline three\rend", "trailing spaces   \n  next",
        "0", "7 8 9", "1234567890", "3.14159265358979", "-42,000.50 and 1e-10",
        "year 2024, 12:30pm",
        "I'LL be there; it's fine, we've SEEN they'd", "'S 'T 'RE 'Ve 'm 'LL 'd", "rock 'n' roll",
        "Hello!!! What??? ...and (then) [some] {braces} <tags> --- ***", "a+b=c; x->y && z||w",
        "def f(x):\n    return x ** 2  # square\n",
        "{\"key\": [1, 2, 3], \"nested\": {\"a\": null}}",
        "\u4f60\u597d\uff0c\u4e16\u754c\uff01\u8fd9\u662f\u4e00\u4e2a\u6d4b\u8bd5\u3002",
        "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8", "\ud55c\uad6d\uc5b4 \ud14d\uc2a4\ud2b8",
        "\U0001F600\U0001F603 smile",
        "\U0001F468\u200d\U0001F469\u200d\U0001F467\u200d\U0001F466 family",
        "\U0001F1FA\U0001F1F8\U0001F1EF\U0001F1F5 flags", "\U0001F44D\U0001F3FD thumbs",
        "e\u0301 vs \u00e9", "cafe\u0301 and caf\u00e9", "A\u030a\u0301 \u212b \u2126 \u1e0b\u0323",
        "\u1100\u1161\u11a8 \u1112\u1161\u11ab\u1100\u1173\u11af", "\u0958 \u0915\u093c",
        "o\u0308\u0304 u\u0308\u0301 q\u0307\u0323",
        "<|im_start|>user\nHi<|im_end|>", "<|endoftext|>", "<|im_start|><|im_end|>",
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
        "<|vision_start|><|video_pad|><|video_pad|><|vision_end|>What colour is the square? "
        "Options: (A) red (B) green"
        "<|im_end|>\n<|im_start|>assistant\n",
        "<|vision_start|><|image_pad|><|vision_end|>", "text<|im_end|>text", "<|im_start",
        "<|unknown|>",
        "call <tool_call>{\"name\": \"f\"}", "a caf\u00e9 and a cafe\u0301", "fill [MASK] here",
        "x   [MASK]   y", "a \u3000[MASK]\u2028 b", "zq zqz azq zq.", "zq",
        "zq\u200d zq\u0301 \u00b2zq\u00b2 _zq zq_ \u24b6zq",
        "Supercalifragilisticexpialidocious antidisestablishmentarianism",
        "Xylophonic quizzaciously jabberwocky flummoxed",
        "\u00a0non-breaking\u00a0spaces\u3000ideographic\u2028separator\u0085next\u180emongolian",
        "\u017f long s and 'K Kelvin \u212a", "  \u180e x \u180e\u180e  \u180e",
        "\u0000\u0001 control \u007f chars \u001c",
        "a" * 300, " " * 50 + "x", "\U0001F600" * 20,
        long_paragraph,
    ]
    for _ in range(20):  # random mixes of the awkward parts above
        n = rng.randint(3, 15)
        texts.append("".join(rng.choice(words) + rng.choice(seps) for _ in range(n)))
    invalid = [b"abc\xff", b"\xe2\x82 cut", b"\xed\xa0\x80 surrogate", b"\xf0\x9f\x98",
               b"\xc0\xaf over",
               b"\xf4\x90\x80\x80 big", b"ok \xe4\xbd\xa0\xe5 mid"]
    return texts, invalid


def encode_cases(tok, texts, invalid):
    out = []
    for text in texts + invalid:
        case = {"hex": text.hex()} if isinstance(text, bytes) else {"text": text}
        if isinstance(text, bytes):
            text = text.decode("utf-8", errors="replace")
        ids = tok.encode(text).ids
        decoded = tok.decode(ids, skip_special_tokens=False)
        case.update(ids=ids, decoded=decoded,
                    decoded_skip_special=tok.decode(ids, skip_special_tokens=True),
                    round_trip=decoded == unicodedata.normalize("NFC", text))
        out.append(case)
    return out


def train(pre_tokenizer, normalizer, vocab_size, lines, **bpe_options):
    tok = Tokenizer(models.BPE(**bpe_options))
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizer
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(lines, trainer)
    return tok


def write_json(name, value):
    with open(os.path.join(OUT, name), "w", encoding="utf-8") as f:
        json.dump(value, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")


def main():
    rng = random.Random(20240501)
    os.makedirs(OUT, exist_ok=True)
    lines = corpus(rng)
    texts, invalid = cases(rng)

    qwen = train(pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]),
        normalizers.NFC(), 3000, lines)
    qwen.add_special_tokens(SPECIALS)
    qwen.add_tokens(ADDED)
    write_json("tokenizer.json", json.loads(qwen.to_str()))
    write_json("cases.json", encode_cases(qwen, texts, invalid))

    gpt2 = train(pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True), None, 600, lines,
                 ignore_merges=True)
    gpt2.add_special_tokens(["<|endoftext|>"])
    spec = json.loads(gpt2.to_str())
    spec["model"]["merges"] = [" ".join(pair) for pair in spec["model"]["merges"]]
    write_json("bytelevel_tokenizer.json", spec)
    gpt2 = Tokenizer.from_file(os.path.join(OUT, "bytelevel_tokenizer.json"))
    write_json("bytelevel_cases.json", encode_cases(gpt2, texts[:40], invalid[:2]))

    for name in sorted(os.listdir(OUT)):
        print(f"{name}: {os.path.getsize(os.path.join(OUT, name))} bytes")


if __name__ == "__main__":
    main()
