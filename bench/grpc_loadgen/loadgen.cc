// grpc-loadgen: a lean compiled twin of `python -m bench.loadgen --protocol grpc`.
//
// Same flags, same request bytes, same closed/open-loop semantics and the same result JSON as
// bench/loadgen.py (see its module docstring); only "tool" differs ("grpc-loadgen"). It exists
// because the Python generator spends ~175 us of CPU per request on the machine that also runs
// the server being measured.
//
// Cheapness:
//   - raw protobuf bytes built by hand (prebuilt tail + user_id; consume appends the key), sent
//     through grpc::GenericStub; replies are not parsed (success = status OK);
//   - one thread drives one CompletionQueue (Next / AsyncNext); grpc's own threads aside, the
//     generator is single-threaded, so there are no locks;
//   - latencies go to a vector of doubles, sorted once after the run.
//
// Build: g++ -O2 -std=c++17 loadgen.cc $(pkg-config --cflags --libs grpc++ grpc) -o grpc-loadgen
// (bench/grpc_loadgen/__init__.py does this into .build/).

#include <absl/synchronization/mutex.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <unordered_set>
#include <vector>

namespace {

const char* const kService = "/billing.v1.BillingService/";
const int kBatchSize = 50;
const char* const kBatchOperations[] = {"build", "plan", "export", "metadata_generation"};
const int kDefaultChannels = 4;
const size_t kMaxErrorSamples = 5;
// grpc 1.51 sleeps in whole milliseconds: AsyncNext overshoots its deadline by ~0.6-2 ms (measured:
// typically ~1.1 ms). So the open loop sleeps until EARLY_LAUNCH before the next due time and then
// launches everything due within EARLY_LAUNCH (loadgen.py does the same with 0.6 ms for uvloop's
// 1 ms timers). As there, latency is taken from min(due, launch time): an early launch is timed
// from when it was really sent, a late one counts against the server.
const double kEarlyLaunchS = 0.0015;

const char* const kCodeNames[] = {
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
    "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
    "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"};

// ------------------------------------------------------------------ clocks

double Now() {  // the perf_counter of loadgen.py
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

double UnixNow() {
  timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

double CpuSeconds() {  // user+sys of the whole process, grpc's threads included
  rusage u;
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_utime.tv_usec * 1e-6 + u.ru_stime.tv_sec + u.ru_stime.tv_usec * 1e-6;
}

// A grpc deadline `at` (a Now() value): relative, since gpr's monotonic clock has its own epoch.
gpr_timespec GrpcDeadline(double at) {
  double delta = std::max(0.0, at - Now());
  return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_nanos(int64_t(delta * 1e9), GPR_TIMESPAN));
}

// ------------------------------------------------------------------ config / CLI

[[noreturn]] void Usage(const std::string& message) {
  std::fprintf(stderr,
               "usage: grpc-loadgen [--protocol grpc] --target HOST:PORT[,HOST:PORT...] "
               "--scenario consume|balance|batch|single_check --accounts N [--account-offset 0] "
               "--duration S [--warmup 0] (--concurrency C | --rate R) [--connections 4] [--timeout 10] "
               "[--max-inflight 2000] [--run-id ID] [--out FILE]\n"
               "grpc-loadgen: error: %s\n",
               message.c_str());
  std::exit(2);
}

struct Config {
  std::string protocol = "grpc";
  std::string target;
  std::string scenario;
  long long accounts = -1;
  long long account_offset = 0;
  double duration_s = -1;
  double warmup_s = 0;
  long long concurrency = -1;  // -1: not given
  double rate = -1;            // -1: not given
  long long connections = -1;  // -1: default
  double timeout_s = 10;
  long long max_inflight = 2000;
  std::string run_id;
  std::string out;
  long long dump_requests = 0;  // testing aid: print N requests as hex and exit, no connection
  std::vector<std::string> targets;

  bool closed() const { return concurrency >= 0; }
  int channels() const { return int(connections > 0 ? connections : kDefaultChannels); }
};

long long ParseInt(const std::string& flag, const std::string& text) {
  long long v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty())
    Usage("argument " + flag + ": invalid int value: '" + text + "'");
  return v;
}

double ParseFloat(const std::string& flag, const std::string& text) {
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || errno != 0 || !std::isfinite(v))
    Usage("argument " + flag + ": invalid float value: '" + text + "'");
  return v;
}

