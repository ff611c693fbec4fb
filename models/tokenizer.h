// Hugging Face tokenizer.json byte-level BPE, as Qwen2 uses it (models.md section 4.1). Torch-free.
//
// Supported: model BPE (merges as "a b" strings or [a, b] pairs, ignore_merges; every byte's
// byte-level character must be in the vocabulary, so no unk_token is ever needed); added_tokens
// with single_word/lstrip/rstrip/normalized; normalizer null, NFC or a Sequence of NFC;
// pre_tokenizer Split steps (Regex or String pattern, behavior Isolated) ending in ByteLevel
// (add_prefix_space, use_regex with the GPT-2 pattern); decoder ByteLevel; post_processor null or
// ByteLevel (which only touches offsets). Anything else fails to load with an error naming it.
// Patterns run on PCRE2 with \s spelled out as Unicode White_Space, which makes them match like
// Hugging Face's Oniguruma (checked over every code point for \s, \p{L} and \p{N}; they differ
// only on code points PCRE2's older Unicode tables leave unassigned).
// A Tokenizer is immutable after load: copies share it and may encode from several threads.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace mmi {

class Tokenizer {
 public:
  // Throws std::runtime_error naming the file and the problem (missing, bad JSON, a missing field
  // or an unsupported component).
  static Tokenizer load(const std::string& tokenizer_json_path);

  // Ids for UTF-8 text, with added tokens matched literally first (no BOS/EOS are added).
  // Ill-formed UTF-8 is replaced by U+FFFD first (see valid_utf8 in unicode_nfc.h), as Python
  // callers of Hugging Face tokenizers get from bytes.decode(errors="replace").
  std::vector<int32_t> encode(const std::string& text) const;
  // UTF-8 text for ids; special tokens are written out unless skip_special. Bytes that do not form
  // valid UTF-8 (a sequence cut between tokens) become U+FFFD. Throws std::out_of_range for an id
  // without a token.
  std::string decode(const std::vector<int32_t>& ids, bool skip_special = false) const;

  // The id of a token's text (model vocabulary or added token, e.g. "<|im_start|>").
  std::optional<int32_t> find_token(const std::string& token) const;
  int32_t token_id(const std::string& token) const;  // throws std::out_of_range naming the token
  // A token's text as stored (byte-level characters, e.g. "Ġthe"); throws std::out_of_range.
  const std::string& token_text(int32_t id) const;
  bool is_special(int32_t id) const;
  // One past the largest id, counting added tokens (151665 for Qwen2.5-VL).
  int64_t vocab_size() const;

 private:
  Tokenizer() = default;
  struct Impl;
  std::shared_ptr<const Impl> impl_;  // immutable once loaded, so copies share it
};

}  // namespace mmi
