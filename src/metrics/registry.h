// Prometheus metrics: counters and histograms with labels, rendered in the text
// exposition format 0.0.4. Gauges that come from elsewhere (the metadata store) are
// appended at render time by the caller.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cairn::metrics {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Registry {
 public:
  // Declares a family (HELP text); adding to an undeclared family declares it untyped.
  void DeclareCounter(const std::string& name, const std::string& help);
  void DeclareHistogram(const std::string& name, const std::string& help,
                        std::vector<double> bucket_bounds);

  // `name` is looked up as is: no string is built for it on every request.
  void Increment(std::string_view name, const Labels& labels, double value = 1);
  void Observe(std::string_view name, const Labels& labels, double value);

  std::string Render() const;
  // The sum of a counter family's series whose labels `keep` accepts (0 if none).
  double SumCounter(std::string_view name, const std::function<bool(const Labels&)>& keep) const;

 private:
  struct HistogramSeries {
    std::vector<uint64_t> bucket_counts;  // non-cumulative, one per bound
    uint64_t count = 0;
    double sum = 0;
  };
  struct Family {
    std::string help;
    std::string type;  // "counter" or "histogram"
    std::vector<double> bounds;
    std::map<Labels, double> counters;
    std::map<Labels, HistogramSeries> histograms;
  };

  // The family called `name`, created (untyped) if absent. With mutex_ held.
  Family& FamilyLocked(std::string_view name);

  mutable std::mutex mutex_;
  std::map<std::string, Family, std::less<>> families_;  // GUARDED_BY(mutex_)
};

// Appends "name{labels} value\n" with proper escaping.
void AppendSample(std::string* out, const std::string& name, const Labels& labels, double value);
void AppendHeader(std::string* out, const std::string& name, const std::string& help,
                  const std::string& type);

}  // namespace cairn::metrics
