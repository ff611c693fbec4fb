// The tokenizer in builds without PCRE2 (its regex engine): every entry point says so clearly.
#include <stdexcept>

#include "models/tokenizer.h"

namespace mmi {
namespace {

[[noreturn]] void unavailable() {
  throw std::runtime_error(
      "this build of mmi has no tokenizer: PCRE2 development files (libpcre2-dev) were missing when it "
      "was configured");
}

}  // namespace

Tokenizer Tokenizer::load(const std::string&) { unavailable(); }
std::vector<int32_t> Tokenizer::encode(const std::string&) const { unavailable(); }
std::string Tokenizer::decode(const std::vector<int32_t>&, bool) const { unavailable(); }
std::optional<int32_t> Tokenizer::find_token(const std::string&) const { unavailable(); }
int32_t Tokenizer::token_id(const std::string&) const { unavailable(); }
const std::string& Tokenizer::token_text(int32_t) const { unavailable(); }
bool Tokenizer::is_special(int32_t) const { unavailable(); }
int64_t Tokenizer::vocab_size() const { unavailable(); }

}  // namespace mmi
