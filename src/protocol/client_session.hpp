// One client's protocol v1 session on top of its WebSocket connection:
// parses each text message into a command, checks it against the session's
// state (connected, subscriptions, limits), hands channel work to the
// core::Node and turns results into replies. Also the local subscriber that
// receives the channel frames the node fans out on this worker.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/node.hpp"
#include "core/subscribers.hpp"
#include "metrics/metrics.hpp"
#include "protocol/command.hpp"
#include "ws/connection.hpp"

namespace herald::protocol {

// What every session of one worker shares.
struct SessionContext {
  core::Node& node;
  unsigned worker = 0;
  CommandParser& parser;        // the worker's parser
  ws::ConnectionLimits limits;  // transport limits
  size_t max_channels_per_connection = 256;
  unsigned ping_seconds = 25;
  metrics::WorkerCounters* counters = nullptr;  // the worker's
  size_t max_pending_requests = 256;            // see limits.max_pending_requests
};

class ClientSession final : public ws::Connection, public core::Subscriber {
 public:
  ClientSession(int fd, ws::ConnectionHost& host, SessionContext& ctx, std::string client_id);

  const std::string& client_id() const { return client_id_; }

  // core::Subscriber: an event frame for a subscribed channel.
  void deliver(const ws::SharedFrame& frame) override {
    ctx_.counters->deliveries.add();
    send(frame);
  }

 private:
  struct Subscription {
    std::string channel;
    uint32_t seq = 0;     // tells a reply for this subscription from an older one
    bool active = false;  // reply received, in the local subscriber table
    bool unsubscribe_pending = false;
    std::string unsubscribe_id;  // raw id of an unsubscribe that arrived while pending
  };

  void on_text(std::string_view text) override;
  void on_ping_due() override;
  void on_closed() override;

  void handle(Command& cmd);
  void handle_connect(const Command& cmd);
  void handle_subscribe(Command& cmd);
  void handle_unsubscribe(const Command& cmd);
  void handle_publish(Command& cmd);
  void handle_history(const Command& cmd);
  void on_subscribed(const std::string& channel, uint32_t seq, const std::string& id,
                     const core::SubscribeResult& result);
  void finish_unsubscribe(const std::string& channel, const std::string& id);

  // Requests waiting for a channel owner: reading pauses at the limit.
  void request_sent();
  void reply_received();

  void reply_error(ErrorCode code, std::string_view message, std::string_view id,
                   std::string_view details = {});
  void reply_failure(const core::Failure& failure, std::string_view id);
  std::weak_ptr<ClientSession> weak_self();

  SessionContext& ctx_;
  std::string client_id_;
  Subscription* find(std::string_view channel);
  void erase(std::string_view channel);

  // A plain vector: a connection has few subscriptions (at most
  // limits.max_channels_per_connection), and a hash map would cost more
  // memory per idle connection than the linear search costs time.
  std::vector<Subscription> subscriptions_;
  uint32_t next_seq_ = 0;
  uint32_t pending_requests_ = 0;
  bool connected_ = false;
};

}  // namespace herald::protocol
