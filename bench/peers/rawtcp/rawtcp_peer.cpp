// herald-rawtcp-peer: the raw-TCP ceiling for herald-bench (--target raw).
// A single-threaded epoll server that answers the WebSocket upgrade
// minimally (so the bench's client path is the same as against Herald) and
// then does as little protocol work as possible:
//
//   - a client text frame whose "type" is "subscribe" adds the connection to
//     that channel's subscriber list and is answered with
//     {"type":"subscribed","id":ID,"channel":C};
//   - a "publish" frame's data is turned into one server event frame
//     {"type":"event","channel":C,"event":E,"data":D}, built once per
//     message, whose bytes are written to every subscriber socket of the
//     channel; then {"type":"ack","id":ID} goes to the publisher (acks leave
//     in one write per publisher at the end of the loop turn);
//   - anything else is ignored; pings get pongs, closes are echoed.
//
// --batch 1: one send() per subscriber per message. --batch N: messages are
// appended to the channel's batch buffer, and N of them (or whatever arrived
// by the end of the current loop turn, i.e. when the publishers' window
// pauses; there is no timer) leave to each subscriber in one send() of the
// contiguous batch. Sockets are non-blocking; what a socket does not take is
// queued for it without bound (nothing is ever dropped) and written on
// EPOLLOUT. Usage: herald-rawtcp-peer [--listen 127.0.0.1:18950] [--batch N].
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace {

constexpr size_t kReadChunk = 256 * 1024;
constexpr size_t kMaxFrame = 16u << 20;
constexpr size_t kMaxRequest = 16 * 1024;
constexpr uint64_t kListenTag = ~uint64_t{0};

std::string base64(const unsigned char* p, size_t n) {
  static constexpr char kTab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < n; i += 3) {
    const uint32_t v = (uint32_t{p[i]} << 16) | (i + 1 < n ? uint32_t{p[i + 1]} << 8 : 0) |
                       (i + 2 < n ? p[i + 2] : 0);
    out += kTab[v >> 18];
    out += kTab[(v >> 12) & 63];
    out += i + 1 < n ? kTab[(v >> 6) & 63] : '=';
    out += i + 2 < n ? kTab[v & 63] : '=';
  }
  return out;
}

std::string ws_accept(std::string_view key) {
  std::string in(key);
  in += "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(in.data(), in.size(), md, &len, EVP_sha1(), nullptr);
  return base64(md, len);
}

// Appends a server (unmasked) frame header for a payload of n bytes.
void frame_header(std::string& out, uint8_t opcode, size_t n) {
  out += static_cast<char>(0x80 | opcode);
  if (n < 126) {
    out += static_cast<char>(n);
  } else if (n <= 0xFFFF) {
    out += static_cast<char>(126);
    out += static_cast<char>(n >> 8);
    out += static_cast<char>(n & 0xFF);
  } else {
    out += static_cast<char>(127);
    for (int i = 7; i >= 0; --i) out += static_cast<char>((uint64_t(n) >> (8 * i)) & 0xFF);
  }
}

// The raw value after "key": in a compact JSON object: a quoted string's
// contents, or a bare token up to ',' or '}'. Empty when absent.
std::string_view json_field(std::string_view m, std::string_view quoted_key_colon,
                            bool string_value) {
  const size_t k = m.find(quoted_key_colon);
  if (k == std::string_view::npos) return {};
  size_t b = k + quoted_key_colon.size();
  while (b < m.size() && m[b] == ' ') ++b;
  if (string_value) {
    if (b >= m.size() || m[b] != '"') return {};
    const size_t e = m.find('"', b + 1);
    return e == std::string_view::npos ? std::string_view() : m.substr(b + 1, e - b - 1);
  }
  size_t e = b;
  while (e < m.size() && m[e] != ',' && m[e] != '}') ++e;
  return m.substr(b, e - b);
}

