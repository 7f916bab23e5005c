// Unit tests for auth::JwksFetcher (src/auth/jwks_fetcher.*), against real
// servers on 127.0.0.1 started by the tests: a small synchronous Beast
// server on its own thread, plain or TLS. TLS certificates come from the
// `openssl` command line, made fresh into a temporary directory: a test CA,
// a server certificate for localhost/127.0.0.1 signed by it, one for another
// host name, and a second, unrelated CA.
//
// Checked: the body of a 200, the request sent (target with its query,
// Host), 404 and redirects as errors, bodies over 1 MiB (with a length or
// chunked) as errors, a server that never answers ending in a timeout at
// the deadline, refused connections, bad URLs, errors that leave out the
// query and user info, `done` never called from inside fetch(), and for
// HTTPS: the right CA works (by name and by address), an unrelated CA, the
// system store and a certificate for another name all fail verification.
#include "auth/jwks_fetcher.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace herald::auth {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
namespace fs = std::filesystem;
using tcp = asio::ip::tcp;
using std::chrono::milliseconds;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kJwks = R"({"keys":[{"kty":"oct","kid":"k1","k":"c2VjcmV0"}]})";

// One request at a time, on its own thread. Routes:
//   /jwks.json     200 with kJwks
//   /missing       404
//   /moved         302 to /jwks.json
//   /big           200 with a Content-Length of 1 MiB + 1
//   /big-chunked   200, chunked, 1 MiB + 1 bytes
//   /exact         200 with exactly 1 MiB
//   /hang          reads the request and never answers (the connection
//                  stays open until the server stops)
class TestServer {
 public:
  explicit TestServer(ssl::context* tls = nullptr) : tls_(tls) {
    acceptor_.open(tcp::v4());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind({asio::ip::make_address("127.0.0.1"), 0});
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] { run(); });
  }

  ~TestServer() {
    // Wake the blocking accept() with a connection of our own.
    stopping_ = true;
    asio::io_context io;
    tcp::socket wake(io);
    boost::system::error_code ec;
    wake.connect({asio::ip::make_address("127.0.0.1"), port_}, ec);
    thread_.join();
  }

  uint16_t port() const { return port_; }
  int requests() const { return requests_; }
  std::string last_target() {
    std::lock_guard lock(mutex_);
    return last_target_;
  }
  std::string last_host() {
    std::lock_guard lock(mutex_);
    return last_host_;
  }

 private:
  void run() {
    for (;;) {
      tcp::socket socket(io_);
      boost::system::error_code ec;
      acceptor_.accept(socket, ec);
      if (ec || stopping_) return;
      if (tls_) {
        auto stream = std::make_shared<ssl::stream<tcp::socket>>(std::move(socket), *tls_);
        stream->handshake(ssl::stream_base::server, ec);
        if (ec) continue;  // the client refused our certificate
        serve(stream);
      } else {
        serve(std::make_shared<tcp::socket>(std::move(socket)));
      }
    }
  }

  template <class Stream>
  void serve(const std::shared_ptr<Stream>& stream) {
    beast::flat_buffer buffer;
    http::request<http::string_body> req;
    boost::system::error_code ec;
    http::read(*stream, buffer, req, ec);
    if (ec) return;
    ++requests_;
    const std::string target(req.target());
    {
      std::lock_guard lock(mutex_);
      last_target_ = target;
      last_host_ = std::string(req[http::field::host]);
    }
    const std::string path = target.substr(0, target.find('?'));
    if (path == "/hang") {
      hung_.push_back(stream);  // kept open, never answered
      return;
    }
    http::response<http::string_body> res{http::status::ok, 11};
    res.set(http::field::content_type, "application/json");
    if (path == "/jwks.json") {
      res.body() = kJwks;
    } else if (path == "/moved") {
      res.result(http::status::found);
      res.set(http::field::location, "/jwks.json");
    } else if (path == "/big" || path == "/big-chunked") {
      res.body() = std::string(JwksFetcher::kMaxBodyBytes + 1, 'x');
    } else if (path == "/exact") {
      res.body() = std::string(JwksFetcher::kMaxBodyBytes, 'x');
    } else {
      res.result(http::status::not_found);
      res.body() = R"({"error":"not found"})";
    }
    if (path == "/big-chunked")
      res.chunked(true);
    else
      res.prepare_payload();
    http::write(*stream, res, ec);  // fails when the client gave up early
  }

  ssl::context* tls_;
  asio::io_context io_;
  tcp::acceptor acceptor_{io_};
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> requests_{0};
  std::mutex mutex_;
  std::string last_target_, last_host_;
  std::vector<std::shared_ptr<void>> hung_;  // server thread only
  std::thread thread_;
};

