#include "models/tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <array>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <queue>
#include <stdexcept>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "models/unicode_nfc.h"

namespace mmi {
namespace {

using nlohmann::json;

// The pattern ByteLevel splits with when use_regex is true (GPT-2's).
constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// GPT-2's reversible map from bytes to printable characters: '!'..'~', U+00A1..U+00AC and
// U+00AE..U+00FF stand for themselves, the other bytes in order for U+0100 onwards.
std::array<char32_t, 256> byte_level_chars() {
  std::array<char32_t, 256> chars{};
  char32_t next = 0x100;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    chars[b] = printable ? b : next++;
  }
  return chars;
}

// The byte each byte-level character stands for (they all lie below U+0144), or -1.
std::array<int16_t, 0x144> inverse(const std::array<char32_t, 256>& byte_chars) {
  std::array<int16_t, 0x144> bytes;
  bytes.fill(-1);
  for (int b = 0; b < 256; ++b) bytes[byte_chars[b]] = static_cast<int16_t>(b);
  return bytes;
}

// The start of the code point before text[pos] (pos > 0, text valid UTF-8).
size_t previous(const std::string& text, size_t pos) {
  while ((static_cast<uint8_t>(text[--pos]) & 0xC0) == 0x80) {
  }
  return pos;
}

// Rust's char::is_whitespace (the White_Space property), which lstrip/rstrip use.
bool is_white_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

// Oniguruma's \s (Hugging Face's regex engine): the White_Space property, as a class body. PCRE2
// 10.42's \s also matches U+180E, so patterns get this spelled out instead.
constexpr const char* kWhiteSpace =
    R"(\t-\r \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000})";

// `pattern` with \s and \S replaced by explicit White_Space classes.
std::string with_white_space(const std::string& pattern) {
  std::string out;
  bool in_class = false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      const char escaped = pattern[++i];
      if (escaped == 's') {
        out += in_class ? kWhiteSpace : std::string("[") + kWhiteSpace + "]";
      } else if (escaped == 'S' && !in_class) {
        out += std::string("[^") + kWhiteSpace + "]";
      } else if (escaped == 'S') {
        throw std::runtime_error("regex \"" + pattern + "\": \\S inside [] is not supported");
      } else {
        out += {c, escaped};
      }
    } else if (in_class && pattern.compare(i, 2, "[:") == 0) {  // a POSIX class such as [:alpha:]
      const size_t end = pattern.find(":]", i + 2);
      const size_t stop = end == std::string::npos ? pattern.size() : end + 2;
      out.append(pattern, i, stop - i);
      i = stop - 1;
    } else {
      out += c;
      if (c == ']' && in_class) in_class = false;
      if (c == '[' && !in_class) {  // a ']' first in the class (after any '^') is literal
        in_class = true;
        for (const char lead : {'^', ']'}) {
          if (i + 1 < pattern.size() && pattern[i + 1] == lead) out += pattern[++i];
        }
      }
    }
  }
  return out;
}

// single_word's word characters: \w of Rust's regex crate (UTS #18: Alphabetic, marks, decimal
// digits, connector punctuation, joiners), with Alphabetic spelled out (letters, letter numbers,
// marks and a few So letters) as PCRE2 before 10.40 lacks it.
constexpr const char* kWordChar =
    R"([\p{L}\p{Nl}\p{M}\p{Nd}\p{Pc}\x{200C}\x{200D}\x{24B6}-\x{24E9}\x{1F130}-\x{1F149})"
    R"(\x{1F150}-\x{1F169}\x{1F170}-\x{1F189}])";