struct Conn {
  int fd = -1;
  bool upgraded = false;
  bool want_write = false;
  bool dirty = false;   // has queued bytes to flush at the end of the turn
  bool broken = false;  // a write failed: closed at the end of the turn
  std::string in;       // unparsed bytes
  std::string out;      // queued bytes (out_off.. still to write)
  size_t out_off = 0;
  std::vector<std::pair<uint32_t, uint32_t>> subs;  // (channel, position in its list)
};

struct Channel {
  std::string name;
  std::vector<uint32_t> subs;  // connection ids
  std::string batch;           // event frames not yet written (batch mode)
  uint32_t batch_count = 0;
  bool dirty = false;
};

class Server {
 public:
  Server(sockaddr_in addr, uint32_t batch) : batch_(batch) {
    epfd_ = epoll_create1(EPOLL_CLOEXEC);
    lfd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    const int one = 1;
    setsockopt(lfd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(lfd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0 ||
        ::listen(lfd_, 4096) < 0) {
      std::fprintf(stderr, "herald-rawtcp-peer: bind/listen: %s\n", std::strerror(errno));
      std::exit(2);
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kListenTag;
    epoll_ctl(epfd_, EPOLL_CTL_ADD, lfd_, &ev);
    rbuf_.resize(kReadChunk);
  }

  void run() {
    epoll_event events[1024];
    for (;;) {
      const int n = epoll_wait(epfd_, events, 1024, -1);
      if (n < 0) {
        if (errno == EINTR) continue;
        std::perror("epoll_wait");
        return;
      }
      for (int i = 0; i < n; ++i) {
        const uint64_t tag = events[i].data.u64;
        if (tag == kListenTag) {
          accept_all();
          continue;
        }
        Conn* c = conns_[tag].get();
        if (!c || c->fd < 0) continue;
        if (events[i].events & EPOLLOUT) flush(static_cast<uint32_t>(tag));
        if (c->fd >= 0 && (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
          read_conn(static_cast<uint32_t>(tag));
      }
      // End of the turn: partial batches, then acks and replies.
      for (uint32_t ch : dirty_channels_) flush_batch(ch);
      dirty_channels_.clear();
      for (uint32_t id : pending_close_) {
        if (conns_[id] && conns_[id]->fd >= 0 && conns_[id]->broken) close_conn(id);
      }
      pending_close_.clear();
      for (size_t i = 0; i < dirty_conns_.size(); ++i) {
        const uint32_t id = dirty_conns_[i];
        conns_[id]->dirty = false;
        flush(id);
      }
      dirty_conns_.clear();
    }
  }

 private:
  void accept_all() {
    for (;;) {
      const int fd = accept4(lfd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) std::perror("accept4");
        return;
      }
      const int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      uint32_t id;
      if (!free_.empty()) {
        id = free_.back();
        free_.pop_back();
        conns_[id] = std::make_unique<Conn>();
      } else {
        id = static_cast<uint32_t>(conns_.size());
        conns_.push_back(std::make_unique<Conn>());
      }
      conns_[id]->fd = fd;
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u64 = id;
      epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev);
    }
  }

  void close_conn(uint32_t id) {
    Conn& c = *conns_[id];
    if (c.fd < 0) return;
    ::close(c.fd);
    c.fd = -1;
    // Leave every channel: swap-remove, fixing the moved entry's position.
    for (const auto& [ch, pos] : c.subs) {
      Channel& chan = channels_[ch];
      const uint32_t last = chan.subs.back();
      chan.subs[pos] = last;
      chan.subs.pop_back();
      if (last != id) {
        for (auto& e : conns_[last]->subs) {
          if (e.first == ch) e.second = pos;
        }
      }
    }
    c.subs.clear();
    std::string().swap(c.in);
    std::string().swap(c.out);
    if (!c.dirty) {
      conns_[id].reset();
      free_.push_back(id);
    }
    // A dirty connection is released when the turn's flush list is done
    // with it (flush() of a closed connection releases it).
  }

  void set_want_write(Conn& c, uint32_t id, bool on) {
    if (c.want_write == on || c.fd < 0) return;
    epoll_event ev{};
    ev.events = EPOLLIN | (on ? EPOLLOUT : 0u);
    ev.data.u64 = id;
    epoll_ctl(epfd_, EPOLL_CTL_MOD, c.fd, &ev);
    c.want_write = on;
  }

  // Writes (or queues) bytes to a connection now.
  void send_now(uint32_t id, const char* p, size_t n) {
    Conn& c = *conns_[id];
    if (c.fd < 0) return;
    if (c.out_off < c.out.size()) {  // already queued: keep the order
      c.out.append(p, n);
      return;
    }
    if (c.broken) return;
    ssize_t w = ::send(c.fd, p, n, MSG_NOSIGNAL);
    ++writes_;
    if (w < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        // Not now: the caller may be iterating over a subscriber list.
        c.broken = true;
        pending_close_.push_back(id);
        return;
      }
      w = 0;
    }
    if (static_cast<size_t>(w) == n) return;
    c.out.assign(p + w, n - static_cast<size_t>(w));
    c.out_off = 0;
    set_want_write(c, id, true);
  }

  // Queues bytes for the end-of-turn flush (replies, acks).
  void queue(uint32_t id, std::string_view bytes) {
    Conn& c = *conns_[id];
    if (c.fd < 0) return;
    c.out.append(bytes);
    if (!c.dirty) {
      c.dirty = true;
      dirty_conns_.push_back(id);
    }
  }

  void flush(uint32_t id) {
    Conn* c = conns_[id].get();
    if (!c) return;
    if (c->fd < 0) {  // closed during the turn while on the flush list
      if (!c->dirty) {
        conns_[id].reset();
        free_.push_back(id);
      }
      return;
    }
    while (c->out_off < c->out.size()) {
      const ssize_t w =
          ::send(c->fd, c->out.data() + c->out_off, c->out.size() - c->out_off, MSG_NOSIGNAL);
      ++writes_;
      if (w > 0) {
        c->out_off += static_cast<size_t>(w);
        continue;
      }
      if (w < 0 && errno == EINTR) continue;
      if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        set_want_write(*c, id, true);
        return;
      }
      close_conn(id);
      return;
    }
    c->out.clear();
    c->out_off = 0;
    set_want_write(*c, id, false);
  }

