// bench/micro/micro.cpp: Google Benchmark micro-benchmarks of Herald's hot
// codec and protocol paths, so regressions show without a network: the
// WebSocket frame reader on a stream of masked client frames, the framing of
// an outgoing event (encode_header, FrameWriter), the command parser on
// typical publish and subscribe messages, append_event, and the verification
// of a connection's JWT (HS256, RS256, ES256; auth::verify, which runs once
// per connect). Inputs are shaped like what herald-bench and real chat
// clients send; the JWT keys and tokens are made by libjose at startup.
// Built as `herald-micro`
// (see bench/micro/CMakeLists.txt); run e.g.
//   build/release/herald-micro --benchmark_min_time=0.2
#include <benchmark/benchmark.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "auth/jwt.hpp"
#include "protocol/command.hpp"
#include "protocol/messages.hpp"
#include "ws/frame_codec.hpp"
#include "ws/shared_frame.hpp"

// libjose's headers declare C functions without extern "C".
extern "C" {
#include <jose/b64.h>
#include <jose/jwk.h>
#include <jose/jws.h>
#include <jose/openssl.h>
}

namespace {

using herald::protocol::Command;
using herald::protocol::CommandError;
using herald::protocol::CommandParser;
using herald::protocol::EventView;
namespace ws = herald::ws;

// A publish exactly as herald-bench's fanout scenario sends it, with `data`
// padded to `data_size` bytes: {"seq":N,"pub":P,"t":<ns>,"pad":"xx…"}.
std::string bench_data(uint64_t seq, size_t data_size) {
  std::string d = "{\"seq\":" + std::to_string(seq) +
                  ",\"pub\":0,\"t\":" + std::to_string(1'763'770'000'123'456'789ULL + seq * 1000) +
                  ",\"pad\":\"";
  const size_t tail = 2;  // "}
  if (d.size() + tail < data_size) d.append(data_size - d.size() - tail, 'x');
  d += "\"}";
  return d;
}

std::string bench_publish(uint64_t id, size_t data_size) {
  return "{\"type\":\"publish\",\"id\":" + std::to_string(id) +
         ",\"channel\":\"bench:fanout\",\"event\":\"bench\",\"data\":" + bench_data(id, data_size) +
         "}";
}

// A chat message as a browser client sends it: nested object, an escape, and
// non-ASCII text.
const std::string kChatPublish =
    R"({"type":"publish","id":"m-1763770000-42","channel":"chat:lobby","event":"chat.message",)"
    R"("data":{"text":"Salut \"tout le monde\" — on se retrouve à 18h ? 🙂","user":{"id":"u_8f2a1c","name":"Ana"},)"
    R"("reply_to":null,"mentions":["b71e09"]}})";

const std::string kSubscribe = R"({"type":"subscribe","id":7,"channel":"chat:lobby"})";

// --- ws::MessageReader::feed -------------------------------------------------

// Appends one masked client text frame (FIN, random mask) carrying `payload`.
void append_masked_frame(std::string& out, std::string_view payload, std::mt19937& rng) {
  const size_t n = payload.size();
  out += static_cast<char>(0x81);
  if (n < 126) {
    out += static_cast<char>(0x80 | n);
  } else if (n <= 0xFFFF) {
    out += static_cast<char>(0x80 | 126);
    out += static_cast<char>(n >> 8);
    out += static_cast<char>(n & 0xFF);
  } else {
    out += static_cast<char>(0x80 | 127);
    for (int i = 7; i >= 0; --i) out += static_cast<char>((uint64_t(n) >> (8 * i)) & 0xFF);
  }
  uint8_t mask[4];
  const uint32_t m = rng();
  std::memcpy(mask, &m, 4);
  out.append(reinterpret_cast<const char*>(mask), 4);
  for (size_t i = 0; i < n; ++i) out += static_cast<char>(payload[i] ^ mask[i & 3]);
}

