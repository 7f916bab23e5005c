// Cross-node fan-out of the redis engine (engine.hpp "Several nodes",
// redis_engine.cpp, channel_sequencer.hpp) with two or three RedisEngines
// ("nodes") on one real redis-server (redis_server.hpp), each with its own
// io_context thread and a fake core that subscribes like the real one
// (watch, then a read; a reset makes it read again) and checks that the
// offsets handed over to it (its appends' callbacks and remote events) are
// strictly consecutive from the read's last_offset, in the read's epoch.
#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <future>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "engine/clock_and_epoch.hpp"
#include "engine/redis/redis_engine.hpp"
#include "engine/redis/redis_scripts.hpp"
#include "redis_server.hpp"

namespace herald::engine::redis {
namespace {

using namespace std::chrono_literals;
using testing::RedisServer;
using Offsets = std::vector<uint64_t>;

Offsets range(uint64_t from, uint64_t to) {
  Offsets out;
  for (uint64_t o = from; o <= to; ++o) out.push_back(o);
  return out;
}

class Node {
 public:
  struct Channel {
    bool ready = false;  // a read answered: its subscribers listen
    uint64_t base = 0;   // that read's last_offset
    uint64_t last = 0;   // last offset handed over since
    std::string epoch;
    Offsets got;  // handed over since the last read
    int resets = 0;
  };

  explicit Node(const RedisEngineOptions& options)
      : engine_(make_redis_engine(options)), store_(engine_->open_shard(0, io_.get_executor())) {
    store_->on_remote([this](RemoteMessage m) { remote(std::move(m)); });
    thread_ = std::thread([this] { io_.run(); });
  }

  ~Node() {
    sync([this] { store_.reset(); });
    guard_.reset();
    io_.stop();
    thread_.join();
  }

  // Runs `fn` on the node's thread and waits for it.
  template <typename Fn>
  auto sync(Fn fn) -> decltype(fn()) {
    std::packaged_task<decltype(fn())()> task(std::move(fn));
    auto result = task.get_future();
    boost::asio::post(io_, [&task] { task(); });
    return result.get();
  }

  void post(std::function<void()> fn) { boost::asio::post(io_, std::move(fn)); }
  ShardStore& store() { return *store_; }

  // What the core does on a channel's first local subscriber.
  void subscribe(const std::string& channel) {
    post([this, channel] {
      chans_[channel];
      store_->watch(channel, true);
      read_state(channel);
    });
  }

  void publish(const std::string& channel, const std::string& data,
               std::optional<Retention> retention = std::nullopt) {
    NewEvent ev{"e", data, "c", "u", system_now_ms(), retention, ""};
    store_->append(channel, std::move(ev), [this, channel](AppendResult r) {
      if (r.ok) {
        ++acked_;
        acked_offsets_[channel].push_back(r.offset);
        handed(channel, r.offset, r.epoch, "append");
      } else if (r.unavailable) {
        ++unavailable_;
      } else {
        errors_.push_back(r.error);
      }
    });
  }

  // What the core does when it removes a channel itself: its subscribers
  // continue in the new epoch, from 0.
  void remove(const std::string& channel) {
    store_->remove(channel, [this, channel](RemoveResult r) {
      if (!r.ok) {
        errors_.push_back(r.error);
        return;
      }
      Channel& c = chans_[channel];
      c.epoch = r.epoch;
      c.last = 0;
      c.got.clear();
    });
  }

  // On the node's thread:
  Channel& channel(const std::string& name) { return chans_[name]; }
  const std::vector<std::string>& violations() const { return violations_; }
  const std::vector<RemoteMessage>& others() const { return others_; }
  const std::vector<std::string>& errors() const { return errors_; }
  const std::map<std::string, Offsets>& acked_offsets() const { return acked_offsets_; }
  int acked() const { return acked_; }
  int answered() const { return acked_ + unavailable_ + static_cast<int>(errors_.size()); }
  int unavailable() const { return unavailable_; }
  int reads_checked() const { return reads_checked_; }

  // A read (as history or a second subscriber) whose result must be
  // exactly what was handed over before its callback.
  void checked_read(const std::string& channel) {
    HistoryQuery q;
    q.limit = 3;
    store_->read(channel, q, [this, channel](HistoryResult h) {
      Channel& c = chans_[channel];
      if (!h.ok || !c.ready) return;
      ++reads_checked_;
      if (h.last_offset != c.last || h.epoch != c.epoch)
        violations_.push_back(channel + ": read saw " + std::to_string(h.last_offset) + " after " +
                              std::to_string(c.last) + " was handed over");
      if (!h.events.empty() && h.events.back().offset != h.last_offset)
        violations_.push_back(channel + ": read's newest event is not its last_offset");
    });
  }

