// Tests of the metrics building blocks (one suite, `metrics`, so that
// `ctest -R metrics` runs them all): gauges, histogram bucket placement
// (Prometheus `le` semantics) and the rendered text of a registry: counters
// summed, gauges and cumulative histogram buckets labelled by worker.
#include "metrics/metrics.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

using herald::metrics::Gauge;
using herald::metrics::Histogram;
using herald::metrics::Registry;

namespace {

bool contains_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos || text.rfind(line + "\n", 0) == 0;
}

}  // namespace

TEST(metrics, GaugeAddSubSet) {
  Gauge g;
  EXPECT_EQ(g.get(), 0);
  g.add();
  g.add(4);
  EXPECT_EQ(g.get(), 5);
  g.sub();
  g.sub(6);
  EXPECT_EQ(g.get(), -2);
  g.set(42);
  EXPECT_EQ(g.get(), 42);
}

TEST(metrics, HistogramPredefinedLayouts) {
  const auto lat = Histogram::latency_seconds();
  ASSERT_FALSE(lat.empty());
  EXPECT_DOUBLE_EQ(lat.front(), 0.00001);
  EXPECT_DOUBLE_EQ(lat.back(), 10);
  for (size_t i = 1; i < lat.size(); ++i) {
    const double ratio = lat[i] / lat[i - 1];
    EXPECT_GE(ratio, 2.0 - 1e-9) << i;
    EXPECT_LE(ratio, 2.5 + 1e-9) << i;
  }
  const auto size = Histogram::size_bytes();
  ASSERT_EQ(size.size(), 8u);
  EXPECT_EQ(size.front(), 64);
  EXPECT_EQ(size.back(), 1024 * 1024);
  for (size_t i = 1; i < size.size(); ++i) EXPECT_EQ(size[i], size[i - 1] * 4);
}

TEST(metrics, HistogramBucketPlacementFollowsLe) {
  Histogram h{1, 2, 4};
  // A value equal to a bound belongs to that bound's bucket.
  for (double v : {-3.0, 0.0, 1.0}) h.observe(v);       // le 1
  for (double v : {1.5, 2.0}) h.observe(v);             // le 2
  h.observe(3.999);                                     // le 4
  for (double v : {4.0001, 1e9}) h.observe(v);          // +Inf
  h.observe(std::numeric_limits<double>::infinity());   // +Inf
  h.observe(std::numeric_limits<double>::quiet_NaN());  // ignored
  const auto s = h.snapshot();
  EXPECT_EQ(s.buckets, (std::vector<uint64_t>{3, 2, 1, 3}));
  EXPECT_EQ(s.count, 9u);
  EXPECT_TRUE(std::isinf(s.sum));
}

TEST(metrics, HistogramSumAndCount) {
  Histogram h(Histogram::size_bytes());
  h.observe(10);
  h.observe(100);
  h.observe(2'000'000);
  const auto s = h.snapshot();
  EXPECT_EQ(s.count, 3u);
  EXPECT_DOUBLE_EQ(s.sum, 2'000'110);
  EXPECT_EQ(s.buckets.front(), 1u);  // le 64
  EXPECT_EQ(s.buckets[1], 1u);       // le 256
  EXPECT_EQ(s.buckets.back(), 1u);   // +Inf
}

TEST(metrics, HistogramRejectsBadBounds) {
  EXPECT_THROW((Histogram{1, 1}), std::invalid_argument);
  EXPECT_THROW((Histogram{2, 1}), std::invalid_argument);
  EXPECT_THROW((Histogram{1, std::numeric_limits<double>::infinity()}), std::invalid_argument);
  EXPECT_THROW((Histogram{std::numeric_limits<double>::quiet_NaN()}), std::invalid_argument);
  EXPECT_NO_THROW((Histogram{}));
}