struct Result {
  std::optional<std::string> body;
  std::string error;
  int calls = 0;
  milliseconds elapsed{0};
};

// Runs one fetch to completion on `io`, on this thread.
Result fetch(JwksFetcher& fetcher, asio::io_context& io, const std::string& url,
             milliseconds timeout = milliseconds(5000)) {
  Result r;
  const auto start = std::chrono::steady_clock::now();
  fetcher.fetch(url, timeout, [&](std::optional<std::string> body, std::string error) {
    r.body = std::move(body);
    r.error = std::move(error);
    ++r.calls;
    r.elapsed = std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - start);
  });
  EXPECT_EQ(r.calls, 0) << "done was called from inside fetch()";
  io.restart();
  io.run_for(std::chrono::seconds(30));
  EXPECT_EQ(r.calls, 1) << url;
  return r;
}

std::string base(const TestServer& s, const char* host = "127.0.0.1", bool tls = false) {
  return std::string(tls ? "https://" : "http://") + host + ":" + std::to_string(s.port());
}

TEST(JwksFetcher, ReturnsTheBodyOfA200) {
  TestServer server;
  asio::io_context io;
  JwksFetcher fetcher(io);
  const Result r = fetch(fetcher, io, base(server) + "/jwks.json?tenant=7");
  ASSERT_TRUE(r.body.has_value()) << r.error;
  EXPECT_EQ(*r.body, kJwks);
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(server.last_target(), "/jwks.json?tenant=7");
  EXPECT_EQ(server.last_host(), "127.0.0.1:" + std::to_string(server.port()));
}

TEST(JwksFetcher, ByHostName) {
  TestServer server;  // on 127.0.0.1; "localhost" may resolve to ::1 first
  asio::io_context io;
  JwksFetcher fetcher(io);
  const Result r = fetch(fetcher, io, base(server, "localhost") + "/jwks.json");
  ASSERT_TRUE(r.body.has_value()) << r.error;
  EXPECT_EQ(*r.body, kJwks);
}

TEST(JwksFetcher, NotFoundIsAnErrorNamingTheUrlWithoutItsQuery) {
  TestServer server;
  asio::io_context io;
  JwksFetcher fetcher(io);
  const Result r = fetch(fetcher, io, base(server) + "/missing?token=s3cr3t#frag");
  EXPECT_FALSE(r.body.has_value());
  EXPECT_THAT(r.error, HasSubstr("HTTP status 404"));
  EXPECT_THAT(r.error, HasSubstr(base(server) + "/missing"));
  EXPECT_THAT(r.error, Not(HasSubstr("s3cr3t")));
  EXPECT_THAT(r.error, Not(HasSubstr("frag")));
}

TEST(JwksFetcher, RedirectsAreNotFollowed) {
  TestServer server;
  asio::io_context io;
  JwksFetcher fetcher(io);
  const Result r = fetch(fetcher, io, base(server) + "/moved");
  EXPECT_FALSE(r.body.has_value());
  EXPECT_THAT(r.error, HasSubstr("HTTP status 302"));
  EXPECT_THAT(r.error, HasSubstr("redirects are not followed"));
  EXPECT_EQ(server.requests(), 1);
}