 private:
  void read_state(const std::string& channel) {
    HistoryQuery q;
    q.limit = 0;
    store_->read(channel, q, [this, channel](HistoryResult h) {
      Channel& c = chans_[channel];
      if (!h.ok) {  // as a client would subscribe again, a little later
        auto timer = std::make_shared<boost::asio::steady_timer>(io_, 20ms);
        timer->async_wait([this, timer, channel](auto) { read_state(channel); });
        return;
      }
      c.ready = true;
      c.base = c.last = h.last_offset;
      c.epoch = h.epoch;
      c.got.clear();
    });
  }

  void handed(const std::string& channel, uint64_t offset, const std::string& epoch,
              const char* how) {
    Channel& c = chans_[channel];
    if (!c.ready) return;  // nobody listens before the read answered
    if (epoch != c.epoch || offset != c.last + 1) {
      violations_.push_back(channel + ": " + how + " handed over " + std::to_string(offset) + " (" +
                            epoch + ") after " + std::to_string(c.last) + " (" + c.epoch + ")");
    }
    c.last = offset;
    c.got.push_back(offset);
  }

  void remote(RemoteMessage m) {
    if (m.kind == RemoteMessage::Kind::event) {
      handed(m.channel, m.event.offset, m.epoch, "remote");
      return;
    }
    others_.push_back(m);
    if (m.kind == RemoteMessage::Kind::reset) {
      Channel& c = chans_[m.channel];
      ++c.resets;
      c.ready = false;  // subscribers ended: they subscribe again
      read_state(m.channel);
    }
  }

  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_ =
      boost::asio::make_work_guard(io_);
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<ShardStore> store_;
  std::thread thread_;
  std::map<std::string, Channel> chans_;
  std::map<std::string, Offsets> acked_offsets_;
  std::vector<std::string> violations_;
  std::vector<std::string> errors_;
  std::vector<RemoteMessage> others_;
  int acked_ = 0;
  int unavailable_ = 0;
  int reads_checked_ = 0;
};

class RedisFanoutTest : public ::testing::Test {
 protected:
  RedisEngineOptions options() {
    RedisEngineOptions o;
    o.url = parse_redis_url(server_.url());
    o.connection.reconnect_min = 10ms;
    o.connection.reconnect_max = 100ms;
    o.connection.command_timeout = 2000ms;
    o.max_events_per_channel = 100000;
    return o;
  }

  std::vector<std::unique_ptr<Node>> nodes(int n) {
    // Loaded first, so that no append fails with NOSCRIPT while nodes race
    // to load them (redis_engine.cpp: such a retry may fail as unavailable).
    for (Script s : {Script::publish, Script::read, Script::remove})
      server_.call({"SCRIPT", "LOAD", redis_script(s)});
    std::vector<std::unique_ptr<Node>> out;
    for (int i = 0; i < n; ++i) out.push_back(std::make_unique<Node>(options()));
    return out;
  }

  // Every node subscribed to every channel, reads answered and pub/sub
  // subscriptions active (PUBSUB NUMSUB counts every node).
  void subscribe_all(std::vector<std::unique_ptr<Node>>& ns,
                     const std::vector<std::string>& chans) {
    for (auto& n : ns)
      for (const auto& c : chans) n->subscribe(c);
    for (auto& n : ns)
      for (const auto& c : chans)
        ASSERT_TRUE(wait([&] { return n->sync([&] { return n->channel(c).ready; }); })) << c;
    for (const auto& c : chans) {
      const std::string ps = channel_key("herald", c, "events");
      ASSERT_TRUE(wait([&] {
        const Reply r = server_.call({"PUBSUB", "NUMSUB", ps});
        return r.elements.size() == 2 && r.elements[1].integer == static_cast<int64_t>(ns.size());
      }));
    }
  }

  static bool wait(const std::function<bool()>& done, std::chrono::milliseconds timeout = 20s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(5ms);
    }
    return true;
  }

  uint64_t stream_last(const std::string& channel) {
    const Reply r = server_.call({"HGET", channel_key("herald", channel, "meta"), "last"});
    return r.is_nil() ? 0 : std::stoull(r.str);
  }

