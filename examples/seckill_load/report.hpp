#pragma once
// seckill_load's statistics and report: answers by status and error,
// latency percentiles, per node and in total, as a table or as JSON.

#include "histogram.hpp"
#include "ledger.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace seckill_load {

/// The label an outcome is counted under: "200", "409 sold_out", or a
/// transport error ("timeout", "connection_refused", ...) when there was no
/// answer.
[[nodiscard]] inline std::string answer_label(unsigned status, std::string_view error) {
  if (status == 0) return std::string(error.empty() ? "no_answer" : error);
  if (error.empty()) return std::to_string(status);
  return fmt::format("{} {}", status, error);
}

/// @brief The statistics of one node (or of all): requests sent, outcomes
///        by label and by status, and the latency histogram (microseconds,
///        from the intended send time).
///
/// Thread-safety: none (the caller serialises). Cost: one histogram.
struct node_stats {
  histogram latency_us{};
  std::uint64_t sent = 0;
  std::uint64_t answered = 0;  ///< got an HTTP answer
  std::uint64_t no_answer = 0;
  std::map<std::string, std::uint64_t> by_label;
  std::map<std::string, std::uint64_t> by_status;  ///< "200", "409", ... and "none"

  void add(unsigned status, std::string_view error, std::chrono::nanoseconds latency) {
    const auto us = latency.count() <= 0 ? 0 : static_cast<std::uint64_t>(latency.count() / 1000);
    latency_us.record(us);
    if (status > 0)
      ++answered;
    else
      ++no_answer;
    ++by_label[answer_label(status, error)];
    ++by_status[status > 0 ? std::to_string(status) : std::string("none")];
  }

  void merge(const node_stats& o) {
    latency_us.merge(o.latency_us);
    sent += o.sent;
    answered += o.answered;
    no_answer += o.no_answer;
    for (const auto& [k, n] : o.by_label) by_label[k] += n;
    for (const auto& [k, n] : o.by_status) by_status[k] += n;
  }
};

/// What the report says about the run's configuration.
struct run_description {
  std::vector<std::string> targets;  ///< or the etcd endpoints (redacted)
  std::string discovery;             ///< "targets" or "etcd"
  std::string service;
  double rate = 0;
  std::string arrival;
  std::optional<double> duration_s;
  std::optional<std::int64_t> requests;
  std::int64_t connections = 0;
  int threads = 0;
  std::int64_t users = 0;
  std::int64_t skus = 0;
  std::int64_t quantity = 0;
  double repeat_share = 0;
  std::uint64_t seed = 0;
  std::string run_id;
};

/// @brief A finished run: its configuration, per-node statistics, the
///        idempotency counts and (with --verify) the verdict.
struct run_report {
  run_description config;
  std::map<std::string, node_stats> nodes;  ///< by node URL ("(none)": no node to send to)
  double send_seconds = 0;   ///< from the start to the last request handed to a connection
  double seconds = 0;        ///< from the start to the last outcome
  bool interrupted = false;  ///< SIGINT or SIGTERM ended the sending early
  std::uint64_t replays = 0;
  std::uint64_t idempotency_violations = 0;
  std::uint64_t duplicate_order_ids = 0;
  std::optional<verdict> verified;

  [[nodiscard]] node_stats total() const {
    node_stats t;
    for (const auto& [url, s] : nodes) t.merge(s);
    return t;
  }
};

namespace detail {

inline double ms(std::uint64_t us) { return static_cast<double>(us) / 1000.0; }

inline nlohmann::ordered_json latency_json(const histogram& h) {
  return {{"count", h.count()},
          {"p50", ms(h.value_at(0.50))},
          {"p90", ms(h.value_at(0.90))},
          {"p99", ms(h.value_at(0.99))},
          {"p999", ms(h.value_at(0.999))},
          {"max", ms(h.max())},
          {"mean", h.mean() / 1000.0},
          {"min", ms(h.min())}};
}

inline nlohmann::ordered_json stats_json(const node_stats& s) {
  nlohmann::ordered_json j;
  j["sent"] = s.sent;
  j["answered"] = s.answered;
  j["no_answer"] = s.no_answer;
  j["status"] = nlohmann::ordered_json::object();
  for (const auto& [k, n] : s.by_status) j["status"][k] = n;
  j["answers"] = nlohmann::ordered_json::object();
  for (const auto& [k, n] : s.by_label) j["answers"][k] = n;
  j["latency_ms"] = latency_json(s.latency_us);
  return j;
}

inline std::string latency_line(const histogram& h) {
  return fmt::format("p50 {:.3f}  p90 {:.3f}  p99 {:.3f}  p99.9 {:.3f}  max {:.3f} ms",
                     ms(h.value_at(0.50)), ms(h.value_at(0.90)), ms(h.value_at(0.99)),
                     ms(h.value_at(0.999)), ms(h.max()));
}

}  // namespace detail