TEST(JwksFetcher, BodiesOverOneMebibyteAreErrors) {
  TestServer server;
  asio::io_context io;
  JwksFetcher fetcher(io);
  for (const char* path : {"/big", "/big-chunked"}) {
    const Result r = fetch(fetcher, io, base(server) + path);
    EXPECT_FALSE(r.body.has_value()) << path;
    EXPECT_THAT(r.error, HasSubstr("larger than 1 MiB")) << path;
  }
  const Result exact = fetch(fetcher, io, base(server) + "/exact");
  ASSERT_TRUE(exact.body.has_value()) << exact.error;
  EXPECT_EQ(exact.body->size(), JwksFetcher::kMaxBodyBytes);
}

TEST(JwksFetcher, AServerThatNeverAnswersTimesOutAtTheDeadline) {
  TestServer server;
  asio::io_context io;
  JwksFetcher fetcher(io);
  const Result r = fetch(fetcher, io, base(server) + "/hang", milliseconds(300));
  EXPECT_FALSE(r.body.has_value());
  EXPECT_THAT(r.error, HasSubstr("timed out after 300 ms"));
  EXPECT_THAT(r.error, HasSubstr(base(server) + "/hang"));
  EXPECT_GE(r.elapsed.count(), 300);
  EXPECT_LT(r.elapsed.count(), 300 + 1500);  // generous: the machine is shared
  EXPECT_EQ(server.requests(), 1);
}

TEST(JwksFetcher, RefusedConnectionIsAnError) {
  // A port that was just free: nothing listens there.
  asio::io_context io;
  tcp::acceptor probe(io, {asio::ip::make_address("127.0.0.1"), 0});
  const uint16_t port = probe.local_endpoint().port();
  probe.close();
  JwksFetcher fetcher(io);
  const Result r = fetch(fetcher, io, "http://127.0.0.1:" + std::to_string(port) + "/jwks.json");
  EXPECT_FALSE(r.body.has_value());
  EXPECT_THAT(r.error, HasSubstr("connecting"));
  EXPECT_THAT(r.error, HasSubstr("127.0.0.1:" + std::to_string(port) + "/jwks.json"));
}

TEST(JwksFetcher, BadUrlsAreErrorsReportedLater) {
  asio::io_context io;
  JwksFetcher fetcher(io);
  const struct {
    const char* url;
    const char* error;
  } cases[] = {
      {"ftp://example.com/jwks.json", "is not an http:// or https:// URL"},
      {"example.com/jwks.json", "is not an http:// or https:// URL"},
      {"http:///jwks.json", "has no host"},
      {"http://host:99999/", "has a bad port"},
      {"http://host:0/", "has a bad port"},
      {"http://host:8x/", "has a bad port"},
      {"http://[::1/", "bad IPv6 host"},
      {"http://exa mple.com/", "spaces or control characters"},
      {"http://example.com/a\r\nX-Injected: 1", "/a%0D%0AX-Injected:%201 contains spaces"},
  };
  for (const auto& c : cases) {
    const Result r = fetch(fetcher, io, c.url);
    EXPECT_FALSE(r.body.has_value()) << c.url;
    EXPECT_THAT(r.error, HasSubstr(c.error)) << c.url;
  }
  const Result r = fetch(fetcher, io, "https://alice:hunter2@example.com/jwks.json?k=v");
  EXPECT_THAT(r.error, HasSubstr("user info"));
  EXPECT_THAT(r.error, HasSubstr("https://example.com/jwks.json"));
  EXPECT_THAT(r.error, Not(HasSubstr("hunter2")));
  EXPECT_THAT(r.error, Not(HasSubstr("alice")));
}

