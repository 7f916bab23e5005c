// Writing the client's failures and notes to stderr; see outcome.hpp.
#include "cli/outcome.hpp"

#include <cstdio>

namespace herald::cli {

int fail(Exit code, const std::string& what) {
  note(what);
  return static_cast<int>(code);
}

int fail(const Failure& f) {
  return fail(f.code, f.what);
}

void note(const std::string& what) {
  std::fprintf(stderr, "herald: %s\n", what.c_str());
  std::fflush(stderr);
}

}  // namespace herald::cli
