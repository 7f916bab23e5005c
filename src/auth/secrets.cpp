// Secrets from config, environment or files; see secrets.hpp.
#include "auth/secrets.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace herald::auth {

namespace {

std::string strip_newline(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

}  // namespace

std::string read_key_file(const std::string& what, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw std::runtime_error(what + ": cannot read " + path + " (" + std::strerror(errno) + ")");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string read_secret(const std::string& what, const std::string& literal,
                        const std::string& env_var, const std::string& file) {
  if (!literal.empty()) return literal;
  if (!env_var.empty()) {
    const char* value = std::getenv(env_var.c_str());
    if (!value || !*value)
      throw std::runtime_error(what + ": environment variable " + env_var + " is not set");
    return strip_newline(value);
  }
  std::string secret = strip_newline(read_key_file(what, file));
  if (secret.empty()) throw std::runtime_error(what + ": " + file + " is empty");
  return secret;
}

}  // namespace herald::auth