  // Each node publishes `per_node` events on every channel, in bursts
  // interleaved with the other nodes'; `between` runs after each round.
  void flood(std::vector<std::unique_ptr<Node>>& ns, const std::vector<std::string>& chans,
             int per_node, int burst = 10, const std::function<void(int)>& between = {}) {
    for (int sent = 0, round = 0; sent < per_node; sent += burst, ++round) {
      for (auto& n : ns) {
        n->post([node = n.get(), chans, burst, sent] {
          for (int i = 0; i < burst; ++i)
            for (const auto& c : chans) node->publish(c, std::to_string(sent + i));
        });
      }
      if (between) between(round);
      std::this_thread::sleep_for(1ms);
    }
  }

  void expect_sequences_equal_the_streams(std::vector<std::unique_ptr<Node>>& ns,
                                          const std::vector<std::string>& chans, uint64_t n) {
    for (const auto& c : chans) {
      wait([&] { return stream_last(c) >= n; });
      ASSERT_EQ(stream_last(c), n) << c;
    }
    for (size_t i = 0; i < ns.size(); ++i) {
      Node& node = *ns[i];
      for (const auto& c : chans) {
        const bool reached =
            wait([&] { return node.sync([&] { return node.channel(c).last >= n; }); });
        node.sync([&] {
          EXPECT_TRUE(reached) << "node " << i << " " << c << " stopped at "
                               << node.channel(c).last;
          EXPECT_EQ(node.channel(c).base, 0u);
          EXPECT_EQ(node.channel(c).got, range(1, n)) << "node " << i << " " << c;
          EXPECT_EQ(node.channel(c).resets, 0) << "node " << i << " " << c;
        });
      }
      node.sync([&] {
        EXPECT_TRUE(node.violations().empty()) << "node " << i << ": " << node.violations()[0];
        EXPECT_TRUE(node.errors().empty());
      });
    }
  }