TEST(metrics, RegistryRendersCountersSummedAndSeriesByWorker) {
  Registry reg;
  auto& w0 = reg.add_worker();
  auto& w1 = reg.add_worker();
  EXPECT_EQ(&reg.worker(1), &w1);
  EXPECT_THROW(reg.worker(2), std::out_of_range);

  w0.publishes.add(2);
  w1.publishes.add(3);
  w0.subscriptions.add(12);
  w1.subscriptions.add(5);
  w1.subscriptions.sub(2);
  w1.channels.set(7);
  w0.presence_members.add();
  w0.message_bytes.observe(10);                 // le 64
  w0.message_bytes.observe(64);                 // le 64
  w0.message_bytes.observe(1000);               // le 1024
  w0.message_bytes.observe(5e6);                // +Inf
  w1.publish_delivery_seconds.observe(0.0003);  // le 0.0005
  w0.hooks[2].requests.add(2);                  // publish hook
  w1.hooks[2].requests.add(1);
  w1.hooks[2].errors.add(1);
  w1.hooks[2].seconds.observe(0.004);  // le 0.005

  const std::string text = reg.render();
  // The summed counters keep their names and form.
  EXPECT_TRUE(contains_line(text, "herald_publishes_total 5")) << text;
  EXPECT_TRUE(contains_line(text, "herald_workers 2")) << text;

  EXPECT_TRUE(contains_line(text, "# TYPE herald_subscriptions gauge")) << text;
  EXPECT_TRUE(contains_line(text, "herald_subscriptions{worker=\"0\"} 12")) << text;
  EXPECT_TRUE(contains_line(text, "herald_subscriptions{worker=\"1\"} 3")) << text;
  EXPECT_TRUE(contains_line(text, "herald_channels{worker=\"0\"} 0")) << text;
  EXPECT_TRUE(contains_line(text, "herald_channels{worker=\"1\"} 7")) << text;
  EXPECT_TRUE(contains_line(text, "herald_presence_members{worker=\"0\"} 1")) << text;

  // Hooks: counters summed per hook, latency per worker and hook with requests.
  EXPECT_TRUE(contains_line(text, "herald_hook_requests_total{hook=\"publish\"} 3")) << text;
  EXPECT_TRUE(contains_line(text, "herald_hook_requests_total{hook=\"connect\"} 0")) << text;
  EXPECT_TRUE(contains_line(text, "herald_hook_errors_total{hook=\"publish\"} 1")) << text;
  EXPECT_TRUE(contains_line(
      text, "herald_hook_seconds_bucket{worker=\"1\",hook=\"publish\",le=\"0.005\"} 1"))
      << text;
  EXPECT_TRUE(contains_line(text, "herald_hook_seconds_count{worker=\"1\",hook=\"publish\"} 1"))
      << text;
  EXPECT_EQ(text.find("hook=\"rpc\",le="), std::string::npos) << text;

  // Cumulative buckets, +Inf, sum and count.
  EXPECT_TRUE(contains_line(text, "# TYPE herald_message_bytes histogram")) << text;
  EXPECT_TRUE(contains_line(text, "herald_message_bytes_bucket{worker=\"0\",le=\"64\"} 2")) << text;
  EXPECT_TRUE(contains_line(text, "herald_message_bytes_bucket{worker=\"0\",le=\"256\"} 2"))
      << text;
  EXPECT_TRUE(contains_line(text, "herald_message_bytes_bucket{worker=\"0\",le=\"1024\"} 3"))
      << text;
  EXPECT_TRUE(contains_line(text, "herald_message_bytes_bucket{worker=\"0\",le=\"1048576\"} 3"))
      << text;
  EXPECT_TRUE(contains_line(text, "herald_message_bytes_bucket{worker=\"0\",le=\"+Inf\"} 4"))
      << text;
  EXPECT_TRUE(contains_line(text, "herald_message_bytes_count{worker=\"0\"} 4")) << text;
  EXPECT_TRUE(contains_line(text, "herald_message_bytes_sum{worker=\"0\"} 5001074")) << text;
  EXPECT_TRUE(contains_line(text, "herald_message_bytes_count{worker=\"1\"} 0")) << text;
  EXPECT_TRUE(contains_line(text, "herald_message_bytes_bucket{worker=\"1\",le=\"+Inf\"} 0"))
      << text;

  EXPECT_TRUE(
      contains_line(text, "herald_publish_delivery_seconds_bucket{worker=\"1\",le=\"0.00025\"} 0"))
      << text;
  EXPECT_TRUE(
      contains_line(text, "herald_publish_delivery_seconds_bucket{worker=\"1\",le=\"0.0005\"} 1"))
      << text;
  EXPECT_TRUE(
      contains_line(text, "herald_publish_delivery_seconds_bucket{worker=\"1\",le=\"10\"} 1"))
      << text;
  EXPECT_TRUE(contains_line(text, "herald_publish_delivery_seconds_sum{worker=\"1\"} 0.0003"))
      << text;
  for (const char* name : {"herald_engine_append_seconds", "herald_history_read_seconds",
                           "herald_publish_delivery_seconds", "herald_message_bytes",
                           "herald_subscriptions", "herald_channels", "herald_presence_members"}) {
    EXPECT_NE(text.find(std::string("# HELP ") + name + " "), std::string::npos) << name;
    EXPECT_NE(text.find(std::string("# TYPE ") + name + " "), std::string::npos) << name;
  }

  // Buckets are cumulative: along each series the counts never go down.
  size_t pos = 0;
  uint64_t previous = 0;
  std::string previous_series;
  while ((pos = text.find("_bucket{", pos)) != std::string::npos) {
    const size_t line_start = text.rfind('\n', pos) + 1;
    const size_t le = text.find(",le=", pos);
    const size_t end = text.find('\n', pos);
    const std::string series = text.substr(line_start, le - line_start);
    const size_t space = text.rfind(' ', end);
    const uint64_t value = std::stoull(text.substr(space + 1, end - space - 1));
    if (series == previous_series) {
      EXPECT_GE(value, previous) << series;
    }
    previous_series = series;
    previous = value;
    pos = end;
  }
}
