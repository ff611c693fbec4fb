// UTF-8 repair and Unicode Normalization Form C, for the tokenizer's NFC normalizer.
#pragma once

#include <cstddef>
#include <string>

namespace mmi {

// The code point at s[i] (i < s.size()), moving i past it; U+FFFD for an ill-formed sequence, with
// i moved past its maximal invalid subpart.
char32_t decode_utf8(const std::string& s, size_t& i);
void append_utf8(char32_t code_point, std::string& out);

// `bytes` with every ill-formed UTF-8 sequence replaced by U+FFFD, one per maximal invalid subpart
// (the policy of Python's decode(errors="replace") and Rust's String::from_utf8_lossy).
std::string valid_utf8(const std::string& bytes);

// The NFC form of UTF-8 text (invalid sequences become U+FFFD first). Tables come from Python's
// unicodedata via scripts/gen_unicode_tables.py; Hangul syllables are handled algorithmically.
// Text whose code points are all below U+0300 is returned unchanged without decoding.
std::string nfc(const std::string& utf8);

}  // namespace mmi