  RedisServer server_;
};

TEST_F(RedisFanoutTest, ThreeNodesPublishingOnManyChannelsSeeTheStreamsOrder) {
  auto ns = nodes(3);
  std::vector<std::string> chans;
  for (int i = 0; i < 8; ++i) chans.push_back("chat:" + std::to_string(i));
  subscribe_all(ns, chans);
  const int per_node = 150;
  flood(ns, chans, per_node);
  expect_sequences_equal_the_streams(ns, chans, 3 * per_node);
  for (auto& n : ns) EXPECT_EQ(n->sync([&] { return n->acked(); }), per_node * 8);
}

TEST_F(RedisFanoutTest, PubsubConnectionsKilledDuringAFloodLoseNothing) {
  auto ns = nodes(2);
  const std::vector<std::string> chans = {"a", "b", "c"};
  subscribe_all(ns, chans);
  const int per_node = 400;
  int kills = 0;
  flood(ns, chans, per_node, 10, [&](int round) {
    if (round % 10 == 5) {
      kills += static_cast<int>(server_.call({"CLIENT", "KILL", "TYPE", "pubsub"}).integer);
    }
  });
  EXPECT_GE(kills, 2);
  expect_sequences_equal_the_streams(ns, chans, 2 * per_node);
}

TEST_F(RedisFanoutTest, ReadOnAWatchedChannelSeesExactlyWhatWasHandedOver) {
  auto ns = nodes(2);
  subscribe_all(ns, {"live"});
  Node& reader = *ns[0];
  Node& writer = *ns[1];
  std::atomic<bool> stop = false;
  std::thread reads([&] {
    while (!stop) {
      reader.post([&] { reader.checked_read("live"); });
      std::this_thread::sleep_for(1ms);
    }
  });
  std::vector<std::unique_ptr<Node>> only_writer;
  for (int sent = 0; sent < 3000; sent += 20) {
    writer.post([&, sent] {
      for (int i = 0; i < 20; ++i) writer.publish("live", std::to_string(sent + i));
    });
    std::this_thread::sleep_for(1ms);
  }
  const bool reached =
      wait([&] { return reader.sync([&] { return reader.channel("live").last; }) >= 3000; });
  stop = true;
  reads.join();
  EXPECT_TRUE(reached);
  reader.sync([&] {
    EXPECT_GT(reader.reads_checked(), 50);
    EXPECT_TRUE(reader.violations().empty()) << reader.violations()[0];
    EXPECT_EQ(reader.channel("live").got, range(1, 3000));
  });
}

TEST_F(RedisFanoutTest, BroadcastReachesTheOtherNodesHandlerOnly) {
  auto ns = nodes(2);
  subscribe_all(ns, {"room"});
  ns[0]->sync([&] {
    RemoteMessage e;
    e.kind = RemoteMessage::Kind::ephemeral;
    e.channel = "room";
    e.event = StoredEvent{0, 1234, "typing", R"({"on":true})", "c-9", "ann", R"({"n":1})"};
    ns[0]->store().broadcast(e);
    ns[0]->publish("room", "stored");  // in call order with the broadcasts
    RemoteMessage r;
    r.kind = RemoteMessage::Kind::reset;
    r.channel = "room";
    r.reason = "destroyed";
    ns[0]->store().broadcast(r);
  });
  ASSERT_TRUE(wait([&] { return ns[1]->sync([&] { return ns[1]->others().size() >= 2; }); }));
  ns[1]->sync([&] {
    const auto& got = ns[1]->others();
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].kind, RemoteMessage::Kind::ephemeral);
    EXPECT_EQ(got[0].channel, "room");
    EXPECT_EQ(got[0].event.offset, 0u);
    EXPECT_EQ(got[0].event.ts_ms, 1234);
    EXPECT_EQ(got[0].event.event, "typing");
    EXPECT_EQ(got[0].event.data, R"({"on":true})");
    EXPECT_EQ(got[0].event.from_client, "c-9");
    EXPECT_EQ(got[0].event.from_user, "ann");
    EXPECT_EQ(got[0].event.from_info, R"({"n":1})");
    EXPECT_EQ(got[1].kind, RemoteMessage::Kind::reset);
    EXPECT_EQ(got[1].reason, "destroyed");
    // the stored event came between them, in call order
    EXPECT_EQ(ns[1]->channel("room").resets, 1);
  });
  // A message the sender sends to itself afterwards proves its own did not come back.
  ns[1]->sync([&] { ns[1]->publish("room", "marker"); });
  const bool reached =
      wait([&] { return ns[0]->sync([&] { return ns[0]->channel("room").last >= 2; }); });
  ASSERT_TRUE(reached) << ns[0]->sync([&] {
    const auto& c = ns[0]->channel("room");
    return std::to_string(c.ready) + " base " + std::to_string(c.base) + " last " +
           std::to_string(c.last) + " errors " + std::to_string(ns[0]->errors().size()) +
           " acked " + std::to_string(ns[0]->acked()) + " unavailable " +
           std::to_string(ns[0]->unavailable());
  });
  ns[0]->sync([&] { EXPECT_TRUE(ns[0]->others().empty()); });
}

TEST_F(RedisFanoutTest, RemoveOnOneNodeIsAResubscribeOnTheOthersThenOrderResumes) {
  auto ns = nodes(2);
  subscribe_all(ns, {"rm"});
  flood(ns, {"rm"}, 20, 5);
  ASSERT_TRUE(wait([&] {
    return ns[0]->sync([&] { return ns[0]->channel("rm").last; }) == 40 &&
           ns[1]->sync([&] { return ns[1]->channel("rm").last; }) == 40;
  }));
  ns[1]->sync([&] { ns[1]->remove("rm"); });
  ASSERT_TRUE(wait([&] { return ns[1]->sync([&] { return ns[1]->channel("rm").last == 0; }); }));
  // Node 0 learns it from the first event of the new epoch (no R2 here).
  flood(ns, {"rm"}, 20, 5);
  ASSERT_TRUE(wait([&] { return ns[0]->sync([&] { return ns[0]->channel("rm").resets == 1; }); }));
  flood(ns, {"rm"}, 20, 5);
  const uint64_t last = [&] {
    wait([&] { return stream_last("rm") == 80; });
    return stream_last("rm");
  }();
  EXPECT_EQ(last, 80u);
  for (auto& n : ns) {
    EXPECT_TRUE(wait([&] {
      return n->sync([&] { return n->channel("rm").ready && n->channel("rm").last == last; });
    }));
    n->sync([&] {
      EXPECT_TRUE(n->violations().empty()) << n->violations()[0];
      EXPECT_TRUE(n->errors().empty()) << n->errors()[0];
    });
  }
  // The remover went on in the new epoch without a reset: 1..80 in order.
  ns[1]->sync([&] {
    EXPECT_EQ(ns[1]->channel("rm").resets, 0);
    EXPECT_EQ(ns[1]->channel("rm").got, range(1, 80));
  });
}