TEST(JwksFetcher, UrlForLogs) {
  EXPECT_EQ(jwks_url_for_logs("https://idp.example.com/.well-known/jwks.json?client=1#x"),
            "https://idp.example.com/.well-known/jwks.json");
  EXPECT_EQ(jwks_url_for_logs("https://u:p@idp.example.com:8443/k"),
            "https://idp.example.com:8443/k");
  EXPECT_EQ(jwks_url_for_logs("https://u:p@idp.example.com?x=@y"), "https://idp.example.com");
  EXPECT_EQ(jwks_url_for_logs("http://[::1]:8080/jwks"), "http://[::1]:8080/jwks");
  EXPECT_EQ(jwks_url_for_logs("http://h/p@q"), "http://h/p@q");  // '@' in the path is no user info
  EXPECT_EQ(jwks_url_for_logs("http://h/a b\r\nX: 1"), "http://h/a%20b%0D%0AX:%201");
}

TEST(JwksFetcher, FetchesOverlapAndOutliveTheFetcher) {
  TestServer server;
  asio::io_context io;
  std::vector<Result> results(3);
  {
    JwksFetcher fetcher(io);
    const char* paths[] = {"/jwks.json", "/missing", "/jwks.json"};
    for (size_t i = 0; i < 3; ++i) {
      fetcher.fetch(base(server) + paths[i], milliseconds(5000),
                    [&results, i](std::optional<std::string> body, std::string error) {
                      results[i].body = std::move(body);
                      results[i].error = std::move(error);
                      ++results[i].calls;
                    });
    }
  }  // the fetcher is gone; its fetches are not
  io.run_for(std::chrono::seconds(30));
  for (const Result& r : results) EXPECT_EQ(r.calls, 1);
  ASSERT_TRUE(results[0].body.has_value()) << results[0].error;
  EXPECT_EQ(*results[0].body, kJwks);
  EXPECT_THAT(results[1].error, HasSubstr("404"));
  ASSERT_TRUE(results[2].body.has_value()) << results[2].error;
}

TEST(JwksFetcher, MissingCaFileIsRefused) {
  asio::io_context io;
  try {
    JwksFetcher fetcher(io, "/nonexistent/herald-ca.pem");
    ADD_FAILURE() << "accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("/nonexistent/herald-ca.pem"));
  }
}

// HTTPS, with certificates made by the openssl command line once for the
// suite.
class JwksFetcherTls : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string tmpl = (fs::temp_directory_path() / "herald-jwks-test-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = new fs::path(tmpl);
    const std::string d = dir_->string();
    const std::string key = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -noenc";
    const std::string ca_ext =
        " -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign";
    const auto ca = [&](const std::string& name, const std::string& cn) {
      return "openssl req -x509" + key + " -keyout " + d + "/" + name + ".key -out " + d + "/" +
             name + ".crt -days 2 -subj '/CN=" + cn + "'" + ca_ext;
    };
    const auto leaf = [&](const std::string& name, const std::string& san) {
      std::ofstream(*dir_ / (name + ".ext"))
          << "subjectAltName=" << san
          << "\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n"
             "extendedKeyUsage=serverAuth\n";
      return "openssl req" + key + " -keyout " + d + "/" + name + ".key -out " + d + "/" + name +
             ".csr -subj '/CN=herald test server' && openssl x509 -req -in " + d + "/" + name +
             ".csr -CA " + d + "/ca.crt -CAkey " + d + "/ca.key -CAcreateserial -out " + d + "/" +
             name + ".crt -days 2 -extfile " + d + "/" + name + ".ext";
    };
    const std::string script =
        "(" + ca("ca", "Herald Test CA") + " && " + ca("other-ca", "Unrelated Test CA") + " && " +
        leaf("server", "DNS:localhost,IP:127.0.0.1") + " && " +
        leaf("elsewhere", "DNS:elsewhere.example") + ") >" + d + "/openssl.log 2>&1";
    ASSERT_EQ(std::system(script.c_str()), 0) << "openssl failed; see " << d << "/openssl.log";
  }

  static void TearDownTestSuite() {
    if (!dir_) return;
    fs::remove_all(*dir_);
    delete dir_;
    dir_ = nullptr;
  }

  static std::string file(const std::string& name) { return (*dir_ / name).string(); }

  // A TLS server context presenting `name`.crt.
  static std::unique_ptr<ssl::context> server_tls(const std::string& name) {
    auto ctx = std::make_unique<ssl::context>(ssl::context::tls_server);
    ctx->use_certificate_chain_file(file(name + ".crt"));
    ctx->use_private_key_file(file(name + ".key"), ssl::context::pem);
    return ctx;
  }

  static inline fs::path* dir_ = nullptr;
};

