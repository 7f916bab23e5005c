// Why ws::Connection copies a turn's frames into 16 KiB records instead of
// one SSL_write per frame (issue 16 item 1): the writer's CPU for both, over
// a socketpair with a reader thread draining and decrypting. Standalone:
//   openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
//     -keyout k.pem -out c.pem -days 2 -subj /CN=x
//   g++ -O2 -std=c++20 record_micro.cpp -o record_micro -lssl -lcrypto -pthread
//   ./record_micro <frame bytes> <frames per turn> <turns>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>
static double cpu() {
  rusage r;
  getrusage(RUSAGE_THREAD, &r);
  return r.ru_utime.tv_sec + r.ru_stime.tv_sec + (r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
}
int main(int argc, char** argv) {
  size_t frame = atoi(argv[1]);
  int per_turn = atoi(argv[2]);
  int turns = atoi(argv[3]);
  int sv[2];
  socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
  SSL_CTX* sctx = SSL_CTX_new(TLS_server_method());
  SSL_CTX_use_certificate_file(sctx, "c.pem", SSL_FILETYPE_PEM);
  SSL_CTX_use_PrivateKey_file(sctx, "k.pem", SSL_FILETYPE_PEM);
  SSL_CTX_set_mode(sctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                             SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX* cctx = SSL_CTX_new(TLS_client_method());
  SSL* s = SSL_new(sctx);
  SSL_set_fd(s, sv[0]);
  SSL* c = SSL_new(cctx);
  SSL_set_fd(c, sv[1]);
  std::thread ct([&] {
    SSL_connect(c);
    std::vector<char> buf(65536);
    size_t n;
    while (SSL_read_ex(c, buf.data(), buf.size(), &n) == 1) {
    }
  });
  SSL_accept(s);
  std::string f(frame, 'x');
  for (int mode = 0; mode < 2; ++mode) {
    double t0 = cpu();
    auto w0 = std::chrono::steady_clock::now();
    char scratch[16384];
    for (int t = 0; t < turns; ++t) {
      if (mode == 0) {
        for (int i = 0; i < per_turn; ++i) {
          size_t n;
          SSL_write_ex(s, f.data(), f.size(), &n);
        }
      } else {
        int i = 0;
        size_t off = 0;  // gather frames into records of up to 16 KiB
        while (i < per_turn) {
          size_t len = 0;
          while (i < per_turn && len < sizeof scratch) {
            size_t take = std::min(frame - off, sizeof scratch - len);
            memcpy(scratch + len, f.data() + off, take);
            len += take;
            off += take;
            if (off == frame) {
              off = 0;
              ++i;
            }
          }
          size_t n;
          SSL_write_ex(s, scratch, len, &n);
        }
      }
    }
    double cpu_s = cpu() - t0;
    double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - w0).count();
    printf("%s frame %zu B x %d per turn: writer CPU %.3f s, wall %.3f s for %d turns\n",
           mode ? "gathered 16KiB" : "per frame     ", frame, per_turn, cpu_s, wall, turns);
  }
  SSL_shutdown(s);
  shutdown(sv[0], SHUT_RDWR);
  ct.join();
}