bool ValidRunId(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.')) return false;
  return true;
}

std::string RandomRunId() {  // os.urandom(6).hex()
  std::random_device rd;
  char buf[13];
  std::snprintf(buf, sizeof buf, "%06x%06x", rd() & 0xffffff, rd() & 0xffffff);
  return buf;
}

Config ParseArgs(int argc, char** argv) {
  Config c;
  bool seen_target = false, seen_scenario = false, seen_accounts = false, seen_duration = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i], value;
    if (arg.rfind("--", 0) != 0) Usage("unrecognized arguments: " + arg);
    size_t eq = arg.find('=');
    if (eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
    } else {
      if (i + 1 >= argc) Usage("argument " + arg + ": expected one argument");
      value = argv[++i];
    }
    if (arg == "--protocol") c.protocol = value;
    else if (arg == "--target") c.target = value, seen_target = true;
    else if (arg == "--scenario") c.scenario = value, seen_scenario = true;
    else if (arg == "--accounts") c.accounts = ParseInt(arg, value), seen_accounts = true;
    else if (arg == "--account-offset") c.account_offset = ParseInt(arg, value);
    else if (arg == "--duration") c.duration_s = ParseFloat(arg, value), seen_duration = true;
    else if (arg == "--warmup") c.warmup_s = ParseFloat(arg, value);
    else if (arg == "--concurrency") c.concurrency = ParseInt(arg, value);
    else if (arg == "--rate") c.rate = ParseFloat(arg, value);
    else if (arg == "--connections") c.connections = ParseInt(arg, value);
    else if (arg == "--timeout") c.timeout_s = ParseFloat(arg, value);
    else if (arg == "--max-inflight") c.max_inflight = ParseInt(arg, value);
    else if (arg == "--run-id") c.run_id = value;
    else if (arg == "--out") c.out = value;
    else if (arg == "--dump-requests") c.dump_requests = ParseInt(arg, value);
    else Usage("unrecognized arguments: " + arg);
    // Remember which of the mutually exclusive pair was given (their values may be invalid).
    if (arg == "--concurrency" && c.concurrency < 0) c.concurrency = 0;
    if (arg == "--rate" && c.rate < 0) c.rate = 0;
    if (arg == "--connections" && c.connections < 1) Usage("connections must be >= 1");
  }
  if (c.protocol != "grpc") Usage("only --protocol grpc is supported (use python -m bench.loadgen for rest)");
  if (!seen_target || !seen_scenario || !seen_accounts || !seen_duration)
    Usage("the following arguments are required: --target, --scenario, --accounts, --duration");
  if (c.scenario != "consume" && c.scenario != "balance" && c.scenario != "batch" && c.scenario != "single_check")
    Usage("argument --scenario: invalid choice: '" + c.scenario + "'");
  if ((c.concurrency >= 0) == (c.rate >= 0)) Usage("give exactly one of --concurrency (closed loop) and --rate (open loop)");
  if (c.concurrency == 0) Usage("concurrency must be >= 1");
  if (c.rate == 0) Usage("rate must be > 0");
  if (c.accounts < 1 || c.account_offset < 0) Usage("accounts must be >= 1 and account_offset >= 0");
  if (c.duration_s <= 0 || c.warmup_s < 0) Usage("duration must be > 0 and warmup >= 0");
  if (c.timeout_s <= 0) Usage("timeout must be > 0");
  if (c.run_id.empty()) c.run_id = RandomRunId();
  if (!ValidRunId(c.run_id)) Usage("run_id must be 1-64 of [A-Za-z0-9_.], got '" + c.run_id + "'");
  // A comma-separated list (one address per server worker) is spread round-robin over the channels.
  size_t start = 0;
  while (true) {
    size_t comma = c.target.find(',', start);
    std::string t = c.target.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    size_t scheme = t.find("://");
    if (scheme != std::string::npos) t = t.substr(scheme + 3);
    while (!t.empty() && t.back() == '/') t.pop_back();
    size_t colon = t.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == t.size() ||
        t.find_first_not_of("0123456789", colon + 1) != std::string::npos)
      Usage("target must be HOST:PORT, got '" + c.target + "'");
    c.targets.push_back(t);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return c;
}