TEST_F(RedisFanoutTest, UnwatchedChannelGetsNothingMore) {
  auto ns = nodes(2);
  subscribe_all(ns, {"u"});
  ns[1]->sync([&] { ns[1]->publish("u", "1"); });
  ASSERT_TRUE(wait([&] { return ns[0]->sync([&] { return ns[0]->channel("u").last == 1; }); }));
  ns[0]->sync([&] { ns[0]->store().watch("u", false); });
  const std::string ps = channel_key("herald", "u", "events");
  ASSERT_TRUE(wait([&] {
    return server_.call({"PUBSUB", "NUMSUB", ps}).elements[1].integer == 1;
  }));
  ns[1]->sync([&] { ns[1]->publish("u", "2"); });
  ASSERT_TRUE(wait([&] { return ns[1]->sync([&] { return ns[1]->channel("u").last == 2; }); }));
  std::this_thread::sleep_for(100ms);
  ns[0]->sync([&] { EXPECT_EQ(ns[0]->channel("u").last, 1u); });
}

// Events stored without a pub/sub message reaching this node (as when its
// pub/sub connection was down): publish.lua run directly, publishing nothing.
class RedisFanoutGapTest : public RedisFanoutTest {
 protected:
  void store_unannounced(const std::string& channel, int n, size_t max_events) {
    const std::string meta = channel_key("herald", channel, "meta");
    const std::string stream = channel_key("herald", channel, "stream");
    const std::string keys = channel_key("herald", channel, "keys");
    const std::string keyq = channel_key("herald", channel, "keyq");
    const std::string script(redis_script(Script::publish));
    const std::string max = std::to_string(max_events);
    for (int i = 0; i < n; ++i) {
      const Reply r =
          server_.call({"EVAL", script, "4", meta, stream, keys,      keyq, "cand",
                        "1",    "e",    "x", "",   "",     "",        max,  "0",
                        "",     "0",    "0", "0",  "",     "PUBLISH", "0",  "elsewhere"});
      ASSERT_EQ(r.kind, Reply::Kind::array) << to_string(r);
    }
  }
};

TEST_F(RedisFanoutGapTest, MissedEventsAreFilledFromTheStream) {
  auto ns = nodes(2);
  subscribe_all(ns, {"g"});
  ns[1]->sync([&] { ns[1]->publish("g", "1"); });
  store_unannounced("g", 5, 1000);  // 2..6
  ns[1]->sync([&] { ns[1]->publish("g", "7"); });
  expect_sequences_equal_the_streams(ns, {"g"}, 7);
}

TEST_F(RedisFanoutGapTest, EventsMissedWhilePubsubWasDownAreFoundWhenItComesBack) {
  // No later event reveals the gap: the check run when Redis confirms the
  // subscription again (meta's last) does.
  auto ns = nodes(2);
  subscribe_all(ns, {"g"});
  ns[1]->sync([&] { ns[1]->publish("g", "1"); });
  ASSERT_TRUE(wait([&] { return ns[0]->sync([&] { return ns[0]->channel("g").last == 1; }); }));
  store_unannounced("g", 3, 1000);  // 2..4
  server_.call({"CLIENT", "KILL", "TYPE", "pubsub"});
  ASSERT_TRUE(wait([&] { return ns[0]->sync([&] { return ns[0]->channel("g").last == 4; }); }));
  ns[0]->sync([&] {
    EXPECT_EQ(ns[0]->channel("g").got, range(1, 4));
    EXPECT_TRUE(ns[0]->violations().empty()) << ns[0]->violations()[0];
  });
}

TEST_F(RedisFanoutGapTest, AnAppendHeldForAFillThatFailsFailsAsUnavailable) {
  // Node 0's user may not run MULTI: every fill it sends fails.
  server_.call({"ACL", "SETUSER", "nofill", "on", ">pw", "~*", "&*", "+@all", "-multi"});
  RedisEngineOptions o = options();
  o.url = parse_redis_url("redis://nofill:pw@127.0.0.1:" + std::to_string(server_.port()));
  for (Script sc : {Script::publish, Script::read, Script::remove})
    server_.call({"SCRIPT", "LOAD", redis_script(sc)});
  std::vector<std::unique_ptr<Node>> ns;
  ns.push_back(std::make_unique<Node>(o));
  ns.push_back(std::make_unique<Node>(options()));
  subscribe_all(ns, {"h"});
  store_unannounced("h", 1, 1000);                 // offset 1, never announced
  ns[0]->sync([&] { ns[0]->publish("h", "2"); });  // offset 2: held for 1
  ASSERT_TRUE(wait([&] { return ns[0]->sync([&] { return ns[0]->answered() == 1; }); }));
  ns[0]->sync([&] {
    EXPECT_EQ(ns[0]->acked(), 0);  // stored, but never acked out of order
    EXPECT_EQ(ns[0]->unavailable(), 1);
    EXPECT_EQ(ns[0]->channel("h").resets, 1);
  });
  EXPECT_EQ(stream_last("h"), 2u);
  // The other node fills the same gap and hands both over.
  ASSERT_TRUE(wait([&] { return ns[1]->sync([&] { return ns[1]->channel("h").last == 2; }); }));
  ns[1]->sync([&] { EXPECT_EQ(ns[1]->channel("h").got, range(1, 2)); });
}

