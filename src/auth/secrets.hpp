// Secrets named in the config: given literally, by an environment variable
// or by a file (systemd credentials, Kubernetes secrets). Read once at
// start-up; errors name the config key, never the secret.
#pragma once

#include <string>

namespace herald::auth {

// The secret from whichever of `literal`, `env_var` (a variable's name) or
// `file` (a path) is set; one trailing newline of a variable or a file is
// not part of it. `what` names the config entry in errors, e.g.
// "api.keys 'backend'". Throws std::runtime_error when the variable is unset
// or empty or the file cannot be read.
std::string read_secret(const std::string& what, const std::string& literal,
                        const std::string& env_var, const std::string& file);

// A whole file (e.g. a PEM key); throws std::runtime_error naming `what`.
std::string read_key_file(const std::string& what, const std::string& path);

}  // namespace herald::auth