// A compiled PCRE2 pattern (UTF, Unicode properties), shared by copies.
class Regex {
 public:
  explicit Regex(const std::string& pattern, bool literal = false) {
    const std::string source = literal ? pattern : with_white_space(pattern);
    int error;
    PCRE2_SIZE offset;
    pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(source.data()), source.size(),
                                     PCRE2_UTF | PCRE2_UCP | (literal ? PCRE2_LITERAL : 0), &error,
                                     &offset, nullptr);
    if (code == nullptr) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(error, message, sizeof(message));
      throw std::runtime_error("bad regex \"" + pattern +
                               "\": " + reinterpret_cast<const char*>(message));
    }
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // a speed-up only: without it matching interprets
    code_.reset(code, pcre2_code_free);
  }

  // Appends the matches in text and the non-empty gaps between them, in order (Hugging Face's
  // "Isolated" behaviour); an empty match splits without producing a piece. Text is valid UTF-8.
  void split(std::string_view text, std::vector<std::string_view>& out) const {
    std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> match(
        pcre2_match_data_create_from_pattern(code_.get(), nullptr), pcre2_match_data_free);
    const auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
    size_t gap = 0;  // start of the text not yet appended
    for (size_t pos = 0; pos <= text.size();) {
      const int rc = pcre2_match(code_.get(), subject, text.size(), pos, PCRE2_NO_UTF_CHECK,
                                 match.get(), nullptr);
      if (rc == PCRE2_ERROR_NOMATCH) break;
      if (rc < 0)
        throw std::runtime_error("regex match failed (PCRE2 error " + std::to_string(rc) + ")");
      const PCRE2_SIZE* range = pcre2_get_ovector_pointer(match.get());
      if (range[0] > gap) out.push_back(text.substr(gap, range[0] - gap));
      if (range[1] > range[0]) out.push_back(text.substr(range[0], range[1] - range[0]));
      gap = range[1];
      pos = range[1];
      if (range[1] == range[0]) {  // step over one code point
        for (++pos; pos < text.size() && (static_cast<uint8_t>(text[pos]) & 0xC0) == 0x80;) ++pos;
      }
    }
    if (gap < text.size()) out.push_back(text.substr(gap));
  }

  // Whether the pattern matches at text[pos] exactly (anchored).
  bool matches_at(const std::string& text, size_t pos) const {
    std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> match(
        pcre2_match_data_create_from_pattern(code_.get(), nullptr), pcre2_match_data_free);
    return pcre2_match(code_.get(), reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), pos,
                       PCRE2_ANCHORED | PCRE2_NO_UTF_CHECK, match.get(), nullptr) >= 0;
  }

 private:
  std::shared_ptr<pcre2_code> code_;
};

// json[key], or an error naming the field by its path.
const json& field(const json& j, const char* key, const std::string& where) {
  const auto it = j.find(key);
  if (it == j.end()) throw std::runtime_error("missing field \"" + where + "." + key + "\"");
  return *it;
}

// j[key] when present and not null, else `fallback`.
template <typename T>
T optional_field(const json& j, const char* key, T fallback) {
  const auto it = j.find(key);
  return it == j.end() || it->is_null() ? fallback : it->get<T>();
}

std::string type_of(const json& component, const std::string& where) {
  return field(component, "type", where).get<std::string>();
}

// The components of a Sequence (under `list_key`), or the component itself.
std::vector<json> flatten(const json& component, const char* list_key, const std::string& where) {
  if (type_of(component, where) != "Sequence") return {component};
  const json& list = field(component, list_key, where);
  return std::vector<json>(list.begin(), list.end());
}

uint64_t pair_key(int32_t left, int32_t right) {
  return static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32 | static_cast<uint32_t>(right);
}

}  // namespace

struct Tokenizer::Impl {
  struct AddedToken {
    std::string content;  // NFC-normalised when `normalized` and the normalizer is NFC
    int32_t id;
    bool single_word, lstrip, rstrip, normalized;
  };
  struct Merge {
    int32_t rank, id;
  };
  // A piece of the input: an added token's id, or -1 for text still to tokenize.
  struct Piece {
    std::string text;
    int32_t id;
  };