class CountingHandler final : public ws::MessageHandler {
 public:
  uint64_t messages = 0;
  uint64_t bytes = 0;
  void on_message(ws::Opcode, std::string_view payload) override {
    ++messages;
    bytes += payload.size();
    benchmark::DoNotOptimize(payload.data());
  }
  void on_ping(std::string_view) override {}
  void on_pong(std::string_view) override {}
  void on_close(uint16_t, std::string_view) override {}
};

// One client message of exactly `size` bytes: a chat publish whose text is
// padded to fit, or for sizes too small for that, {"type":"pong"} followed
// by spaces (JSON allows trailing whitespace).
std::string sized_message(uint64_t id, size_t size) {
  std::string head = "{\"type\":\"publish\",\"id\":" + std::to_string(id) +
                     ",\"channel\":\"chat:lobby\",\"event\":\"chat.message\",\"data\":{\"text\":\"";
  const std::string tail = "\"}}";
  if (head.size() + tail.size() <= size) {
    static constexpr std::string_view kWords =
        "see you at the standup in five minutes, bring coffee ";
    std::string msg = head;
    for (size_t i = 0; msg.size() + tail.size() < size; ++i) msg += kWords[i % kWords.size()];
    return msg + tail;
  }
  std::string msg = "{\"type\":\"pong\"}";
  msg.resize(std::max(size, msg.size()), ' ');
  return msg;
}

// A stream of masked text frames whose payloads are `payload_size`-byte
// client messages (sized_message), ~256 KB long: the size of a large read.
std::string masked_stream(size_t payload_size, size_t* frames_out) {
  std::mt19937 rng(42);
  std::string stream;
  const size_t target = 256 * 1024;
  size_t frames = 0;
  for (uint64_t id = 1000; stream.size() < target; ++id, ++frames) {
    append_masked_frame(stream, sized_message(id, payload_size), rng);
  }
  *frames_out = frames;
  return stream;
}

// Feeds the stream in reads of `read_size` bytes (0: the whole stream in one
// call), as the server does with what one recv() returned. feed() unmasks in
// place, so each iteration restores the masked bytes with timing paused.
void BM_MessageReader_feed(benchmark::State& state) {
  const size_t payload_size = static_cast<size_t>(state.range(0));
  const size_t read_size = static_cast<size_t>(state.range(1));
  size_t frames = 0;
  const std::string pristine = masked_stream(payload_size, &frames);
  std::string buf = pristine;
  CountingHandler handler;
  for (auto _ : state) {
    state.PauseTiming();
    std::memcpy(buf.data(), pristine.data(), pristine.size());
    ws::MessageReader reader(64 * 1024);
    state.ResumeTiming();
    const size_t step = read_size == 0 ? buf.size() : read_size;
    for (size_t pos = 0; pos < buf.size(); pos += step) {
      const size_t n = std::min(step, buf.size() - pos);
      if (reader.feed(buf.data() + pos, n, handler) != 0) {
        state.SkipWithError("feed failed");
        return;
      }
    }
  }
  if (handler.messages != frames * state.iterations()) state.SkipWithError("frame count mismatch");
  state.SetBytesProcessed(int64_t(pristine.size()) * state.iterations());
  state.counters["frames/s"] =
      benchmark::Counter(double(frames) * double(state.iterations()), benchmark::Counter::kIsRate);
}
// {payload bytes, read size}: 100-byte frames in one 256 KB read, in 16 KB
// reads and in 1,500-byte reads (frames cut across reads); then 16 B and
// 1 KB payloads.
BENCHMARK(BM_MessageReader_feed)
    ->ArgNames({"payload", "read"})
    ->Args({100, 0})
    ->Args({100, 16384})
    ->Args({100, 1500})
    ->Args({16, 0})
    ->Args({1024, 0});

// --- ws::encode_header / FrameWriter -----------------------------------------

// The event a subscriber receives for herald-bench's 100-byte publish.
EventView bench_event(const std::string& data) {
  return EventView{"bench:fanout", "bench", data, 4242, 1'763'770'000'123, "c8f2a1", {}, {}};
}

