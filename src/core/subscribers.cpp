// LocalSubscribers and SubscriberList; see subscribers.hpp.
#include "core/subscribers.hpp"

#include <algorithm>

namespace herald::core {

// A Subscriber has a vtable pointer, so its address never has the tag bit.
static_assert(alignof(Subscriber) >= 2);
static_assert(sizeof(SubscriberList) == sizeof(void*));

SubscriberList& SubscriberList::operator=(SubscriberList&& o) noexcept {
  if (this != &o) {
    delete many();
    bits_ = o.bits_;
    o.bits_ = 0;
  }
  return *this;
}

size_t SubscriberList::size() const {
  if (const auto* v = many()) return v->size();
  return bits_ != 0 ? 1 : 0;
}

void SubscriberList::add(Subscriber* s) {
  if (bits_ == 0) {
    bits_ = reinterpret_cast<uintptr_t>(s);
    return;
  }
  if (auto* v = many()) {
    v->push_back(s);
    return;
  }
  auto* v = new std::vector<Subscriber*>{one(), s};
  bits_ = reinterpret_cast<uintptr_t>(v) | kMany;
}

void SubscriberList::remove(Subscriber* s) {
  auto* v = many();
  if (!v) {
    if (bits_ == reinterpret_cast<uintptr_t>(s)) bits_ = 0;
    return;
  }
  auto pos = std::find(v->begin(), v->end(), s);
  if (pos == v->end()) return;
  *pos = v->back();
  v->pop_back();
  if (v->size() == 1) {
    // Back to one word: a channel that had several subscribers and is down
    // to one costs what a channel that always had one does.
    Subscriber* last = v->front();
    delete v;
    bits_ = reinterpret_cast<uintptr_t>(last);
  }
}

std::vector<Subscriber*> SubscriberList::copy() const {
  std::vector<Subscriber*> out;
  out.reserve(size());
  for_each([&out](Subscriber* s) { out.push_back(s); });
  return out;
}

void LocalSubscribers::add(const std::string& channel, Subscriber* s) {
  auto it = channels_.find(channel);
  if (it == channels_.end()) it = channels_.emplace(ChannelKey(channel), SubscriberList()).first;
  it->second.add(s);
}

void LocalSubscribers::remove(const std::string& channel, Subscriber* s) {
  auto it = channels_.find(channel);
  if (it == channels_.end()) return;
  it->second.remove(s);
  if (it->second.empty()) channels_.erase(it);
}

void LocalSubscribers::deliver(std::string_view channel, const ws::SharedFrame& frame) {
  auto it = channels_.find(channel);
  if (it == channels_.end()) return;
  // Safe to walk: Connection::send never closes synchronously (a slow
  // consumer is terminated at the next flush), so the list cannot change here.
  it->second.for_each([channel, &frame](Subscriber* s) { s->deliver(channel, frame); });
}

void LocalSubscribers::end(const std::string& channel, std::string_view reason) {
  auto it = channels_.find(channel);
  if (it == channels_.end()) return;
  // Each end() removes its subscriber from the list: walk a copy.
  for (Subscriber* s : it->second.copy()) s->end(channel, reason);
}

}  // namespace herald::core
