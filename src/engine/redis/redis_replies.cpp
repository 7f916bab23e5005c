// Replies to engine results: see redis_replies.hpp.
#include "engine/redis/redis_replies.hpp"

#include <charconv>

namespace herald::engine::redis {

std::string unavailable(const std::string& why) {
  static constexpr std::string_view kPrefix = "redis unavailable";
  return why.starts_with(kPrefix) ? why : std::string(kPrefix) + ": " + why;
}

std::string decimal(uint64_t n) {
  return std::to_string(n);
}

std::string decimal(int64_t n) {
  return std::to_string(n);
}

const Reply* element(const Reply& r, size_t i, Reply::Kind kind) {
  if (r.kind != Reply::Kind::array || i >= r.elements.size()) return nullptr;
  const Reply& e = r.elements[i];
  return e.kind == kind ? &e : nullptr;
}

std::optional<std::string> error_of(const Result& result) {
  if (const auto* f = std::get_if<Failure>(&result)) return unavailable(f->message);
  const Reply& r = std::get<Reply>(result);
  if (r.is_error()) return "redis: " + r.str;
  return std::nullopt;
}

AppendResult to_append_result(Result&& result, std::string& key) {
  AppendResult out;
  if (failed(result, out)) return out;
  const Reply& r = std::get<Reply>(result);
  const Reply* status = element(r, 0, Reply::Kind::string);
  const Reply* offset = element(r, 1, Reply::Kind::integer);
  const Reply* epoch = element(r, 2, Reply::Kind::string);
  const Reply* created = element(r, 3, Reply::Kind::integer);
  if (!status || !offset || !epoch || !created) {
    out.error = "redis: unexpected publish.lua reply " + to_string(r);
    return out;
  }
  out.offset = static_cast<uint64_t>(offset->integer);
  out.epoch = epoch->str;
  out.created_ms = created->integer;
  if (status->str == "ok") {
    out.ok = true;
  } else if (status->str == "replayed") {
    out.ok = true;
    out.replayed = true;
  } else if (status->str == "conflict") {
    out.conflict = true;
    out.error = "idempotency key conflict";
    out.idempotency_key = std::move(key);
  } else {
    out.error = "redis: unexpected publish.lua status " + status->str;
  }
  return out;
}

HistoryResult to_history_result(Result&& result) {
  HistoryResult out;
  if (failed(result, out)) return out;
  Reply& r = std::get<Reply>(result);
  const Reply* epoch = element(r, 0, Reply::Kind::string);
  const Reply* last = element(r, 1, Reply::Kind::integer);
  const Reply* first = element(r, 2, Reply::Kind::integer);
  const Reply* created = element(r, 3, Reply::Kind::integer);
  const Reply* events = element(r, 4, Reply::Kind::array);
  const auto bad = [&] {
    out = HistoryResult{};
    out.error = "redis: unexpected read.lua reply";
    return out;
  };
  if (!epoch || !last || !first || !created || !events) return bad();
  out.epoch = epoch->str;
  out.last_offset = static_cast<uint64_t>(last->integer);
  out.first_offset = static_cast<uint64_t>(first->integer);
  out.created_ms = created->integer;
  out.events.reserve(events->elements.size());
  for (size_t i = 0; i < events->elements.size(); ++i) {
    Reply& e = r.elements[4].elements[i];
    const Reply* offset = element(e, 0, Reply::Kind::integer);
    const Reply* ts = element(e, 1, Reply::Kind::integer);
    if (!offset || !ts || e.elements.size() != 7) return bad();
    for (size_t f = 2; f < 7; ++f)
      if (e.elements[f].kind != Reply::Kind::string) return bad();
    out.events.push_back(StoredEvent{static_cast<uint64_t>(offset->integer), ts->integer,
                                     std::move(e.elements[2].str), std::move(e.elements[3].str),
                                     std::move(e.elements[4].str), std::move(e.elements[5].str),
                                     std::move(e.elements[6].str)});
  }
  out.ok = true;
  return out;
}

RemoveResult to_remove_result(Result&& result) {
  RemoveResult out;
  if (failed(result, out)) return out;
  const Reply& r = std::get<Reply>(result);
  const Reply* status = element(r, 0, Reply::Kind::string);
  const Reply* epoch = element(r, 1, Reply::Kind::string);
  if (!status || !epoch || status->str != "ok") {
    out.error = "redis: unexpected remove.lua reply " + to_string(r);
    return out;
  }
  out.ok = true;
  out.epoch = epoch->str;
  return out;
}

// The stream entries of a fill (XRANGE reply), fields by position as
// publish.lua writes them: t e d c u i. nullopt when malformed.
std::optional<std::vector<StoredEvent>> to_entries(Reply& r) {
  if (r.kind != Reply::Kind::array) return std::nullopt;
  std::vector<StoredEvent> out;
  out.reserve(r.elements.size());
  for (Reply& e : r.elements) {
    if (e.kind != Reply::Kind::array || e.elements.size() != 2) return std::nullopt;
    const Reply& id = e.elements[0];
    Reply& f = e.elements[1];
    if (id.kind != Reply::Kind::string || f.kind != Reply::Kind::array || f.elements.size() != 12)
      return std::nullopt;
    for (const Reply& x : f.elements)
      if (x.kind != Reply::Kind::string) return std::nullopt;
    StoredEvent ev;
    const std::string& s = id.str;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), ev.offset);
    if (ec != std::errc() || end == s.data()) return std::nullopt;
    const std::string& t = f.elements[1].str;
    if (std::from_chars(t.data(), t.data() + t.size(), ev.ts_ms).ec != std::errc())
      return std::nullopt;
    ev.event = std::move(f.elements[3].str);
    ev.data = std::move(f.elements[5].str);
    ev.from_client = std::move(f.elements[7].str);
    ev.from_user = std::move(f.elements[9].str);
    ev.from_info = std::move(f.elements[11].str);
    out.push_back(std::move(ev));
  }
  return out;
}

}  // namespace herald::engine::redis