TEST_F(RedisFanoutGapTest, AGapTheStreamNoLongerHoldsIsAResubscribe) {
  auto ns = nodes(2);
  subscribe_all(ns, {"g"});
  ns[1]->sync([&] { ns[1]->publish("g", "1"); });
  ASSERT_TRUE(wait([&] { return ns[0]->sync([&] { return ns[0]->channel("g").last == 1; }); }));
  store_unannounced("g", 5, 0);  // 2..6, retention 0: no stream holds them
  ns[1]->sync([&] { ns[1]->publish("g", "7"); });
  ASSERT_TRUE(wait([&] { return ns[0]->sync([&] { return ns[0]->channel("g").resets == 1; }); }));
  ns[0]->sync([&] {
    ASSERT_FALSE(ns[0]->others().empty());
    EXPECT_EQ(ns[0]->others().back().kind, RemoteMessage::Kind::reset);
    EXPECT_EQ(ns[0]->others().back().reason, "resubscribe");
  });
  // After subscribing again, the next events come in order.
  ASSERT_TRUE(wait([&] { return ns[0]->sync([&] { return ns[0]->channel("g").ready; }); }));
  ns[1]->sync([&] { ns[1]->publish("g", "8"); });
  ASSERT_TRUE(wait([&] { return ns[0]->sync([&] { return ns[0]->channel("g").last == 8; }); }));
  ns[0]->sync([&] {
    EXPECT_EQ(ns[0]->channel("g").base, 7u);
    EXPECT_EQ(ns[0]->channel("g").got, (Offsets{8}));
    EXPECT_TRUE(ns[0]->violations().empty()) << ns[0]->violations()[0];
  });
  // The publishing node handed its own over through their callbacks: a
  // hole between them is its gap too.
  ns[1]->sync([&] { EXPECT_EQ(ns[1]->channel("g").resets, 1); });
}

TEST_F(RedisFanoutTest, RedisRestartedFailsAppendsThenTrafficResumesInOrder) {
  auto ns = nodes(2);
  const std::vector<std::string> chans = {"r1", "r2"};
  subscribe_all(ns, chans);
  flood(ns, chans, 100);
  server_.stop();
  flood(ns, chans, 20);  // fail: unavailable
  server_.start();       // without persistence: every channel starts a new epoch
  // Every node notices (its appends in flight or held failed, or its next
  // events are of a new epoch): it resets, reads again, and what follows
  // is in order.
  std::this_thread::sleep_for(300ms);  // reconnects (backoff up to 100 ms)
  flood(ns, chans, 100);
  for (auto& n : ns) {
    ASSERT_TRUE(
        wait([&] { return n->sync([&] { return n->answered() == (100 + 20 + 100) * 2; }); }));
    for (const auto& c : chans) {
      const bool reached = wait([&] {
        const uint64_t last = stream_last(c);
        return last > 0 &&
               n->sync([&] { return n->channel(c).ready && n->channel(c).last == last; });
      });
      EXPECT_TRUE(reached) << c << " " << stream_last(c) << " "
                           << n->sync([&] { return n->channel(c).last; });
    }
    n->sync([&] {
      EXPECT_TRUE(n->violations().empty()) << n->violations()[0];
      EXPECT_TRUE(n->errors().empty()) << n->errors()[0];
      EXPECT_GE(n->unavailable(), 20 * 2);
      EXPECT_GE(n->acked(), 100);
      for (const auto& c : chans) EXPECT_GE(n->channel(c).resets, 1) << c;
    });
  }
}

}  // namespace
}  // namespace herald::engine::redis
