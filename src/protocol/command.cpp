// CommandParser: turns one untrusted client message (protocol v1, see
// docs/protocol.md) into a Command, or into the CommandError to answer with.
//
// How it reads a message, in one forward pass with simdjson's on-demand API:
//  - the text is copied into a reused, padded scratch buffer;
//  - every top-level field is visited once; known fields are decoded (strings,
//    integers, booleans, the `recover` object), `id`, `data` and every field
//    the parser does not use are taken as raw JSON slices;
//  - everything simdjson does not check on its own is checked here: raw
//    slices and number/boolean tokens go through a strict RFC 8259 validator
//    (the on-demand API skips unread values without validating them), and no
//    content may follow the top-level object. Keys and strings the parser
//    decodes are validated by simdjson itself (UTF-8 and control characters
//    in stage 1, escapes and surrogate pairs when unescaping). So a message
//    is accepted only if it is valid JSON as a whole: `data` is spliced into
//    events as it was sent, so it must never be malformed.
//  - JSON errors stop the pass (invalid_json); field errors are decided after
//    it, in a fixed order: `id` first (so replies can echo it), then `type`,
//    then the command's own fields in the order of docs/protocol.md.
//
// Decisions where the draft left room (docs/protocol.md, "Parsing rules"):
// duplicate keys are rejected for the fields a command uses (bad_request
// "<field>: duplicate field") and ignored elsewhere; `null` is not accepted in
// place of an absent optional field; strings must be valid Unicode (escaped
// surrogates must pair up); nesting is limited by ParserLimits::max_depth.
#include "protocol/command.hpp"

#include <simdjson.h>

#include <algorithm>
#include <array>
#include <bitset>
#include <cstring>
#include <new>

#include "protocol/utf8.hpp"

