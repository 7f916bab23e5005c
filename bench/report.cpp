// herald-bench: the result Report (JSON line + table) and process CPU
// sampling declared in scenario.hpp.
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "scenario.hpp"

namespace herald::bench {

std::string json_escape(const std::string& s) {
  std::string out;
  out.reserve(s.size() + 2);
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out;
}

double process_cpu_seconds(uint64_t pid) {
  if (pid == 0) {
    timespec ts;
    if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) == 0)
      return double(ts.tv_sec) + double(ts.tv_nsec) / 1e9;
  }
  const std::string path = pid == 0 ? "/proc/self/stat" : "/proc/" + std::to_string(pid) + "/stat";
  std::ifstream f(path);
  std::string line;
  if (!f || !std::getline(f, line)) return -1;
  // The command name (field 2) is in parentheses and may hold spaces.
  const size_t rp = line.rfind(')');
  if (rp == std::string::npos) return -1;
  std::istringstream rest(line.substr(rp + 2));
  std::string field;
  // Fields from 3 (state) on; utime is field 14, stime field 15.
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  const long hz = sysconf(_SC_CLK_TCK);
  return double(utime + stime) / double(hz > 0 ? hz : 100);
}

SchedTime sched_time(uint64_t pid) {
  const std::string dir =
      (pid == 0 ? std::string("/proc/self") : "/proc/" + std::to_string(pid)) + "/task";
  SchedTime t;
  std::error_code ec;
  unsigned long long run = 0, wait = 0;
  bool any = false;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    std::ifstream f(e.path() / "schedstat");
    unsigned long long r = 0, w = 0;
    if (f >> r >> w) {
      run += r;
      wait += w;
      any = true;
    }
  }
  if (any) {
    t.run_s = double(run) / 1e9;
    t.wait_s = double(wait) / 1e9;
  }
  return t;
}

int64_t vm_rss_bytes(uint64_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      long long kb = -1;
      if (std::sscanf(line.c_str() + 6, "%lld", &kb) == 1 && kb >= 0) return kb * 1024;
      return -1;
    }
  }
  return -1;
}

HostCpu host_cpu() {
  std::ifstream f("/proc/stat");
  std::string cpu;
  HostCpu h;
  if (!(f >> cpu) || cpu != "cpu") return h;
  unsigned long long v[8] = {};
  for (auto& x : v) f >> x;  // user nice system idle iowait irq softirq steal
  const long hz = sysconf(_SC_CLK_TCK);
  const double tick = 1.0 / double(hz > 0 ? hz : 100);
  unsigned long long total = 0;
  for (auto x : v) total += x;
  h.total = double(total) * tick;
  h.busy = double(total - v[3] - v[4]) * tick;
  return h;
}

void Report::add(const std::string& key, uint64_t v, const std::string& label,
                 const std::string& unit) {
  fields_.push_back({key, std::to_string(v), std::to_string(v), label, unit});
}

void Report::add(const std::string& key, double v, int decimals, const std::string& label,
                 const std::string& unit) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  fields_.push_back({key, buf, buf, label, unit});
}

void Report::add(const std::string& key, const std::string& v, const std::string& label) {
  fields_.push_back({key, "\"" + json_escape(v) + "\"", v, label, {}});
}

void Report::add_bool(const std::string& key, bool v, const std::string& label) {
  fields_.push_back({key, v ? "true" : "false", v ? "yes" : "no", label, {}});
}

std::string Report::json() const {
  std::string out = "{";
  for (size_t i = 0; i < fields_.size(); ++i) {
    if (i) out += ',';
    out += '"';
    out += fields_[i].key;
    out += "\":";
    out += fields_[i].json;
  }
  out += '}';
  return out;
}

std::string Report::table() const {
  size_t w = 0;
  for (const auto& f : fields_) w = std::max(w, (f.label.empty() ? f.key : f.label).size());
  std::string out;
  for (const auto& f : fields_) {
    const std::string& name = f.label.empty() ? f.key : f.label;
    out += "  ";
    out += name;
    out.append(w - name.size() + 2, ' ');
    out += f.text;
    if (!f.unit.empty()) {
      out += ' ';
      out += f.unit;
    }
    out += '\n';
  }
  return out;
}

}  // namespace herald::bench