  std::unordered_map<std::string, int32_t> ids;  // model vocabulary, then added tokens
  std::vector<std::string> tokens;               // by id; empty where an id has no token
  std::vector<bool> special;                     // by id
  std::array<char32_t, 256> byte_chars = byte_level_chars();
  std::array<int16_t, 0x144> char_bytes = inverse(byte_chars);  // -1 for other characters
  std::array<int32_t, 256> byte_ids{};  // the id of each byte's byte-level character
  std::unordered_map<uint64_t, Merge> merges;
  bool ignore_merges = false;
  std::vector<AddedToken> added;
  // The bytes that added tokens start with, by their `normalized` flag.
  std::array<std::string, 2> added_first_bytes;
  bool nfc = false;
  std::vector<Regex> splits;  // Split pre-tokenizers, in order
  bool add_prefix_space = false;
  std::optional<Regex> byte_level_regex;
  Regex word_char{kWordChar};

  void set_token(int32_t id, const std::string& text);
  void load_model(const json& model);
  void load_added_tokens(const json& list);
  void load_normalizer(const json& normalizer);
  void load_pre_tokenizer(const json& pre_tokenizer);

  void split_added(const std::string& text, bool normalized, std::vector<Piece>& out) const;
  void pre_tokenize_and_bpe(const std::string& text, std::vector<int32_t>& out) const;
  void bpe(std::string_view word, std::vector<int32_t>& out) const;
};

void Tokenizer::Impl::set_token(int32_t id, const std::string& text) {
  if (id < 0)
    throw std::runtime_error("negative id " + std::to_string(id) + " for \"" + text + "\"");
  if (static_cast<size_t>(id) >= tokens.size()) tokens.resize(id + 1);
  tokens[id] = text;
}

void Tokenizer::Impl::load_model(const json& model) {
  const std::string type = type_of(model, "model");
  if (type != "BPE") throw std::runtime_error("unsupported model type \"" + type + "\" (want BPE)");
  if (!optional_field(model, "dropout", json()).is_null()) {
    throw std::runtime_error("unsupported model.dropout (BPE dropout is random)");
  }
  for (const char* affix : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (!optional_field(model, affix, std::string()).empty()) {
      throw std::runtime_error(std::string("unsupported model.") + affix);
    }
  }
  ignore_merges = optional_field(model, "ignore_merges", false);
  for (const auto& [token, id] : field(model, "vocab", "model").items()) {
    ids[token] = id.get<int32_t>();
    set_token(ids[token], token);
  }
  for (size_t b = 0; b < 256; ++b) {
    std::string text;
    append_utf8(byte_chars[b], text);
    const auto it = ids.find(text);
    if (it == ids.end()) {
      throw std::runtime_error("model.vocab lacks the byte-level token for byte " +
                               std::to_string(b));
    }
    byte_ids[b] = it->second;
  }
  const json& list = field(model, "merges", "model");
  merges.reserve(list.size());
  for (size_t rank = 0; rank < list.size(); ++rank) {
    std::string left, right;
    if (list[rank].is_string()) {  // "left right"
      const auto line = list[rank].get<std::string>();
      const size_t space = line.find(' ');
      if (space == std::string::npos || line.find(' ', space + 1) != std::string::npos) {
        throw std::runtime_error("model.merges[" + std::to_string(rank) + "] \"" + line +
                                 "\" is not two tokens");
      }
      left = line.substr(0, space), right = line.substr(space + 1);
    } else {  // ["left", "right"]
      left = list[rank].at(0).get<std::string>(), right = list[rank].at(1).get<std::string>();
    }
    std::array<int32_t, 3> merge_ids;
    const std::array<std::string, 3> texts = {left, right, left + right};
    for (size_t k = 0; k < 3; ++k) {
      const auto it = ids.find(texts[k]);
      if (it == ids.end()) {
        throw std::runtime_error("model.merges[" + std::to_string(rank) + "]: \"" + texts[k] +
                                 "\" is not in the vocabulary");
      }
      merge_ids[k] = it->second;
    }
    merges.emplace(pair_key(merge_ids[0], merge_ids[1]),
                   Merge{static_cast<int32_t>(rank), merge_ids[2]});
  }
}

