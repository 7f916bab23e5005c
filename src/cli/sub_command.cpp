// herald sub; see sub_command.hpp.
//
// One Subscriber runs sessions until it stops: a session is one connection
// (open, connect, subscribe every channel, then print what arrives). Each
// channel keeps its position, the epoch and the offset of the last event
// printed (or of its `subscribed` reply); the next session subscribes with
// `recover` from there, and an event at or below the position is a
// duplicate and skipped. Everything runs on one io_context, which also
// waits for SIGINT/SIGTERM: the signal aborts the step in progress.
#include "cli/sub_command.hpp"

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <charconv>
#include <csignal>
#include <cstdio>
#include <random>

#include "cli/outcome.hpp"
#include "cli/server_message.hpp"
#include "cli/ws_session.hpp"
#include "protocol/messages.hpp"

namespace herald::cli {

namespace {

using std::chrono::milliseconds;

// Reconnect backoff, the SDK's defaults (clients/js backoff.ts): 500 ms
// doubling to 10 s, each delay reduced by up to half at random.
constexpr uint64_t kInitialDelayMs = 500;
constexpr uint64_t kMaxDelayMs = 10000;
// Silence from the server for its ping interval plus this means the
// connection is dead (docs/protocol.md section 5).
constexpr uint64_t kPingMarginMs = 10000;
// Request ids: 0 is connect, 1..n the channels' subscribes, and kEpochId+i
// the `history` that learns channel i's epoch for --from OFFSET.
constexpr uint64_t kEpochId = 1'000'000;

struct Channel {
  std::string name;
  std::string epoch;  // known position: epoch and offset
  uint64_t offset = 0;
  bool positioned = false;
  bool recovering = false;  // the pending subscribe asked to recover
  bool ended = false;       // the server ended the subscription
};

// Close codes after which reconnecting can help (docs/protocol.md
// section 9): going away, a server error, a pong timeout, slow consumer,
// rate limited. Others are a refusal (4001, 4003, the app's 4xxx) or a bug.
bool reconnectable(uint16_t code) {
  return code == 1001 || code == 1006 || code == 1008 || code == 1011 || code == 1012 ||
         code == 1013 || code == 4008 || code == 4029;
}

std::optional<uint64_t> read_uint(std::string_view s) {
  uint64_t n = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty()) return std::nullopt;
  return n;
}

class Subscriber {
 public:
  Subscriber(const ClientOptions& client, const SubOptions& sub)
      : client_(client), sub_(sub), signals_(io_, SIGINT, SIGTERM) {
    for (const auto& name : sub.channels) {
      channels_.emplace_back();
      channels_.back().name = name;
    }
    if (sub.timeout_ms) end_ = Clock::now() + milliseconds(sub.timeout_ms);
    signals_.async_wait([this](const boost::system::error_code& ec, int) {
      if (ec) return;
      interrupted_ = true;
      if (link_) link_->abort();
    });
  }

  int run() {
    if (!sub_.from.empty()) {
      const auto colon = sub_.from.rfind(':');
      const auto offset =
          read_uint(colon == std::string::npos ? std::string_view(sub_.from)
                                               : std::string_view(sub_.from).substr(colon + 1));
      if (!offset || colon == 0)
        return fail(Exit::usage, "--from: expected EPOCH:OFFSET or OFFSET, got " + sub_.from);
      from_offset_ = *offset;
      if (colon != std::string::npos) from_epoch_ = sub_.from.substr(0, colon);
    }
    uint64_t attempt = 0;
    for (;;) {
      const Result r = session();
      if (link_) {
        link_->close(Clock::now() + milliseconds(interrupted_ ? 200 : 1000));
        link_.reset();
      }
      switch (r.kind) {
        case Result::Kind::stop:
          return 0;
        case Result::Kind::refused:
          return static_cast<int>(Exit::refused);
        case Result::Kind::deadline:
          if (!subscribed_once_)
            return fail(Exit::unreachable, "timed out after " + std::to_string(sub_.timeout_ms) +
                                               " ms (--timeout-ms) before subscribing");
          if (!sub_.count) return 0;
          return fail(Exit::unreachable, "timed out after " + std::to_string(sub_.timeout_ms) +
                                             " ms (--timeout-ms) with " + std::to_string(printed_) +
                                             " of " + std::to_string(*sub_.count) + " events");
        case Result::Kind::dropped:
          break;
      }
      if (r.failure.code == Exit::refused) return fail(r.failure);
      if (!subscribed_once_) return fail(r.failure);
      if (subscribed_this_time_) attempt = 0;
      const uint64_t delay = backoff(attempt++);
      note(r.failure.what + "; reconnecting in " + std::to_string(delay) + " ms");
      if (!sleep_until(io_, std::min(Clock::now() + milliseconds(delay), end_), interrupted_))
        return 0;
      if (Clock::now() >= end_) {
        if (!sub_.count) return 0;
        return fail(Exit::unreachable, "timed out after " + std::to_string(sub_.timeout_ms) +
                                           " ms (--timeout-ms) while reconnecting");
      }
    }
  }