// ------------------------------------------------------------------ request bytes

void Varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(char((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(char(v));
}

void BytesField(std::string& out, int number, const std::string& payload) {
  Varint(out, uint64_t(number) << 3 | 2);
  Varint(out, payload.size());
  out += payload;
}

void VarintField(std::string& out, int number, uint64_t value) {  // proto3: 0 is not written
  if (!value) return;
  Varint(out, uint64_t(number) << 3);
  Varint(out, value);
}

// Builds each request from parts prepared once, like make_request_builder in loadgen.py:
// field 1 (user_id) is 0x0a <len> <digits>; consume appends a prebuilt middle and field 4 (the
// key "<run_id>-<counter>"); batch/single_check append the prebuilt operations list.
class RequestBuilder {
 public:
  RequestBuilder(const Config& c) : base_(c.account_offset + 1), accounts_(c.accounts), rng_(std::random_device{}()) {
    if (c.scenario == "consume") {
      consume_ = true;
      BytesField(tail_, 2, "build");
      VarintField(tail_, 3, 1);
      tail_.push_back('\x22');  // field 4 tag; its length and the key follow per request
      key_prefix_ = c.run_id + "-";
    } else if (c.scenario != "balance") {
      int count = c.scenario == "batch" ? kBatchSize : 1;
      for (int i = 0; i < count; ++i) {
        std::string op;
        BytesField(op, 1, kBatchOperations[i % 4]);
        VarintField(op, 2, 1);  // estimate_seconds
        BytesField(tail_, 2, op);
      }
    }
  }

  // The next request into buf_ (reused: no allocation once it has grown).
  const std::string& Build() {
    buf_.clear();
    uint64_t uid = base_ + uint64_t((unsigned __int128)rng_() * accounts_ >> 64);  // uniform in [0, N)
    char digits[24];
    char* end = std::to_chars(digits, digits + sizeof digits, uid).ptr;
    buf_.push_back('\x0a');
    buf_.push_back(char(end - digits));
    buf_.append(digits, end);
    buf_ += tail_;
    if (consume_) {
      char n[24];
      char* nend = std::to_chars(n, n + sizeof n, ++counter_).ptr;
      buf_.push_back(char(key_prefix_.size() + (nend - n)));  // < 128: run_id is at most 64 chars
      buf_ += key_prefix_;
      buf_.append(n, nend);
    }
    return buf_;
  }

 private:
  uint64_t base_, accounts_;
  std::mt19937_64 rng_;
  bool consume_ = false;
  std::string tail_, key_prefix_, buf_;
  uint64_t counter_ = 0;
};

// ------------------------------------------------------------------ results

std::string FormatFloat(double v) {  // Python's repr(float): shortest round-trip digits
  char sci[40];
  auto res = std::to_chars(sci, sci + sizeof sci, v, std::chars_format::scientific);
  std::string s(sci, res.ptr);  // e.g. "-1.2345e+02"
  bool neg = s[0] == '-';
  if (neg) s.erase(0, 1);
  size_t e = s.find('e');
  int exp = std::atoi(s.c_str() + e + 1);
  std::string digits = s.substr(0, e);
  digits.erase(std::remove(digits.begin(), digits.end(), '.'), digits.end());
  std::string out;
  if (exp >= -4 && exp < 16) {  // Python switches to exponent form below 1e-4 and from 1e16
    if (exp < 0) {
      out = "0." + std::string(-exp - 1, '0') + digits;
    } else if (int(digits.size()) <= exp + 1) {
      out = digits + std::string(exp + 1 - digits.size(), '0') + ".0";
    } else {
      out = digits.substr(0, exp + 1) + "." + digits.substr(exp + 1);
    }
  }
  if (out.empty()) {
    out = digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    char ebuf[16];
    std::snprintf(ebuf, sizeof ebuf, "e%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
    out += ebuf;
  }
  return (neg ? "-" : "") + out;
}

double Round(double v, int places) {  // Python's round(): correctly rounded, as glibc's printf is
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", places, v);
  return std::strtod(buf, nullptr);
}

// A JSON string as Python's json.dumps writes it (ensure_ascii: non-ASCII as \uXXXX).
std::string JsonString(const std::string& s) {
  std::string out = "\"";
  char esc[16];
  for (size_t i = 0; i < s.size();) {
    unsigned char c = s[i];
    uint32_t cp = c;
    size_t len = 1;
    if (c >= 0x80) {  // decode one UTF-8 sequence; a broken one becomes U+FFFD
      len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;
      cp = len ? c & (0x3f >> (len - 1)) : 0xfffd;
      bool ok = len && i + len <= s.size();
      for (size_t k = 1; ok && k < len; ++k) {
        ok = (static_cast<unsigned char>(s[i + k]) & 0xc0) == 0x80;
        cp = cp << 6 | (s[i + k] & 0x3f);
      }
      if (!ok) cp = 0xfffd, len = 1;
    }
    i += len;
    if (cp == '"') out += "\\\"";
    else if (cp == '\\') out += "\\\\";
    else if (cp == '\n') out += "\\n";
    else if (cp == '\r') out += "\\r";
    else if (cp == '\t') out += "\\t";
    else if (cp == '\b') out += "\\b";
    else if (cp == '\f') out += "\\f";
    else if (cp >= 0x20 && cp < 0x7f) out.push_back(char(cp));
    else if (cp < 0x10000) std::snprintf(esc, sizeof esc, "\\u%04x", cp), out += esc;
    else {
      cp -= 0x10000;
      std::snprintf(esc, sizeof esc, "\\u%04x\\u%04x", 0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff));
      out += esc;
    }
  }
  return out + "\"";
}

// Nearest-rank percentile of an ascending vector (see loadgen.percentile).
double Percentile(const std::vector<double>& v, double q) {
  size_t n = v.size();
  if (n == 0) return 0.0;
  if (q <= 0) return v[0];
  long long rank = (long long)std::ceil(q / 100.0 * n - 1e-9);
  rank = std::min<long long>(std::max<long long>(rank, 1), n);
  return v[rank - 1];
}

struct Recorder {
  std::vector<double> latencies;
  long long errors = 0, dropped = 0;
  std::vector<std::string> samples;

  void Error(std::string text) {
    ++errors;
    if (samples.size() >= kMaxErrorSamples) return;
    if (text.size() > 300) {  // cut at 300 bytes, not inside a UTF-8 sequence
      size_t cut = 300;
      while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xc0) == 0x80) --cut;
      text.resize(cut);
    }
    if (std::find(samples.begin(), samples.end(), text) == samples.end()) samples.push_back(text);
  }
};

