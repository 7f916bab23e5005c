// herald-bench: the epoll loop and RFC 6455 client codec declared in
// ws_loop.hpp (connect, upgrade handshake, masked sends, frame parsing,
// corked flushing).
#include "ws_loop.hpp"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace herald::bench {

namespace {

constexpr std::string_view kWsGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
constexpr size_t kReadChunk = 256 * 1024;
constexpr size_t kMaxHandshakeReply = 16 * 1024;
constexpr int kMaxEvents = 1024;

std::string base64(const unsigned char* p, size_t n) {
  static constexpr char kTab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((n + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    const uint32_t v = (uint32_t{p[i]} << 16) | (uint32_t{p[i + 1]} << 8) | p[i + 2];
    out += kTab[v >> 18];
    out += kTab[(v >> 12) & 63];
    out += kTab[(v >> 6) & 63];
    out += kTab[v & 63];
  }
  if (n - i == 1) {
    const uint32_t v = uint32_t{p[i]} << 16;
    out += kTab[v >> 18];
    out += kTab[(v >> 12) & 63];
    out += "==";
  } else if (n - i == 2) {
    const uint32_t v = (uint32_t{p[i]} << 16) | (uint32_t{p[i + 1]} << 8);
    out += kTab[v >> 18];
    out += kTab[(v >> 12) & 63];
    out += kTab[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

}  // namespace

// RFC 6455 section 4.2.2.
std::string websocket_accept(const std::string& key) {
  std::string in = key;
  in += kWsGuid;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  if (EVP_Digest(in.data(), in.size(), md, &md_len, EVP_sha1(), nullptr) != 1) {
    throw std::runtime_error("EVP_Digest(sha1) failed");
  }
  return base64(md, md_len);
}

namespace {

void fill_random(void* p, size_t n) {
  auto* b = static_cast<unsigned char*>(p);
  while (n > 0) {
    const ssize_t r = getrandom(b, n, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error(std::string("getrandom: ") + std::strerror(errno));
    }
    b += r;
    n -= static_cast<size_t>(r);
  }
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    const char x = (a[i] >= 'A' && a[i] <= 'Z') ? char(a[i] + 32) : a[i];
    const char y = (b[i] >= 'A' && b[i] <= 'Z') ? char(b[i] + 32) : b[i];
    if (x != y) return false;
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

void mask_copy(char* dst, const char* src, size_t n, uint32_t key) {
  unsigned char k[4];
  std::memcpy(k, &key, 4);
  // 8 bytes at a time, then the tail; the mask repeats every 4 bytes.
  uint64_t k8;
  std::memcpy(&k8, k, 4);
  std::memcpy(reinterpret_cast<char*>(&k8) + 4, k, 4);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t v;
    std::memcpy(&v, src + i, 8);
    v ^= k8;
    std::memcpy(dst + i, &v, 8);
  }
  for (; i < n; ++i) dst[i] = static_cast<char>(src[i] ^ k[i & 3]);
}

}  // namespace

uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1'000'000'000u + uint64_t(ts.tv_nsec);
}

bool parse_ws_url(std::string_view url, Endpoint& out, std::string& error) {
  constexpr std::string_view kScheme = "ws://";
  if (url.substr(0, kScheme.size()) != kScheme) {
    error = "URL must start with ws:// (wss is not supported)";
    return false;
  }
  url.remove_prefix(kScheme.size());
  const size_t slash = url.find('/');
  std::string_view hostport = url.substr(0, slash);
  out.path = slash == std::string_view::npos ? "/" : std::string(url.substr(slash));
  std::string_view host = hostport;
  out.port = 80;
  if (const size_t colon = hostport.rfind(':'); colon != std::string_view::npos) {
    host = hostport.substr(0, colon);
    const std::string_view ps = hostport.substr(colon + 1);
    unsigned long p = 0;
    if (ps.empty() || ps.size() > 5) {
      error = "bad port in URL";
      return false;
    }
    for (char ch : ps) {
      if (ch < '0' || ch > '9') {
        error = "bad port in URL";
        return false;
      }
      p = p * 10 + unsigned(ch - '0');
    }
    if (p == 0 || p > 65535) {
      error = "bad port in URL";
      return false;
    }
    out.port = static_cast<uint16_t>(p);
  }
  if (host.empty()) {
    error = "no host in URL";
    return false;
  }
  out.host = std::string(hostport);
  const std::string h = host == "localhost" ? "127.0.0.1" : std::string(host);
  out.addr = {};
  out.addr.sin_family = AF_INET;
  out.addr.sin_port = htons(out.port);
  if (inet_pton(AF_INET, h.c_str(), &out.addr.sin_addr) != 1) {
    error = "host must be an IPv4 address or localhost (got '" + std::string(host) + "')";
    return false;
  }
  return true;
}

Loop::Loop(Endpoint ep, Handler& h, size_t max_message_bytes)
    : handler_(h), max_message_bytes_(max_message_bytes) {
  epfd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0) throw std::runtime_error(std::string("epoll_create1: ") + std::strerror(errno));
  rbuf_.resize(kReadChunk);
  fill_random(&rng_, sizeof rng_);
  rng_ |= 1;
  add_endpoint(std::move(ep));
}

uint32_t Loop::add_endpoint(Endpoint ep) {
  request_prefixes_.push_back("GET " + ep.path + " HTTP/1.1\r\nHost: " + ep.host +
                              "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                              "Sec-WebSocket-Version: 13\r\nUser-Agent: herald-bench\r\n"
                              "Sec-WebSocket-Key: ");
  eps_.push_back(std::move(ep));
  return static_cast<uint32_t>(eps_.size() - 1);
}

Loop::~Loop() {
  for (auto& c : conns_) {
    if (c->fd >= 0) ::close(c->fd);
  }
  if (epfd_ >= 0) ::close(epfd_);
}

uint32_t Loop::next_mask() {
  // xorshift64*: masks only need to be unpredictable to intermediaries; the
  // seed comes from getrandom().
  rng_ ^= rng_ >> 12;
  rng_ ^= rng_ << 25;
  rng_ ^= rng_ >> 27;
  return static_cast<uint32_t>((rng_ * 0x2545F4914F6CDD1DULL) >> 32);
}

Conn& Loop::connect(uint64_t user, uint32_t endpoint) {
  if (endpoint >= eps_.size()) throw std::out_of_range("Loop::connect: no such endpoint");
  Conn* slot;
  if (!free_.empty()) {
    const uint32_t index = free_.back();
    free_.pop_back();
    slot = conns_[index].get();
    *slot = Conn{};
    slot->index = index;
  } else {
    conns_.push_back(std::make_unique<Conn>());
    slot = conns_.back().get();
    slot->index = static_cast<uint32_t>(conns_.size() - 1);
  }
  Conn& c = *slot;
  c.user = user;
  c.endpoint = endpoint;
  c.started_ns = now_ns();
  ++handshaking_;

  c.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c.fd < 0) {
    failed_now_.emplace_back(&c,
                             std::string("socket: ") + std::strerror(errno));  // reported next turn
    return c;
  }
  const int one = 1;
  setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  const sockaddr_in& addr = eps_[c.endpoint].addr;
  const int r = ::connect(c.fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  if (r < 0 && errno != EINPROGRESS) {
    failed_now_.emplace_back(&c, std::string("connect: ") + std::strerror(errno));
    return c;
  }
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT;
  ev.data.u64 = c.index;
  c.want_write = true;
  if (epoll_ctl(epfd_, EPOLL_CTL_ADD, c.fd, &ev) < 0) {
    failed_now_.emplace_back(&c, std::string("epoll_ctl: ") + std::strerror(errno));
    return c;
  }
  if (r == 0) on_connected(c);
  return c;
}

void Loop::on_connected(Conn& c) {
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
  if (err != 0) {
    fail(c, std::string("connect: ") + std::strerror(err));
    return;
  }
  c.state = ConnState::upgrading;
  unsigned char raw[16];
  fill_random(raw, sizeof raw);
  const std::string key = base64(raw, sizeof raw);
  c.accept_key = websocket_accept(key);
  c.out += request_prefixes_[c.endpoint];
  c.out += key;
  c.out += "\r\n\r\n";
  mark_dirty(c);
}

void Loop::mark_dirty(Conn& c) {
  if (!c.dirty) {
    c.dirty = true;
    dirty_.push_back(&c);
  }
}

void Loop::set_want_write(Conn& c, bool on) {
  if (c.want_write == on || c.fd < 0) return;
  epoll_event ev{};
  ev.events = EPOLLIN | (on ? EPOLLOUT : 0u);
  ev.data.u64 = c.index;
  epoll_ctl(epfd_, EPOLL_CTL_MOD, c.fd, &ev);
  c.want_write = on;
}

void Loop::queue_frame(Conn& c, uint8_t opcode, std::string_view payload) {
  char hdr[14];
  size_t h = 0;
  hdr[h++] = static_cast<char>(0x80 | opcode);
  const uint64_t n = payload.size();
  if (n < 126) {
    hdr[h++] = static_cast<char>(0x80 | n);
  } else if (n <= 0xFFFF) {
    hdr[h++] = static_cast<char>(0x80 | 126);
    hdr[h++] = static_cast<char>(n >> 8);
    hdr[h++] = static_cast<char>(n & 0xFF);
  } else {
    hdr[h++] = static_cast<char>(0x80 | 127);
    for (int i = 7; i >= 0; --i) hdr[h++] = static_cast<char>((n >> (8 * i)) & 0xFF);
  }
  const uint32_t key = next_mask();
  std::memcpy(hdr + h, &key, 4);
  h += 4;
  const size_t at = c.out.size();
  c.out.resize(at + h + n);
  std::memcpy(c.out.data() + at, hdr, h);
  mask_copy(c.out.data() + at + h, payload.data(), n, key);
  ++counters_.frames_out;
  mark_dirty(c);
}

void Loop::send_text(Conn& c, std::string_view payload) {
  if (c.state != ConnState::open) return;
  queue_frame(c, 0x1, payload);
}

void Loop::send_binary(Conn& c, std::string_view payload) {
  if (c.state != ConnState::open) return;
  queue_frame(c, 0x2, payload);
}

void Loop::close(Conn& c, uint16_t code) {
  if (c.state == ConnState::closed) return;
  if (c.state == ConnState::open) {
    const char p[2] = {static_cast<char>(code >> 8), static_cast<char>(code & 0xFF)};
    queue_frame(c, 0x8, std::string_view(p, 2));
    flush(c);
  }
  CloseInfo info;
  info.was_open = c.state == ConnState::open;
  info.reason = "closed by bench";
  finish(c, std::move(info));
}

void Loop::close_all_now() {
  // By index: on_closed may start new connections.
  for (size_t i = 0; i < conns_.size(); ++i) {
    Conn* c = conns_[i].get();
    if (c->state == ConnState::closed) continue;
    CloseInfo info;
    info.was_open = c->state == ConnState::open;
    info.reason = "closed by bench";
    finish(*c, std::move(info));
  }
}

void Loop::fail(Conn& c, std::string reason, bool by_peer, uint16_t code) {
  CloseInfo info;
  info.was_open = c.state == ConnState::open;
  info.by_peer = by_peer;
  info.code = code;
  info.reason = std::move(reason);
  finish(c, std::move(info));
}

void Loop::finish(Conn& c, CloseInfo info) {
  if (c.state == ConnState::closed) return;
  if (c.state == ConnState::connecting || c.state == ConnState::upgrading) --handshaking_;
  if (c.fd >= 0) {
    ::close(c.fd);  // also removes it from the epoll set
    c.fd = -1;
  }
  c.state = ConnState::closed;
  std::string().swap(c.in);
  std::string().swap(c.out);
  std::string().swap(c.fragments);
  std::string().swap(c.proto_in);
  std::vector<uint64_t>().swap(c.proto_pending);
  c.proto_pending_head = 0;
  c.out_off = 0;
  handler_.on_closed(c, info);
}

void Loop::flush(Conn& c) {
  while (c.fd >= 0 && c.out_off < c.out.size()) {
    const ssize_t w =
        ::send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off, MSG_NOSIGNAL);
    ++counters_.writes;
    if (w > 0) {
      c.out_off += static_cast<size_t>(w);
      counters_.bytes_out += static_cast<uint64_t>(w);
      continue;
    }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      set_want_write(c, true);
      return;
    }
    fail(c, std::string("write: ") + std::strerror(errno));
    return;
  }
  if (c.fd < 0) return;
  c.out.clear();
  c.out_off = 0;
  // While connecting, EPOLLOUT signals the connect's completion.
  if (c.state != ConnState::connecting) set_want_write(c, false);
}