namespace herald::protocol {

namespace {

namespace od = simdjson::ondemand;

constexpr size_t kMaxDepthCap = 1024;

bool is_ws(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

std::string_view trim_right(std::string_view s) {
  while (!s.empty() && is_ws(s.back())) s.remove_suffix(1);
  return s;
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Strict RFC 8259 validator for a slice that must hold exactly one JSON
// value (surrounding whitespace allowed). Iterative, so hostile nesting
// costs no stack; `max_depth` bounds arrays plus objects (<= kMaxDepthCap).
// UTF-8 is not checked here: simdjson validated the whole message already.
class JsonValidator {
 public:
  JsonValidator(std::string_view s, size_t max_depth)
      : p_(s.data()), end_(s.data() + s.size()), max_depth_(std::min(max_depth, kMaxDepthCap)) {}

  bool run() {
    // in_array[d]: whether the container at depth d is an array. Written
    // before it is read, so it needs no initialization.
    bool in_array[kMaxDepthCap];
    size_t depth = 0;
    skip_ws();
    for (;;) {
      // A value starts at p_.
      if (p_ == end_) return false;
      const char c = *p_;
      if (c == '{' || c == '[') {
        if (depth == max_depth_) return false;
        const bool array = c == '[';
        in_array[depth++] = array;
        ++p_;
        skip_ws();
        if (p_ == end_) return false;
        if (*p_ == (array ? ']' : '}')) {
          ++p_;
          --depth;
        } else {
          if (!array && !key_and_colon()) return false;
          continue;  // parse the first member's value
        }
      } else if (c == '"') {
        if (!string()) return false;
      } else if (c == 't') {
        if (!literal("true")) return false;
      } else if (c == 'f') {
        if (!literal("false")) return false;
      } else if (c == 'n') {
        if (!literal("null")) return false;
      } else {
        if (!number()) return false;
      }
      // After a complete value: close containers or move to the next member.
      for (;;) {
        skip_ws();
        if (depth == 0) return p_ == end_;
        if (p_ == end_) return false;
        const bool array = in_array[depth - 1];
        if (*p_ == ',') {
          ++p_;
          skip_ws();
          if (!array && !key_and_colon()) return false;
          break;  // parse the next value
        }
        if (*p_ != (array ? ']' : '}')) return false;
        ++p_;
        --depth;
      }
    }
  }

  // Validates one number token (and nothing after it).
  static bool is_number(std::string_view s) {
    JsonValidator v(s, 0);
    return v.number() && v.p_ == v.end_;
  }

 private:
  void skip_ws() {
    while (p_ != end_ && is_ws(*p_)) ++p_;
  }

  bool key_and_colon() {
    if (p_ == end_ || *p_ != '"' || !string()) return false;
    skip_ws();
    if (p_ == end_ || *p_ != ':') return false;
    ++p_;
    skip_ws();
    return true;
  }

  bool literal(std::string_view word) {
    if (static_cast<size_t>(end_ - p_) < word.size() ||
        std::memcmp(p_, word.data(), word.size()) != 0) {
      return false;
    }
    p_ += word.size();
    return true;
  }

  bool digits() {
    if (p_ == end_ || !is_digit(*p_)) return false;
    while (p_ != end_ && is_digit(*p_)) ++p_;
    return true;
  }

  bool number() {
    if (p_ != end_ && *p_ == '-') ++p_;
    if (p_ == end_) return false;
    if (*p_ == '0') {
      ++p_;
    } else if (!digits()) {
      return false;
    }
    if (p_ != end_ && *p_ == '.') {
      ++p_;
      if (!digits()) return false;
    }
    if (p_ != end_ && (*p_ == 'e' || *p_ == 'E')) {
      ++p_;
      if (p_ != end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      if (!digits()) return false;
    }
    return true;
  }

  bool hex4(const char* at, unsigned& out) const {
    if (end_ - at < 4) return false;
    out = 0;
    for (int i = 0; i < 4; ++i) {
      const int h = hex_value(at[i]);
      if (h < 0) return false;
      out = out * 16 + static_cast<unsigned>(h);
    }
    return true;
  }

  bool string() {
    ++p_;  // opening quote
    for (;;) {
      if (p_ == end_) return false;
      const auto c = static_cast<unsigned char>(*p_);
      if (c == '"') {
        ++p_;
        return true;
      }
      if (c < 0x20) return false;
      if (c != '\\') {
        ++p_;
        continue;
      }
      ++p_;
      if (p_ == end_) return false;
      switch (*p_) {
        case '"':
        case '\\':
        case '/':
        case 'b':
        case 'f':
        case 'n':
        case 'r':
        case 't':
          ++p_;
          break;
        case 'u': {
          unsigned cp = 0;
          if (!hex4(p_ + 1, cp)) return false;
          p_ += 5;
          if (cp >= 0xDC00 && cp <= 0xDFFF) return false;  // lone low surrogate
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            unsigned low = 0;
            if (end_ - p_ < 6 || p_[0] != '\\' || p_[1] != 'u' || !hex4(p_ + 2, low) ||
                low < 0xDC00 || low > 0xDFFF) {
              return false;
            }
            p_ += 6;
          }
          break;
        }
        default:
          return false;
      }
    }
  }

  const char* p_;
  const char* end_;
  size_t max_depth_;
};

bool valid_json(std::string_view s, size_t max_depth) {
  return JsonValidator(s, max_depth).run();
}

// The fields the parser knows. Values index Pass::got.
enum Field : unsigned {
  f_id,
  f_type,
  f_channel,
  f_event,
  f_data,
  f_token,
  f_history,
  f_recover,
  f_limit,
  f_before,
  f_after,
  f_ephemeral,
  f_idempotency_key,
  f_method,
  f_count,
  f_unknown = f_count,
};

constexpr std::array<std::string_view, f_count> kFieldNames = {
    "id",      "type",  "channel", "event", "data",      "token",           "history",
    "recover", "limit", "before",  "after", "ephemeral", "idempotency_key", "method",
};

Field lookup_field(std::string_view key) {
  switch (key.size()) {
    case 2:
      if (key == "id") return f_id;
      break;
    case 4:
      if (key == "type") return f_type;
      if (key == "data") return f_data;
      break;
    case 5:
      if (key == "event") return f_event;
      if (key == "token") return f_token;
      if (key == "limit") return f_limit;
      if (key == "after") return f_after;
      break;
    case 6:
      if (key == "method") return f_method;
      if (key == "before") return f_before;
      break;
    case 7:
      if (key == "channel") return f_channel;
      if (key == "history") return f_history;
      if (key == "recover") return f_recover;
      break;
    case 9:
      if (key == "ephemeral") return f_ephemeral;
      break;
    case 15:
      if (key == "idempotency_key") return f_idempotency_key;
      break;
    default:
      break;
  }
  return f_unknown;
}

constexpr std::array<std::string_view, 12> kTypeNames = {
    "connect", "subscribe", "unsubscribe", "publish",        "history", "presence",
    "pong",    "refresh",   "sub_refresh", "presence_stats", "destroy", "rpc",
};

bool lookup_type(std::string_view name, CommandType& out) {
  for (size_t i = 0; i < kTypeNames.size(); ++i) {
    if (kTypeNames[i] == name) {
      out = static_cast<CommandType>(i);
      return true;
    }
  }
  return false;
}

enum class Got : uint8_t { absent, ok, wrong };

enum class RecoverState : uint8_t {
  ok,
  not_object,
  epoch_bad,   // missing or not a string
  offset_bad,  // missing or not a non-negative integer
  epoch_dup,
  offset_dup,
};

// What one pass over a message found. String views point into the scratch
// buffer or simdjson's string buffer: valid until the next parse.
struct Pass {
  std::array<Got, f_count> got{};
  std::bitset<f_count> dup;
  std::string_view id_raw, type, channel, event, data, token, epoch, idempotency_key, method;
  uint64_t history = 0, limit = 0, before = 0, after = 0, offset = 0;
  bool ephemeral = false;
  RecoverState recover = RecoverState::ok;
};

// Result of reading one value: a JSON error ends the pass.
enum class Read { ok, wrong, json_error };

// The raw text of a value, whatever its type, validated as JSON nested at
// most `depth_left` more levels.
Read raw_value(od::value& v, size_t depth_left, std::string_view& out) {
  od::json_type t;
  if (v.type().get(t) != simdjson::SUCCESS) return Read::json_error;
  if (t == od::json_type::object) {
    od::object o;
    if (v.get_object().get(o) != simdjson::SUCCESS || o.raw_json().get(out) != simdjson::SUCCESS) {
      return Read::json_error;
    }
  } else if (t == od::json_type::array) {
    od::array a;
    if (v.get_array().get(a) != simdjson::SUCCESS || a.raw_json().get(out) != simdjson::SUCCESS) {
      return Read::json_error;
    }
  } else {
    out = v.raw_json_token();
    if (t == od::json_type::string) {
      // Consume it: simdjson's skip of an unread string followed by ':'
      // takes it for a key, which would let `{"a":"b":"c"}}` through.
      od::raw_json_string unused;
      if (v.get_raw_json_string().get(unused) != simdjson::SUCCESS) return Read::json_error;
    }
  }
  out = trim_right(out);
  return valid_json(out, depth_left) ? Read::ok : Read::json_error;
}

// Skips a value the caller does not use, checking that it is valid JSON.
Read skip_value(od::value& v, size_t depth_left) {
  std::string_view raw;
  return raw_value(v, depth_left, raw);
}

Read read_string(od::value& v, size_t depth_left, std::string_view& out) {
  od::json_type t;
  if (v.type().get(t) != simdjson::SUCCESS) return Read::json_error;
  if (t != od::json_type::string) {
    return skip_value(v, depth_left) == Read::ok ? Read::wrong : Read::json_error;
  }
  // No validator pass needed: stage 1 rejected raw control characters and
  // invalid UTF-8, and get_string rejects bad escapes and unpaired
  // surrogates, exactly as JsonValidator::string does.
  return v.get_string().get(out) == simdjson::SUCCESS ? Read::ok : Read::json_error;
}

Read read_uint(od::value& v, size_t depth_left, uint64_t& out) {
  od::json_type t;
  if (v.type().get(t) != simdjson::SUCCESS) return Read::json_error;
  if (t != od::json_type::number) {
    return skip_value(v, depth_left) == Read::ok ? Read::wrong : Read::json_error;
  }
  if (!JsonValidator::is_number(trim_right(v.raw_json_token()))) return Read::json_error;
  // Negative, fractional, exponent or > 2^64-1: valid JSON, wrong value.
  return v.get_uint64().get(out) == simdjson::SUCCESS ? Read::ok : Read::wrong;
}

Read read_bool(od::value& v, size_t depth_left, bool& out) {
  od::json_type t;
  if (v.type().get(t) != simdjson::SUCCESS) return Read::json_error;
  if (t != od::json_type::boolean) {
    return skip_value(v, depth_left) == Read::ok ? Read::wrong : Read::json_error;
  }
  if (!valid_json(trim_right(v.raw_json_token()), 0)) return Read::json_error;
  return v.get_bool().get(out) == simdjson::SUCCESS ? Read::ok : Read::json_error;
}

// `id`: a number or a string, kept as its raw token.
Read read_id(od::value& v, size_t depth_left, std::string_view& out) {
  od::json_type t;
  if (v.type().get(t) != simdjson::SUCCESS) return Read::json_error;
  if (t != od::json_type::number && t != od::json_type::string) {
    return skip_value(v, depth_left) == Read::ok ? Read::wrong : Read::json_error;
  }
  return raw_value(v, 0, out);
}

// `recover`: {"epoch": string, "offset": non-negative integer}; other keys
// ignored. Returns json_error only for malformed JSON; shape problems are
// left in pass.recover.
Read read_recover(od::value& v, size_t depth_left, Pass& pass) {
  od::json_type t;
  if (v.type().get(t) != simdjson::SUCCESS) return Read::json_error;
  if (t != od::json_type::object) {
    pass.recover = RecoverState::not_object;
    return skip_value(v, depth_left) == Read::ok ? Read::wrong : Read::json_error;
  }
  if (depth_left == 0) return Read::json_error;
  od::object obj;
  if (v.get_object().get(obj) != simdjson::SUCCESS) return Read::json_error;
  Got epoch = Got::absent, offset = Got::absent;
  bool epoch_dup = false, offset_dup = false;
  for (auto item : obj) {
    od::field field;
    if (std::move(item).get(field) != simdjson::SUCCESS) return Read::json_error;
    std::string_view key;
    if (field.unescaped_key().get(key) != simdjson::SUCCESS) return Read::json_error;
    od::value& fv = field.value();
    Read r;
    if (key == "epoch" && epoch == Got::absent) {
      r = read_string(fv, depth_left - 1, pass.epoch);
      epoch = r == Read::ok ? Got::ok : Got::wrong;
    } else if (key == "offset" && offset == Got::absent) {
      r = read_uint(fv, depth_left - 1, pass.offset);
      offset = r == Read::ok ? Got::ok : Got::wrong;
    } else {
      epoch_dup |= key == "epoch";
      offset_dup |= key == "offset";
      r = skip_value(fv, depth_left - 1);
    }
    if (r == Read::json_error) return r;
  }
  if (epoch_dup) {
    pass.recover = RecoverState::epoch_dup;
  } else if (epoch != Got::ok) {
    pass.recover = RecoverState::epoch_bad;
  } else if (offset_dup) {
    pass.recover = RecoverState::offset_dup;
  } else if (offset != Got::ok) {
    pass.recover = RecoverState::offset_bad;
  } else {
    pass.recover = RecoverState::ok;
    return Read::ok;
  }
  return Read::wrong;
}

// Reads one top-level field's value into `pass`.
Read read_field(Field f, od::value& v, size_t depth_left, Pass& pass) {
  switch (f) {
    case f_id:
      return read_id(v, depth_left, pass.id_raw);
    case f_type:
      return read_string(v, depth_left, pass.type);
    case f_channel:
      return read_string(v, depth_left, pass.channel);
    case f_event:
      return read_string(v, depth_left, pass.event);
    case f_token:
      return read_string(v, depth_left, pass.token);
    case f_idempotency_key:
      return read_string(v, depth_left, pass.idempotency_key);
    case f_method:
      return read_string(v, depth_left, pass.method);
    case f_data:
      return raw_value(v, depth_left, pass.data);
    case f_history:
      return read_uint(v, depth_left, pass.history);
    case f_limit:
      return read_uint(v, depth_left, pass.limit);
    case f_before:
      return read_uint(v, depth_left, pass.before);
    case f_after:
      return read_uint(v, depth_left, pass.after);
    case f_ephemeral:
      return read_bool(v, depth_left, pass.ephemeral);
    case f_recover:
      return read_recover(v, depth_left, pass);
    case f_unknown:
      break;
  }
  return skip_value(v, depth_left);
}

// Appends at most `max` bytes of `s` without splitting a UTF-8 sequence
// (`s` is valid UTF-8: it came out of simdjson), adding "..." when cut.
void append_truncated(std::string& out, std::string_view s, size_t max) {
  if (s.size() <= max) {
    out.append(s);
    return;
  }
  size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  out.append(s.substr(0, n));
  out.append("...");
}

// "'!' at 3", "'é' at 3" or "byte 0x01 at 3" for the character at s[i].
void describe_char(std::string& out, std::string_view s, size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  size_t len = 0;
  if (c >= 0x20 && c < 0x7F) {
    len = 1;
  } else if (c >= 0x80) {
    len = utf8_sequence_length(s, i);
  }
  if (len > 0) {
    out += "character '";
    out.append(s.substr(i, len));
    out += '\'';
  } else {
    static constexpr char kHex[] = "0123456789ABCDEF";
    out += "byte 0x";
    out += kHex[c >> 4];
    out += kHex[c & 0xF];
  }
  out += " at ";
  out += std::to_string(i);
}

using CharTable = std::array<bool, 256>;

constexpr CharTable make_table(std::string_view extra) {
  CharTable t{};
  for (int c = 'a'; c <= 'z'; ++c) t[static_cast<size_t>(c)] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t[static_cast<size_t>(c)] = true;
  for (int c = '0'; c <= '9'; ++c) t[static_cast<size_t>(c)] = true;
  for (char c : extra) t[static_cast<unsigned char>(c)] = true;
  return t;
}

constexpr CharTable kChannelChars = make_table("_-:.@=/#,");
constexpr CharTable kEventChars = make_table("_-.:");

std::string check_name(std::string_view field, std::string_view name, size_t max_length,
                       const CharTable& table, std::string_view allowed) {
  std::string msg;
  if (name.empty()) {
    msg.append(field).append(": must not be empty");
    return msg;
  }
  if (name.size() > max_length) {
    msg.append(field).append(": too long (max ").append(std::to_string(max_length));
    msg.append(" bytes)");
    return msg;
  }
  for (size_t i = 0; i < name.size(); ++i) {
    if (!table[static_cast<unsigned char>(name[i])]) {
      msg.append(field).append(": invalid ");
      describe_char(msg, name, i);
      msg.append("; allowed: letters, digits and ").append(allowed);
      return msg;
    }
  }
  return msg;
}

// Field checks after the pass. Each returns false and fills `err` on error.
class Checker {
 public:
  Checker(const Pass& pass, CommandError& err) : pass_(pass), err_(err) {}

  bool fail(std::string message) {
    err_.code = ErrorCode::bad_request;
    err_.message = std::move(message);
    return false;
  }

  bool not_duplicated(Field f) {
    if (!pass_.dup[f]) return true;
    return fail(std::string(kFieldNames[f]) + ": duplicate field");
  }

  bool required_string(Field f, std::string_view value, std::string& dst) {
    if (!not_duplicated(f)) return false;
    if (pass_.got[f] != Got::ok) return fail(std::string(kFieldNames[f]) + ": required string");
    dst.assign(value);
    return true;
  }

  bool optional_string(Field f, std::string_view value, std::string& dst) {
    if (!not_duplicated(f)) return false;
    if (pass_.got[f] == Got::wrong) return fail(std::string(kFieldNames[f]) + ": must be a string");
    if (pass_.got[f] == Got::ok) dst.assign(value);
    return true;
  }

  bool optional_uint(Field f, uint64_t value, std::optional<uint64_t>& dst) {
    if (!not_duplicated(f)) return false;
    if (pass_.got[f] == Got::wrong) {
      return fail(std::string(kFieldNames[f]) + ": must be a non-negative integer");
    }
    if (pass_.got[f] == Got::ok) dst = value;
    return true;
  }

 private:
  const Pass& pass_;
  CommandError& err_;
};

}  // namespace

std::string_view to_string(CommandType type) {
  const auto i = static_cast<size_t>(type);
  return i < kTypeNames.size() ? kTypeNames[i] : std::string_view("unknown");
}

std::string check_channel_name(std::string_view name, size_t max_length) {
  return check_name("channel", name, max_length, kChannelChars, "_-:.@=/#,");
}

std::string check_event_name(std::string_view name, size_t max_length) {
  return check_name("event", name, max_length, kEventChars, "_-.:");
}

std::string check_idempotency_key(std::string_view key) {
  return check_name("idempotency_key", key, kMaxIdempotencyKeyLength, kEventChars, "_-.:");
}

struct CommandParser::Impl {
  od::parser parser;
  std::unique_ptr<char[]> buffer;  // the message, followed by SIMDJSON_PADDING bytes
  size_t capacity = 0;

  std::variant<Command, CommandError> parse(std::string_view text,
                                            std::optional<CommandType> implied,
                                            const ParserLimits& limits);
};

CommandParser::CommandParser(ParserLimits limits)
    : impl_(std::make_unique<Impl>()), limits_(limits) {
  limits_.max_depth = std::clamp<size_t>(limits_.max_depth, 1, kMaxDepthCap);
}

CommandParser::~CommandParser() = default;

std::variant<Command, CommandError> CommandParser::parse(std::string_view text) {
  try {
    return impl_->parse(text, std::nullopt, limits_);
  } catch (const std::bad_alloc&) {
    return CommandError{ErrorCode::internal, "out of memory", {}};
  }
}

std::variant<Command, CommandError> CommandParser::parse_as(CommandType type,
                                                            std::string_view text) {
  try {
    return impl_->parse(text, type, limits_);
  } catch (const std::bad_alloc&) {
    return CommandError{ErrorCode::internal, "out of memory", {}};
  }
}

std::variant<Command, CommandError> CommandParser::Impl::parse(std::string_view text,
                                                               std::optional<CommandType> implied,
                                                               const ParserLimits& limits) {
  CommandError err;
  err.code = ErrorCode::invalid_json;

  // Copy into the padded scratch buffer (simdjson reads past the end).
  const size_t needed = text.size() + simdjson::SIMDJSON_PADDING;
  if (needed > capacity) {
    const size_t grown = std::max<size_t>({needed, capacity * 2, 4096});
    buffer = std::make_unique<char[]>(grown);
    capacity = grown;
  }
  if (!text.empty()) std::memcpy(buffer.get(), text.data(), text.size());
  std::memset(buffer.get() + text.size(), 0, simdjson::SIMDJSON_PADDING);

  od::document doc;
  od::object obj;
  simdjson::error_code code = parser.iterate(buffer.get(), text.size(), capacity).get(doc);
  if (code == simdjson::SUCCESS) code = doc.get_object().get(obj);
  if (code != simdjson::SUCCESS) {
    switch (code) {
      case simdjson::INCORRECT_TYPE:
        err.message = "invalid JSON: a message must be a JSON object";
        break;
      case simdjson::UTF8_ERROR:
        err.message = "invalid JSON: not valid UTF-8";
        break;
      case simdjson::UNESCAPED_CHARS:
        err.message = "invalid JSON: control character in a string";
        break;
      default:
        err.message = "invalid JSON";
        break;
    }
    return err;
  }

  Pass pass;
  const size_t depth_left = limits.max_depth - 1;  // below the command object
  for (auto item : obj) {
    od::field field;
    std::string_view key;
    if (std::move(item).get(field) != simdjson::SUCCESS ||
        field.unescaped_key().get(key) != simdjson::SUCCESS) {
      err.message = "invalid JSON";
      return err;
    }
    const Field f = lookup_field(key);
    od::value& value = field.value();
    Read r;
    if (f != f_unknown && pass.got[f] != Got::absent) {
      pass.dup.set(f);  // the first occurrence is kept for echoing `id`
      r = skip_value(value, depth_left);
    } else {
      r = read_field(f, value, depth_left, pass);
      if (f != f_unknown && r != Read::json_error) {
        pass.got[f] = r == Read::ok ? Got::ok : Got::wrong;
      }
    }
    if (r == Read::json_error) {
      err.message = "invalid JSON in field '";
      append_truncated(err.message, key, 64);
      err.message += '\'';
      return err;
    }
    if (pass.got[f_id] == Got::ok && err.id.empty()) err.id.assign(pass.id_raw);
  }
  // Nothing may follow the object (simdjson stops at its closing brace).
  const char* trailing = nullptr;
  if (doc.current_location().get(trailing) == simdjson::SUCCESS) {
    err.message = "invalid JSON: content after the message object";
    return err;
  }

  // Field rules, `id` first so that every later error can echo it.
  err.code = ErrorCode::bad_request;
  if (pass.got[f_id] == Got::wrong) {
    err.id.clear();
    err.message = "id: must be a number or a string";
    return err;
  }
  Checker check(pass, err);
  if (!check.not_duplicated(f_id)) return err;

  Command cmd;
  if (implied) {
    cmd.type = *implied;
  } else {
    if (!check.not_duplicated(f_type)) return err;
    if (pass.got[f_type] != Got::ok) {
      err.message = "type: required string";
      return err;
    }
    if (!lookup_type(pass.type, cmd.type)) {
      err.code = ErrorCode::unknown_type;
      err.message = "unknown type '";
      append_truncated(err.message, pass.type, 64);
      err.message +=
          "'; expected connect, subscribe, unsubscribe, publish, history, presence, "
          "presence_stats, destroy, pong, refresh, sub_refresh or rpc";
      return err;
    }
  }
  cmd.id.assign(pass.id_raw);

  auto channel = [&]() {
    if (!check.required_string(f_channel, pass.channel, cmd.channel)) return false;
    std::string why = check_channel_name(cmd.channel, limits.max_channel_length);
    return why.empty() || check.fail(std::move(why));
  };

  bool ok = true;
  switch (cmd.type) {
    case CommandType::connect:
      ok = check.optional_string(f_token, pass.token, cmd.token) && check.not_duplicated(f_data);
      if (ok && pass.got[f_data] == Got::ok) cmd.data.assign(pass.data);
      break;
    case CommandType::subscribe:
      ok = channel() && check.optional_uint(f_history, pass.history, cmd.history) &&
           check.not_duplicated(f_recover);
      if (ok && pass.got[f_recover] != Got::absent) {
        switch (pass.recover) {
          case RecoverState::ok:
            cmd.recover = RecoverPosition{std::string(pass.epoch), pass.offset};
            break;
          case RecoverState::not_object:
            ok = check.fail("recover: must be an object {\"epoch\": string, \"offset\": integer}");
            break;
          case RecoverState::epoch_bad:
            ok = check.fail("recover.epoch: required string");
            break;
          case RecoverState::offset_bad:
            ok = check.fail("recover.offset: required non-negative integer");
            break;
          case RecoverState::epoch_dup:
            ok = check.fail("recover.epoch: duplicate field");
            break;
          case RecoverState::offset_dup:
            ok = check.fail("recover.offset: duplicate field");
            break;
        }
      }
      ok = ok && check.optional_string(f_token, pass.token, cmd.token) &&
           check.not_duplicated(f_data);
      if (ok && pass.got[f_data] == Got::ok) cmd.data.assign(pass.data);  // for the subscribe hook
      break;
    case CommandType::unsubscribe:
    case CommandType::presence:
    case CommandType::presence_stats:
      ok = channel();
      break;
    case CommandType::destroy: {
      ok = channel() && check.optional_string(f_event, pass.event, cmd.event);
      if (!ok) break;
      if (pass.got[f_event] == Got::ok) {
        std::string why = check_event_name(cmd.event, limits.max_event_length);
        if (!why.empty()) {
          ok = check.fail(std::move(why));
          break;
        }
      }
      ok = check.not_duplicated(f_data);
      if (ok && pass.got[f_data] == Got::ok) cmd.data.assign(pass.data);
      if (ok && !cmd.data.empty() && cmd.event.empty())
        ok = check.fail("data: needs an event (the final event's name)");
      break;
    }
    case CommandType::publish: {
      ok = channel() && check.required_string(f_event, pass.event, cmd.event);
      if (!ok) break;
      std::string why = check_event_name(cmd.event, limits.max_event_length);
      if (!why.empty()) {
        ok = check.fail(std::move(why));
        break;
      }
      ok = check.not_duplicated(f_data);
      if (!ok) break;
      if (pass.got[f_data] != Got::ok) {
        ok = check.fail("data: required (any JSON value)");
        break;
      }
      cmd.data.assign(pass.data);
      ok = check.not_duplicated(f_ephemeral);
      if (ok && pass.got[f_ephemeral] == Got::wrong)
        ok = check.fail("ephemeral: must be a boolean");
      if (ok) cmd.ephemeral = pass.got[f_ephemeral] == Got::ok && pass.ephemeral;
      ok =
          ok && check.optional_string(f_idempotency_key, pass.idempotency_key, cmd.idempotency_key);
      if (ok && pass.got[f_idempotency_key] == Got::ok) {
        std::string why = check_idempotency_key(cmd.idempotency_key);
        if (why.empty() && cmd.ephemeral)
          why = "idempotency_key: not allowed on ephemeral events (they are never stored)";
        if (!why.empty()) ok = check.fail(std::move(why));
      }
      break;
    }
    case CommandType::history:
      ok = channel() && check.optional_uint(f_limit, pass.limit, cmd.limit) &&
           check.optional_uint(f_before, pass.before, cmd.before) &&
           check.optional_uint(f_after, pass.after, cmd.after);
      break;
    case CommandType::refresh:
      ok = check.required_string(f_token, pass.token, cmd.token);
      break;
    case CommandType::sub_refresh:
      ok = channel() && check.required_string(f_token, pass.token, cmd.token);
      break;
    case CommandType::rpc:
      ok = check.required_string(f_method, pass.method, cmd.method) && check.not_duplicated(f_data);
      if (ok && (cmd.method.empty() || cmd.method.size() > 128))
        ok = check.fail("method: must be 1 to 128 bytes");
      if (ok) {
        if (pass.got[f_data] == Got::ok)
          cmd.data.assign(pass.data);
        else
          cmd.data = "null";
      }
      break;
    case CommandType::pong:
      break;
  }
  if (!ok) return err;
  return cmd;
}

}  // namespace herald::protocol