void Tokenizer::Impl::load_added_tokens(const json& list) {
  for (const json& entry : list) {
    AddedToken token{field(entry, "content", "added_tokens[]").get<std::string>(),
                     field(entry, "id", "added_tokens[]").get<int32_t>(),
                     optional_field(entry, "single_word", false),
                     optional_field(entry, "lstrip", false),
                     optional_field(entry, "rstrip", false),
                     optional_field(entry, "normalized", true)};
    if (token.content.empty()) throw std::runtime_error("added_tokens has an empty token");
    ids[token.content] = token.id;
    set_token(token.id, token.content);
    if (optional_field(entry, "special", false)) {
      special.resize(tokens.size());
      special[token.id] = true;
    }
    added.push_back(std::move(token));
  }
}

void Tokenizer::Impl::load_normalizer(const json& normalizer) {
  if (normalizer.is_null()) return;
  for (const json& step : flatten(normalizer, "normalizers", "normalizer")) {
    const std::string type = type_of(step, "normalizer");
    if (type != "NFC") throw std::runtime_error("unsupported normalizer \"" + type + "\"");
    nfc = true;
  }
}

void Tokenizer::Impl::load_pre_tokenizer(const json& pre_tokenizer) {
  if (pre_tokenizer.is_null()) throw std::runtime_error("pre_tokenizer is null (want ByteLevel)");
  const std::vector<json> steps = flatten(pre_tokenizer, "pretokenizers", "pre_tokenizer");
  for (size_t i = 0; i < steps.size(); ++i) {
    const std::string type = type_of(steps[i], "pre_tokenizer");
    if (type == "ByteLevel" && i + 1 == steps.size()) {
      add_prefix_space = optional_field(steps[i], "add_prefix_space", true);
      if (optional_field(steps[i], "use_regex", true)) byte_level_regex.emplace(kGpt2Pattern);
    } else if (type == "Split") {
      const auto behavior = field(steps[i], "behavior", "pre_tokenizer.Split").get<std::string>();
      if (behavior != "Isolated" || optional_field(steps[i], "invert", false)) {
        throw std::runtime_error("unsupported Split behavior \"" + behavior +
                                 "\" (want Isolated, not inverted)");
      }
      const json& pattern = field(steps[i], "pattern", "pre_tokenizer.Split");
      if (pattern.contains("Regex")) {
        splits.emplace_back(pattern["Regex"].get<std::string>());
      } else {
        splits.emplace_back(
            field(pattern, "String", "pre_tokenizer.Split.pattern").get<std::string>(), true);
      }
    } else {
      throw std::runtime_error("unsupported pre_tokenizer \"" + type +
                               "\" (want Split steps ending in ByteLevel)");
    }
  }
  if (steps.empty() || type_of(steps.back(), "pre_tokenizer") != "ByteLevel") {
    throw std::runtime_error("pre_tokenizer must end with ByteLevel");
  }
}

Tokenizer Tokenizer::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("tokenizer " + path + ": cannot open the file");
  auto impl = std::make_shared<Impl>();
  try {
    const json j = json::parse(in);
    impl->load_model(field(j, "model", "tokenizer"));
    impl->load_normalizer(optional_field(j, "normalizer", json()));
    impl->load_added_tokens(optional_field(j, "added_tokens", json::array()));
    impl->special.resize(impl->tokens.size());
    for (auto& token : impl->added) {
      if (impl->nfc && token.normalized) token.content = nfc(token.content);
      std::string& first_bytes = impl->added_first_bytes[token.normalized];
      if (first_bytes.find(token.content[0]) == std::string::npos) first_bytes += token.content[0];
    }
    impl->load_pre_tokenizer(field(j, "pre_tokenizer", "tokenizer"));
    const json decoder = optional_field(j, "decoder", json());
    if (decoder.is_null()) throw std::runtime_error("decoder is null (want ByteLevel)");
    if (type_of(decoder, "decoder") != "ByteLevel") {
      throw std::runtime_error("unsupported decoder \"" + type_of(decoder, "decoder") +
                               "\" (want ByteLevel)");
    }
    const json post = optional_field(j, "post_processor", json());
    if (!post.is_null() && type_of(post, "post_processor") != "ByteLevel") {
      throw std::runtime_error("unsupported post_processor \"" + type_of(post, "post_processor") +
                               "\" (want null or ByteLevel)");
    }
  } catch (const std::exception& e) {
    throw std::runtime_error("tokenizer " + path + ": " + e.what());
  }
  Tokenizer tokenizer;
  tokenizer.impl_ = std::move(impl);
  return tokenizer;
}

