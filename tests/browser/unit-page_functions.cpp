// The extension's page functions (extension/page_functions.js) are the CDP
// backend's page scripts, generated from them: both backends read a shop
// and check an element with the same code. This test generates the file
// again and compares; with SECKILL_UPDATE_PAGE_FUNCTIONS=1 it writes it.
#include <seckill/browser/detail/page_scripts.hpp>
#include <seckill/browser/detail/shop_scripts.hpp>
#include <seckill/browser/site_profile.hpp>

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <utility>

namespace unit_page_functions {

namespace scripts = seckill::browser::detail::scripts;

// The content script's functions (`fns`: by the names the service worker
// calls), the finder, the observer of the watches, and the common
// verification checks (site_profile.hpp) a standalone run's watch uses.
std::string page_functions_js() {
  const std::pair<std::string_view, std::string_view> fns[] = {
      {"check", scripts::actionability},       {"select_prepare", scripts::select_prepare},
      {"fill_prepare", scripts::fill_prepare}, {"read_value", scripts::read_value},
      {"read_shop", scripts::read_shop},       {"offer_path", scripts::offer_path},
      {"read_count", scripts::read_count},     {"exists", scripts::exists},
      {"read_text", scripts::read_text},       {"date_samples", scripts::date_samples},
      {"clock_texts", scripts::clock_texts},
  };
  std::string out =
      "// Generated from the CDP backend's page scripts\n"
      "// (include/seckill/browser/detail/page_scripts.hpp and shop_scripts.hpp) by\n"
      "// tests/browser/unit-page_functions.cpp: do not edit. After a change there:\n"
      "//   SECKILL_UPDATE_PAGE_FUNCTIONS=1 seckill_browser_tests -tc='*page functions*'\n"
      "// The content script (content.js, loaded after this file in the same\n"
      "// isolated world) runs them: the extension backend reads a shop and checks\n"
      "// an element with the CDP backend's own code.\n"
      "globalThis.seckillPage = (() => {";
  out += scripts::finder;
  out += "  const fns = {};\n";
  for (const auto& [name, source] : fns) {
    out += "  fns.";
    out += name;
    out += " = ";
    out += source;
    out += ";\n";
  }
  // The observer a verification watch uses (page::async_on_sight's), not
  // among the functions the service worker may call.
  out += "  const installObserver = ";
  out += scripts::install_observer;
  out += ";\n  const removeObserver = ";
  out += scripts::remove_observer;
  out += ";\n";
  out += "  const defaults = {\n    verification: ";
  out += nlohmann::json(std::string(seckill::browser::default_verification)).dump();
  out += ",\n    verification_text: ";
  out += nlohmann::json(seckill::browser::default_verification_text()).dump();
  out += ",\n  };\n";
  out +=
      "  return {find, findAll, roots, styleOf, offset, hitAt, within, fns, installObserver,\n"
      "          removeObserver, defaults};\n})();\n";
  return out;
}

}  // namespace unit_page_functions

TEST_SUITE("unit") {
  TEST_CASE("the extension's page functions are generated from the CDP backend's page scripts") {
    const std::string path = std::string(SECKILL_EXTENSION_DIR) + "/page_functions.js";
    const std::string want = unit_page_functions::page_functions_js();
    if (const char* update = std::getenv("SECKILL_UPDATE_PAGE_FUNCTIONS");
        update != nullptr && std::string_view(update) == "1") {
      std::ofstream(path, std::ios::binary) << want;
    }
    std::ifstream in(path, std::ios::binary);
    REQUIRE_MESSAGE(in, "cannot read " << path);
    const std::string have{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    CHECK_MESSAGE(have == want, path << " is not what page_scripts.hpp and shop_scripts.hpp give:"
                                        " run this test with SECKILL_UPDATE_PAGE_FUNCTIONS=1");
  }
}