// ------------------------------------------------------------------ the run

struct Call {
  grpc::ClientContext ctx;
  grpc::ByteBuffer reply;
  grpc::Status status;
  std::unique_ptr<grpc::GenericClientAsyncResponseReader> reader;
  double origin;  // latency is measured from here
  long long slot;
  bool measured;
};

class Runner {
 public:
  explicit Runner(const Config& c) : cfg_(c), build_(c), method_(std::string(kService) + MethodName(c.scenario)) {
    timeout_ = gpr_time_from_nanos(int64_t(c.timeout_s * 1e9), GPR_TIMESPAN);
  }

  static const char* MethodName(const std::string& scenario) {
    if (scenario == "consume") return "Consume";
    if (scenario == "balance") return "GetBalance";
    return "CheckSufficientBatch";
  }

  bool Connect() {
    for (int i = 0; i < cfg_.channels(); ++i) {
      grpc::ChannelArguments args;
      // Each channel its own subchannel pool, hence its own TCP connection; the distinct
      // channel_id keeps grpc from treating the channels' arguments as identical.
      args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
      args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
      args.SetInt("grpc.channel_id", i);
      args.SetInt(GRPC_ARG_ENABLE_CHANNELZ, 0);  // per-call debug bookkeeping we never read
      const std::string& target = cfg_.targets[i % cfg_.targets.size()];
      auto channel = grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
      if (!channel->WaitForConnected(GrpcDeadline(Now() + cfg_.timeout_s))) {
        std::fprintf(stderr, "grpc-loadgen: cannot connect to %s within %gs\n", target.c_str(), cfg_.timeout_s);
        return false;
      }
      stubs_.push_back(std::make_unique<grpc::GenericStub>(channel));
    }
    return true;
  }