void BM_encode_header(benchmark::State& state) {
  const uint64_t len = static_cast<uint64_t>(state.range(0));
  uint8_t out[ws::kMaxHeaderBytes];
  for (auto _ : state) {
    benchmark::DoNotOptimize(len);
    size_t n = ws::encode_header(out, ws::Opcode::text, len);
    benchmark::DoNotOptimize(n);
    benchmark::DoNotOptimize(out);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_encode_header)->Arg(180)->Arg(70000);

// The publish path's framing of one event: FrameWriter reserve, append_event
// into its payload, finish() (header in place, shared_ptr). This is the work
// done once per publish, whatever the number of subscribers.
void BM_FrameWriter_event(benchmark::State& state) {
  const std::string data = bench_data(4242, 100);
  const EventView ev = bench_event(data);
  size_t frame_size = 0;
  for (auto _ : state) {
    ws::FrameWriter writer(ev.data.size() + ev.channel.size() + ev.event.size() + 96);
    herald::protocol::append_event(writer.payload(), ev);
    ws::SharedFrame frame = writer.finish();
    frame_size = frame->size();
    benchmark::DoNotOptimize(frame);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(int64_t(frame_size) * state.iterations());
  state.counters["frame_bytes"] = double(frame_size);
}
BENCHMARK(BM_FrameWriter_event);

// --- protocol::append_event --------------------------------------------------

// Into a reused buffer, as when events are serialized into a history reply.
void BM_append_event(benchmark::State& state) {
  const std::string data = bench_data(4242, 100);
  const EventView ev = bench_event(data);
  std::string out;
  out.reserve(512);
  for (auto _ : state) {
    out.clear();
    herald::protocol::append_event(out, ev);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(int64_t(out.size()) * state.iterations());
}
BENCHMARK(BM_append_event);

// A chat event whose publisher has a user and whose channel name is longer.
void BM_append_event_chat(benchmark::State& state) {
  const std::string data =
      R"({"text":"Salut \"tout le monde\" — on se retrouve à 18h ? 🙂","user":{"id":"u_8f2a1c","name":"Ana"},"reply_to":null,"mentions":["b71e09"]})";
  const EventView ev{"chat:team-frontend.standup",
                     "chat.message",
                     data,
                     1'234'567,
                     1'763'770'000'123,
                     "c8f2a1b7",
                     "ana@example.org",
                     R"({"name":"Ana"})"};
  std::string out;
  out.reserve(512);
  for (auto _ : state) {
    out.clear();
    herald::protocol::append_event(out, ev);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(int64_t(out.size()) * state.iterations());
}
BENCHMARK(BM_append_event_chat);

// --- protocol::CommandParser::parse ------------------------------------------

void parse_loop(benchmark::State& state, const std::vector<std::string>& messages) {
  CommandParser parser;
  size_t bytes = 0;
  for (const auto& m : messages) bytes += m.size();
  for (auto _ : state) {
    for (const auto& m : messages) {
      auto result = parser.parse(m);
      if (std::holds_alternative<CommandError>(result)) {
        state.SkipWithError(std::get<CommandError>(result).message.c_str());
        return;
      }
      benchmark::DoNotOptimize(result);
    }
  }
  state.SetItemsProcessed(int64_t(messages.size()) * state.iterations());
  state.SetBytesProcessed(int64_t(bytes) * state.iterations());
}

// herald-bench's publish with a 100-byte `data` (64 distinct ids and
// timestamps, so the branch predictor does not learn one message).
void BM_parse_publish(benchmark::State& state) {
  std::vector<std::string> msgs;
  for (uint64_t id = 100'000; id < 100'064; ++id) msgs.push_back(bench_publish(id, 100));
  parse_loop(state, msgs);
}
BENCHMARK(BM_parse_publish);

void BM_parse_publish_chat(benchmark::State& state) {
  parse_loop(state, {kChatPublish});
}
BENCHMARK(BM_parse_publish_chat);

void BM_parse_subscribe(benchmark::State& state) {
  parse_loop(state, {kSubscribe});
}
BENCHMARK(BM_parse_subscribe);

// --- auth::verify (a connection's JWT) -----------------------------------------

struct JwtCase {
  std::shared_ptr<const herald::auth::KeySet> keys;
  std::string token;
};

// The compact JWS of `payload` signed with `jwk` (which names its alg).
std::string jose_sign(const json_t* jwk, const std::string& payload) {
  const char* alg = json_string_value(json_object_get(jwk, "alg"));
  json_t* jws = json_pack("{s:o}", "payload", jose_b64_enc(payload.data(), payload.size()));
  json_t* sig = json_pack("{s:{s:s,s:s}}", "protected", "alg", alg, "typ", "JWT");
  std::string token;
  if (jose_jws_sig(nullptr, jws, sig, jwk)) {
    token = std::string(json_string_value(json_object_get(jws, "protected"))) + "." +
            json_string_value(json_object_get(jws, "payload")) + "." +
            json_string_value(json_object_get(jws, "signature"));
  }
  json_decref(sig);
  json_decref(jws);
  return token;
}

std::string public_pem(const json_t* jwk) {
  EVP_PKEY* key = jose_openssl_jwk_to_EVP_PKEY(nullptr, jwk);
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(bio, key);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(n));
  BIO_free(bio);
  EVP_PKEY_free(key);
  return pem;
}

// A fresh key for `alg` (RSA 2048, P-256 or a 32-byte secret), the key set
// Herald builds from its public PEM or secret, and a connection token with
// sub, exp, info, caps and channels signed with it.
JwtCase make_jwt_case(herald::auth::Alg alg) {
  using herald::auth::KeySpec;
  const std::string name(herald::auth::to_string(alg));
  json_t* jwk = alg == herald::auth::Alg::RS256
                    ? json_pack("{s:s,s:i,s:s}", "kty", "RSA", "bits", 2048, "alg", name.c_str())
                    : json_pack("{s:s}", "alg", name.c_str());
  jose_jwk_gen(nullptr, jwk);
  KeySpec spec{"bench", "", {alg}, "", ""};
  if (alg == herald::auth::Alg::HS256) {
    const json_t* k = json_object_get(jwk, "k");
    spec.secret.resize(jose_b64_dec(k, nullptr, 0));
    jose_b64_dec(k, spec.secret.data(), spec.secret.size());
  } else {
    spec.public_key_pem = public_pem(jwk);
  }
  const std::string payload =
      R"({"sub":"u_8f2a1c","exp":4102444800,"iat":1763770000,"info":{"name":"Ana","avatar":"a/8f2a1c.png"},)"
      R"("caps":{"chat:*":["subscribe","publish","history"],"dm:u_8f2a1c":["subscribe"]},"channels":["chat:lobby"]})";
  JwtCase c{herald::auth::KeySet::build({spec}), jose_sign(jwk, payload)};
  json_decref(jwk);
  return c;
}

void BM_Jwt_verify(benchmark::State& state, herald::auth::Alg alg) {
  // Made once per algorithm: Google Benchmark calls this function several
  // times, and generating an RSA key each time would only slow the run.
  static std::map<herald::auth::Alg, JwtCase> cases;
  if (!cases.contains(alg)) cases.emplace(alg, make_jwt_case(alg));
  const JwtCase& c = cases.at(alg);
  const herald::auth::VerifyOptions options;
  for (auto _ : state) {
    auto result = herald::auth::verify(*c.keys, c.token, options, 1'763'770'000);
    if (!std::holds_alternative<herald::auth::Claims>(result)) {
      state.SkipWithError(std::get<herald::auth::VerifyError>(result).reason.c_str());
      return;
    }
    benchmark::DoNotOptimize(result);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK_CAPTURE(BM_Jwt_verify, HS256, herald::auth::Alg::HS256);
BENCHMARK_CAPTURE(BM_Jwt_verify, RS256, herald::auth::Alg::RS256);
BENCHMARK_CAPTURE(BM_Jwt_verify, ES256, herald::auth::Alg::ES256);

}  // namespace

BENCHMARK_MAIN();
