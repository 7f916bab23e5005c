// The compact parts of the core's per-channel tables (issue 15):
// core::WorkerCounts (an owned channel's subscriptions per worker, 16 bytes),
// core::SubscriberList (a worker's local subscribers of one channel, one
// word) and core::ChannelKey (a channel name in 16 bytes): each behaves like
// the vector or string it replaced, inline and on the heap.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "core/channel_key.hpp"
#include "core/subscribers.hpp"
#include "core/worker_counts.hpp"

namespace herald::core {
namespace {

// Inline (up to 3 workers) and on the heap (more).
class WorkerCountsTest : public testing::TestWithParam<uint32_t> {};

TEST_P(WorkerCountsTest, CountsPerWorkerLikeAVector) {
  const uint32_t n = GetParam();
  WorkerCounts c;
  EXPECT_TRUE(c.empty());
  c.resize(n);
  ASSERT_FALSE(c.empty());
  ASSERT_EQ(c.size(), n);
  EXPECT_TRUE(std::all_of(c.begin(), c.end(), [](uint32_t x) { return x == 0; }));
  for (uint32_t w = 0; w < n; ++w) c[w] = 100 + w;
  ++c[n - 1];

  WorkerCounts moved(std::move(c));
  EXPECT_TRUE(c.empty());  // NOLINT(bugprone-use-after-move): moved-from is empty
  ASSERT_EQ(moved.size(), n);
  for (uint32_t w = 0; w + 1 < n; ++w) EXPECT_EQ(moved[w], 100 + w);
  EXPECT_EQ(moved[n - 1], 100 + n);

  WorkerCounts assigned;
  assigned.resize(7);  // its own heap array is freed (ASan checks)
  assigned = std::move(moved);
  const WorkerCounts& view = assigned;
  EXPECT_EQ(std::accumulate(view.begin(), view.end(), uint64_t{0}),
            uint64_t{100} * n + n * (n - 1) / 2 + 1);
}

INSTANTIATE_TEST_SUITE_P(Workers, WorkerCountsTest, testing::Values(1u, 2u, 3u, 4u, 16u));

TEST(WorkerCountsTest, IsSixteenBytes) {
  EXPECT_EQ(sizeof(WorkerCounts), 16u);
}

struct Probe final : Subscriber {
  std::vector<std::string>* log;
  std::string name;
  Probe(std::vector<std::string>* l, std::string n) : log(l), name(std::move(n)) {}
  void deliver(std::string_view, const ws::SharedFrame&) override { log->push_back(name); }
  void end(const std::string&, std::string_view) override { log->push_back("end " + name); }
};

std::vector<Subscriber*> sorted(std::vector<Subscriber*> v) {
  std::sort(v.begin(), v.end());
  return v;
}

TEST(SubscriberListTest, HoldsOneInAWordAndSeveralOnTheHeap) {
  std::vector<std::string> log;
  Probe a(&log, "a"), b(&log, "b"), c(&log, "c");
  SubscriberList l;
  EXPECT_TRUE(l.empty());
  EXPECT_EQ(l.size(), 0u);
  l.add(&a);
  EXPECT_EQ(l.copy(), std::vector<Subscriber*>{&a});
  l.add(&b);
  l.add(&c);
  EXPECT_EQ(l.size(), 3u);
  EXPECT_EQ(sorted(l.copy()), sorted({&a, &b, &c}));

  SubscriberList moved(std::move(l));
  EXPECT_TRUE(l.empty());  // NOLINT(bugprone-use-after-move)
  moved.remove(&b);
  EXPECT_EQ(sorted(moved.copy()), sorted({&a, &c}));
  moved.remove(&b);  // not there: nothing changes
  EXPECT_EQ(moved.size(), 2u);
  moved.remove(&a);  // down to one: back in the word
  EXPECT_EQ(moved.copy(), std::vector<Subscriber*>{&c});
  moved.remove(&a);
  EXPECT_EQ(moved.size(), 1u);
  moved.remove(&c);
  EXPECT_TRUE(moved.empty());

  SubscriberList other;
  other.add(&a);
  other.add(&b);
  moved.add(&c);
  moved = std::move(other);  // frees nothing of a one-word list; ASan checks the heap one
  EXPECT_EQ(sorted(moved.copy()), sorted({&a, &b}));
}

TEST(ChannelKeyTest, HoldsShortNamesInlineAndLongOnesOnTheHeap) {
  EXPECT_EQ(sizeof(ChannelKey), 16u);
  for (const std::string& name :
       {std::string(), std::string("a"), std::string(14, 'x'), std::string(15, 'y'),
        std::string(16, 'z'), std::string("chat:room:") + std::string(300, 'r'),
        std::string("a\0b", 3)}) {
    const ChannelKey k(name);
    EXPECT_EQ(k.view(), name);
    ChannelKey copy(k);
    EXPECT_EQ(copy.view(), name);
    ChannelKey moved(std::move(copy));
    EXPECT_EQ(moved.view(), name);
    EXPECT_EQ(copy.view(), "");  // NOLINT(bugprone-use-after-move): moved-from is empty
    ChannelKey assigned("something else entirely, on the heap");
    assigned = std::move(moved);
    EXPECT_EQ(assigned.view(), name);
    assigned = k;
    EXPECT_EQ(assigned.view(), name);
    EXPECT_TRUE(ChannelKey::Equal{}(assigned, std::string_view(name)));
    EXPECT_EQ(ChannelKey::Hash{}(assigned), ChannelKey::Hash{}(std::string_view(name)));
  }
  EXPECT_FALSE(ChannelKey::Equal{}(ChannelKey(std::string(15, 'y')), std::string_view("y")));
}

TEST(LocalSubscribersTest, DeliversToEachAndEndsEach) {
  std::vector<std::string> log;
  struct Ending final : Subscriber {
    LocalSubscribers* table;
    std::vector<std::string>* log;
    std::string name;
    void deliver(std::string_view, const ws::SharedFrame&) override { log->push_back(name); }
    // As a session does: leaves the table while the table is ending it.
    void end(const std::string& channel, std::string_view reason) override {
      log->push_back("end " + name + " " + std::string(reason));
      table->remove(channel, this);
    }
  };
  LocalSubscribers t;
  Ending a, b, c;
  for (auto [s, n] : {std::pair{&a, "a"}, {&b, "b"}, {&c, "c"}}) {
    s->table = &t;
    s->log = &log;
    s->name = n;
  }
  const std::string x = "x", y = "a channel name longer than fifteen bytes";
  t.add(x, &a);
  t.add(x, &b);
  t.add(y, &c);
  const ws::SharedFrame frame = ws::make_frame("{}");
  t.deliver(x, frame);
  std::sort(log.begin(), log.end());
  EXPECT_EQ(log, (std::vector<std::string>{"a", "b"}));
  log.clear();
  t.deliver("nobody", frame);
  EXPECT_TRUE(log.empty());

  t.end(x, "destroyed");
  std::sort(log.begin(), log.end());
  EXPECT_EQ(log, (std::vector<std::string>{"end a destroyed", "end b destroyed"}));
  log.clear();
  t.deliver(x, frame);  // all gone
  t.deliver(y, frame);
  EXPECT_EQ(log, std::vector<std::string>{"c"});
  t.remove(y, &c);
  log.clear();
  t.deliver(y, frame);
  EXPECT_TRUE(log.empty());
}

}  // namespace
}  // namespace herald::core