  void Run() {
    t0_ = Now() + 0.01;
    measure_from_ = t0_ + cfg_.warmup_s;
    stop_at_ = measure_from_ + cfg_.duration_s;
    rec_.latencies.reserve(size_t(std::min(5e7, (cfg_.closed() ? 20000.0 : cfg_.rate) * cfg_.duration_s * 1.2)));
    if (cfg_.closed()) ClosedLoop();
    else OpenLoop();
    cpu_end_ = CpuSeconds(), wall_end_ = Now(), unix_end_ = UnixNow();
    if (!window_started_) cpu_start_ = cpu_end_, wall_start_ = wall_end_, unix_start_ = unix_end_;
    Shutdown();
  }

  std::string ResultJson() {
    std::vector<double>& lat = rec_.latencies;
    std::sort(lat.begin(), lat.end());
    size_t requests = lat.size();
    double cpu = std::max(0.0, cpu_end_ - cpu_start_);
    double wall = wall_end_ - wall_start_;
    std::string j = "{";
    auto key = [&](const char* k) {
      if (j.size() > 1) j += ", ";
      j += '"';
      j += k;
      j += "\": ";
    };
    auto num = [&](const char* k, double v) { key(k), j += FormatFloat(v); };
    auto integer = [&](const char* k, long long v) { key(k), j += std::to_string(v); };
    auto str = [&](const char* k, const std::string& v) { key(k), j += JsonString(v); };
    str("tool", "grpc-loadgen");
    str("protocol", cfg_.protocol);
    str("scenario", cfg_.scenario);
    str("mode", cfg_.closed() ? "closed" : "open");
    if (cfg_.closed()) integer("concurrency", cfg_.concurrency), key("target_rate"), j += "null";
    else key("concurrency"), j += "null", num("target_rate", cfg_.rate);
    integer("connections", cfg_.channels());
    integer("accounts", cfg_.accounts);
    integer("account_offset", cfg_.account_offset);
    integer("requests", requests);
    integer("errors", rec_.errors);
    integer("dropped", rec_.dropped);
    num("duration_s", Round(cfg_.duration_s, 3));
    num("wall_s", Round(wall, 3));  // the window plus the drain of its last requests
    num("rps", Round(requests / cfg_.duration_s, 1));
    num("p50_ms", Round(Percentile(lat, 50) * 1000.0, 3));
    num("p90_ms", Round(Percentile(lat, 90) * 1000.0, 3));
    num("p99_ms", Round(Percentile(lat, 99) * 1000.0, 3));
    num("p999_ms", Round(Percentile(lat, 99.9) * 1000.0, 3));
    num("max_ms", Round((lat.empty() ? 0.0 : lat.back()) * 1000.0, 3));
    num("client_cpu_s", Round(cpu, 3));
    if (requests) num("client_cpu_per_request_us", Round(cpu / requests * 1e6, 1));
    else key("client_cpu_per_request_us"), j += "null";
    num("client_cpu_utilization", Round(cpu / std::max(wall, 1e-9), 3));
    num("warmup_s", cfg_.warmup_s);
    num("window_start_unix", Round(unix_start_, 3));
    num("window_end_unix", Round(unix_end_, 3));
    str("run_id", cfg_.run_id);
    key("error_samples");
    j += "[";
    for (size_t i = 0; i < rec_.samples.size(); ++i) j += (i ? ", " : "") + JsonString(rec_.samples[i]);
    return j + "]}";
  }

