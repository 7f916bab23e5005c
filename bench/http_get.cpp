// herald-bench: http_get and prometheus_value (http_get.hpp).
#include "http_get.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace herald::bench {

HttpReply http_get(const Endpoint& ep, const std::string& path, const std::string& api_key,
                   uint64_t timeout_ms) {
  HttpReply r;
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    r.error = std::strerror(errno);
    return r;
  }
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout_ms / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout_ms % 1000) * 1000);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&ep.addr), sizeof ep.addr) != 0) {
    r.error = std::string("connect: ") + std::strerror(errno);
    ::close(fd);
    return r;
  }
  std::string req = "GET " + path + " HTTP/1.1\r\nHost: " + ep.host + ":" +
                    std::to_string(ep.port) + "\r\nConnection: close\r\n";
  if (!api_key.empty()) req += "Authorization: Bearer " + api_key + "\r\n";
  req += "\r\n";
  for (size_t off = 0; off < req.size();) {
    const ssize_t n = ::send(fd, req.data() + off, req.size() - off, MSG_NOSIGNAL);
    if (n <= 0) {
      r.error = std::string("send: ") + std::strerror(errno);
      ::close(fd);
      return r;
    }
    off += static_cast<size_t>(n);
  }
  std::string in;
  char buf[16384];
  size_t body_at = std::string::npos, content_length = std::string::npos;
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      r.error = std::string("recv: ") + std::strerror(errno);
      break;
    }
    if (n == 0) break;
    in.append(buf, static_cast<size_t>(n));
    if (body_at == std::string::npos) {
      const size_t e = in.find("\r\n\r\n");
      if (e == std::string::npos) continue;
      body_at = e + 4;
      // Content-Length, case-insensitively.
      std::string head = in.substr(0, e);
      for (char& ch : head) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      if (const size_t k = head.find("\r\ncontent-length:"); k != std::string::npos)
        content_length = std::strtoull(head.c_str() + k + 17, nullptr, 10);
    }
    if (content_length != std::string::npos && in.size() >= body_at + content_length) break;
  }
  ::close(fd);
  if (in.rfind("HTTP/1.", 0) != 0 || in.size() < 12) {
    if (r.error.empty()) r.error = "no HTTP reply";
    return r;
  }
  r.status = std::atoi(in.c_str() + 9);
  if (body_at != std::string::npos) {
    r.body = in.substr(body_at);
    if (content_length != std::string::npos && r.body.size() > content_length)
      r.body.resize(content_length);
  }
  r.error.clear();
  return r;
}

double prometheus_value(const std::string& page, std::string_view name) {
  double sum = -1;
  size_t pos = 0;
  while (pos < page.size()) {
    size_t eol = page.find('\n', pos);
    if (eol == std::string::npos) eol = page.size();
    std::string_view line(page.data() + pos, eol - pos);
    pos = eol + 1;
    if (line.substr(0, name.size()) != name) continue;
    std::string_view rest = line.substr(name.size());
    if (!rest.empty() && rest[0] == '{') {
      const size_t close = rest.find('}');
      if (close == std::string_view::npos) continue;
      rest.remove_prefix(close + 1);
    }
    if (rest.empty() || rest[0] != ' ') continue;  // another metric with this prefix
    const double v = std::strtod(std::string(rest.substr(1)).c_str(), nullptr);
    sum = (sum < 0 ? 0 : sum) + v;
  }
  return sum;
}

}  // namespace herald::bench