  void read_conn(uint32_t id) {
    for (int round = 0; round < 8; ++round) {
      Conn& c = *conns_[id];
      const ssize_t r = ::recv(c.fd, rbuf_.data(), kReadChunk, 0);
      if (r == 0) {
        close_conn(id);
        return;
      }
      if (r < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) close_conn(id);
        return;
      }
      // Parse from the kept bytes + these, or straight from the read buffer.
      std::string_view data(rbuf_.data(), static_cast<size_t>(r));
      std::string joined;
      if (!c.in.empty()) {
        joined.swap(c.in);
        joined.append(data);
        data = joined;
      }
      const size_t used = parse(id, data);
      Conn* cp = conns_[id].get();
      if (!cp || cp->fd < 0) return;
      if (used < data.size()) cp->in.assign(data.substr(used));
      if (static_cast<size_t>(r) < kReadChunk) return;
    }
  }

  size_t parse(uint32_t id, std::string_view data) {
    size_t pos = 0;
    if (!conns_[id]->upgraded) {
      const size_t end = data.find("\r\n\r\n");
      if (end == std::string_view::npos) {
        if (data.size() > kMaxRequest) close_conn(id);
        return 0;
      }
      std::string_view head = data.substr(0, end + 2);
      std::string key;
      while (!head.empty()) {
        const size_t e = head.find("\r\n");
        std::string_view line = head.substr(0, e);
        head.remove_prefix(e == std::string_view::npos ? head.size() : e + 2);
        if (line.size() > 18 && strncasecmp(line.data(), "Sec-WebSocket-Key:", 18) == 0) {
          line.remove_prefix(18);
          while (!line.empty() && line.front() == ' ') line.remove_prefix(1);
          while (!line.empty() && (line.back() == ' ' || line.back() == '\r'))
            line.remove_suffix(1);
          key = std::string(line);
        }
      }
      if (key.empty()) {
        queue(id, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        flush(id);
        close_conn(id);
        return data.size();
      }
      queue(id,
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Accept: " +
                ws_accept(key) + "\r\n\r\n");
      conns_[id]->upgraded = true;
      pos = end + 4;
    }
    while (pos < data.size()) {
      const auto* p = reinterpret_cast<const unsigned char*>(data.data() + pos);
      const size_t avail = data.size() - pos;
      if (avail < 2) break;
      const uint8_t opcode = p[0] & 0x0F;
      const bool masked = p[1] & 0x80;
      uint64_t n = p[1] & 0x7F;
      size_t h = 2;
      if (n == 126) {
        if (avail < 4) break;
        n = (uint64_t{p[2]} << 8) | p[3];
        h = 4;
      } else if (n == 127) {
        if (avail < 10) break;
        n = 0;
        for (int i = 0; i < 8; ++i) n = (n << 8) | p[2 + i];
        h = 10;
      }
      if (n > kMaxFrame) {
        close_conn(id);
        return data.size();
      }
      const size_t mh = masked ? 4 : 0;
      if (avail < h + mh + n) break;
      payload_.resize(n);
      for (size_t i = 0; i < n; ++i)
        payload_[i] = static_cast<char>(p[h + mh + i] ^ (masked ? p[h + (i & 3)] : 0));
      pos += h + mh + n;
      // Fragmented messages are not used by herald-bench; a frame is a message.
      if (opcode == 0x1) {
        on_text(id, payload_);
      } else if (opcode == 0x8) {
        std::string f;
        frame_header(f, 0x8, std::min<size_t>(n, 2));
        f.append(payload_.data(), std::min<size_t>(n, 2));
        queue(id, f);
        flush(id);
        close_conn(id);
        return data.size();
      } else if (opcode == 0x9) {
        std::string f;
        frame_header(f, 0xA, n);
        f += payload_;
        queue(id, f);
      }
      Conn* c = conns_[id].get();
      if (!c || c->fd < 0) return data.size();
    }
    return pos;
  }

  void on_text(uint32_t id, std::string_view m) {
    const std::string_view type = json_field(m, "\"type\":", true);
    if (type == "publish") {
      publish(id, m);
    } else if (type == "subscribe") {
      const std::string_view name = json_field(m, "\"channel\":", true);
      const uint32_t ch = channel_id(name);
      Conn& c = *conns_[id];
      bool already = false;
      for (const auto& e : c.subs) already |= e.first == ch;
      if (!already) {
        c.subs.emplace_back(ch, static_cast<uint32_t>(channels_[ch].subs.size()));
        channels_[ch].subs.push_back(id);
      }
      std::string reply = "{\"type\":\"subscribed\"";
      const std::string_view rid = json_field(m, "\"id\":", false);
      if (!rid.empty()) {
        reply += ",\"id\":";
        reply += rid;
      }
      reply += ",\"channel\":\"";
      reply += name;
      reply += "\"}";
      std::string f;
      frame_header(f, 0x1, reply.size());
      f += reply;
      queue(id, f);
    }
    // Anything else (pong, unsubscribe, ...) is ignored.
  }

  uint32_t channel_id(std::string_view name) {
    auto it = channel_ids_.find(std::string(name));
    if (it != channel_ids_.end()) return it->second;
    const uint32_t ch = static_cast<uint32_t>(channels_.size());
    channels_.push_back(Channel{std::string(name), {}, {}, 0, false});
    channel_ids_.emplace(std::string(name), ch);
    return ch;
  }

  void publish(uint32_t id, std::string_view m) {
    const std::string_view name = json_field(m, "\"channel\":", true);
    const std::string_view event = json_field(m, "\"event\":", true);
    const std::string_view rid = json_field(m, "\"id\":", false);
    // data: from after "data": to the object's closing brace.
    const size_t d = m.find("\"data\":");
    const size_t close = m.rfind('}');
    std::string_view data = "null";
    if (d != std::string_view::npos && close != std::string_view::npos && close > d + 7) {
      data = m.substr(d + 7, close - (d + 7));
    }
    // The event frame, built once.
    std::string& body = body_;
    body.clear();
    body += "{\"type\":\"event\",\"channel\":\"";
    body += name;
    body += "\",\"event\":\"";
    body += event;
    body += "\",\"data\":";
    body += data;
    body += '}';
    std::string& ev = event_;
    ev.clear();
    frame_header(ev, 0x1, body.size());
    ev += body;
    auto it = channel_ids_.find(std::string(name));
    if (it != channel_ids_.end()) {
      const uint32_t ch = it->second;
      Channel& chan = channels_[ch];
      if (batch_ <= 1) {
        for (size_t i = 0; i < chan.subs.size(); ++i) send_now(chan.subs[i], ev.data(), ev.size());
      } else {
        chan.batch += ev;
        if (++chan.batch_count >= batch_) {
          flush_batch(ch);
        } else if (!chan.dirty) {
          chan.dirty = true;
          dirty_channels_.push_back(ch);
        }
      }
    }
    ++published_;
    if (!rid.empty()) {
      std::string& a = ack_;
      a.clear();
      const size_t alen = 20 + rid.size();
      frame_header(a, 0x1, alen);
      a += "{\"type\":\"ack\",\"id\":";
      a += rid;
      a += '}';
      queue(id, a);
    }
  }

  void flush_batch(uint32_t ch) {
    Channel& chan = channels_[ch];
    chan.dirty = false;
    if (chan.batch.empty()) return;
    // One send() of the whole contiguous batch per subscriber.
    for (size_t i = 0; i < chan.subs.size(); ++i)
      send_now(chan.subs[i], chan.batch.data(), chan.batch.size());
    chan.batch.clear();
    chan.batch_count = 0;
  }

  uint32_t batch_;
  int epfd_ = -1, lfd_ = -1;
  std::vector<std::unique_ptr<Conn>> conns_;
  std::vector<uint32_t> free_;
  std::vector<Channel> channels_;
  std::unordered_map<std::string, uint32_t> channel_ids_;
  std::vector<uint32_t> dirty_channels_, dirty_conns_;
  std::vector<char> rbuf_;
  std::string payload_, body_, event_, ack_;
  std::vector<uint32_t> pending_close_;  // write errors, closed at the end of the turn
  uint64_t writes_ = 0, published_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  std::string listen = "127.0.0.1:18950";
  long batch = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if ((a == "--listen" || a == "--batch") && i + 1 < argc) {
      if (a == "--listen") {
        listen = argv[++i];
      } else {
        batch = std::strtol(argv[++i], nullptr, 10);
      }
    } else {
      std::fprintf(stderr,
                   "usage: herald-rawtcp-peer [--listen IPv4:PORT (127.0.0.1:18950)] [--batch N "
                   "(1; 1..4096)]\n");
      return a == "--help" || a == "-h" ? 0 : 2;
    }
  }
  const size_t colon = listen.rfind(':');
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  char* port_end = nullptr;
  const long port =
      colon == std::string::npos ? 0 : std::strtol(listen.c_str() + colon + 1, &port_end, 10);
  if (colon == std::string::npos ||
      inet_pton(AF_INET, listen.substr(0, colon).c_str(), &addr.sin_addr) != 1 || port < 1 ||
      port > 65535 || *port_end != '\0' || batch < 1 || batch > 4096) {
    std::fprintf(stderr, "herald-rawtcp-peer: bad --listen or --batch\n");
    return 2;
  }
  addr.sin_port = htons(static_cast<uint16_t>(port));
  signal(SIGPIPE, SIG_IGN);
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  Server s(addr, static_cast<uint32_t>(batch));
  std::fprintf(stderr, "herald-rawtcp-peer: listening on %s, batch %ld, single thread\n",
               listen.c_str(), batch);
  s.run();
  return 1;
}