 private:
  void Launch(long long slot, double origin, bool measured) {
    Call* call = new Call;
    call->origin = origin;
    call->slot = slot;
    call->measured = measured;
    call->ctx.set_deadline(gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), timeout_));
    // The server authenticates direct gRPC callers: a backend key as a bearer token (bench/stack.py).
    if (!authorization_.empty()) call->ctx.AddMetadata("authorization", authorization_);
    const std::string& bytes = build_.Build();
    grpc::Slice slice(bytes.data(), bytes.size());
    grpc::ByteBuffer request(&slice, 1);
    call->reader = stubs_[slot % stubs_.size()]->PrepareUnaryCall(&call->ctx, method_, request, &cq_);
    call->reader->StartCall();
    call->reader->Finish(&call->reply, &call->status, call);
    if (!cfg_.closed()) inflight_.insert(call);
  }

  void Record(Call* call, double now) {
    if (!call->measured) return;
    rec_.latencies.push_back(now - call->origin);
    if (!call->status.ok()) {
      int code = call->status.error_code();
      std::string name = code >= 0 && code <= 16 ? kCodeNames[code] : std::to_string(code);
      rec_.Error(name + ": " + call->status.error_message());
    }
  }

  // The measured window starts at the first moment the loop runs at or after measure_from.
  void MaybeStartWindow(double now) {
    if (window_started_ || now < measure_from_) return;
    window_started_ = true;
    cpu_start_ = CpuSeconds(), wall_start_ = Now(), unix_start_ = UnixNow();
  }

  // Waits for one completion until `deadline` (a Now() value; <0: forever). nullptr on timeout.
  Call* Wait(double deadline) {
    void* tag = nullptr;
    bool ok = false;
    if (deadline < 0) {
      if (!cq_.Next(&tag, &ok)) return nullptr;
      return static_cast<Call*>(tag);
    }
    auto status = cq_.AsyncNext(&tag, &ok, GrpcDeadline(deadline));
    return status == grpc::CompletionQueue::GOT_EVENT ? static_cast<Call*>(tag) : nullptr;
  }

  // C workers, each sending its next request when the previous one answered (see _closed_loop).
  void ClosedLoop() {
    long long active = cfg_.concurrency;
    for (long long w = 0; w < cfg_.concurrency; ++w) Launch(w, Now(), false);
    while (active > 0) {
      Call* call = Wait(window_started_ ? -1 : measure_from_);  // wake at measure_from to open the window
      double now = Now();
      MaybeStartWindow(now);
      if (!call) continue;
      if (call->origin >= measure_from_) call->measured = true, Record(call, now);
      long long slot = call->slot;
      delete call;
      double start = Now();
      if (start >= stop_at_) --active;
      else Launch(slot, start, false);  // measured is decided on completion, from the start time
    }
  }

  // Request i is due at t0 + i/rate whatever the answers (see _open_loop).
  void OpenLoop() {
    double interval = 1.0 / cfg_.rate;
    long long i = 0;
    double due = t0_;
    while (true) {
      double now = Now();
      MaybeStartWindow(now);
      for (double horizon = now + kEarlyLaunchS; due <= horizon && due < stop_at_; due = t0_ + ++i * interval) {
        bool measured = due >= measure_from_;
        if ((long long)inflight_.size() >= cfg_.max_inflight) rec_.dropped += measured;
        else Launch(i, std::min(due, now), measured);
      }
      if (due >= stop_at_) break;
      // due - EARLY_LAUNCH > now here, so this sleeps (no busy spin) and wakes ready to launch.
      double wake = due - kEarlyLaunchS;
      if (!window_started_) wake = std::min(wake, measure_from_);
      if (Call* call = Wait(wake)) Finish(call, Now());
    }
    // Drain: wait for the last answers, at most timeout + 2 s.
    double drain_s = cfg_.timeout_s + 2.0, give_up = Now() + drain_s;
    while (!inflight_.empty()) {
      if (Call* call = Wait(give_up)) {
        Finish(call, Now());
        continue;
      }
      if (Now() < give_up) continue;
      char msg[128];
      std::snprintf(msg, sizeof msg, "%zu requests still in flight %gs after the end; cancelled", inflight_.size(), drain_s);
      rec_.Error(msg);
      for (Call* call : inflight_) call->measured = false, call->ctx.TryCancel();  // not recorded, as in loadgen.py
      while (!inflight_.empty())
        if (Call* call = Wait(-1)) Finish(call, Now());
    }
  }

  void Finish(Call* call, double now) {
    inflight_.erase(call);
    Record(call, now);
    delete call;
  }

  void Shutdown() {
    stubs_.clear();
    cq_.Shutdown();
    void* tag;
    bool ok;
    while (cq_.Next(&tag, &ok)) delete static_cast<Call*>(tag);
  }

  const Config& cfg_;
  RequestBuilder build_;
  std::string method_;
  gpr_timespec timeout_;
  std::string authorization_ = std::getenv("BENCH_GRPC_AUTHORIZATION") ? std::getenv("BENCH_GRPC_AUTHORIZATION") : "";
  std::vector<std::unique_ptr<grpc::GenericStub>> stubs_;
  grpc::CompletionQueue cq_;
  std::unordered_set<Call*> inflight_;  // open loop only: for max_inflight and the drain's cancel
  Recorder rec_;
  double t0_ = 0, measure_from_ = 0, stop_at_ = 0;
  bool window_started_ = false;
  double cpu_start_ = 0, wall_start_ = 0, unix_start_ = 0, cpu_end_ = 0, wall_end_ = 0, unix_end_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  // Debian's abseil checks every grpc mutex for lock-order cycles (a global graph updated on each
  // lock, creation and destruction): ~5% of the CPU per request, for a debugging aid.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  Config cfg = ParseArgs(argc, argv);
  if (cfg.dump_requests > 0) {
    RequestBuilder build(cfg);
    for (long long i = 0; i < cfg.dump_requests; ++i) {
      for (unsigned char c : build.Build()) std::printf("%02x", c);
      std::printf("\n");
    }
    return 0;
  }
  std::string json;
  {
    Runner runner(cfg);
    if (!runner.Connect()) return 1;
    runner.Run();
    json = runner.ResultJson();
  }
  if (!cfg.out.empty()) {
    std::filesystem::path out(cfg.out);
    std::error_code ec;
    if (out.has_parent_path()) std::filesystem::create_directories(out.parent_path(), ec);
    std::ofstream f(out);
    f << json << "\n";
    if (!f) {
      std::fprintf(stderr, "grpc-loadgen: cannot write %s\n", cfg.out.c_str());
      return 1;
    }
  }
  std::printf("%s\n", json.c_str());
  return 0;
}