 private:
  struct Result {
    enum class Kind { stop, refused, deadline, dropped };
    Kind kind = Kind::stop;
    Failure failure;  // dropped: why (refused: already printed)
  };

  uint64_t backoff(uint64_t attempt) {
    const uint64_t base = std::min(kMaxDelayMs, kInitialDelayMs << std::min<uint64_t>(attempt, 20));
    std::uniform_real_distribution<double> jitter(0.0, 0.5);
    return static_cast<uint64_t>(static_cast<double>(base) * (1.0 - jitter(random_)));
  }

  Result dropped(const Failure& f) {
    if (interrupted_) return {Result::Kind::stop, {}};
    if (Clock::now() >= end_) return {Result::Kind::deadline, {}};
    return {Result::Kind::dropped, f};
  }

  Result dropped(std::string_view doing, const LinkStatus& st) {
    Failure f = link_failure(doing, st);
    if (st.kind == LinkStatus::Kind::closed && !reconnectable(st.close_code))
      f.code = Exit::refused;
    return dropped(f);
  }

  Result refused(const std::string& what) {
    fail(Exit::refused, what);
    return {Result::Kind::refused, {}};
  }

  // The step deadline: `ms` from now, or the end of the run if sooner.
  Clock::time_point within(uint64_t ms) const {
    return std::min(Clock::now() + milliseconds(ms), end_);
  }

  Result session() {
    subscribed_this_time_ = false;
    link_ = std::make_unique<WsLink>(io_);
    auto connected =
        open_and_connect(*link_, client_.server, client_.token, within(client_.timeout_ms));
    if (auto* f = std::get_if<Failure>(&connected)) {
      if (f->code == Exit::refused) return refused(f->what);
      return dropped(*f);
    }
    const uint64_t ping_ms = std::get<ServerMessage>(connected).ping.value_or(25) * 1000;
    if (auto r = learn_epochs(); r) return *r;
    for (size_t i = 0; i < channels_.size(); ++i) {
      if (channels_[i].ended) continue;
      if (auto st = link_->send(subscribe_text(i), within(client_.timeout_ms)); !st.ok())
        return dropped("subscribe", st);
    }
    std::string text;
    for (;;) {
      auto st = link_->receive(text, within(ping_ms + kPingMarginMs));
      if (!st.ok()) return dropped("connection lost", st);
      auto m = parse_server_message(text);
      if (!m) continue;  // not the protocol: nothing the output could use
      if (m->type == "ping") {
        if (auto s = link_->send(R"({"type":"pong"})", within(client_.timeout_ms)); !s.ok())
          return dropped("connection lost", s);
      } else if (m->type == "event") {
        if (auto i = find(m->channel)) print(channels_[*i], m->ev, false);
      } else if (m->type == "subscribed") {
        if (auto r = on_subscribed(*m)) return *r;
      } else if (m->type == "unsubscribed" && m->id.empty()) {
        if (auto r = on_ended(*m)) return *r;
      } else if (m->type == "error") {
        const auto id = read_uint(m->id);
        if (id && *id >= 1 && *id <= channels_.size())
          return refused("subscribe to " + channels_[*id - 1].name +
                         " refused: " + describe_error(*m));
        note("server error: " + describe_error(*m));
      }
      if (done()) return {Result::Kind::stop, {}};
    }
  }

  // --from OFFSET without an epoch: ask each channel's current epoch (a
  // history of 0 events), so the subscribe can recover from OFFSET in it.
  std::optional<Result> learn_epochs() {
    if (from_offset_ && from_epoch_.empty()) {
      for (size_t i = 0; i < channels_.size(); ++i) {
        if (channels_[i].positioned || channels_[i].ended) continue;
        std::string fields = "\"channel\":";
        protocol::append_json_string(fields, channels_[i].name);
        fields += ",\"limit\":0";
        auto reply =
            ws_request(*link_, "history", kEpochId + i, fields, within(client_.timeout_ms));
        if (auto* f = std::get_if<Failure>(&reply)) return dropped(*f);
        const auto& m = std::get<ServerMessage>(reply);
        if (m.type == "error")
          return refused("history of " + channels_[i].name + " refused: " + describe_error(m));
        channels_[i].epoch = m.epoch;
        channels_[i].offset = *from_offset_;
        channels_[i].positioned = true;
      }
    }
    return std::nullopt;
  }

