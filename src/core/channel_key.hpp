// ChannelKey: a channel name as a hash table key in 16 bytes: up to 15
// bytes inline (what std::string's inline buffer holds), a longer name in
// one heap block (its length, then its bytes). A std::string is 32 bytes;
// tables with an entry per subscribed channel pay the difference per idle
// connection (issue 15). Owns nothing else; used by LocalSubscribers.
#pragma once

#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>

namespace herald::core {

class ChannelKey {
 public:
  explicit ChannelKey(std::string_view name) {
    if (name.size() <= kMaxInline) {
      std::memcpy(bytes_, name.data(), name.size());
      bytes_[kTag] = static_cast<char>(name.size());
      return;
    }
    const auto size = static_cast<uint32_t>(name.size());  // names are bounded far below
    char* block = new char[sizeof size + name.size()];
    std::memcpy(block, &size, sizeof size);
    std::memcpy(block + sizeof size, name.data(), name.size());
    std::memcpy(bytes_, &block, sizeof block);
    bytes_[kTag] = static_cast<char>(kHeapTag);
  }
  ChannelKey(const ChannelKey& o) : ChannelKey(o.view()) {}
  ChannelKey(ChannelKey&& o) noexcept {
    std::memcpy(bytes_, o.bytes_, sizeof bytes_);
    o.bytes_[kTag] = 0;  // now empty: its block is ours
  }
  ChannelKey& operator=(ChannelKey o) noexcept {
    std::swap(bytes_, o.bytes_);
    return *this;
  }
  ~ChannelKey() {
    if (on_heap()) delete[] block();
  }

  std::string_view view() const {
    if (!on_heap()) return {bytes_, static_cast<size_t>(static_cast<unsigned char>(bytes_[kTag]))};
    uint32_t size;
    std::memcpy(&size, block(), sizeof size);
    return {block() + sizeof size, size};
  }

  // For tables keyed by ChannelKey and looked up by any string.
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
    size_t operator()(const ChannelKey& k) const { return (*this)(k.view()); }
  };
  struct Equal {
    using is_transparent = void;
    template <class A, class B>
    bool operator()(const A& a, const B& b) const {
      return as_view(a) == as_view(b);
    }
    static std::string_view as_view(const ChannelKey& k) { return k.view(); }
    static std::string_view as_view(std::string_view s) { return s; }
  };

 private:
  static constexpr size_t kMaxInline = 15;
  static constexpr size_t kTag = 15;  // bytes_[kTag]: the inline length, or kHeapTag
  static constexpr unsigned char kHeapTag = 0xff;
  bool on_heap() const { return static_cast<unsigned char>(bytes_[kTag]) == kHeapTag; }
  char* block() const {
    char* p;
    std::memcpy(&p, bytes_, sizeof p);
    return p;
  }

  alignas(8) char bytes_[16] = {};
};

}  // namespace herald::core
