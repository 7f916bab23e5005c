// LocalSubscribers; see subscribers.hpp.
#include "core/subscribers.hpp"

#include <algorithm>

namespace herald::core {

void LocalSubscribers::add(const std::string& channel, Subscriber* s) {
  channels_[channel].push_back(s);
}

void LocalSubscribers::remove(const std::string& channel, Subscriber* s) {
  auto it = channels_.find(channel);
  if (it == channels_.end()) return;
  auto& list = it->second;
  auto pos = std::find(list.begin(), list.end(), s);
  if (pos != list.end()) {
    *pos = list.back();
    list.pop_back();
  }
  if (list.empty()) channels_.erase(it);
}

void LocalSubscribers::deliver(std::string_view channel, const ws::SharedFrame& frame) {
  auto it = channels_.find(channel);
  if (it == channels_.end()) return;
  // Safe to iterate: Connection::send never closes synchronously (a slow
  // consumer is terminated at the next flush), so the list cannot change here.
  for (Subscriber* s : it->second) s->deliver(frame);
}

void LocalSubscribers::end(const std::string& channel, std::string_view reason) {
  auto it = channels_.find(channel);
  if (it == channels_.end()) return;
  // Each end() removes its subscriber from the list: walk a copy.
  const List ending = it->second;
  for (Subscriber* s : ending) s->end(channel, reason);
}

}  // namespace herald::core