  std::string subscribe_text(size_t i) {
    auto& c = channels_[i];
    std::string fields = "\"channel\":";
    protocol::append_json_string(fields, c.name);
    if (!c.positioned && from_offset_) {  // --from EPOCH:OFFSET
      c.epoch = from_epoch_;
      c.offset = *from_offset_;
      c.positioned = true;
    }
    c.recovering = c.positioned;
    if (c.positioned) {
      fields += ",\"recover\":{\"epoch\":";
      protocol::append_json_string(fields, c.epoch);
      fields += ",\"offset\":" + std::to_string(c.offset) + "}";
    } else if (sub_.history) {
      fields += ",\"history\":" + std::to_string(*sub_.history);
    }
    return request_text("subscribe", i + 1, fields);
  }

  std::optional<Result> on_subscribed(const ServerMessage& m) {
    const auto id = read_uint(m.id);
    std::optional<size_t> i;
    if (id && *id >= 1 && *id <= channels_.size()) i = *id - 1;
    if (!i) return std::nullopt;  // a channel the token's `channels` subscribed
    auto& c = channels_[*i];
    if (c.recovering && m.recovered == false) {
      note("cannot recover " + c.name + ": the events after offset " + std::to_string(c.offset) +
           " of epoch " + c.epoch +
           " are no longer held (new epoch, dropped from history, or too many); "
           "continuing from offset " +
           std::to_string(m.offset.value_or(0)) + " of epoch " + m.epoch);
    } else if (c.recovering && subscribed_once_ && !m.events.empty()) {
      note("recovered " + std::to_string(m.events.size()) + " missed event(s) on " + c.name);
    }
    c.epoch = m.epoch;
    if (m.recovered == false) c.offset = m.offset.value_or(0);
    c.positioned = true;
    for (const auto& ev : m.events) {
      print(c, ev, true);
      if (done()) return std::nullopt;
    }
    // Nothing missed, or nothing asked: the channel's position is its last
    // offset now (a recovered position that was ahead stays caught above).
    if (m.offset && (m.events.empty() || *m.offset > c.offset)) c.offset = *m.offset;
    subscribed_once_ = subscribed_this_time_ = true;
    return std::nullopt;
  }

  std::optional<Result> on_ended(const ServerMessage& m) {
    const auto i = find(m.channel);
    if (!i) return std::nullopt;
    auto& c = channels_[*i];
    if (m.reason == "resubscribe") {  // engine redis: resume at once with recover
      if (auto st = link_->send(subscribe_text(*i), within(client_.timeout_ms)); !st.ok())
        return dropped("subscribe", st);
      return std::nullopt;
    }
    c.ended = true;
    note("the server ended the subscription to " + c.name + " (" +
         (m.reason.empty() ? std::string("no reason") : m.reason) + ")");
    if (std::all_of(channels_.begin(), channels_.end(), [](const Channel& ch) { return ch.ended; }))
      return Result{Result::Kind::refused, {}};
    return std::nullopt;
  }

  std::optional<size_t> find(std::string_view name) const {
    for (size_t i = 0; i < channels_.size(); ++i)
      if (channels_[i].name == name && !channels_[i].ended) return i;
    return std::nullopt;
  }

  // Prints an event unless it is at or below the channel's position (a
  // duplicate) or the count is reached.
  void print(Channel& c, const EventFields& ev, bool from_reply) {
    if (done()) return;
    if (ev.offset) {
      if (!from_reply && c.positioned && *ev.offset <= c.offset) return;
      c.offset = *ev.offset;
    }
    line_.clear();
    append_event_line(line_, ev, c.epoch);
    std::fwrite(line_.data(), 1, line_.size(), stdout);
    std::fflush(stdout);
    ++printed_;
  }

  bool done() const { return interrupted_ || (sub_.count && printed_ >= *sub_.count); }

  const ClientOptions& client_;
  const SubOptions& sub_;
  boost::asio::io_context io_;
  boost::asio::signal_set signals_;
  std::unique_ptr<WsLink> link_;
  std::vector<Channel> channels_;
  std::optional<uint64_t> from_offset_;
  std::string from_epoch_;
  Clock::time_point end_ = Clock::time_point::max();
  std::mt19937_64 random_{std::random_device{}()};
  std::string line_;
  uint64_t printed_ = 0;
  bool interrupted_ = false;
  bool subscribed_once_ = false;
  bool subscribed_this_time_ = false;
};

}  // namespace

int run_sub(const ClientOptions& client, const SubOptions& sub) {
  Subscriber s(client, sub);
  return s.run();
}

}  // namespace herald::cli
