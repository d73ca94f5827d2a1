#include "metrics/registry.h"

#include <cmath>
#include <cstdio>

namespace cairn::metrics {
namespace {

std::string EscapeLabelValue(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string FormatValue(double value) {
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (std::isnan(value)) return "NaN";
  char buf[64];
  if (value == std::floor(value) && std::fabs(value) < 1e15) {
    snprintf(buf, sizeof(buf), "%.0f", value);
  } else {
    snprintf(buf, sizeof(buf), "%.9g", value);
  }
  return buf;
}

}  // namespace

void AppendHeader(std::string* out, const std::string& name, const std::string& help,
                  const std::string& type) {
  *out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

void AppendSample(std::string* out, const std::string& name, const Labels& labels, double value) {
  *out += name;
  if (!labels.empty()) {
    *out += "{";
    for (size_t i = 0; i < labels.size(); ++i) {
      if (i) *out += ",";
      *out += labels[i].first + "=\"" + EscapeLabelValue(labels[i].second) + "\"";
    }
    *out += "}";
  }
  *out += " " + FormatValue(value) + "\n";
}

void Registry::DeclareCounter(const std::string& name, const std::string& help) {
  std::lock_guard<std::mutex> lock(mutex_);
  Family& family = families_[name];
  family.help = help;
  family.type = "counter";
}

void Registry::DeclareHistogram(const std::string& name, const std::string& help,
                                std::vector<double> bucket_bounds) {
  std::lock_guard<std::mutex> lock(mutex_);
  Family& family = families_[name];
  family.help = help;
  family.type = "histogram";
  family.bounds = std::move(bucket_bounds);
}

Registry::Family& Registry::FamilyLocked(std::string_view name) {
  auto it = families_.find(name);
  if (it == families_.end()) it = families_.emplace(std::string(name), Family()).first;
  return it->second;
}

void Registry::Increment(std::string_view name, const Labels& labels, double value) {
  std::lock_guard<std::mutex> lock(mutex_);
  Family& family = FamilyLocked(name);
  if (family.type.empty()) family.type = "counter";
  family.counters[labels] += value;
}

double Registry::SumCounter(std::string_view name,
                            const std::function<bool(const Labels&)>& keep) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = families_.find(name);
  if (it == families_.end()) return 0;
  double sum = 0;
  for (const auto& series : it->second.counters) {
    if (keep(series.first)) sum += series.second;
  }
  return sum;
}

void Registry::Observe(std::string_view name, const Labels& labels, double value) {
  std::lock_guard<std::mutex> lock(mutex_);
  Family& family = FamilyLocked(name);
  HistogramSeries& series = family.histograms[labels];
  if (series.bucket_counts.size() != family.bounds.size()) {
    series.bucket_counts.assign(family.bounds.size(), 0);
  }
  for (size_t i = 0; i < family.bounds.size(); ++i) {
    if (value <= family.bounds[i]) {
      ++series.bucket_counts[i];
      break;
    }
  }
  ++series.count;
  series.sum += value;
}

std::string Registry::Render() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string out;
  for (const auto& [name, family] : families_) {
    AppendHeader(&out, name, family.help.empty() ? name : family.help,
                 family.type.empty() ? "untyped" : family.type);
    for (const auto& [labels, value] : family.counters) AppendSample(&out, name, labels, value);
    for (const auto& [labels, series] : family.histograms) {
      uint64_t cumulative = 0;
      for (size_t i = 0; i < family.bounds.size(); ++i) {
        cumulative += series.bucket_counts[i];
        Labels with_le = labels;
        with_le.emplace_back("le", FormatValue(family.bounds[i]));
        AppendSample(&out, name + "_bucket", with_le, static_cast<double>(cumulative));
      }
      Labels with_inf = labels;
      with_inf.emplace_back("le", "+Inf");
      AppendSample(&out, name + "_bucket", with_inf, static_cast<double>(series.count));
      AppendSample(&out, name + "_sum", labels, series.sum);
      AppendSample(&out, name + "_count", labels, static_cast<double>(series.count));
    }
  }
  return out;
}

}  // namespace cairn::metrics
