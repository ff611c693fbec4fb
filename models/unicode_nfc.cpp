#include "models/unicode_nfc.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <utility>
#include <vector>

namespace mmi {
namespace {

#include "models/unicode_tables.inc"

constexpr char32_t kInvalid = 0xFFFFFFFF;
constexpr char32_t kReplacement = 0xFFFD;

// Hangul syllables (Unicode 3.12): S = SBase + (L * VCount + V) * TCount + T.
constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr char32_t kLCount = 19, kVCount = 21, kTCount = 28, kSCount = kLCount * kVCount * kTCount;

bool between(uint8_t b, uint8_t lo, uint8_t hi) { return b >= lo && b <= hi; }

// Decodes the code point at s[i] and moves i past it; on ill-formed input returns kInvalid and
// moves i past the maximal invalid subpart (at least one byte).
char32_t next_code_point(const std::string& s, size_t& i) {
  const auto b0 = static_cast<uint8_t>(s[i++]);
  if (b0 < 0x80) return b0;
  int len;
  char32_t cp;
  uint8_t lo = 0x80, hi = 0xBF;  // the second byte's range excludes overlongs and surrogates
  if (between(b0, 0xC2, 0xDF)) {
    len = 2, cp = b0 & 0x1F;
  } else if (between(b0, 0xE0, 0xEF)) {
    len = 3, cp = b0 & 0x0F;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (between(b0, 0xF0, 0xF4)) {
    len = 4, cp = b0 & 0x07;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return kInvalid;
  }
  for (int k = 1; k < len; ++k, lo = 0x80, hi = 0xBF) {
    if (i >= s.size() || !between(static_cast<uint8_t>(s[i]), lo, hi)) return kInvalid;
    cp = (cp << 6) | (static_cast<uint8_t>(s[i++]) & 0x3F);
  }
  return cp;
}

// True when s is valid UTF-8 with every code point below U+0300 (one- or two-byte sequences with
// lead bytes C2..CB), i.e. text NFC leaves alone.
bool below_u0300(const std::string& s) {
  for (size_t i = 0; i < s.size(); ++i) {
    const auto b = static_cast<uint8_t>(s[i]);
    if (b < 0x80) continue;
    if (!between(b, 0xC2, 0xCB) || i + 1 == s.size() ||
        (static_cast<uint8_t>(s[i + 1]) & 0xC0) != 0x80)
      return false;
    ++i;
  }
  return true;
}

// Index of the first row (Stride values wide) of a sorted table for which before(row) is false.
template <size_t Stride, size_t N, typename Before>
size_t first_row(const uint32_t (&table)[N], Before before) {
  size_t lo = 0, hi = N / Stride;
  while (lo < hi) {
    const size_t mid = (lo + hi) / 2;
    if (before(table + mid * Stride)) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo;
}

uint32_t combining_class(char32_t cp) {
  if (cp < 0x300) return 0;
  const size_t r = first_row<3>(kCccRanges, [cp](const uint32_t* row) { return row[1] < cp; });
  return 3 * r < std::size(kCccRanges) && kCccRanges[3 * r] <= cp ? kCccRanges[3 * r + 2] : 0;
}

void decompose(char32_t cp, std::vector<char32_t>& out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    const char32_t s = cp - kSBase;
    out.push_back(kLBase + s / (kVCount * kTCount));
    out.push_back(kVBase + s % (kVCount * kTCount) / kTCount);
    if (s % kTCount != 0) out.push_back(kTBase + s % kTCount);
    return;
  }
  if (cp >= 0xC0) {  // nothing below U+00C0 decomposes
    const size_t r = first_row<2>(kDecompIndex, [cp](const uint32_t* row) { return row[0] < cp; });
    if (kDecompIndex[2 * r] == cp) {  // the sentinel row keeps 2 * r + 3 in range
      out.insert(out.end(), kDecompData + kDecompIndex[2 * r + 1],
                 kDecompData + kDecompIndex[2 * r + 3]);
      return;
    }
  }
  out.push_back(cp);
}

// The primary composite of a starter and a following code point, or 0.
char32_t compose(char32_t a, char32_t b) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount)
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase &&
      b < kTBase + kTCount)
    return a + (b - kTBase);
  const size_t r = first_row<3>(kCompositions, [a, b](const uint32_t* row) {
    return row[0] < a || (row[0] == a && row[1] < b);
  });
  const bool found = 3 * r < std::size(kCompositions) && kCompositions[3 * r] == a &&
                     kCompositions[3 * r + 1] == b;
  return found ? kCompositions[3 * r + 2] : 0;
}

}  // namespace

char32_t decode_utf8(const std::string& s, size_t& i) {
  const char32_t cp = next_code_point(s, i);
  return cp == kInvalid ? kReplacement : cp;
}

void append_utf8(char32_t cp, std::string& out) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::string valid_utf8(const std::string& bytes) {
  std::string out;
  size_t copied = 0;  // bytes[0, copied) are accounted for in out
  for (size_t i = 0; i < bytes.size();) {
    const size_t start = i;
    if (next_code_point(bytes, i) == kInvalid) {
      out.append(bytes, copied, start - copied);
      append_utf8(kReplacement, out);
      copied = i;
    }
  }
  if (copied == 0) return bytes;
  out.append(bytes, copied, std::string::npos);
  return out;
}

std::string nfc(const std::string& utf8) {
  if (below_u0300(utf8)) return utf8;
  // Full canonical decomposition.
  std::vector<char32_t> decomposed;
  decomposed.reserve(utf8.size());
  for (size_t i = 0; i < utf8.size();) decompose(decode_utf8(utf8, i), decomposed);
  // Canonical ordering: each run of non-starters stably sorted by combining class.
  std::vector<std::pair<uint32_t, char32_t>> chars(decomposed.size());  // (class, code point)
  for (size_t i = 0; i < chars.size(); ++i) {
    chars[i] = {combining_class(decomposed[i]), decomposed[i]};
  }
  const auto is_starter = [](const auto& c) { return c.first == 0; };
  const auto by_class = [](const auto& a, const auto& b) { return a.first < b.first; };
  for (auto run = chars.begin(); run != chars.end();) {
    const auto end = std::find_if(run, chars.end(), is_starter);
    std::stable_sort(run, end, by_class);
    run = end == chars.end() ? end : end + 1;
  }
  // Canonical composition (Unicode 3.11): a code point joins the last starter unless a code point
  // in between has the same or a higher class, or is itself a starter.
  size_t kept = 0, starter = 0;
  bool have_starter = false;
  uint32_t last_class = 0;  // of the last code point kept
  for (size_t i = 0; i < chars.size(); ++i) {
    const auto [cls, cp] = chars[i];  // a copy: slot `kept` may be this one
    if (have_starter && (last_class == 0 || last_class < cls)) {
      if (const char32_t composite = compose(chars[starter].second, cp)) {
        chars[starter].second = composite;
        continue;
      }
    }
    if (cls == 0) starter = kept, have_starter = true;
    last_class = cls;
    chars[kept++] = {cls, cp};
  }
  std::string out;
  out.reserve(utf8.size());
  for (size_t i = 0; i < kept; ++i) append_utf8(chars[i].second, out);
  return out;
}

}  // namespace mmi
