// TypeScript spelling for `herald typegen`: string literals, property keys,
// type names, JSDoc comments and indentation of generated type text. Pure functions on
// strings; they know nothing about JSON Schema.
#pragma once

#include <string>
#include <string_view>

namespace herald::typegen {

// A single-quoted TypeScript string literal whose value is `s` (valid UTF-8).
std::string ts_string(std::string_view s);

// `key` as an object-type member name: bare when it is an identifier,
// otherwise a quoted string literal.
std::string ts_property_key(std::string_view key);

// A type name made of the letters and digits of `s`, each run capitalized:
// "chat.message" -> "ChatMessage", "user_id" -> "UserId"; never empty and
// never starting with a digit.
std::string ts_type_name(std::string_view s);

// A JSDoc block for `text` (may be multi-line), ending with a newline; ""
// when `text` is empty. A `*/` inside the text cannot end the comment.
std::string ts_jsdoc(std::string_view text);

// `text` with `spaces` spaces inserted after every newline, so a multi-line
// type nests inside an enclosing member line.
std::string ts_indent(std::string_view text, size_t spaces);

}  // namespace herald::typegen