// Splits text around the added tokens whose `normalized` flag equals `normalized`, like Hugging
// Face's Aho-Corasick pass: leftmost match first, then the longest at that position.
void Tokenizer::Impl::split_added(const std::string& text, bool normalized,
                                  std::vector<Piece>& out) const {
  const std::string& first_bytes = added_first_bytes[normalized];
  size_t done = 0;  // text[0, done) is in out
  for (size_t pos = 0; (pos = text.find_first_of(first_bytes, pos)) != std::string::npos;) {
    const AddedToken* best = nullptr;
    for (const AddedToken& token : added) {
      if (token.normalized == normalized &&
          (!best || token.content.size() > best->content.size()) &&
          text.compare(pos, token.content.size(), token.content) == 0) {
        best = &token;
      }
    }
    if (!best) {
      ++pos;
      continue;
    }
    size_t start = pos, stop = pos + best->content.size();
    pos = stop;
    if (best->single_word && ((start > 0 && word_char.matches_at(text, previous(text, start))) ||
                              (stop < text.size() && word_char.matches_at(text, stop)))) {
      continue;  // not a whole word
    }
    if (best->lstrip) {  // take in the white space before, back to the previous piece
      for (size_t before; start > done; start = before) {
        size_t i = before = previous(text, start);
        if (!is_white_space(decode_utf8(text, i))) break;
      }
    }
    if (best->rstrip) {  // take in the white space after
      for (size_t i = stop; i < text.size() && is_white_space(decode_utf8(text, i));) stop = i;
      pos = stop;
    }
    if (start > done) out.push_back({text.substr(done, start - done), -1});
    out.push_back({"", best->id});
    done = stop;
  }
  if (done < text.size()) out.push_back({text.substr(done), -1});
}

void Tokenizer::Impl::pre_tokenize_and_bpe(const std::string& text,
                                           std::vector<int32_t>& out) const {
  std::vector<std::string_view> pieces = {text}, next;
  for (const Regex& regex : splits) {
    next.clear();
    for (const std::string_view piece : pieces) regex.split(piece, next);
    pieces.swap(next);
  }
  std::string prefixed;
  for (const std::string_view piece : pieces) {
    std::string_view word = piece;
    if (add_prefix_space && piece[0] != ' ') {
      prefixed = " ";
      prefixed += piece;
      word = prefixed;
    }
    if (!byte_level_regex) {
      bpe(word, out);
      continue;
    }
    next.clear();
    byte_level_regex->split(word, next);
    for (const std::string_view w : next) bpe(w, out);
  }
}