void Loop::flush_dirty() {
  // flush() may close connections but never adds to dirty_.
  for (size_t i = 0; i < dirty_.size(); ++i) {
    Conn* c = dirty_[i];
    c->dirty = false;
    if (c->state != ConnState::closed) flush(*c);
  }
  dirty_.clear();
}

void Loop::reset(Conn& c, std::string reason) {
  if (c.fd >= 0) {
    const linger l{1, 0};
    ::setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  }
  fail(c, std::move(reason));
}

void Loop::recycle(Conn& c) {
  if (c.state != ConnState::closed)
    throw std::logic_error("Loop::recycle: the connection is not closed");
  recycled_.push_back(c.index);
}

void Loop::run_once(int64_t timeout_ns) {
  // What was recycled during the last turn is free now: that turn's events
  // have all been handled.
  free_.insert(free_.end(), recycled_.begin(), recycled_.end());
  recycled_.clear();
  if (!failed_now_.empty()) {
    auto failed = std::move(failed_now_);
    failed_now_.clear();
    for (auto& [c, why] : failed) fail(*c, std::move(why));
  }
  epoll_event events[kMaxEvents];
  int n;
  if (timeout_ns < 0) {
    n = epoll_wait(epfd_, events, kMaxEvents, -1);
  } else {
    timespec ts;
    ts.tv_sec = static_cast<time_t>(timeout_ns / 1'000'000'000);
    ts.tv_nsec = static_cast<long>(timeout_ns % 1'000'000'000);
    n = epoll_pwait2(epfd_, events, kMaxEvents, &ts, nullptr);
    if (n < 0 && errno == ENOSYS) {
      n = epoll_wait(epfd_, events, kMaxEvents,
                     static_cast<int>((timeout_ns + 999'999) / 1'000'000));
    }
  }
  ++counters_.epoll_waits;
  if (n < 0) {
    if (errno == EINTR) return;
    throw std::runtime_error(std::string("epoll_wait: ") + std::strerror(errno));
  }
  for (int i = 0; i < n; ++i) {
    Conn& c = *conns_[events[i].data.u64];
    if (c.state == ConnState::closed) continue;
    on_event(c, events[i].events);
  }
  flush_dirty();
}

void Loop::on_event(Conn& c, uint32_t ev) {
  if (c.state == ConnState::connecting) {
    if (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)) on_connected(c);
    return;
  }
  if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) on_readable(c);
  if (c.state != ConnState::closed && (ev & EPOLLOUT)) flush(c);
}

void Loop::on_readable(Conn& c) {
  for (int round = 0; round < 4 && c.state != ConnState::closed; ++round) {
    // Bytes of an unfinished frame go first, then the new ones after them,
    // so the parser always sees one contiguous run.
    const size_t keep = c.in.size();
    if (rbuf_.size() < keep + kReadChunk) rbuf_.resize(keep + kReadChunk);
    if (keep) std::memcpy(rbuf_.data(), c.in.data(), keep);
    const ssize_t r = ::recv(c.fd, rbuf_.data() + keep, kReadChunk, 0);
    ++counters_.reads;
    if (r == 0) {
      fail(c, "server closed the TCP connection without a close frame", true);
      return;
    }
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      fail(c, std::string("read: ") + std::strerror(errno), true);
      return;
    }
    counters_.bytes_in += static_cast<uint64_t>(r);
    const uint64_t recv_ns = now_ns();
    const size_t total = keep + static_cast<size_t>(r);
    size_t used = 0;
    if (c.state == ConnState::upgrading) {
      used = parse_handshake(c, rbuf_.data(), total);
      if (c.state == ConnState::open && used < total) {
        used += parse_frames(c, rbuf_.data() + used, total - used, recv_ns);
      }
    } else if (c.state == ConnState::open) {
      used = parse_frames(c, rbuf_.data(), total, recv_ns);
    } else {
      used = total;
    }
    if (c.state == ConnState::closed) return;
    c.in.assign(rbuf_.data() + used, total - used);
    if (static_cast<size_t>(r) < kReadChunk) return;  // drained for now
  }
}

size_t Loop::parse_handshake(Conn& c, char* data, size_t len) {
  const std::string_view all(data, len);
  const size_t end = all.find("\r\n\r\n");
  if (end == std::string_view::npos) {
    if (len > kMaxHandshakeReply) fail(c, "upgrade reply too long");
    return 0;  // keep everything until the headers are complete
  }
  std::string_view head = all.substr(0, end + 2);
  const size_t eol = head.find("\r\n");
  const std::string_view status = head.substr(0, eol);
  // "HTTP/1.1 101 Switching Protocols"
  if (status.size() < 12 || status.substr(0, 5) != "HTTP/" || status.substr(8, 4) != " 101") {
    fail(c, "upgrade refused: " + std::string(status));
    return len;
  }
  bool accept_ok = false, upgrade_ok = false;
  head.remove_prefix(eol + 2);
  while (!head.empty()) {
    const size_t e = head.find("\r\n");
    const std::string_view line = head.substr(0, e);
    head.remove_prefix(e == std::string_view::npos ? head.size() : e + 2);
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    const std::string_view name = trim(line.substr(0, colon));
    const std::string_view value = trim(line.substr(colon + 1));
    if (iequals(name, "Sec-WebSocket-Accept")) accept_ok = value == c.accept_key;
    if (iequals(name, "Upgrade")) upgrade_ok = iequals(value, "websocket");
  }
  if (!accept_ok || !upgrade_ok) {
    fail(c, accept_ok ? "upgrade reply without Upgrade: websocket"
                      : "upgrade reply with a missing or wrong Sec-WebSocket-Accept");
    return len;
  }
  c.state = ConnState::open;
  --handshaking_;
  std::string().swap(c.accept_key);
  handler_.on_open(c);
  return end + 4;
}

size_t Loop::parse_frames(Conn& c, char* data, size_t len, uint64_t recv_ns) {
  size_t pos = 0;
  while (c.state == ConnState::open) {
    const size_t avail = len - pos;
    if (avail < 2) break;
    const auto* p = reinterpret_cast<const unsigned char*>(data + pos);
    const bool fin = p[0] & 0x80;
    const uint8_t opcode = p[0] & 0x0F;
    if (p[0] & 0x70) {
      fail(c, "protocol error: RSV bits set in a server frame");
      return len;
    }
    if (p[1] & 0x80) {
      fail(c, "protocol error: masked server frame");
      return len;
    }
    uint64_t plen = p[1] & 0x7F;
    size_t hlen = 2;
    if (plen == 126) {
      if (avail < 4) break;
      plen = (uint64_t{p[2]} << 8) | p[3];
      hlen = 4;
    } else if (plen == 127) {
      if (avail < 10) break;
      plen = 0;
      for (int i = 0; i < 8; ++i) plen = (plen << 8) | p[2 + i];
      hlen = 10;
      if (plen >> 63) {
        fail(c, "protocol error: 64-bit length with the top bit set");
        return len;
      }
    }
    const bool control = opcode & 0x8;
    if (control && (!fin || plen > 125)) {
      fail(c, "protocol error: fragmented or oversized control frame");
      return len;
    }
    if (plen > max_message_bytes_ || c.fragments.size() + plen > max_message_bytes_) {
      fail(c, "server message larger than the bench's limit");
      return len;
    }
    if (avail - hlen < plen) break;  // frame not complete yet
    const std::string_view payload(data + pos + hlen, static_cast<size_t>(plen));
    pos += hlen + static_cast<size_t>(plen);
    ++counters_.frames_in;
    switch (opcode) {
      case 0x0:  // continuation
        if (c.fragment_opcode == 0) {
          fail(c, "protocol error: continuation frame without a started message");
          return len;
        }
        c.fragments.append(payload);
        if (fin) {
          const uint8_t op = c.fragment_opcode;
          c.fragment_opcode = 0;
          std::string msg;
          msg.swap(c.fragments);
          if (op == 0x1) {
            handler_.on_text(c, msg, recv_ns);
          } else {
            ++counters_.binary_in;
            handler_.on_binary(c, msg, recv_ns);
          }
        }
        break;
      case 0x1:
      case 0x2:
        if (c.fragment_opcode != 0) {
          fail(c, "protocol error: new data frame inside a fragmented message");
          return len;
        }
        if (!fin) {
          c.fragment_opcode = opcode;
          c.fragments.assign(payload);
        } else if (opcode == 0x1) {
          handler_.on_text(c, payload, recv_ns);
        } else {
          ++counters_.binary_in;
          handler_.on_binary(c, payload, recv_ns);
        }
        break;
      case 0x8: {
        uint16_t code = 1005;
        std::string reason;
        if (payload.size() >= 2) {
          code = static_cast<uint16_t>((uint8_t(payload[0]) << 8) | uint8_t(payload[1]));
          reason.assign(payload.substr(2));
        }
        // Echo the code (RFC 6455 5.5.1), then drop the connection.
        const char echo[2] = {static_cast<char>(code >> 8), static_cast<char>(code & 0xFF)};
        queue_frame(c, 0x8, code == 1005 ? std::string_view() : std::string_view(echo, 2));
        flush(c);
        fail(c,
             "server closed with " + std::to_string(code) +
                 (reason.empty() ? "" : " (" + reason + ")"),
             true, code);
        return len;
      }
      case 0x9:
        queue_frame(c, 0xA, payload);
        ++counters_.pings_answered;
        break;
      case 0xA:
        break;
      default:
        fail(c, "protocol error: unknown opcode " + std::to_string(opcode));
        return len;
    }
  }
  return pos;
}

void Loop::expire_handshakes(uint64_t now, uint64_t timeout_ns) {
  if (handshaking_ == 0) return;
  for (size_t i = 0; i < conns_.size(); ++i) {  // by index: on_closed may connect
    Conn* c = conns_[i].get();
    if ((c->state == ConnState::connecting || c->state == ConnState::upgrading) &&
        now - c->started_ns > timeout_ns) {
      fail(*c, c->state == ConnState::connecting ? "connect timed out" : "upgrade timed out");
    }
  }
}

}  // namespace herald::bench
