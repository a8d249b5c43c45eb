#pragma once
// UTF-8 checks, strict as RFC 3629 has it: no overlong forms, no surrogates, nothing
// above U+10FFFF. Everything runq hands out ends up in JSON, which must be valid UTF-8.
#include <cstddef>
#include <string>
#include <string_view>

namespace runq::util {

// Length (1-4) of the valid UTF-8 sequence starting at s[i], or 0 if none starts there.
std::size_t utf8_sequence_length(std::string_view s, std::size_t i);

bool is_valid_utf8(std::string_view s);

// Code points in `s`, which must be valid UTF-8 (it counts the bytes that do not
// continue a sequence).
std::size_t utf8_length(std::string_view s);

// `s` with every byte that does not belong to a valid sequence replaced by U+FFFD.
// Valid text comes back unchanged (and without a copy).
std::string to_valid_utf8(std::string s);

}  // namespace runq::util