TEST_F(JwksFetcherTls, TheRightCaWorksByNameAndByAddress) {
  auto tls = server_tls("server");
  TestServer server(tls.get());
  asio::io_context io;
  JwksFetcher fetcher(io, file("ca.crt"));
  for (const char* host : {"localhost", "127.0.0.1"}) {
    const Result r = fetch(fetcher, io, base(server, host, true) + "/jwks.json");
    ASSERT_TRUE(r.body.has_value()) << host << ": " << r.error;
    EXPECT_EQ(*r.body, kJwks);
  }
  const Result missing = fetch(fetcher, io, base(server, "localhost", true) + "/missing");
  EXPECT_THAT(missing.error, HasSubstr("HTTP status 404"));
  EXPECT_THAT(missing.error, HasSubstr("https://localhost:"));
}

TEST_F(JwksFetcherTls, AnUnrelatedCaFailsVerification) {
  auto tls = server_tls("server");
  TestServer server(tls.get());
  asio::io_context io;
  JwksFetcher fetcher(io, file("other-ca.crt"));
  const Result r = fetch(fetcher, io, base(server, "localhost", true) + "/jwks.json");
  EXPECT_FALSE(r.body.has_value());
  EXPECT_THAT(r.error,
              HasSubstr("TLS handshake: certificate verify failed: unable to get local issuer"));
  EXPECT_EQ(server.requests(), 0);  // nothing was sent
}

TEST_F(JwksFetcherTls, TheSystemStoreDoesNotTrustTheTestCa) {
  auto tls = server_tls("server");
  TestServer server(tls.get());
  asio::io_context io;
  JwksFetcher fetcher(io);
  const Result r = fetch(fetcher, io, base(server, "localhost", true) + "/jwks.json");
  EXPECT_FALSE(r.body.has_value());
  EXPECT_THAT(r.error, HasSubstr("certificate verify failed"));
  EXPECT_EQ(server.requests(), 0);
}

TEST_F(JwksFetcherTls, ACertificateForAnotherNameFailsVerification) {
  auto tls = server_tls("elsewhere");  // signed by the trusted CA, for elsewhere.example
  TestServer server(tls.get());
  asio::io_context io;
  JwksFetcher fetcher(io, file("ca.crt"));
  const Result by_name = fetch(fetcher, io, base(server, "localhost", true) + "/jwks.json");
  EXPECT_FALSE(by_name.body.has_value());
  EXPECT_THAT(by_name.error, HasSubstr("certificate verify failed: hostname mismatch"));
  const Result by_address = fetch(fetcher, io, base(server, "127.0.0.1", true) + "/jwks.json");
  EXPECT_FALSE(by_address.body.has_value());
  EXPECT_THAT(by_address.error, HasSubstr("certificate verify failed: IP address mismatch"));
  EXPECT_EQ(server.requests(), 0);
}

TEST_F(JwksFetcherTls, PlainHttpToATlsServerFails) {
  auto tls = server_tls("server");
  TestServer server(tls.get());
  asio::io_context io;
  JwksFetcher fetcher(io, file("ca.crt"));
  const Result r = fetch(fetcher, io, base(server) + "/jwks.json", milliseconds(2000));
  EXPECT_FALSE(r.body.has_value());
  EXPECT_NE(r.error, "");
}

}  // namespace
}  // namespace herald::auth