// Byte-pair encoding of one pre-token: starting from its bytes' tokens, repeatedly merges the
// adjacent pair of lowest rank (the leftmost on ties) until none has a merge. A heap of candidate
// pairs keeps long words O(n log n); entries made stale by earlier merges are skipped.
void Tokenizer::Impl::bpe(std::string_view word, std::vector<int32_t>& out) const {
  if (word.size() == 1) {
    out.push_back(byte_ids[static_cast<uint8_t>(word[0])]);
    return;
  }
  if (ignore_merges) {
    std::string text;
    for (const char c : word) append_utf8(byte_chars[static_cast<uint8_t>(c)], text);
    if (const auto it = ids.find(text); it != ids.end()) {
      out.push_back(it->second);
      return;
    }
  }
  struct Symbol {
    int32_t id, prev, next;  // id -1: merged into the symbol before; prev/next -1: none
  };
  const int32_t n = static_cast<int32_t>(word.size());
  std::vector<Symbol> symbols(n);
  for (int32_t i = 0; i < n; ++i) {
    symbols[i] = {byte_ids[static_cast<uint8_t>(word[i])], i - 1, i + 1 < n ? i + 1 : -1};
  }
  using Candidate = std::pair<int32_t, int32_t>;  // (rank, position of the left symbol)
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> queue;
  const auto find_merge = [&](int32_t left) -> const Merge* {
    const int32_t right = symbols[left].next;
    if (right < 0) return nullptr;
    const auto it = merges.find(pair_key(symbols[left].id, symbols[right].id));
    return it == merges.end() ? nullptr : &it->second;
  };
  const auto push = [&](int32_t left) {
    if (const Merge* merge = find_merge(left)) queue.emplace(merge->rank, left);
  };
  for (int32_t i = 0; i + 1 < n; ++i) push(i);
  while (!queue.empty()) {
    const auto [rank, left] = queue.top();
    queue.pop();
    if (symbols[left].id < 0) continue;
    const Merge* merge = find_merge(left);
    if (!merge || merge->rank != rank) continue;  // the pair changed since it was queued
    const int32_t right = symbols[left].next;
    symbols[left].id = merge->id;
    symbols[left].next = symbols[right].next;
    symbols[right].id = -1;
    if (symbols[left].next >= 0) symbols[symbols[left].next].prev = left;
    if (symbols[left].prev >= 0) push(symbols[left].prev);
    push(left);
  }
  for (int32_t i = 0; i >= 0; i = symbols[i].next) out.push_back(symbols[i].id);
}

std::vector<int32_t> Tokenizer::encode(const std::string& text) const {
  const Impl& impl = *impl_;
  std::vector<int32_t> out;
  std::vector<Impl::Piece> raw, normalized;
  impl.split_added(valid_utf8(text), false, raw);
  for (Impl::Piece& piece : raw) {
    if (piece.id >= 0) {
      out.push_back(piece.id);
      continue;
    }
    normalized.clear();
    impl.split_added(impl.nfc ? nfc(piece.text) : piece.text, true, normalized);
    for (const Impl::Piece& sub : normalized) {
      if (sub.id >= 0) {
        out.push_back(sub.id);
      } else {
        impl.pre_tokenize_and_bpe(sub.text, out);
      }
    }
  }
  return out;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special) const {
  std::string bytes;
  for (const int32_t id : ids) {
    if (skip_special && is_special(id)) continue;
    const std::string& token = token_text(id);
    // Like Hugging Face's ByteLevel decoder, a token with a character outside the byte-level
    // alphabet (an added token such as " x") is copied as is.
    std::string token_bytes;
    for (size_t i = 0; i < token.size();) {
      const char32_t c = decode_utf8(token, i);
      if (c >= impl_->char_bytes.size() || impl_->char_bytes[c] < 0) {
        token_bytes = token;
        break;
      }
      token_bytes += static_cast<char>(impl_->char_bytes[c]);
    }
    bytes += token_bytes;
  }
  return valid_utf8(bytes);
}

std::optional<int32_t> Tokenizer::find_token(const std::string& token) const {
  const auto it = impl_->ids.find(token);
  if (it == impl_->ids.end()) return std::nullopt;
  return it->second;
}

int32_t Tokenizer::token_id(const std::string& token) const {
  if (const auto id = find_token(token)) return *id;
  throw std::out_of_range("tokenizer: unknown token \"" + token + "\"");
}

const std::string& Tokenizer::token_text(int32_t id) const {
  if (id < 0 || id >= vocab_size() || impl_->tokens[id].empty()) {
    throw std::out_of_range("tokenizer: no token has id " + std::to_string(id));
  }
  return impl_->tokens[id];
}

bool Tokenizer::is_special(int32_t id) const {
  return id >= 0 && id < vocab_size() && impl_->special[id];
}

int64_t Tokenizer::vocab_size() const { return static_cast<int64_t>(impl_->tokens.size()); }

}  // namespace mmi
