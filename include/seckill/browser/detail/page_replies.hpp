#pragma once
/// @file
/// @brief How a page reads what the browser sends it: Runtime's replies, the
///        answers of the page's scripts, and the events it follows. None of
///        these throws: a value of the wrong shape is an error code (or is
///        ignored, for an event), never an exception.

#include <seckill/browser/error.hpp>
#include <seckill/browser/page_types.hpp>
#include <seckill/detail/base64.hpp>
#include <seckill/error.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

namespace seckill::browser::detail {

using json = nlohmann::json;

template <class T>
using result = std::pair<std::error_code, T>;

// Members read without throwing: missing or of another type gives the fallback.
inline std::string string_member(const json& o, const char* key) {
  if (!o.is_object()) return {};
  const auto it = o.find(key);
  return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
}
inline std::int64_t int_member(const json& o, const char* key, std::int64_t fallback) {
  if (!o.is_object()) return fallback;
  const auto it = o.find(key);
  if (it == o.end() || !it->is_number_integer()) return fallback;
  if (it->is_number_unsigned() &&
      it->get<std::uint64_t>() >
          static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
    return fallback;
  }
  return it->get<std::int64_t>();
}
inline double number_member(const json& o, const char* key) {
  if (!o.is_object()) return 0;
  const auto it = o.find(key);
  return it != o.end() && it->is_number() ? it->get<double>() : 0;
}
inline bool bool_member(const json& o, const char* key) {
  if (!o.is_object()) return false;
  const auto it = o.find(key);
  return it != o.end() && it->is_boolean() && it->get<bool>();
}

/// A protocol_error result saying what `method` replied instead of what was expected.
inline result<json> malformed(std::string_view method, const std::string& why) {
  return {make_error_code(seckill::errc::protocol_error),
          json{{"message", std::string(method) + " " + why}}};
}

/// Runtime.evaluate's or Runtime.callFunctionOn's reply (returnByValue) as
/// (error_code, value): the value (null for undefined);
/// errc::javascript_exception and the exceptionDetails object for a throw or
/// a rejection; errc::protocol_error and {"message": why} for a reply without
/// a RemoteObject.
inline result<json> evaluation_result(json reply, std::string_view method = "Runtime.evaluate") {
  if (!reply.is_object())
    return malformed(method, std::string("replied a ") + reply.type_name() + ", not an object");
  if (auto ex = reply.find("exceptionDetails"); ex != reply.end()) {
    if (!ex->is_object())
      return malformed(method,
                       std::string("replied an exceptionDetails that is a ") + ex->type_name());
    return {make_error_code(errc::javascript_exception), std::move(*ex)};
  }
  auto res = reply.find("result");
  if (res == reply.end() || !res->is_object())
    return malformed(method, "replied without a result object");
  auto v = res->find("value");
  return {std::error_code{}, v != res->end() ? std::move(*v) : json()};
}

/// What a select/fill script's answer means: {} done; element_not_found or
/// element_not_actionable with `retry` while the element may still become
/// ready (missing, hidden, disabled); the same without `retry` when it cannot
/// (no such option, a disabled option); invalid_argument for the wrong kind of
/// element; protocol_error for an answer that is none of these.
inline std::error_code script_status(const json& v, bool* retry = nullptr) {
  if (retry != nullptr) *retry = false;
  if (!v.is_string()) return make_error_code(seckill::errc::protocol_error);
  const auto& s = v.get_ref<const std::string&>();
  const bool waitable = s == "missing" || s == "hidden" || s == "disabled";
  if (retry != nullptr) *retry = waitable;
  if (s == "ok") return {};
  if (s == "missing" || s == "no-option") return make_error_code(errc::element_not_found);
  if (s == "hidden" || s == "disabled" || s == "option-disabled")
    return make_error_code(errc::element_not_actionable);
  if (s == "not-select" || s == "not-input")
    return make_error_code(seckill::errc::invalid_argument);
  return make_error_code(seckill::errc::protocol_error);
}

/// What the actionability script saw: its state ("ok", "missing", "hidden",
/// "moving", "disabled", "covered") and, when "ok", the element's box.
struct actionability {
  std::string state;
  element_box box;
};

/// The actionability script's answer; errc::protocol_error when it is not
/// {state: string} or, for "ok", lacks a finite numeric x, y, width or height.
inline std::error_code read_actionability(const json& v, actionability& out) {
  out = actionability{};
  if (!v.is_object()) return make_error_code(seckill::errc::protocol_error);
  const auto state = v.find("state");
  if (state == v.end() || !state->is_string())
    return make_error_code(seckill::errc::protocol_error);
  out.state = state->get<std::string>();
  if (out.state != "ok") return {};
  for (const char* key : {"x", "y", "width", "height"}) {
    const auto it = v.find(key);
    if (it == v.end() || !it->is_number()) return make_error_code(seckill::errc::protocol_error);
  }
  out.box = element_box{number_member(v, "x"), number_member(v, "y"), number_member(v, "width"),
                        number_member(v, "height")};
  return {};
}

/// A Runtime.bindingCalled event of `binding` carrying an observer's report:
/// (observer id, record); none for another binding or a payload that is not one.
inline std::optional<std::pair<std::uint64_t, mutation_record>> binding_report(
    const json& params, std::string_view binding) {
  if (string_member(params, "name") != binding) return std::nullopt;
  const json r = json::parse(string_member(params, "payload"), nullptr, false);
  if (r.is_discarded() || !r.is_object()) return std::nullopt;
  const auto id = r.find("id");
  if (id == r.end() || !id->is_number_unsigned() || id->get<std::uint64_t>() == 0)
    return std::nullopt;
  return std::pair{id->get<std::uint64_t>(),
                   mutation_record{bool_member(r, "present"), string_member(r, "text"),
                                   bool_member(r, "initial")}};
}

/// The id of the context a Runtime.executionContextCreated event announces if
/// it is the world `world` of frame `frame` (an empty `world`: the frame's
/// default world, the page's own); 0 otherwise.
inline std::int64_t created_context(const json& params, std::string_view world,
                                    std::string_view frame) {
  if (!params.is_object()) return 0;
  const auto c = params.find("context");
  if (c == params.end() || !c->is_object()) return 0;
  const auto aux = c->find("auxData");
  if (aux == c->end() || string_member(*aux, "frameId") != frame) return 0;
  if (world.empty() ? !bool_member(*aux, "isDefault") : string_member(*c, "name") != world)
    return 0;
  const std::int64_t id = int_member(*c, "id", 0);
  return id > 0 ? id : 0;
}

/// The eight bytes every PNG file starts with.
inline constexpr std::string_view png_signature{"\x89PNG\r\n\x1a\n", 8};

/// The image Page.captureScreenshot replied ({data: <base64 PNG>}), decoded:
/// errc::protocol_error when `data` is missing, is not base64 or is not a PNG.
inline result<std::string> screenshot_png(const json& reply) {
  const auto data = reply.is_object() ? reply.find("data") : reply.end();
  std::string png;
  if (data == reply.end() || !data->is_string() ||
      !seckill::detail::base64_decode(data->get_ref<const std::string&>(), png) ||
      !png.starts_with(png_signature)) {
    return {make_error_code(seckill::errc::protocol_error), std::string()};
  }
  return {std::error_code{}, std::move(png)};
}

}  // namespace seckill::browser::detail