[[nodiscard]] inline nlohmann::ordered_json to_json(const run_report& r) {
  const auto total = r.total();
  const auto& c = r.config;
  nlohmann::ordered_json config = {{"discovery", c.discovery},
                                   {"targets", c.targets},
                                   {"service", c.service},
                                   {"rate", c.rate},
                                   {"arrival", c.arrival}};
  if (c.duration_s) config["duration_s"] = *c.duration_s;
  if (c.requests) config["requests"] = *c.requests;
  config.update({{"connections", c.connections},
                 {"threads", c.threads},
                 {"users", c.users},
                 {"skus", c.skus},
                 {"quantity", c.quantity},
                 {"repeat_share", c.repeat_share},
                 {"seed", c.seed},
                 {"run_id", c.run_id}});
  nlohmann::ordered_json j;
  j["config"] = std::move(config);
  j["requested_rate"] = c.rate;
  j["achieved_rate"] = r.seconds > 0 ? static_cast<double>(total.sent) / r.seconds : 0.0;
  j["send_rate"] = r.send_seconds > 0 ? static_cast<double>(total.sent) / r.send_seconds : 0.0;
  j["seconds"] = r.seconds;
  j["interrupted"] = r.interrupted;
  j["total"] = detail::stats_json(total);
  j["idempotency"] = {{"replays", r.replays},
                      {"violations", r.idempotency_violations},
                      {"duplicate_order_ids", r.duplicate_order_ids}};
  j["nodes"] = nlohmann::ordered_json::object();
  for (const auto& [url, s] : r.nodes) j["nodes"][url] = detail::stats_json(s);
  if (r.verified) {
    nlohmann::ordered_json skus = nlohmann::ordered_json::array();
    for (const auto& s : r.verified->skus)
      skus.push_back({{"sku", s.sku},
                      {"ok", s.ok},
                      {"initial", s.initial},
                      {"sold", s.sold},
                      {"answered_units", s.answered},
                      {"orders", s.orders},
                      {"unanswered_units", s.unanswered},
                      {"reserved_at_end", s.reserved_end}});
    j["verify"] = {
        {"ok", r.verified->ok}, {"problems", r.verified->problems}, {"skus", std::move(skus)}};
  }
  return j;
}

/// The report as a table.
[[nodiscard]] inline std::string to_text(const run_report& r) {
  const auto total = r.total();
  const auto& c = r.config;
  std::string out;
  auto line = [&](std::string s) {
    out += s;
    out += '\n';
  };
  line(fmt::format("seckill_load: {} at {:g}/s ({}), {} connections per node, {} thread{}",
                   c.requests ? fmt::format("{} requests", *c.requests)
                              : fmt::format("{:g} s", c.duration_s.value_or(0)),
                   c.rate, c.arrival, c.connections, c.threads, c.threads == 1 ? "" : "s"));
  line(fmt::format("  nodes from {}: {}", c.discovery, fmt::join(c.targets, ", ")));
  line("");
  line(fmt::format("  {:<24}{} in {:.3f} s: {:.1f}/s achieved, {:g}/s requested", "requests",
                   total.sent, r.seconds,
                   r.seconds > 0 ? static_cast<double>(total.sent) / r.seconds : 0.0, c.rate));
  line(fmt::format("  {:<24}{} answered, {} without an answer{}", "", total.answered,
                   total.no_answer,
                   r.interrupted ? " (interrupted: the sending stopped early)" : ""));
  line("  answers");
  for (const auto& [label, n] : total.by_label)
    line(fmt::format(
        "    {:<22}{:>10}  {:>6.2f}%", label, n,
        total.sent ? 100.0 * static_cast<double>(n) / static_cast<double>(total.sent) : 0.0));
  line(fmt::format("  {:<24}{}", "latency", detail::latency_line(total.latency_us)));
  line(fmt::format("  {:<24}(from each request's intended send time)", ""));
  line(
      fmt::format("  {:<24}{} resent, {} answered with another order id; {} order ids given "
                  "to two requests",
                  "idempotency", r.replays, r.idempotency_violations, r.duplicate_order_ids));
  if (r.nodes.size() > 0) {
    line("");
    line("  per node");
    for (const auto& [url, s] : r.nodes) {
      std::vector<std::string> labels;
      for (const auto& [label, n] : s.by_label) labels.push_back(fmt::format("{}: {}", label, n));
      line(fmt::format("    {}  {} sent  {}", url, s.sent, fmt::join(labels, ", ")));
      line(fmt::format("      {}", detail::latency_line(s.latency_us)));
    }
  }
  if (r.verified) {
    line("");
    for (const auto& s : r.verified->skus)
      line(
          fmt::format("  {:<24}{}: sold {} (at the start {}), {} units in {} orders answered "
                      "200{}",
                      "stock", s.sku, s.sold, s.initial, s.answered, s.orders,
                      s.unanswered > 0 ? fmt::format(", {} units unanswered", s.unanswered) : ""));
    if (r.verified->ok)
      line(
          fmt::format("  {:<24}OK: sold == units answered 200, nothing oversold, no order id "
                      "twice, every resend kept its order id",
                      "verify"));
    else
      for (const auto& p : r.verified->problems)
        line(fmt::format("  {:<24}FAILED: {}", "verify", p));
  }
  return out;
}

}  // namespace seckill_load
