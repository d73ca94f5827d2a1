#pragma once

#include <cstdint>
#include <string>

namespace cairn::cli {

struct BenchOptions {
  std::string endpoint = "http://127.0.0.1:8080";
  std::string api = "native";  // native|s3
  std::string key;             // native: bearer API key
  std::string access_key;      // s3: SigV4 credentials
  std::string secret_key;
  std::string bucket;  // s3: defaults to namespace_name; created when missing
  std::string region = "us-east-1";
  std::string tenant = "bench";
  std::string namespace_name = "bench";
  std::string prefix = "bench/";
  std::string op = "put";  // put|get|stat|list|delete|mixed
  std::string mix = "put=1,get=4,stat=2,list=1,delete=1";
  std::string size = "4KiB";  // a size or a range "1MiB-4MiB"
  std::string storage_class = "hot";
  int concurrency = 16;
  double duration_s = 10;
  uint64_t count = 0;  // > 0: stop after this many operations instead of the duration
  uint64_t objects = 1000;
  uint64_t seed = 1;
  bool identical = false;
  bool json = false;
  bool cleanup = true;
  bool quiet = false;
};

// Runs the benchmark and prints the report; returns the exit code (3 if any request failed).
int RunBench(const BenchOptions& options);

}  // namespace cairn::cli
