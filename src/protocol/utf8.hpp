// UTF-8 helpers shared by the protocol's parser (error messages that quote
// a character) and its serializer (escaping strings that must stay valid).
#pragma once

#include <cstddef>
#include <string_view>

namespace herald::protocol {

// Length of the valid UTF-8 sequence of 2..4 bytes starting at s[i], or 0
// when the bytes there are not one (ASCII, overlong, surrogate,
// > U+10FFFF, cut short).
size_t utf8_sequence_length(std::string_view s, size_t i);

}  // namespace herald::protocol
